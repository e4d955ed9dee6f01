package ratelimit_test

import (
	"context"

	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/limits"
	"github.com/keyservice/keyservice/internal/ratelimit"
	"github.com/keyservice/keyservice/internal/redistest"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newRedisClient(t testing.TB, u string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// stores runs one contract test against every KeyBudgets.
func stores(t *testing.T) map[string]ratelimit.KeyBudgets {
	u, prefix := redistest.URL(t)
	return map[string]ratelimit.KeyBudgets{
		"local": ratelimit.NewLocal(1000, time.Minute, nil),
		"redis": ratelimit.NewRedis(newRedisClient(t, u), prefix),
	}
}

func TestExactlyBurstOutOfImmediateCalls(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			l := apikey.RateLimit{Limit: 10, Period: time.Second, Burst: 10}
			allowed := 0
			for i := 0; i < 50; i++ {
				d, err := s.Take(context.Background(), "k1", l, 1)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed {
					allowed++
				}
				if d.Limit != 10 {
					t.Fatalf("limit %d", d.Limit)
				}
			}
			// 50 calls within a few ms: at most one more token can refill.
			if allowed < 10 || allowed > 11 {
				t.Fatalf("%d of 50 immediate calls allowed, want 10", allowed)
			}
		})
	}
}

func TestCostZeroNeverSpends(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			l := apikey.RateLimit{Limit: 5, Period: time.Hour, Burst: 5}
			for i := 0; i < 100; i++ {
				d, err := s.Take(context.Background(), "k0", l, 0)
				if err != nil || !d.Allowed || d.Remaining != 5 {
					t.Fatalf("check %d: %+v %v", i, d, err)
				}
			}
			d, err := s.Take(context.Background(), "k0", l, 5)
			if err != nil || !d.Allowed || d.Remaining != 0 {
				t.Fatalf("spending the whole budget: %+v %v", d, err)
			}
			d, err = s.Take(context.Background(), "k0", l, 0)
			if err != nil || d.Allowed || d.Reset <= 0 {
				t.Fatalf("check of an empty budget: %+v %v", d, err)
			}
		})
	}
}

func TestCostLargerThanRemainingIsRefusedWithoutSpending(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			l := apikey.RateLimit{Limit: 10, Period: time.Hour, Burst: 10}
			if d, _ := s.Take(context.Background(), "kc", l, 7); !d.Allowed || d.Remaining != 3 {
				t.Fatalf("cost 7: %+v", d)
			}
			if d, _ := s.Take(context.Background(), "kc", l, 4); d.Allowed {
				t.Fatalf("cost 4 with 3 left: %+v", d)
			}
			if d, _ := s.Take(context.Background(), "kc", l, 3); !d.Allowed {
				t.Fatalf("cost 3 with 3 left: %+v", d)
			}
		})
	}
}

func TestLocalRefillsWithTheInjectedClock(t *testing.T) {
	c := &clock{now: time.Unix(1_700_000_000, 0)}
	s := ratelimit.NewLocal(100, time.Hour, c.Now)
	l := apikey.RateLimit{Limit: 10, Period: time.Second, Burst: 10}
	for i := 0; i < 10; i++ {
		if d, _ := s.Take(context.Background(), "k", l, 1); !d.Allowed {
			t.Fatalf("call %d refused", i)
		}
	}
	d, _ := s.Take(context.Background(), "k", l, 1)
	if d.Allowed || d.Reset != 100*time.Millisecond {
		t.Fatalf("11th call: %+v, want refused with reset 100ms", d)
	}
	c.Advance(100 * time.Millisecond)
	if d, _ := s.Take(context.Background(), "k", l, 1); !d.Allowed {
		t.Fatal("one token should have refilled after 100ms")
	}
	c.Advance(time.Second)
	d, _ = s.Take(context.Background(), "k", l, 0)
	if d.Remaining != 10 || d.Reset != 0 {
		t.Fatalf("after a full period: %+v, want a full bucket", d)
	}
}

