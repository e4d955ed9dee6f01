// Package ratelimit owns the budgets: a token bucket per caller (a unary
// interceptor, in front of every KeyService call), a stricter budget of
// failed validations per caller and end client, and the per-key limit
// checked inside Validate, kept locally or in Redis.
package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/backoff"
)

func perSecond(l apikey.RateLimit) rate.Limit {
	return rate.Limit(l.PerSecond())
}

// KeyBudgets keeps per-key budgets. cost 0 checks without spending, and is
// allowed while at least one call's worth remains.
type KeyBudgets interface {
	Take(ctx context.Context, key string, l apikey.RateLimit, cost int) (apikey.Budget, error)
}

// Local keeps budgets in this process: each replica has its own.
type Local struct {
	now     func() time.Time
	idle    time.Duration
	buckets *otter.Cache[string, *bucket]
}

type bucket struct {
	mu    sync.Mutex
	limit apikey.RateLimit
	lim   *rate.Limiter
	// renewed: unix nanos (Local.now) when the bucket's life in the cache
	// was last renewed; life: that life (nanoseconds), for limit, read by
	// the cache's expiry without mu.
	renewed, life atomic.Int64
}

var _ KeyBudgets = (*Local)(nil)

// NewLocal keeps up to size buckets, forgetting those idle for longer than
// idle (a forgotten bucket starts full again).
func NewLocal(size int, idle time.Duration, now func() time.Time) *Local {
	var clock otter.Clock = otter.NewCoarseClock(time.Second)
	if now == nil {
		now = time.Now
	} else {
		clock = nowClock{now} // an injected clock (tests) drives expiry too
	}
	// A bucket is kept at least as long as it takes to refill (life):
	// forgetting it sooner would hand a key with a long period a fresh
	// budget. Its cache entry expires 2 x life after it was last written,
	// and Take writes it again once life has passed since: so a bucket in
	// use stays, and an idle one goes between life and 2 x life after its
	// last use. (Expiring on access instead made otter compute a deadline
	// on every read: most of a warm Validate's time in this package.)
	s := &Local{now: now, idle: idle}
	s.buckets = otter.Must(&otter.Options[string, *bucket]{
		MaximumSize:      size,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *bucket]) time.Duration { return 2 * time.Duration(e.Value.life.Load()) }),
		Clock:            clock,
	})
	return s
}

// nowClock adapts an injected clock for otter; it has no ticker, so
// expiry happens on access only.
type nowClock struct{ now func() time.Time }

func (c nowClock) NowNano() int64                      { return c.now().UnixNano() }
func (c nowClock) Tick(time.Duration) <-chan time.Time { return nil }

// life is how long an idle bucket of limit l is kept at least.
func (s *Local) life(l apikey.RateLimit) time.Duration {
	return max(s.idle, time.Duration(float64(l.Period)*float64(l.Burst)/float64(l.Limit)))
}

// Take spends cost from key's bucket.
func (s *Local) Take(_ context.Context, key string, l apikey.RateLimit, cost int) (apikey.Budget, error) {
	now := s.now()
	b, ok := s.buckets.GetIfPresent(key)
	if !ok {
		fresh := &bucket{limit: l, lim: rate.NewLimiter(perSecond(l), l.Burst)}
		fresh.renewed.Store(now.UnixNano())
		fresh.life.Store(int64(s.life(l)))
		b, _ = s.buckets.SetIfAbsent(key, fresh)
	} else if r := b.renewed.Load(); now.UnixNano()-r >= b.life.Load() && b.renewed.CompareAndSwap(r, now.UnixNano()) {
		s.buckets.Set(key, b) // in use: its life starts again
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.limit != l {
		// The key's limit changed: keep what was spent, in the new shape,
		// and start its life again with the new limit's.
		b.lim.SetLimitAt(now, perSecond(l))
		b.lim.SetBurstAt(now, l.Burst)
		b.limit = l
		b.life.Store(int64(s.life(l)))
		b.renewed.Store(now.UnixNano())
		s.buckets.Set(key, b)
	}
	allowed := true
	if cost > 0 {
		allowed = b.lim.AllowN(now, cost)
	}
	tokens := b.lim.TokensAt(now)
	if cost == 0 {
		allowed = tokens >= 1
	}
	d := apikey.Budget{Allowed: allowed, Limit: l.Limit, Remaining: max(int(math.Floor(tokens)), 0)}
	perSec := float64(perSecond(l))
	if allowed {
		d.Reset = secs((float64(l.Burst) - tokens) / perSec)
	} else {
		d.Reset = secs((float64(max(cost, 1)) - tokens) / perSec)
	}
	return d, nil
}

func secs(f float64) time.Duration {
	if f <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(f * float64(time.Second)))
}

// Redis keeps one budget per key for every replica (GCRA in a Lua script,
// github.com/go-redis/redis_rate).
type Redis struct {
	lim    *redis_rate.Limiter
	prefix string
}

