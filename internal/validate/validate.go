// Package validate owns the validation path: from a presented key to an
// outcome, answered from memory whenever memory can decide, cheapest
// rejection first:
//
//	shape, checksum        -> MALFORMED                 (no hash, no lookup)
//	negative cache         -> NOT_FOUND, REVOKED, EXPIRED
//	positive cache         -> VALID, EXPIRED            (stale entries only while the database is down)
//	memory                 -> any state                 (memory mode: every active key's record, resident.go)
//	Bloom filter "no"      -> NOT_FOUND                 (no lookup)
//	lookup                 -> single-flight per hash; concurrent lookups coalesce into
//	                          batches (one statement for many hashes), at most
//	                          LookupConcurrency statements at once; fills a cache. Not
//	                          answered within LookupTimeout (backlog, database slow or
//	                          down) -> ErrUnavailable (fail closed)
//
// A positive entry used in the last part of its TTL is refreshed in the
// background through the same batches, and after every filter load the
// positive cache is warmed with the most recently used keys, so a key in
// steady use, or used just before a restart, never waits for a lookup.
//
// Memory learns of changes from this replica's own writes (AdminKeys, the one
// door for admin writes), from NOTIFY sent by other replicas (the store's
// LISTEN connection), and from incremental sync, and is rebuilt from the
// database periodically; see Run. The package knows no database driver:
// it reads through the Store interface and is fed changes by a Feed.
package validate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/verify"
)

// A Validate whose answer needs the database when it cannot answer (down,
// too slow within the lookup deadline, or the filter not loaded yet) fails
// with apikey.ErrUnavailable: callers must refuse the key (fail closed).

// errStoreDown marks the ErrUnavailable of a lookup that reached for the
// database and failed.
var errStoreDown = fmt.Errorf("%w: database unreachable", apikey.ErrUnavailable)

// Result is the answer for one key. Key is set when the key exists.
type Result struct {
	Code outcome.Code
	Key  *apikey.Key
	Path Path
}

// Store is what the validation path reads from the database.
// *store.Store implements it.
type Store interface {
	KeyByHash(ctx context.Context, h keys.Hash) (apikey.Key, error)
	KeysByHashes(ctx context.Context, hs []keys.Hash) ([]apikey.Key, error)
	RecentlyUsed(ctx context.Context, after apikey.UseCursor, limit int) ([]apikey.Key, apikey.UseCursor, error)
	Now(ctx context.Context) (time.Time, error)
	ScanActiveHashes(ctx context.Context, endedFor time.Duration, start func(apikey.ScanInfo) error, add func(keys.Hash)) (int64, error)
	ScanActiveKeys(ctx context.Context, endedFor time.Duration, start func(apikey.ScanInfo) error, add func(*apikey.Key)) (int64, error)
	WriteSnapshot(ctx context.Context, sn apikey.Snapshot) (int64, error)
	NewestSnapshot(ctx context.Context) (info apikey.SnapshotInfo, ok bool, err error)
	LoadSnapshot(ctx context.Context, id int64, withRecords bool) (apikey.Snapshot, error)
	TryRebuildLock(ctx context.Context) (unlock func(), held bool, err error)
	// ChangesSince gives fn the keys created, revoked or updated after
	// since, in pages of at most pageSize rows, and returns the rows read.
	ChangesSince(ctx context.Context, since time.Time, pageSize int, fn func([]apikey.KeyChange) error) (int64, error)
	TouchLastUsed(ctx context.Context, ids []uuid.UUID, at []time.Time) error
}

// Validate judges key in every keyspace. The error is non-nil only when no
// answer can be given (ErrUnavailable, or a fault); a wrong key is a
// Result.
func (v *Validator) Validate(ctx context.Context, key string) (Result, error) {
	return v.ValidateIn(ctx, key, Scope{})
}

// ValidateIn judges key for a call that may see keys of the keyspaces in
// scope only. A key of another keyspace is NOT_FOUND, as an unknown key
// is: refused from its prefix before it is hashed when the prefix tells,
// else once its record is found (never cached as NOT_FOUND, so the same
// key is still found for calls that may see it).
func (v *Validator) ValidateIn(ctx context.Context, key string, scope Scope) (Result, error) {
	res, err := v.validateIn(ctx, key, scope)
	if err == nil && res.Key != nil && !scope.Allows(res.Key.KeyspaceID) {
		// Rare: the prefix told no keyspace the call may not see (a legacy
		// format's key, which is the default keyspace's), but the record
		// does. Counted as answered on its path already, and counted here
		// too: the call sees NOT_FOUND.
		v.metrics.answers[PathKeyspace][outcome.NotFound].Inc()
		return Result{Code: outcome.NotFound, Path: PathKeyspace}, nil
	}
	return res, err
}

