// Package service implements the KeyService API: the handlers, the checks
// on their input, the API form of keys, and the one error mapper (ToStatus)
// that turns what they return into gRPC statuses. It knows no transport:
// gRPC, the REST gateway, forward-auth and Envoy all reach it through the
// interceptor chain (internal/middleware).
package service

import (
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/keyevents"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/ratelimit"
	"github.com/keyservice/keyservice/internal/tenancy"
	"github.com/keyservice/keyservice/internal/validate"
	"github.com/keyservice/keyservice/internal/verify"
)

// Validator judges a presented key (*validate.Validator; the bench tool
// passes its baselines here).
type Validator interface {
	// ValidateIn judges key for a call that may see keys of scope only.
	ValidateIn(ctx context.Context, key string, scope validate.Scope) (validate.Result, error)
}

var _ Validator = (*validate.Validator)(nil)

// Config is what a Service needs.
type Config struct {
	Keys      validate.KeyStore // a *validate.AdminKeys: a write is visible to Validate here when it returns
	Validator Validator
	// Tenancy holds the keyspaces (their formats make new secrets) and
	// credentials; Tenants writes them.
	Tenancy *tenancy.Registry
	Tenants Tenants
	// Budgets writes owners and credits; Credits spends credits on the
	// validation path (nil: keys' credits are not spent); Usage counts
	// answers for the history (nil: none kept).
	Budgets     Budgets
	Credits     verify.Credits
	Usage       Recorder
	UsageReader UsageReader
	// DefaultFormat is the format of keys created without one
	// (FORMAT_CHECKSUM when unset).
	DefaultFormat keyservicev1.Format
	// KeyLimits holds per-key budgets; nil: no per-key limit.
	KeyLimits    ratelimit.KeyBudgets
	DefaultLimit apikey.RateLimit // for keys created without their own
	// PageTokenKey signs page tokens (see PageTokenKey).
	PageTokenKey []byte
	// Idempotency keeps the answers of admin writes made with a request_id.
	Idempotency Idempotency
	// TrustedProxies may name end clients (client_ip) even when they are
	// identified only by their address (as for the caller limiter).
	TrustedProxies []netip.Prefix
	// CallerBudget is the configured caller budget, and CallerLimits its
	// overrides by name: a credential may not grant a faster one than its
	// own, nor take an overridden caller's name.
	CallerBudget caller.Budget
	CallerLimits map[string]caller.Budget
	// ViewCacheSize bounds the cache of API forms of keys served from
	// memory (0: no cache).
	ViewCacheSize int
	Now           func() time.Time // time.Now when nil
	// Registry, when set, gets the counter of answers decided here.
	Registry prometheus.Registerer
	// Events is the replica's window of changes, for WatchKeyEvents (nil:
	// the method is UNIMPLEMENTED); ClientCache marks the VALID answers a
	// caller following it may keep (cacheable).
	Events      *keyevents.Log
	ClientCache bool
}

// Service implements keyservicev1.KeyServiceServer. Errors it returns
// become statuses in MapErrors.
type Service struct {
	keyservicev1.UnimplementedKeyServiceServer
	keys          validate.KeyStore
	validator     Validator
	tenancy       *tenancy.Registry
	tenants       Tenants
	budgets       Budgets
	usage         Recorder
	usageReader   UsageReader
	defaultFormat keyservicev1.Format
	now           func() time.Time
	keyLimits     ratelimit.KeyBudgets
	defaultLimit  apikey.RateLimit
	cursors       apikey.CursorCodec
	trusted       []netip.Prefix
	aead          cipher.AEAD   // seals recorded answers
	window        time.Duration // how long they are kept
	idemOff       bool          // no secret to seal them with: request_id refused
	callerBudget  caller.Budget
	callerLimits  map[string]caller.Budget
	// views caches the API form of records served from memory, keyed by the
	// cached record's address (stable while the cache entry lives; the key
	// here keeps it from being reused): a hot key is converted once, not on
	// every answer. Shared messages are only ever read (marshalled).
	views *otter.Cache[*apikey.Key, *keyservicev1.Key]
	// verifier runs the checks after the key is found.
	verifier verify.Verifier
	// refusals counts, by outcome, the answers refused for the call after
	// the validation path judged the key VALID (outcome's Call and Budget
	// stages).
	refusals    []prometheus.Counter
	events      *keyevents.Log
	clientCache bool
	replica     string // events.Replica(), which cacheable answers name
}

