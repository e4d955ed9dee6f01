package ratelimit_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/ratelimit"
	"github.com/keyservice/keyservice/internal/redistest"
)

// TestHungRedisFallsBackOnEveryProbe: with Redis stopped by SIGSTOP (it
// accepts connections, answers nothing), every check that asks it — on
// the pooled connection, and on each later probe, which dials a fresh one
// that the kernel still accepts — falls back to the local budget once the
// timeout has passed. The client is the one the service builds
// (NewRedisClient); with go-redis's defaults each took 5 s.
func TestHungRedisFallsBackOnEveryProbe(t *testing.T) {
	t.Parallel()
	const timeout = 50 * time.Millisecond
	srv := redistest.Start(t)
	client, err := ratelimit.NewRedisClient(srv.URL(), timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	var logs syncBuf
	f := ratelimit.NewFallback(ratelimit.NewRedis(client, "hung:"), ratelimit.NewLocal(100, time.Hour, nil),
		timeout, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	fc := &clock{now: time.Now()}
	ratelimit.SetFallbackClock(f, fc.Now)
	l := apikey.RateLimit{Limit: 100, Period: time.Hour, Burst: 100}
	ctx := context.Background()
	if d, err := f.Take(ctx, "k", l, 10); err != nil || d.Remaining != 90 {
		t.Fatalf("redis answering: %+v %v", d, err)
	}
	// The probes ask another key, whose local budget nothing has spent:
	// on a loaded machine the call above may itself have passed the
	// timeout and spent k's local budget (CI saw 89 left, not 99). Redis
	// is told of p (without a timeout that could fall back) so its budget
	// differs from the local one: 90 there, 100 here.
	patient, err := ratelimit.NewRedisClient(srv.URL(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { patient.Close() })
	if d, err := ratelimit.NewRedis(patient, "hung:").Take(ctx, "p", l, 10); err != nil || d.Remaining != 90 {
		t.Fatalf("p in Redis: %+v %v", d, err)
	}

	srv.Pause()
	for probe := 1; probe <= 3; probe++ {
		fc.Advance(2 * time.Second) // past the probe interval: Redis is asked
		start := time.Now()
		d, err := f.Take(ctx, "p", l, 1)
		took := time.Since(start)
		t.Logf("probe %d of a hung Redis answered in %s (timeout %s)", probe, took.Round(time.Millisecond), timeout)
		// The local budget answers: fresh (100), one spent per probe.
		if err != nil || !d.Allowed || d.Remaining != 100-probe {
			t.Fatalf("probe %d: %+v %v, want the local budget with %d left", probe, d, err, 100-probe)
		}
		if took > 20*timeout {
			t.Fatalf("probe %d took %s, past 20 x the timeout (%s)", probe, took, timeout)
		}
		if took < timeout { // each probe waits for Redis before falling back
			t.Fatalf("probe %d answered in %s, before the timeout: Redis was not asked", probe, took)
		}
	}
	if n := countLines(logs.String(), "redis unreachable"); n != 1 {
		t.Fatalf("the hang was logged %d times, want once", n)
	}

	srv.Resume()
	for attempt := 0; ; attempt++ {
		fc.Advance(2 * time.Second)
		d, err := f.Take(ctx, "k", l, 1)
		if err != nil {
			t.Fatal(err)
		}
		// Logged when a probe is answered by Redis after the outage (a
		// budget's numbers cannot tell: both may hold the same).
		if countLines(logs.String(), "redis answers again") >= 1 {
			t.Logf("Redis answers again: %d left", d.Remaining)
			break
		}
		if attempt == 100 {
			t.Fatal("did not use Redis again after 100 probes")
		}
	}
}
