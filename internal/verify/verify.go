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

	"github.com/google/uuid"

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

// Spend takes cost from k's rate limit. It fails only when no answer
// could be had.
type Spend func(ctx context.Context, k *apikey.Key, cost int) (apikey.Budget, error)

// Credits spends credits: Spend takes cost from subject's (a key's budget
// id or an owner's id), Refund gives back what a call spent when a later
// budget refused it. Spend fails only when no answer could be had (then
// nothing was spent).
type Credits interface {
	Spend(ctx context.Context, subject uuid.UUID, cost int64) (apikey.CreditStatus, error)
	Refund(subject uuid.UUID, cost int64, spent apikey.CreditStatus)
}

// Holder is whose budget refused a call.
type Holder int8

// The holders (the API's Holder enum).
const (
	HolderNone  Holder = 0
	HolderKey   Holder = 1
	HolderOwner Holder = 2
)

// Verdict is the answer for one call with a found key. It is a value, so
// a verdict costs no allocation.
type Verdict struct {
	Code outcome.Code
	// Budget is the key's rate limit when it was asked (Asked); Owner*
	// the owner's, when the key's owner has budgets.
	Budget apikey.Budget
	Asked  bool
	// Credits is the key's credits when it has any and they were asked.
	Credits      apikey.CreditStatus
	CreditsAsked bool
	Owner        *apikey.Owner
	OwnerBudget  apikey.Budget
	OwnerAsked   bool
	OwnerCredits apikey.CreditStatus
	OwnerCredAsk bool
	// RefusedBy says whose budget refused (RATE_LIMITED, USAGE_EXCEEDED).
	RefusedBy Holder
	// Spent is the credits the call spent, from the key's or its owner's
	// credits (0 when refused or when neither has credits).
	Spent int64
}

// Verifier runs the checks that depend on the call.
type Verifier struct {
	// Spend is the key's rate limit; nil when keys have none.
	Spend Spend
	// OwnerSpend is an owner's rate limit (nil: owners' rate limits are
	// not enforced, as keys' are not without Spend).
	OwnerSpend func(ctx context.Context, o *apikey.Owner, cost int) (apikey.Budget, error)
	// Credits spends keys' and owners' credits; nil: none are spent.
	Credits Credits
	// OwnerOf finds the owner with budgets of a key (nil: none).
	OwnerOf func(k *apikey.Key) *apikey.Owner
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
// before the budgets spends nothing.
//
// The budgets, in order: the key's credits, the owner's credits, the key's
// rate limit, the owner's rate limit. A call refused by a later one gets
// back the credits an earlier one took (credits are billing: a refused
// call is never charged); the key's rate-limit tokens are not given back
// when the owner's rate limit refuses (rate limits smooth traffic, they do
// not bill).
func (v *Verifier) Verify(ctx context.Context, k *apikey.Key, state outcome.Code, c *Call) (Verdict, error) {
	if state != outcome.Valid {
		return Verdict{Code: state}, nil
	}
	for _, code := range callChecks {
		if refusesCall(code, k, c) {
			return Verdict{Code: code}, nil
		}
	}
	d := Verdict{Code: outcome.Valid}
	if v.OwnerOf != nil {
		d.Owner = v.OwnerOf(k)
	}
	o := d.Owner
	cost := int64(c.Cost)
	var keyTaken, ownerTaken bool
	refund := func() {
		if keyTaken {
			v.Credits.Refund(k.Budget(), cost, d.Credits)
			d.Credits.Remaining += cost
		}
		if ownerTaken {
			v.Credits.Refund(o.ID, cost, d.OwnerCredits)
			d.OwnerCredits.Remaining += cost
		}
	}
	if v.Credits != nil && k.Credits {
		st, err := v.Credits.Spend(ctx, k.Budget(), cost)
		if err != nil {
			return Verdict{}, err
		}
		d.Credits, d.CreditsAsked = st, true
		if !st.Allowed {
			d.Code, d.RefusedBy = outcome.UsageExceeded, HolderKey
			return d, nil
		}
		keyTaken = cost > 0
	}
	if v.Credits != nil && o != nil && o.HasCredits {
		st, err := v.Credits.Spend(ctx, o.ID, cost)
		if err != nil {
			refund()
			return Verdict{}, err
		}
		d.OwnerCredits, d.OwnerCredAsk = st, true
		if !st.Allowed {
			refund()
			d.Code, d.RefusedBy = outcome.UsageExceeded, HolderOwner
			return d, nil
		}
		ownerTaken = cost > 0
	}
	if v.Spend != nil {
		b, err := v.Spend(ctx, k, c.Cost)
		if err != nil {
			refund()
			return Verdict{}, err
		}
		d.Budget, d.Asked = b, true
		if !b.Allowed {
			refund()
			d.Code, d.RefusedBy = outcome.RateLimited, HolderKey
			return d, nil
		}
	}
	if v.OwnerSpend != nil && o != nil && o.RateLimit != nil {
		b, err := v.OwnerSpend(ctx, o, c.Cost)
		if err != nil {
			refund()
			return Verdict{}, err
		}
		d.OwnerBudget, d.OwnerAsked = b, true
		if !b.Allowed {
			refund()
			d.Code, d.RefusedBy = outcome.RateLimited, HolderOwner
			return d, nil
		}
	}
	if keyTaken || ownerTaken {
		d.Spent = cost
	}
	return d, nil
}

// Order is the codes this package can answer for a found key, in the order
// it decides them (outcome's table must agree; a test checks it).
func Order() []outcome.Code {
	var out []outcome.Code
	for _, s := range stateChecks {
		out = append(out, s.code)
	}
	out = append(out, callChecks...)
	return append(out, outcome.UsageExceeded, outcome.RateLimited)
}