// New builds a Service.
func New(cfg Config) *Service {
	s := &Service{
		keys:          cfg.Keys,
		validator:     cfg.Validator,
		tenancy:       cfg.Tenancy,
		tenants:       cfg.Tenants,
		budgets:       cfg.Budgets,
		usage:         cfg.Usage,
		usageReader:   cfg.UsageReader,
		defaultFormat: cfg.DefaultFormat,
		now:           cfg.Now,
		keyLimits:     cfg.KeyLimits,
		defaultLimit:  cfg.DefaultLimit,
		cursors:       apikey.NewCursorCodec(cfg.PageTokenKey),
		trusted:       cfg.TrustedProxies,
		aead:          newAEAD(cfg.Idempotency.Key),
		window:        cfg.Idempotency.Window,
		idemOff:       cfg.Idempotency.Off,
		callerBudget:  cfg.CallerBudget,
		callerLimits:  cfg.CallerLimits,
		events:        cfg.Events,
		clientCache:   cfg.ClientCache && cfg.Events != nil,
	}
	if s.events != nil {
		s.replica = s.events.Replica()
	}
	if s.window <= 0 {
		s.window = DefaultIdempotencyWindow
	}
	if s.now == nil {
		s.now = time.Now
	}
	var after []string
	for _, r := range outcome.All() {
		if r.Stage >= outcome.Call && r.Code != outcome.Valid {
			after = append(after, r.Code.String()+" ("+r.Doc+")")
		}
	}
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyservice_validate_call_refusals_total",
		Help: "Validate answers refused for the call after the validation path judged the key VALID (and counted it so in keyservice_validate_answers_total): " + strings.Join(after, "; ") + ".",
	}, []string{"code"})
	for _, r := range outcome.All() {
		if r.Stage >= outcome.Call && r.Code != outcome.Valid {
			if int(r.Code) >= len(s.refusals) {
				s.refusals = append(s.refusals, make([]prometheus.Counter, int(r.Code)+1-len(s.refusals))...)
			}
			s.refusals[r.Code] = refusals.WithLabelValues(r.Code.String())
		}
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(refusals)
	}
	if s.keyLimits != nil {
		s.verifier.Spend = s.spend
		s.verifier.OwnerSpend = s.ownerSpend
	}
	s.verifier.Credits = cfg.Credits
	if s.tenancy != nil {
		s.verifier.OwnerOf = func(k *apikey.Key) *apikey.Owner { return s.tenancy.Current().OwnerOf(k) }
	}
	if s.defaultFormat == keyservicev1.Format_FORMAT_UNSPECIFIED {
		s.defaultFormat = keyservicev1.Format_FORMAT_CHECKSUM
	}
	if cfg.ViewCacheSize > 0 {
		s.views = otter.Must(&otter.Options[*apikey.Key, *keyservicev1.Key]{
			MaximumSize: cfg.ViewCacheSize,
			Clock:       otter.NewCoarseClock(time.Second),
		})
	}
	return s
}

// PageTokenKey is the key page tokens are signed with. Only admins list
// keys, and every replica is configured with the same admin tokens, so the
// key is derived from them: replicas agree without another secret to
// distribute, and changing the admin tokens retires outstanding tokens.
func PageTokenKey(adminTokens []string) []byte {
	sorted := slices.Clone(adminTokens)
	slices.Sort(sorted)
	h := sha256.New()
	h.Write([]byte("keyservice page tokens v1"))
	for _, t := range sorted {
		h.Write([]byte{0})
		h.Write([]byte(t))
	}
	return h.Sum(nil)
}

// view returns the API form of the record of res.
func (s *Service) view(res validate.Result) *keyservicev1.Key {
	if s.views == nil || (res.Path != validate.PathPositiveCache && res.Path != validate.PathNegativeCache) {
		return keyToProto(res.Key)
	}
	if v, ok := s.views.GetIfPresent(res.Key); ok {
		return v
	}
	v := keyToProto(res.Key)
	s.views.Set(res.Key, v)
	return v
}

// maxCost is the largest cost one Validate may take from a key's budget.
const maxCost = 1_000_000

