package ratelimit

import (
	"context"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/limits"
	"github.com/keyservice/keyservice/internal/outcome"
)

// budgetKey is the identity a caller's budgets are kept under: an
// untrusted address is folded to its Group; a trusted proxy keeps its own
// budget, not shared with its /64 neighbours.
func (c *Callers) budgetKey(id caller.Identity) caller.Identity {
	if id.Kind == caller.KindAddr && !c.mayForward(id) {
		id.Addr = Group(id.Addr)
	}
	return id
}

// CallerConfig configures the caller limits: the operator's Limits, and
// the collaborators.
type CallerConfig struct {
	limits.Limits
	// TrustedProxies may name end clients (client_ip) even when they are
	// identified only by their address.
	TrustedProxies []netip.Prefix
	Now            func() time.Time
	Registry       prometheus.Registerer
}

// Callers limits each caller, and each caller's failed attempts.
type Callers struct {
	cfg       CallerConfig
	now       func() int64 // ns, monotonic
	callers   *otter.Cache[caller.Identity, *callerEntry]
	failed    *otter.Cache[failedKey, *gcra]
	refused   *prometheus.CounterVec
	refusedRL prometheus.Counter
	refusedFA prometheus.Counter
	failures  *prometheus.CounterVec
	anonFails prometheus.Counter
}

// callerEntry holds a caller's budget, its failed-attempt budget (used
// only for an anonymous caller, whose address is its end client), and
// its count of failed validations: one table lookup serves all three.
type callerEntry struct {
	calls    *gcra
	failed   *gcra
	failures prometheus.Counter
}

type failedKey struct {
	caller caller.Identity
	client netip.Addr // ValidateRequest.client_ip, grouped (IPv6: its /64)
}

// NewCallers builds the caller limiter.
func NewCallers(cfg CallerConfig) *Callers {
	// The buckets need only a monotonic clock in nanoseconds, which is
	// half the cost of time.Now on some virtual machines.
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	if cfg.Now != nil {
		injected := cfg.Now
		base := injected()
		now = func() int64 { return int64(injected().Sub(base)) + int64(time.Hour) }
	}
	// Idle expiry needs no precision, and reading the precise time is most
	// of the cost of a table read (it is slow on some virtual machines).
	clock := otter.NewCoarseClock(time.Second)
	c := &Callers{
		cfg: cfg, now: now,
		callers: otter.Must(&otter.Options[caller.Identity, *callerEntry]{
			MaximumSize:      cfg.CallerTableSize,
			ExpiryCalculator: otter.ExpiryAccessing[caller.Identity, *callerEntry](cfg.CallerIdle),
			Clock:            clock,
		}),
		failed: otter.Must(&otter.Options[failedKey, *gcra]{
			MaximumSize:      cfg.CallerTableSize,
			ExpiryCalculator: otter.ExpiryAccessing[failedKey, *gcra](cfg.CallerIdle),
			Clock:            clock,
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyservice_caller_refusals_total",
			Help: "Calls refused by the caller limits, by reason (rate, failed_attempts).",
		}, []string{"reason"}),
	}
	c.refusedRL = c.refused.WithLabelValues("rate")
	c.refusedFA = c.refused.WithLabelValues("failed_attempts")
	c.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyservice_caller_failed_validations_total",
		Help: "NOT_FOUND and MALFORMED answers by caller (token:NAME, cert:NAME, admin:admin; anonymous callers together as \"anonymous\"). A credentialed caller that names no end client (client_ip) is never refused for them: watch this instead.",
	}, []string{"caller"})
	c.anonFails = c.failures.WithLabelValues("anonymous")
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(c.refused, c.failures,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyservice_caller_limiters", Help: "Caller limiters held."},
				func() float64 { return float64(c.callers.EstimatedSize()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyservice_failed_attempt_limiters", Help: "Failed-attempt limiters held."},
				func() float64 { return float64(c.failed.EstimatedSize()) }),
		)
	}
	return c
}

// mayForward reports whether id may name end clients (client_ip).
func (c *Callers) mayForward(id caller.Identity) bool {
	return caller.MayForward(id, c.cfg.TrustedProxies)
}