func TestFallbackUsesLocalWhileRedisIsDownAndSharedAfter(t *testing.T) {
	srv := redistest.Start(t)
	var logs syncBuf
	log := slog.New(slog.NewTextHandler(&logs, nil))
	client := newRedisClient(t, srv.URL())
	primary := ratelimit.NewRedis(client, "fb:")
	f := ratelimit.NewFallback(primary, ratelimit.NewLocal(100, time.Hour, nil), 50*time.Millisecond, log, nil)
	fc := &clock{now: time.Now()}
	ratelimit.SetFallbackClock(f, fc.Now)
	l := apikey.RateLimit{Limit: 100, Period: time.Hour, Burst: 100}
	ctx := context.Background()
	if d, err := f.Take(ctx, "k", l, 10); err != nil || d.Remaining != 90 {
		t.Fatalf("redis up: %+v %v", d, err)
	}
	srv.Stop()
	for i := 0; i < 20; i++ {
		start := time.Now()
		d, err := f.Take(ctx, "k", l, 1)
		if err != nil || !d.Allowed {
			t.Fatalf("redis down, call %d: %+v %v", i, d, err)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("call %d hung for %s", i, time.Since(start))
		}
	}
	if n := countLines(logs.String(), "redis unreachable"); n != 1 {
		t.Fatalf("outage logged %d times, want once", n)
	}
	srv.Restart()
	// Within the probe interval the shared store is used again; the budget
	// restarted with the server (it keeps nothing on disk).
	// Past each probe interval the next call asks Redis again (the clock
	// is moved, not waited for); the first may still time out while the
	// restarted server warms up.
	var d apikey.Budget
	for attempt := 0; ; attempt++ {
		fc.Advance(2 * time.Second)
		var err error
		if d, err = f.Take(ctx, "k", l, 1); err != nil {
			t.Fatal(err)
		}
		if n, _ := client.Exists(ctx, "rate:fb:k").Result(); n == 1 {
			break
		}
		if attempt == 100 {
			t.Fatal("did not switch back to redis after 100 probes")
		}
	}
	if d.Remaining != 99 {
		t.Fatalf("first shared call after the outage: %+v", d)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return string(s.b) }

func countLines(s, sub string) int {
	n := 0
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			n++
		}
	}
	return n
}

func TestCallerTableStaysBounded(t *testing.T) {
	t.Parallel()
	// A hundred times more callers than the table holds (1,000,000 against
	// 10,000 took 16 s under the race detector and proved nothing more).
	c := ratelimit.NewCallers(ratelimit.CallerConfig{
		Limits: limits.Limits{
			CallerRate: 10, CallerBurst: 10, FailedRate: 1, FailedBurst: 1, CallerTableSize: 1_000, CallerIdle: time.Hour,
		},
	})
	for i := 0; i < 100_000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		c.Allow(caller.Identity{Kind: caller.KindAddr, Addr: a})
	}
	if n := c.TableSize(); n > 1_000 {
		t.Fatalf("100,000 callers left %d limiters, bound is 1,000", n)
	}
}

func TestCallerBudgetsAreSeparateAndOverridable(t *testing.T) {
	c := ratelimit.NewCallers(ratelimit.CallerConfig{
		Limits: limits.Limits{
			CallerRate: 1, CallerBurst: 3,
			CallerLimits: map[string]caller.Budget{"big": {Rate: 1, Burst: 10}},
			FailedRate:   1, FailedBurst: 1, CallerTableSize: 100, CallerIdle: time.Hour,
		},
		Now: (&clock{now: time.Unix(1_700_000_000, 0)}).Now,
	})
	count := func(id caller.Identity) int {
		n := 0
		for i := 0; i < 20; i++ {
			if ok, _ := c.Allow(id); ok {
				n++
			}
		}
		return n
	}
	a := caller.Identity{Kind: caller.KindToken, Name: "a"}
	b := caller.Identity{Kind: caller.KindToken, Name: "b"}
	big := caller.Identity{Kind: caller.KindToken, Name: "big"}
	if n := count(a); n != 3 {
		t.Fatalf("a allowed %d, want 3", n)
	}
	if n := count(b); n != 3 {
		t.Fatalf("b allowed %d after a ran out, want 3", n)
	}
	if n := count(big); n != 10 {
		t.Fatalf("overridden caller allowed %d, want 10", n)
	}
	if ok, wait := c.Allow(a); ok || wait != time.Second {
		t.Fatalf("a again: %v, wait %s; want refused for 1s", ok, wait)
	}
}