func (s *Service) Validate(ctx context.Context, req *keyservicev1.ValidateRequest) (*keyservicev1.ValidateResponse, error) {
	if req.GetKey() == "" {
		return nil, invalid("key", "is required")
	}
	cost := 1
	if req.Cost != nil {
		if c := req.GetCost(); c < 0 || c > maxCost {
			return nil, invalid("cost", "must be between 0 and %d, got %d", maxCost, c)
		}
		cost = int(req.GetCost())
	}
	if ip := req.GetClientIp(); ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return nil, invalid("client_ip", "must be an IPv4 or IPv6 address")
		}
	}
	if rs := req.GetRequiredScopes(); len(rs) > 0 {
		if err := checkScopes("required_scopes", rs); err != nil {
			return nil, err
		}
	}
	scope, err := s.validateScope(ctx, req.GetKeyspace())
	if err != nil {
		return nil, err
	}
	res, err := s.validator.ValidateIn(ctx, req.GetKey(), scope)
	if err != nil {
		return nil, err
	}
	call := verify.Call{Scopes: req.GetRequiredScopes(), Cost: cost}
	if res.Key != nil && len(res.Key.AllowedCIDRs) > 0 {
		// Only a pinned key reads it (resolving it has a cost).
		call.EndClient, call.EndClientKnown = s.endClient(ctx, req)
	}
	verdict := verify.Verdict{Code: res.Code}
	if res.Key != nil {
		if verdict, err = s.verifier.Verify(ctx, res.Key, res.Code, &call); err != nil {
			return nil, err
		}
	}
	a := new(validateAnswer)
	out := &a.resp
	out.Valid, out.Code = verdict.Code == outcome.Valid, keyservicev1.Code(verdict.Code)
	if res.Key != nil && (len(res.Key.AllowedCIDRs) == 0 || verify.Inside(res.Key, &call)) {
		// A pinned key's record is shown only inside its allowed addresses:
		// not to whoever holds the key elsewhere (FORBIDDEN has none).
		out.Key = s.view(res)
	}
	if verdict.Asked {
		a.budget.Limit, a.budget.Remaining = int64(verdict.Budget.Limit), int64(verdict.Budget.Remaining)
		a.reset.Seconds, a.reset.Nanos = durationParts(verdict.Budget.Reset)
		a.budget.Reset_, out.RateLimit = &a.reset, &a.budget
	}
	if verdict.CreditsAsked {
		out.Credits = creditStatusToProto(verdict.Credits)
	}
	if verdict.OwnerAsked {
		out.OwnerRateLimit = budgetToProto(verdict.OwnerBudget)
	}
	if verdict.OwnerCredAsk {
		out.OwnerCredits = creditStatusToProto(verdict.OwnerCredits)
	}
	if s.clientCache && cacheable(res.Key, out.Valid, verdict.Owner) {
		out.Cacheable, out.Replica = true, &s.replica
	}
	if verdict.RefusedBy != verify.HolderNone {
		by := keyservicev1.Holder(verdict.RefusedBy)
		out.RefusedBy = &by
	}
	if s.usage != nil && res.Key != nil {
		s.usage.Record(res.Key, verdict.Code, verdict.Spent, s.now())
	}
	if verdict.Code != res.Code {
		s.refusals[verdict.Code].Inc()
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("keyservice.validate.path", res.Path.String()),
			attribute.String("keyservice.validate.code", out.GetCode().String()))
	}
	return out, nil
}

// spend takes cost from k's budget: a rotation chain's keys spend one
// budget, its first key's.
func (s *Service) spend(ctx context.Context, k *apikey.Key, cost int) (apikey.Budget, error) {
	return s.keyLimits.Take(ctx, k.Budget().String(), s.limitOf(k), cost)
}

// ownerSpend takes cost from owner o's rate limit (its own bucket, named
// apart from keys').
func (s *Service) ownerSpend(ctx context.Context, o *apikey.Owner, cost int) (apikey.Budget, error) {
	return s.keyLimits.Take(ctx, "owner:"+o.ID.String(), *o.RateLimit, cost)
}

// validateAnswer is a Validate response with the key's budget in the same
// allocation: the usual answer (valid, with a budget) is one allocation
// instead of three.
type validateAnswer struct {
	resp   keyservicev1.ValidateResponse
	budget keyservicev1.RateLimitStatus
	reset  durationpb.Duration
}

// durationParts is d as durationpb.New splits it.
func durationParts(d time.Duration) (int64, int32) {
	nanos := d.Nanoseconds()
	return nanos / 1e9, int32(nanos % 1e9)
}

func budgetToProto(b apikey.Budget) *keyservicev1.RateLimitStatus {
	return &keyservicev1.RateLimitStatus{Limit: int64(b.Limit), Remaining: int64(b.Remaining), Reset_: durationpb.New(b.Reset)}
}

// limitOf is the key's own limit, or the configured default.
func (s *Service) limitOf(k *apikey.Key) apikey.RateLimit {
	if rl := k.RateLimit; rl != nil {
		return *rl
	}
	return s.defaultLimit
}
