// Package verify is the one place where a found key is judged: its own
// state, then what the call asks (the end client's address, scopes), then
// its budget, in the order of outcome's table. The validation path caches
// the first (State); the service runs the rest for each call (Verifier).
// A new check is a row in outcome's table and a step here.
package verify

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/outcome"
)

// State judges k by its own state at now: REVOKED, EXPIRED, then DISABLED
// (a revoked key is REVOKED even if it has also expired), else VALID. It
// is the same for every call, so the validation path may cache it.
func State(k *apikey.Key, now time.Time) outcome.Code {
	for _, s := range stateChecks {
		if s.refuses(k, now) {
			return s.code
		}
	}
	return outcome.Valid
}

var stateChecks = []struct {
	code    outcome.Code
	refuses func(*apikey.Key, time.Time) bool
}{
	{outcome.Revoked, func(k *apikey.Key, _ time.Time) bool { return k.RevokedAt != nil }},
	{outcome.Expired, func(k *apikey.Key, now time.Time) bool { return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) }},
	{outcome.Disabled, func(k *apikey.Key, _ time.Time) bool { return !k.Enabled }},
}

// Call is what a Validate call asks beyond its key.
type Call struct {
	// EndClient is the address the key's allowed addresses are checked
	// against, when EndClientKnown (a pinned key is refused when it is not:
	// fail closed). Only a pinned key (one with allowed addresses) reads
	// it: the caller may leave it unset for others.
	EndClient      netip.Addr
	EndClientKnown bool
	// Scopes the call requires; every one must be among the key's.
	Scopes []string
	// Cost is what the call spends from the key's budget.
	Cost int
}

// Spend takes cost from k's budget. It fails only when no answer could be
// had.
type Spend func(ctx context.Context, k *apikey.Key, cost int) (apikey.Budget, error)

// Verdict is the answer for one call with a found key.
type Verdict struct {
	Code outcome.Code
	// Budget is the key's budget when it was asked (Asked: VALID and
	// RATE_LIMITED answers, with budgets); a value, so a verdict costs no
	// allocation.
	Budget apikey.Budget
	Asked  bool
}

// Verifier runs the checks that depend on the call.
type Verifier struct {
	// Spend is nil when keys have no budgets.
	Spend Spend
}

// callChecks are the checks that depend on the call, in their order
// (refusesCall makes each).
var callChecks = []outcome.Code{outcome.Forbidden, outcome.InsufficientScope}

func refusesCall(code outcome.Code, k *apikey.Key, c *Call) bool {
	switch code {
	case outcome.Forbidden:
		return len(k.AllowedCIDRs) > 0 && !Inside(k, c)
	case outcome.InsufficientScope:
		for _, sc := range c.Scopes {
			if !slices.Contains(k.Scopes, sc) {
				return true
			}
		}
	}
	return false
}

// Inside reports whether the call's end client is inside one of k's
// allowed addresses (false when no end client is known).
func Inside(k *apikey.Key, c *Call) bool {
	return c.EndClientKnown && slices.ContainsFunc(k.AllowedCIDRs, func(p netip.Prefix) bool { return p.Contains(c.EndClient) })
}

// Verify judges a call with key k, whose state (State, possibly cached)
// is state: the first check that refuses it answers, and a call refused
// before the budget spends nothing.
func (v *Verifier) Verify(ctx context.Context, k *apikey.Key, state outcome.Code, c *Call) (Verdict, error) {
	if state != outcome.Valid {
		return Verdict{Code: state}, nil
	}
	for _, code := range callChecks {
		if refusesCall(code, k, c) {
			return Verdict{Code: code}, nil
		}
	}
	if v.Spend == nil {
		return Verdict{Code: outcome.Valid}, nil
	}
	b, err := v.Spend(ctx, k, c.Cost)
	if err != nil {
		return Verdict{}, err
	}
	code := outcome.Valid
	if !b.Allowed {
		code = outcome.RateLimited
	}
	return Verdict{Code: code, Budget: b, Asked: true}, nil
}

// Order is the codes this package can answer for a found key, in the order
// it decides them (outcome's table must agree; a test checks it).
func Order() []outcome.Code {
	var out []outcome.Code
	for _, s := range stateChecks {
		out = append(out, s.code)
	}
	out = append(out, callChecks...)
	return append(out, outcome.RateLimited)
}