var _ KeyBudgets = (*Redis)(nil)

// NewRedisClient connects to the Redis at url (redis:// or rediss://) for
// per-key budgets, with every command bounded by timeout: connecting,
// writing and reading, the caller's context deadline included. Without
// ContextTimeoutEnabled, go-redis ignores the context's deadline on the
// socket and waits for its own read timeout (5 s) on a Redis that accepts
// connections but does not answer (stopped, swapping, partitioned after
// the handshake); the fallback's timeout then did not hold.
func NewRedisClient(url string, timeout time.Duration) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opts.ContextTimeoutEnabled = true
	opts.DialTimeout = timeout
	opts.ReadTimeout = timeout
	opts.WriteTimeout = timeout
	opts.PoolTimeout = timeout
	// A retry would only add to the fallback timeout: the local budget
	// answers instead, and Redis is probed again later.
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	return redis.NewClient(opts), nil
}

// NewRedis returns a store on client; prefix separates deployments (and tests).
func NewRedis(client *redis.Client, prefix string) *Redis {
	return &Redis{lim: redis_rate.NewLimiter(client), prefix: prefix}
}

// Take spends cost from key's budget in Redis.
func (s *Redis) Take(ctx context.Context, key string, l apikey.RateLimit, cost int) (apikey.Budget, error) {
	res, err := s.lim.AllowN(ctx, s.prefix+key, redis_rate.Limit{Rate: l.Limit, Burst: l.Burst, Period: l.Period}, cost)
	if err != nil {
		return apikey.Budget{}, err
	}
	d := apikey.Budget{Limit: l.Limit, Remaining: res.Remaining, Reset: max(res.ResetAfter, 0)}
	if cost == 0 {
		d.Allowed = res.Remaining >= 1
	} else {
		d.Allowed = res.Allowed > 0
	}
	if !d.Allowed && res.RetryAfter > 0 {
		d.Reset = res.RetryAfter
	}
	return d, nil
}

// Fallback uses primary (Redis) and, when it fails or is slower than
// timeout, the local store: a call never fails or hangs because of Redis.
// After a failure it retries primary at most once per probe interval, and
// switches back as soon as primary answers.
type Fallback struct {
	primary  KeyBudgets
	local    KeyBudgets
	timeout  time.Duration
	probe    time.Duration
	log      *slog.Logger
	now      func() time.Time // time.Now; tests move it instead of waiting
	down     atomic.Bool
	retryAt  atomic.Int64
	fallback prometheus.Counter
}

var _ KeyBudgets = (*Fallback)(nil)

// NewFallback wraps primary with local. reg may be nil.
func NewFallback(primary, local KeyBudgets, timeout time.Duration, log *slog.Logger, reg prometheus.Registerer) *Fallback {
	f := &Fallback{
		primary: primary, local: local, timeout: timeout, probe: time.Second, log: log, now: time.Now,
		fallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyservice_key_limit_fallbacks_total",
			Help: "Per-key limit checks answered by the local store because Redis failed or was slow.",
		}),
	}
	if reg != nil {
		reg.MustRegister(f.fallback, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyservice_key_limit_redis_up",
			Help: "1 while the shared (Redis) per-key limit store answers, 0 while the local fallback is used.",
		}, func() float64 {
			if f.down.Load() {
				return 0
			}
			return 1
		}))
	}
	return f
}

// Take asks primary, falling back to local.
func (f *Fallback) Take(ctx context.Context, key string, l apikey.RateLimit, cost int) (apikey.Budget, error) {
	if f.down.Load() && f.now().UnixNano() < f.retryAt.Load() {
		f.fallback.Inc()
		return f.local.Take(ctx, key, l, cost)
	}
	pctx, cancel := context.WithTimeout(ctx, f.timeout)
	d, err := f.primary.Take(pctx, key, l, cost)
	cancel()
	if err == nil {
		if f.down.CompareAndSwap(true, false) {
			f.log.Info("redis answers again: per-key limits are shared across replicas again")
		}
		return d, nil
	}
	if ctx.Err() != nil {
		return apikey.Budget{}, ctx.Err()
	}
	// Probe again after about a second, jittered: replicas that lost Redis
	// together do not all ask it again in the same instant.
	f.retryAt.Store(f.now().Add(backoff.Jitter(f.probe, 0.2)).UnixNano())
	if f.down.CompareAndSwap(false, true) {
		// Once per outage.
		f.log.Warn("redis unreachable: per-key limits are local to each replica until it returns", "error", redisErr(err))
	}
	f.fallback.Inc()
	return f.local.Take(ctx, key, l, cost)
}

// redisErr keeps a password in a URL out of the log.
func redisErr(err error) string {
	var netErr interface{ Timeout() bool }
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timeout"
	}
	return err.Error()
}
