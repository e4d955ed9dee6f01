package server_test

import (
	"testing"
	"time"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/redistest"
)

// TestHungRedisFallsBackWithinTheTimeout: a Redis that accepts connections
// but never answers (SIGSTOP) is a slow Redis: Validate answers from the
// local budget once KEYSERVICE_REDIS_TIMEOUT has passed, as it does when
// Redis is down. It used to wait for go-redis's own 5 s read timeout.
func TestHungRedisFallsBackWithinTheTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 50 * time.Millisecond
	srv := redistest.Start(t)
	e := start(t, withConfig(func(c *config.Config) {
		c.RedisURL = srv.URL()
		c.RedisTimeout = timeout
	}))
	secret := createLimitedKey(t, e, 100, 100, time.Hour)
	req := &keyservicev1.ValidateRequest{Key: secret}
	// The first call may meet Redis's first connection and, on a busy
	// machine, the 50 ms timeout: until Redis has answered once, ask
	// without spending (cost 0).
	zero := int32(0)
	waitFor(t, func() bool {
		validate(t, e, &keyservicev1.ValidateRequest{Key: secret, Cost: &zero})
		return metricValue(t, e, "keyservice_key_limit_redis_up") == 1
	})
	if v := validate(t, e, req); !v.GetValid() || v.GetRateLimit().GetRemaining() != 99 {
		t.Fatalf("with Redis answering: %v", v)
	}
	if metricValue(t, e, "keyservice_key_limit_redis_up") != 1 {
		t.Fatal("keyservice_key_limit_redis_up is not 1 while Redis answers")
	}
	before := metricValue(t, e, "keyservice_key_limit_fallbacks_total")

	srv.Pause()
	start := time.Now()
	v := validate(t, e, req)
	took := time.Since(start)
	t.Logf("Validate with Redis stopped by SIGSTOP took %s (KEYSERVICE_REDIS_TIMEOUT %s)", took.Round(time.Millisecond), timeout)
	if !v.GetValid() || v.GetRateLimit().GetRemaining() != 99 {
		t.Fatalf("with Redis hung: %v, want VALID from a fresh local budget (99 left)", v)
	}
	if n := metricValue(t, e, "keyservice_key_limit_fallbacks_total") - before; n != 1 {
		t.Fatalf("keyservice_key_limit_fallbacks_total moved by %v, want 1", n)
	}
	if metricValue(t, e, "keyservice_key_limit_redis_up") != 0 {
		t.Fatal("keyservice_key_limit_redis_up still 1 with Redis hung")
	}
	// Generous: the timeout is honoured, not how fast the machine is.
	if took > 20*timeout {
		t.Fatalf("Validate took %s with Redis hung, past 20 x KEYSERVICE_REDIS_TIMEOUT (%s)", took, timeout)
	}

	srv.Resume()
	waitFor(t, func() bool {
		validate(t, e, req)
		return metricValue(t, e, "keyservice_key_limit_redis_up") == 1
	})
}
