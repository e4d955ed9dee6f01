// Package limits is the rate limits' part of the service's settings:
// each caller's budget and its overrides, the failed-attempt budget, the
// limiter tables, the default per-key limit and the Redis that shares
// per-key budgets. internal/config declares each field (variable, flag,
// default, rule) and embeds Limits in its Config; internal/ratelimit
// receives it whole. It is a leaf apart from ratelimit so that config
// depends on the settings, not on the limiter (grpc, the API types).
package limits

import (
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
)

// Limits is the rate limits' settings (each declared in internal/config),
// taken whole by ratelimit.NewCallers and ratelimit.NewKeyBudgets.
type Limits struct {
	// Each caller's budget, and the budgets of named callers that differ.
	CallerRate   float64
	CallerBurst  int
	CallerLimits map[string]caller.Budget // by caller name (token or certificate name)
	// CallerTableSize limiters are kept per table; one unused for
	// CallerIdle is forgotten (a local per-key budget too).
	CallerTableSize int
	CallerIdle      time.Duration
	// The budget of NOT_FOUND and MALFORMED answers per end client: an
	// anonymous caller's address, or (caller, client_ip) when a caller
	// allowed to name end clients names one.
	FailedRate  float64
	FailedBurst int
	// The default per-key limit (KeyLimit), for keys created without one.
	KeyRate  apikey.RateLimit // its Burst is KeyBurst
	KeyBurst int              // 0: the limit
	// RedisURL: per-key budgets shared by the replicas in Redis; "": local
	// budgets. RedisTimeout bounds each check in Redis.
	RedisURL     string
	RedisTimeout time.Duration
}

// DefaultBudget is the budget of a caller without an override.
func (l Limits) DefaultBudget() caller.Budget {
	return caller.Budget{Rate: l.CallerRate, Burst: l.CallerBurst}
}

// FailedBudget is the budget of failed attempts per end client.
func (l Limits) FailedBudget() caller.Budget {
	return caller.Budget{Rate: l.FailedRate, Burst: l.FailedBurst}
}

// KeyLimit is the default per-key limit: KeyRate with KeyBurst (the limit
// when KeyBurst is 0).
func (l Limits) KeyLimit() apikey.RateLimit {
	r := l.KeyRate
	r.Burst = l.KeyBurst
	if r.Burst == 0 {
		r.Burst = r.Limit
	}
	return r
}