// Group is the address a budget is kept for: the address itself for IPv4,
// its /64 for IPv6 (one host commonly holds a whole /64, and could
// otherwise take a fresh budget per address).
func Group(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

func (c *Callers) budgetFor(id caller.Identity) caller.Budget {
	if id.Own.Burst > 0 {
		return id.Own
	}
	if id.Kind != caller.KindAddr {
		if b, ok := c.cfg.CallerLimits[id.Name]; ok {
			return b
		}
	}
	return c.cfg.DefaultBudget()
}

func (c *Callers) entry(id caller.Identity) *callerEntry {
	if e, ok := c.callers.GetIfPresent(id); ok {
		return e
	}
	b := c.budgetFor(id)
	ne := &callerEntry{
		calls:    newGCRA(b),
		failures: c.anonFails,
	}
	if id.Kind == caller.KindAddr {
		// Used only when this address is not a trusted proxy.
		ne.failed = newGCRA(c.cfg.FailedBudget())
	} else {
		// Bounded: credentialed callers are named in the configuration (or
		// by a certificate authority it names).
		ne.failures = c.failures.WithLabelValues(id.String())
	}
	e, _ := c.callers.SetIfAbsent(id, ne)
	return e
}

func (c *Callers) failedLimiter(k failedKey) *gcra {
	if l, ok := c.failed.GetIfPresent(k); ok {
		return l
	}
	l, _ := c.failed.SetIfAbsent(k, newGCRA(c.cfg.FailedBudget()))
	return l
}

// Allow spends one call from id's budget; when refused it returns the
// wait until the next call is allowed.
func (c *Callers) Allow(id caller.Identity) (bool, time.Duration) {
	ok, retry, _ := c.allow(id, c.now())
	return ok, retry
}

func (c *Callers) allow(id caller.Identity, now int64) (bool, time.Duration, *callerEntry) {
	e := c.entry(c.budgetKey(id))
	ok, retry := e.calls.take(now)
	return ok, retry, e
}

// TableSize reports how many caller limiters are held (after pending
// evictions are applied).
func (c *Callers) TableSize() int {
	c.callers.CleanUp()
	return c.callers.EstimatedSize()
}

var keyServicePrefix = "/" + keyservicev1.KeyService_ServiceDesc.ServiceName + "/"

// Interceptor refuses a caller over its budget with RESOURCE_EXHAUSTED and
// a RetryInfo (REST: 429, Retry-After, RateLimit-* headers), before any
// hashing or lookup. On Validate it also enforces the failed-attempt
// budget. Only KeyService methods are limited: health checks and
// reflection are not.
func (c *Callers) Interceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, keyServicePrefix) {
			return handler(ctx, req)
		}
		id, _ := caller.IdentityFrom(ctx)
		now := c.now()
		ok, retry, entry := c.allow(id, now)
		if !ok {
			c.refusedRL.Inc()
			b := c.budgetFor(id)
			return nil, refuse(ctx, "caller over its rate limit", retry, b.Burst)
		}
		vreq, isValidate := req.(*keyservicev1.ValidateRequest)
		if !isValidate {
			return handler(ctx, req)
		}
		// The failed-attempt guard punishes whoever sent the wrong keys, never
		// a whole calling service: its budget belongs to the end client. An
		// anonymous caller is its own end client (its address). A caller that
		// may name end clients (a credential, or a trusted proxy) names them
		// in client_ip; one that names none is never refused for wrong keys
		// (its own budget still applies), and its failures are counted per
		// caller instead. client_ip is believed only
		// from such callers: otherwise a guesser would name a new end client
		// per request and never run out.
		var fl *gcra
		switch raw := vreq.GetClientIp(); {
		case !c.mayForward(id):
			fl = entry.failed // anonymous: the caller is the end client
		case raw != "":
			a, err := netip.ParseAddr(raw)
			if err != nil {
				return handler(ctx, req) // the handler refuses a malformed client_ip
			}
			fl = c.failedLimiter(failedKey{caller: c.budgetKey(id), client: Group(a)})
		}
		if fl == nil {
			resp, err := handler(ctx, req)
			if isFailure(resp, err) {
				entry.failures.Inc()
			}
			return resp, err
		}
		// Take the token before judging the key, so concurrent calls cannot
		// all pass a check made before any of them was counted; give it back
		// if the key turns out to exist.
		if ok, retry := fl.take(now); !ok {
			c.refusedFA.Inc()
			return nil, refuse(ctx, "too many failed validations from this client", retry, c.cfg.FailedBurst)
		}
		resp, err := handler(ctx, req)
		if isFailure(resp, err) {
			entry.failures.Inc()
		} else {
			fl.giveBack(now)
		}
		return resp, err
	}
}

// isFailure reports whether a Validate answer spends the failed-attempt
// budget: a key that is not a keyservice key, or that does not exist.
func isFailure(resp any, err error) bool {
	v, ok := resp.(*keyservicev1.ValidateResponse)
	if !ok || err != nil {
		return false
	}
	row := outcome.Of(outcome.Code(v.GetCode()))
	return row.Code == outcome.Code(v.GetCode()) && row.Failed
}

// refuse builds the RESOURCE_EXHAUSTED status and the headers the gateway
// turns into Retry-After and RateLimit-* on a 429.
func refuse(ctx context.Context, msg string, retry time.Duration, limit int) error {
	secs := max(int64(math.Ceil(retry.Seconds())), 1)
	s := strconv.FormatInt(secs, 10)
	_ = grpc.SetHeader(ctx, metadata.Pairs(
		"retry-after", s,
		"ratelimit-limit", strconv.Itoa(limit),
		"ratelimit-remaining", "0",
		"ratelimit-reset", s,
	))
	st := status.New(codes.ResourceExhausted, msg)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retry)}); err == nil {
		st = d
	}
	return st.Err()
}

// signInCaller keys the console's sign-in attempts in the failed-attempt
// table, apart from every Validate caller's.
var signInCaller = caller.Identity{Kind: caller.KindAddr, Name: "console-sign-in"}

// SignIn takes one attempt from the failed-attempt budget of the end
// client at addr (grouped as Validate's are) before a console sign-in is
// judged: false, with the wait, when it is spent. done gives the attempt
// back when the sign-in succeeded (failed false), as a Validate of a key
// that exists does: only wrong tokens spend it.
func (c *Callers) SignIn(addr netip.Addr) (ok bool, retry time.Duration, done func(failed bool)) {
	now := c.now()
	fl := c.failedLimiter(failedKey{caller: signInCaller, client: Group(addr)})
	if ok, retry := fl.take(now); !ok {
		c.refusedFA.Inc()
		return false, retry, nil
	}
	return true, 0, func(failed bool) {
		if !failed {
			fl.giveBack(now)
		}
	}
}
