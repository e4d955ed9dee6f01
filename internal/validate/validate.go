// Package validate owns the validation path: from a presented key to an
// outcome, answered from memory whenever memory can decide, cheapest
// rejection first:
//
//	shape, checksum        -> MALFORMED                 (no hash, no lookup)
//	negative cache         -> NOT_FOUND, REVOKED, EXPIRED
//	positive cache         -> VALID, EXPIRED            (stale entries only while the database is down)
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
// Memory learns of changes from Apply (local writes, NOTIFY from other
// replicas, incremental sync) and is rebuilt from the database periodically;
// see Run.
package validate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

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

// ErrUnavailable: the answer needs the database, and it cannot answer now
// (down, too slow to answer within the lookup deadline, or the filter not
// loaded yet).
// Callers must refuse the key: fail closed.
var ErrUnavailable = errors.New("validate: key store unavailable")

// errStoreDown marks the ErrUnavailable of a lookup that reached for the
// database and failed.
var errStoreDown = fmt.Errorf("%w: database unreachable", ErrUnavailable)

// Result is the answer for one key. Key is set when the key exists.
type Result struct {
	Code Code
	Key  *store.Key
	Path Path
}

// Store is what the validation path reads from the database.
// *store.Store implements it.
type Store interface {
	KeyByHash(ctx context.Context, h keys.Hash) (store.Key, error)
	KeysByHashes(ctx context.Context, hs []keys.Hash) ([]store.Key, error)
	RecentlyUsed(ctx context.Context, after store.UseCursor, limit int) ([]store.Key, store.UseCursor, error)
	Now(ctx context.Context) (time.Time, error)
	CountActiveKeys(ctx context.Context, endedSince time.Time) (int64, error)
	ActiveHashes(ctx context.Context, after uuid.UUID, endedSince time.Time, limit int) ([]store.ActiveHash, error)
	ChangedSince(ctx context.Context, since time.Time) ([]store.Change, error)
	TouchLastUsed(ctx context.Context, ids []uuid.UUID, at []time.Time) error
}

var _ Store = (*store.Store)(nil)

// Config configures a Validator. Zero durations and sizes take the
// defaults in Defaults.
type Config struct {
	Format keys.Format
	Store  Store
	// Now is the clock for expiry, TTLs and usage; time.Now when nil.
	Now func() time.Time
	Log *slog.Logger
	// Registry receives the metrics; none are exported when nil.
	Registry prometheus.Registerer

	FilterFPRate    float64       // target false-positive rate of the Bloom filter
	FilterMinKeys   int           // the filter is sized for at least this many keys
	SyncInterval    time.Duration // incremental sync period
	SyncOverlap     time.Duration // how far before the watermark each sync reads again
	RebuildInterval time.Duration // full rebuild period (±10% jitter)
	// EndedKeptFor keeps keys revoked or expired this recently in the
	// filter, so they are still answered REVOKED or EXPIRED (after a
	// lookup, then from the negative cache) rather than NOT_FOUND.
	EndedKeptFor time.Duration

	PositiveTTL  time.Duration // how long a found key is trusted without a lookup
	PositiveSize int           // entries
	StaleFor     time.Duration // how long past PositiveTTL an entry may serve while the database is down
	NegativeTTL  time.Duration
	NegativeSize int

	LookupConcurrency int           // lookup statements at once (keep well below the pool size)
	LookupBatch       int           // most hashes in one lookup statement
	LookupTimeout     time.Duration // a lookup not answered this long after it was asked is refused
	// RefreshAhead: a positive entry used when less than this fraction of
	// PositiveTTL is left is refreshed in the background (0: the default).
	RefreshAhead float64
	// WarmKeys: at most this many recently used keys fill the positive
	// cache after each filter load (default PositiveSize; -1: none).
	WarmKeys int

	UsageFlushInterval time.Duration // last_used_at is written in one batch per interval

	// Naive turns the fast path off: after the key's format is checked,
	// every Validate is a pooled query, with no filter, cache, single-flight
	// or lookup bound. It is the design keyservice replaces, kept only as the
	// bench tool's baseline.
	Naive bool
}