func TestGroupKeepsIPv4AndFoldsIPv6To64(t *testing.T) {
	a, b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	if ratelimit.Group(a) != ratelimit.Group(b) {
		t.Fatal("two addresses of one /64 got different budgets")
	}
	if ratelimit.Group(a) == ratelimit.Group(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Fatal("different /64s share a budget")
	}
	v4 := netip.MustParseAddr("198.51.100.7")
	if ratelimit.Group(v4) != v4 || ratelimit.Group(netip.MustParseAddr("::ffff:198.51.100.7")) != v4 {
		t.Fatal("IPv4 (or IPv4-mapped) addresses must stay whole")
	}
}

// TestLocalKeepsABucketInUse: a bucket in steady use is never forgotten
// (a forgotten one starts full again, handing out calls the limit did not
// allow), however long it is used; an idle one is forgotten only once it
// would have refilled anyway.
func TestLocalKeepsABucketInUse(t *testing.T) {
	c := &clock{now: time.Unix(1_700_000_000, 0)}
	s := ratelimit.NewLocal(100, time.Minute, c.Now)
	// 2 calls an hour, burst 2: a full refill takes an hour.
	l := apikey.RateLimit{Limit: 2, Period: time.Hour, Burst: 2}
	// One call every 20 minutes for 10 hours: a token comes every 30, so
	// every third call from the fourth on is refused.
	allowed := 0
	for i := 0; i < 30; i++ {
		d, _ := s.Take(context.Background(), "k", l, 1)
		if d.Allowed {
			allowed++
		}
		c.Advance(20 * time.Minute)
	}
	// 2 to start with, then 2 an hour for the 10 hours that followed the first call,
	// less the one still refilling at the end.
	if allowed != 21 {
		t.Fatalf("%d of 30 calls allowed over 10 hours at 2 an hour (burst 2), want 21: the bucket was forgotten in use", allowed)
	}
	// Idle for 3 hours: forgotten or refilled, it is full.
	c.Advance(3 * time.Hour)
	if d, _ := s.Take(context.Background(), "k", l, 0); d.Remaining != 2 {
		t.Fatalf("after 3 idle hours: %+v, want full", d)
	}
}

// TestLocalLimitChangeRacesNothing: a key's limit changing while other
// calls take from its bucket and renew its life is no data race (run
// under -race), and the new limit's life holds the bucket.
func TestLocalLimitChangeRacesNothing(t *testing.T) {
	c := &clock{now: time.Unix(1_700_000_000, 0)}
	s := ratelimit.NewLocal(100, time.Second, c.Now)
	slow := apikey.RateLimit{Limit: 1, Period: time.Hour, Burst: 1}
	fast := apikey.RateLimit{Limit: 1000, Period: time.Second, Burst: 1000}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				l := fast
				if (i+w)%2 == 0 {
					l = slow
				}
				_, _ = s.Take(context.Background(), "k", l, 0)
			}
		})
	}
	wg.Wait()
	// Now the slow limit, spent: an hour to refill. Used every 45 minutes
	// for 4.5 hours, it is never forgotten (a forgotten bucket starts full).
	_, _ = s.Take(context.Background(), "k", slow, 1)
	_, _ = s.Take(context.Background(), "k", slow, 1)
	allowed := 0
	for range 6 {
		c.Advance(45 * time.Minute)
		if d, _ := s.Take(context.Background(), "k", slow, 1); d.Allowed {
			allowed++
		}
	}
	// Tokens (burst 1) at 45, 90, 135, 180, 225, 270 minutes: 0.75, 1, 0.75,
	// 1, 0.75, 1: allowed at 90, 180 and 270. A bucket forgotten two hours
	// after its first write would start full at 135: 4.
	if allowed != 3 {
		t.Fatalf("%d of 6 calls allowed over 4.5 hours at 1 an hour, want 3", allowed)
	}
}