func (v *Validator) validateIn(ctx context.Context, key string, scope Scope) (Result, error) {
	sh := v.shapes.Load()
	kind, space, err := sh.format.Locate(key)
	v.metrics.formats[kind+1].Inc()
	switch {
	case err == nil:
	case errors.Is(err, keys.ErrChecksum):
		return v.answer(Result{Code: outcome.Malformed, Path: PathChecksum}), nil
	case errors.Is(err, keys.ErrSignature), errors.Is(err, keys.ErrUnknownKid):
		return v.answer(Result{Code: outcome.Malformed, Path: PathSignature}), nil
	case errors.Is(err, keys.ErrPrefix) && !v.ready.Load():
		// Until the replica is ready, a prefix no format knows may be a
		// keyspace's it has not read yet: not an answer (fail closed).
		v.metrics.answers[PathShape][codeUnavailable].Inc()
		return Result{}, fmt.Errorf("%w: keyspaces not loaded yet", apikey.ErrUnavailable)
	default:
		return v.answer(Result{Code: outcome.Malformed, Path: PathShape}), nil
	}
	if scope.Restricted && !scope.Allows(sh.keyspaceOf(space)) {
		return v.answer(Result{Code: outcome.NotFound, Path: PathKeyspace}), nil
	}
	h := keys.HashOf(key)

	if n, ok := v.neg.GetIfPresent(h); ok {
		return v.answer(Result{Code: n.code, Key: n.key, Path: PathNegativeCache}), nil
	}

	now := v.now()
	// Until the catch-up after the warm start has run (ready), warmed
	// entries may miss a revocation: only lookups answer.
	if !v.ready.Load() {
		return v.filterThenLookup(ctx, h)
	}
	memory := v.memoryAnswers(now)
	p, cached := v.pos.GetIfPresent(h)
	if cached {
		if age := now.Sub(p.fetched); age < v.cfg.PositiveTTL {
			if !memory && age >= v.refreshAfter && !p.refreshing.Load() && now.UnixNano() >= p.retryAt.Load() {
				v.refresh(h, p)
			}
			return v.answer(v.judgeCached(p, now)), nil
		}
	}
	if memory {
		if r, ok := v.fromMemory(h, now); ok {
			return v.answer(r), nil
		}
	}
	if cached {
		// Stale: ask the database, and serve the stale entry only if it
		// cannot answer in time.
		res, err := v.lookup(ctx, h)
		if cannotAnswer(err) && now.Sub(p.fetched) < v.cfg.PositiveTTL+v.cfg.StaleFor {
			v.metrics.staleServed.Inc()
			return v.answer(v.judgeCached(p, now)), nil
		}
		return v.answered(res, err)
	}
	return v.filterThenLookup(ctx, h)
}

// filterThenLookup answers from the filter's "no", else by a lookup. It is
// also all a starting replica answers with (see ready).
func (v *Validator) filterThenLookup(ctx context.Context, h keys.Hash) (Result, error) {
	v.metrics.filterProbes.Inc()
	maybe, loaded := v.filter.test(&h)
	if !loaded {
		v.metrics.answers[PathFilter][codeUnavailable].Inc()
		return Result{}, fmt.Errorf("%w: key filter not loaded yet", apikey.ErrUnavailable)
	}
	if !maybe {
		return v.answer(Result{Code: outcome.NotFound, Path: PathFilter}), nil
	}
	return v.answered(v.lookup(ctx, h))
}

// fromMemory answers from h's record in memory mode, and caches the
// answer as a lookup would (only if no change reached h's stripe since the
// record was read: the memory protocol's ticket).
func (v *Validator) fromMemory(h keys.Hash, now time.Time) (Result, bool) {
	t := v.mem.begin(h)
	k, ok := v.res.get(&h)
	if !ok {
		return Result{}, false
	}
	code := verify.State(&k, now)
	if code != outcome.Valid {
		v.mem.fill(h, t, func() { v.neg.Set(h, negEntry{code: code, key: &k}) })
		return Result{Code: code, Key: &k, Path: PathMemory}, true
	}
	p := &posEntry{key: k, fetched: now}
	v.mem.fill(h, t, func() { v.pos.Set(h, p) })
	v.touch(p, now)
	return Result{Code: code, Key: &p.key, Path: PathMemory}, true
}

func (v *Validator) judgeCached(p *posEntry, now time.Time) Result {
	code := verify.State(&p.key, now)
	if code == outcome.Valid {
		v.touch(p, now)
	}
	return Result{Code: code, Key: &p.key, Path: PathPositiveCache}
}

func (v *Validator) answer(r Result) Result {
	v.metrics.answers[r.Path][r.Code].Inc()
	return r
}

func (v *Validator) answered(r Result, err error) (Result, error) {
	if err != nil {
		v.metrics.answers[PathLookup][codeUnavailable].Inc()
		return Result{}, err
	}
	return v.answer(r), nil
}

type cacheStats struct{ hits, misses, evictions, size uint64 }

func (v *Validator) cacheStats(which string) cacheStats {
	c, n := v.posSt, v.pos.EstimatedSize()
	if which == "negative" {
		c, n = v.negSt, v.neg.EstimatedSize()
	}
	s := c.Snapshot()
	return cacheStats{hits: s.Hits, misses: s.Misses, evictions: s.Evictions, size: uint64(n)}
}

// Loaded reports whether the filter has been loaded and the cache warmed
// (the service is ready).
func (v *Validator) Loaded() bool { return v.ready.Load() }

// Ready is closed once the validator is loaded (Loaded is true).
func (v *Validator) Ready() <-chan struct{} { return v.readyCh }