// Defaults returns the default tuning.
func Defaults() Config {
	return Config{
		FilterFPRate:       0.001,
		FilterMinKeys:      100_000,
		SyncInterval:       5 * time.Second,
		SyncOverlap:        30 * time.Second,
		RebuildInterval:    time.Hour,
		EndedKeptFor:       30 * 24 * time.Hour,
		PositiveTTL:        30 * time.Second,
		PositiveSize:       100_000,
		StaleFor:           5 * time.Minute,
		NegativeTTL:        30 * time.Second,
		NegativeSize:       100_000,
		LookupConcurrency:  4,
		LookupBatch:        256,
		LookupTimeout:      250 * time.Millisecond,
		RefreshAhead:       0.25,
		UsageFlushInterval: 10 * time.Second,
	}
}

// Validator answers Validate from memory, and keeps that memory in step
// with the database.
type Validator struct {
	cfg    Config
	format keys.Format
	store  Store
	now    func() time.Time
	log    *slog.Logger

	filter filter
	pos    *otter.Cache[keys.Hash, *posEntry]
	neg    *otter.Cache[keys.Hash, negEntry]
	posSt  *stats.Counter
	negSt  *stats.Counter

	sf    singleflight.Group
	batch *batcher

	// Per-hash-stripe epochs order cache fills after lookups against
	// changes applied meanwhile: a lookup fills a cache only if no change
	// touched its stripe since it started, and a caller never joins a
	// lookup that started before its own stripe epoch. Together they make
	// a revoke that has returned visible to every Validate that starts
	// after it.
	stripes [256]stripe

	usage   usageBuffer
	metrics *metrics
	// refreshAfter: a positive entry this old is refreshed when used.
	refreshAfter time.Duration
	// ready: the filter has been loaded and the cache warmed once.
	ready atomic.Bool
	// listening: Run was given a LISTEN connection; streamUp: it is up and
	// its backlog has been read.
	listening, streamUp atomic.Bool
	backlogPending      atomic.Bool   // LISTEN is up, its backlog sync failed
	streamLost          chan struct{} // wakes the sync loop when the stream goes down

	// echoes remembers events this replica applied itself, so their NOTIFY
	// (which Postgres also delivers to the writer's own LISTEN connection)
	// is not applied twice: a second Apply would bump the epoch again and
	// throw away a lookup's answer for nothing.
	echoes *otter.Cache[echoKey, struct{}]

	syncMu    sync.Mutex                // keeps syncs (the loop, catch-up after a reconnect) apart
	rebuildMu sync.Mutex                // one filter rebuild at a time
	watermark atomic.Pointer[time.Time] // database time up to which changes are known
}

type echoKey struct {
	kind store.EventKind
	hash keys.Hash
}

type stripe struct {
	mu    sync.Mutex
	epoch atomic.Uint64
}

type posEntry struct {
	key     store.Key
	fetched time.Time
	touched atomic.Int64 // unix nanos of the last usage recorded for flushing
	// refreshing: a background refresh of this entry is queued or running.
	refreshing atomic.Bool
	// retryAt: unix nanos before which a failed refresh is not tried again.
	retryAt atomic.Int64
}

type negEntry struct {
	code Code
	key  *store.Key // for REVOKED and EXPIRED
	// short: cached while the LISTEN connection was down, when a key
	// created on another replica may be unknown here; kept only briefly.
	short bool
}

