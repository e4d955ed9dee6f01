package bench

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/service"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/validate"
	"github.com/keyservice/keyservice/internal/verify"
)

// The two baselines keyservice is measured against, each a validator the
// server is given (server.WithValidator) in place of the real one. They
// live here, never reachable from `keyservice serve`.

// ceiling answers every key VALID at once, with a real-looking record:
// the cost of everything around the validation path (transport,
// interceptor chain, request checks, the per-key limit, the answer's API
// form), with none of the path itself.
type ceiling struct{ key apikey.Key }

func newCeiling() *ceiling {
	return &ceiling{key: apikey.Key{
		ID: uuid.MustParse("0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a"), Hint: "ks_...Ab12", Name: "bench-1", Owner: "owner-1",
		Scopes: []string{}, Metadata: map[string]string{}, CreatedAt: time.Unix(1_790_000_000, 0), Enabled: true,
		RateLimit: &apikey.RateLimit{Limit: 1_000_000_000, Period: time.Second, Burst: 1_000_000_000},
	}}
}

func (c *ceiling) ValidateIn(context.Context, string, validate.Scope) (validate.Result, error) {
	// The positive-cache path: the service serves its cached API form, as
	// for a hot key.
	return validate.Result{Code: outcome.Valid, Key: &c.key, Path: validate.PathPositiveCache}, nil
}

// naive is the design keyservice replaces: after the key's format is
// checked, every Validate is a pooled query, with no filter, cache,
// single-flight or bound on lookups.
type naive struct {
	format keys.Format
	store  *store.Store
}

func (n naive) ValidateIn(ctx context.Context, key string, _ validate.Scope) (validate.Result, error) {
	if err := n.format.Parse(key); err != nil {
		return validate.Result{Code: outcome.Malformed, Path: validate.PathShape}, nil
	}
	k, err := n.store.KeyByHash(ctx, keys.HashOf(key))
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		return validate.Result{Code: outcome.NotFound, Path: validate.PathLookup}, nil
	case err != nil:
		return validate.Result{}, err
	}
	return validate.Result{Code: verify.State(&k, time.Now()), Key: &k, Path: validate.PathLookup}, nil
}

var (
	_ service.Validator = (*ceiling)(nil)
	_ service.Validator = naive{}
)
