// Package validate owns the validation path: from a presented key to an
// outcome, cheapest rejection first. Today the path is shape, checksum, then
// a lookup by hash; the fast path (filter, caches, bounded lookups) slots in
// as layers around Lookup without changing Validator's callers.
package validate

import (
	"context"
	"errors"
	"time"

	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/store"
)

// Code is the outcome of a validation. Outcomes are values, not errors.
type Code int

// Outcomes.
const (
	Valid Code = iota + 1
	Malformed
	NotFound
	Revoked
	Expired
	RateLimited
)

func (c Code) String() string {
	switch c {
	case Valid:
		return "VALID"
	case Malformed:
		return "MALFORMED"
	case NotFound:
		return "NOT_FOUND"
	case Revoked:
		return "REVOKED"
	case Expired:
		return "EXPIRED"
	case RateLimited:
		return "RATE_LIMITED"
	}
	return "UNSPECIFIED"
}

// ErrUnavailable: the answer needs the store, and the store cannot answer.
// Callers must refuse the key (fail closed).
var ErrUnavailable = errors.New("validate: key store unavailable")

// Result is the answer for one key. Key is set when the key exists.
type Result struct {
	Code Code
	Key  *store.Key
}

// Lookup finds a key record by hash; store.ErrNotFound when there is none.
// *store.Store implements it; the fast path wraps it.
type Lookup interface {
	KeyByHash(ctx context.Context, h keys.Hash) (store.Key, error)
}

var _ Lookup = (*store.Store)(nil)

// Config is what a Validator needs.
type Config struct {
	Format keys.Format
	Lookup Lookup
	// Now is the clock used for expiry; time.Now when nil.
	Now func() time.Time
}

// Validator answers Validate.
type Validator struct {
	format keys.Format
	lookup Lookup
	now    func() time.Time
}

// New returns a Validator.
func New(cfg Config) *Validator {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Validator{format: cfg.Format, lookup: cfg.Lookup, now: now}
}

// Validate judges key. The error is non-nil only when no answer can be
// given (ErrUnavailable, or an internal fault); a wrong key is a Result.
func (v *Validator) Validate(ctx context.Context, key string) (Result, error) {
	if v.format.Parse(key) != nil {
		return Result{Code: Malformed}, nil
	}
	k, err := v.lookup.KeyByHash(ctx, keys.HashOf(key))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Result{Code: NotFound}, nil
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return Result{}, errors.Join(ErrUnavailable, err)
	case err != nil:
		return Result{}, err
	}
	return Result{Code: Judge(&k, v.now()), Key: &k}, nil
}

// Judge tells whether an existing key may be used at now. A revoked key is
// REVOKED even if it has also expired.
func Judge(k *store.Key, now time.Time) Code {
	switch {
	case k.RevokedAt != nil:
		return Revoked
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return Expired
	}
	return Valid
}