// New builds a Validator. Call Run to load and maintain its memory; until
// the filter is loaded, keys that need it are answered ErrUnavailable.
func New(cfg Config) (*Validator, error) {
	d := Defaults()
	if cfg.Store == nil {
		return nil, errors.New("validate: Store is required")
	}
	setDefault(&cfg.FilterFPRate, d.FilterFPRate)
	setDefault(&cfg.FilterMinKeys, d.FilterMinKeys)
	setDefault(&cfg.SyncInterval, d.SyncInterval)
	setDefault(&cfg.SyncOverlap, d.SyncOverlap)
	setDefault(&cfg.RebuildInterval, d.RebuildInterval)
	setDefault(&cfg.EndedKeptFor, d.EndedKeptFor)
	setDefault(&cfg.PositiveTTL, d.PositiveTTL)
	setDefault(&cfg.PositiveSize, d.PositiveSize)
	setDefault(&cfg.StaleFor, d.StaleFor)
	setDefault(&cfg.NegativeTTL, d.NegativeTTL)
	setDefault(&cfg.NegativeSize, d.NegativeSize)
	setDefault(&cfg.LookupConcurrency, d.LookupConcurrency)
	setDefault(&cfg.LookupTimeout, d.LookupTimeout)
	setDefault(&cfg.LookupBatch, d.LookupBatch)
	setDefault(&cfg.RefreshAhead, d.RefreshAhead)
	if cfg.WarmKeys == 0 {
		cfg.WarmKeys = cfg.PositiveSize
	}
	setDefault(&cfg.UsageFlushInterval, d.UsageFlushInterval)
	if cfg.FilterFPRate <= 0 || cfg.FilterFPRate >= 1 {
		return nil, fmt.Errorf("validate: filter false-positive rate must be in (0, 1), got %g", cfg.FilterFPRate)
	}
	if cfg.RefreshAhead < 0 || cfg.RefreshAhead >= 1 {
		return nil, fmt.Errorf("validate: refresh-ahead fraction must be in [0, 1), got %g", cfg.RefreshAhead)
	}
	v := &Validator{
		cfg:    cfg,
		format: cfg.Format,
		store:  cfg.Store,
		now:    cfg.Now,
		log:    cfg.Log,
		posSt:  stats.NewCounter(),
		negSt:  stats.NewCounter(),
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	// TTLs need no nanosecond precision, and reading the precise time is a
	// large part of a cache read; an injected clock (tests) is used as is.
	var clock otter.Clock = otter.NewCoarseClock(100 * time.Millisecond)
	if cfg.Now != nil {
		clock = fixedClock{cfg.Now}
	}
	var err error
	v.pos, err = otter.New(&otter.Options[keys.Hash, *posEntry]{
		MaximumSize:   cfg.PositiveSize,
		StatsRecorder: v.posSt,
		Clock:         clock,
		ExpiryCalculator: otter.ExpiryCreatingFunc(func(e otter.Entry[keys.Hash, *posEntry]) time.Duration {
			// Trusted for PositiveTTL, kept StaleFor longer for outages, never
			// past the key's own expiry.
			life := cfg.PositiveTTL + cfg.StaleFor
			if exp := e.Value.key.ExpiresAt; exp != nil {
				life = min(life, exp.Sub(v.now()))
			}
			return max(life, time.Millisecond)
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("validate: positive cache: %w", err)
	}
	v.neg, err = otter.New(&otter.Options[keys.Hash, negEntry]{
		MaximumSize:   cfg.NegativeSize,
		StatsRecorder: v.negSt,
		Clock:         clock,
		ExpiryCalculator: otter.ExpiryCreatingFunc(func(e otter.Entry[keys.Hash, negEntry]) time.Duration {
			if e.Value.short {
				return min(cfg.NegativeTTL, streamDownSync)
			}
			return cfg.NegativeTTL
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("validate: negative cache: %w", err)
	}
	v.echoes = otter.Must(&otter.Options[echoKey, struct{}]{
		MaximumSize:      10_000,
		ExpiryCalculator: otter.ExpiryCreating[echoKey, struct{}](time.Minute),
		Clock:            clock,
	})
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	v.streamLost = make(chan struct{}, 1)
	v.batch = newBatcher(v, cfg)
	v.refreshAfter = cfg.PositiveTTL - time.Duration(float64(cfg.PositiveTTL)*cfg.RefreshAhead)
	v.metrics = newMetrics(reg, v)
	return v, nil
}

func setDefault[T comparable](p *T, d T) {
	var zero T
	if *p == zero {
		*p = d
	}
}

// fixedClock adapts an injected clock for otter; it has no ticker, so
// expiry happens on access only.
type fixedClock struct{ now func() time.Time }

func (c fixedClock) NowNano() int64                      { return c.now().UnixNano() }
func (c fixedClock) Tick(time.Duration) <-chan time.Time { return nil }

// Validate judges key. The error is non-nil only when no answer can be
// given (ErrUnavailable, or a fault); a wrong key is a Result.
func (v *Validator) Validate(ctx context.Context, key string) (Result, error) {
	switch err := v.format.Parse(key); {
	case err == nil:
	case errors.Is(err, keys.ErrChecksum):
		return v.answer(Result{Code: Malformed, Path: PathChecksum}), nil
	default:
		return v.answer(Result{Code: Malformed, Path: PathShape}), nil
	}
	h := keys.HashOf(key)
	if v.cfg.Naive {
		return v.answered(v.naiveLookup(ctx, h))
	}

	if n, ok := v.neg.GetIfPresent(h); ok {
		return v.answer(Result{Code: n.code, Key: n.key, Path: PathNegativeCache}), nil
	}

	now := v.now()
	// Until the catch-up after the warm start has run (ready), warmed
	// entries may miss a revocation: only lookups answer.
	if !v.ready.Load() {
		return v.filterThenLookup(ctx, h)
	}
	if p, ok := v.pos.GetIfPresent(h); ok {
		if age := now.Sub(p.fetched); age < v.cfg.PositiveTTL {
			if age >= v.refreshAfter && !p.refreshing.Load() && now.UnixNano() >= p.retryAt.Load() {
				v.refresh(h, p)
			}
			return v.answer(v.judgeCached(p, now)), nil
		}
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
	maybe, loaded := v.filter.test(&h)
	if !loaded {
		v.metrics.answers[PathFilter][codeUnavailable].Inc()
		return Result{}, fmt.Errorf("%w: key filter not loaded yet", ErrUnavailable)
	}
	if !maybe {
		return v.answer(Result{Code: NotFound, Path: PathFilter}), nil
	}
	return v.answered(v.lookup(ctx, h))
}

func (v *Validator) judgeCached(p *posEntry, now time.Time) Result {
	code := Judge(&p.key, now)
	if code == Valid {
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

func (v *Validator) naiveLookup(ctx context.Context, h keys.Hash) (Result, error) {
	k, err := v.store.KeyByHash(ctx, h)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Result{Code: NotFound, Path: PathLookup}, nil
	case errors.Is(err, store.ErrUnavailable):
		return Result{}, fmt.Errorf("%w: %w", errStoreDown, err)
	case err != nil:
		return Result{}, err
	}
	return Result{Code: Judge(&k, v.now()), Key: &k, Path: PathLookup}, nil
}

// lookupResult is shared by every caller joined on one lookup.
type lookupResult struct {
	key   store.Key
	found bool
}

// lookup asks the database for h: joined with concurrent lookups of the
// same hash, then batched with other lookups (see batch.go).
func (v *Validator) lookup(ctx context.Context, h keys.Hash) (Result, error) {
	st := &v.stripes[h[0]]
	epoch := st.epoch.Load()
	var flight [40]byte
	copy(flight[:], h[:])
	for i := 0; i < 8; i++ {
		flight[32+i] = byte(epoch >> (8 * i))
	}
	ch := v.sf.DoChan(string(flight[:]), func() (any, error) { return v.fetch(h, epoch) })
	var r singleflight.Result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	if r.Err != nil {
		return Result{}, r.Err
	}
	lr := r.Val.(lookupResult)
	if !lr.found {
		return Result{Code: NotFound, Path: PathLookup}, nil
	}
	k := lr.key
	now := v.now()
	code := Judge(&k, now)
	if code == Valid {
		v.recordUse(k.ID, now)
	}
	return Result{Code: code, Key: &k, Path: PathLookup}, nil
}

// fill runs set under h's stripe lock, unless a change touched the stripe
// since the lookup began (its answer may predate the change).
func (v *Validator) fill(h keys.Hash, epoch uint64, set func()) {
	st := &v.stripes[h[0]]
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.epoch.Load() == epoch {
		set()
	}
}

// Apply makes a change to a key visible in memory. Local writes apply it
// before returning to their caller; other replicas apply it from NOTIFY or
// incremental sync.
func (v *Validator) Apply(e store.Event, source string) {
	switch source {
	case "local":
		v.echoes.Set(echoKey{e.Kind, e.Hash}, struct{}{})
	case "notify":
		if _, mine := v.echoes.Invalidate(echoKey{e.Kind, e.Hash}); mine {
			return // already applied when this replica made the change
		}
	}
	st := &v.stripes[e.Hash[0]]
	switch e.Kind {
	case store.EventCreated:
		v.filter.add(e.Hash)
		st.mu.Lock()
		st.epoch.Add(1)
		// A key is never un-revoked: a late "created" (a slow NOTIFY, a sync
		// that read the row before its revocation) keeps a REVOKED answer.
		if n, ok := v.neg.GetEntryQuietly(e.Hash); !ok || n.Value.code != Revoked {
			v.neg.Invalidate(e.Hash)
		}
		st.mu.Unlock()
	case store.EventRevoked:
		st.mu.Lock()
		st.epoch.Add(1)
		old, had := v.pos.Invalidate(e.Hash)
		rec := e.Key
		if rec == nil && had {
			k := old.key
			at := e.At
			if at.IsZero() {
				at = v.now()
			}
			k.RevokedAt = &at
			rec = &k
		}
		if rec != nil {
			// Known record: answer REVOKED from memory from now on. Otherwise
			// the next Validate looks the key up once and caches the answer.
			v.neg.Set(e.Hash, negEntry{code: Revoked, key: rec})
		}
		st.mu.Unlock()
	default:
		return
	}
	v.metrics.events.WithLabelValues(string(e.Kind), source).Inc()
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
