package validate

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keyevents"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/testsignal"
)

// Config configures a Validator: its collaborators, the operator's
// Tuning, and internal knobs that are not settings.
type Config struct {
	Format keys.Format
	Store  Store
	// Reads, when set, is a Store on read replicas: lookups, full reads,
	// snapshot loads and the warm start go there, by the rule in
	// replica.go. Store and Reads must then report their WAL position
	// (Positioner).
	Reads Store
	// Now is the clock for expiry, TTLs and usage; time.Now when nil.
	Now func() time.Time
	Log *slog.Logger
	// Registry receives the metrics; none are exported when nil.
	Registry prometheus.Registerer
	// Events, when set, gets every change to a key this replica applies
	// (its own writes, NOTIFYs, what sync finds), for WatchKeyEvents.
	Events *keyevents.Log

	// Tuning is what operators set. Its defaults, rules, flags and
	// environment variables are declared once, in internal/config; New
	// only refuses values it cannot run with (a programming error).
	Tuning

	// Internal knobs; zero takes the value in knobDefaults.
	FilterMinKeys int // the filter is sized for at least this many keys
	// RefreshAhead: a positive entry used when less than this fraction of
	// PositiveTTL is left is refreshed in the background.
	RefreshAhead float64
	// WarmKeys: at most this many recently used keys fill the positive
	// cache after each filter load (default PositiveSize; -1: none).
	WarmKeys int
	// MemoryBudgetBytes, when set, is the memory budget in bytes instead
	// of Tuning.MemoryBudgetMiB (tests: a budget for a few keys).
	MemoryBudgetBytes int64
	// SnapshotWait is how long a replica waits for the snapshot of the
	// replica that holds the rebuild lock before reading the table itself.
	SnapshotWait time.Duration
}

// Tuning is the fast path's part of the service's settings (see
// internal/config, which declares each with its variable, flag, default
// and rule).
type Tuning struct {
	FilterFPRate    float64       // target false-positive rate of the Bloom filter
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

	UsageFlushInterval time.Duration // last_used_at is written in one batch per interval

	// MemoryBudgetMiB: when the records of every active key fit this many
	// MiB, the replica holds them all (memory mode, resident.go); 0: never.
	MemoryBudgetMiB int

	// SyncPageSize is the most rows one statement of the incremental
	// sync reads.
	SyncPageSize int

	// Snapshots: one replica per rebuild writes the filter as a snapshot
	// and the others load it; false: every load reads the whole table
	// (see snapshot.go).
	Snapshots bool
}

// knobDefaults are the internal knobs' values when Config leaves them zero.
var knobDefaults = Config{
	FilterMinKeys: 100_000,
	RefreshAhead:  0.25,
	SnapshotWait:  2 * time.Minute,
}

// check refuses what the validator cannot run with: a filter rate outside
// (0, 1), a period or size that is not positive. The operator's rules
// (narrower) are internal/config's; these catch a Config built by hand.
func (t Tuning) check() error {
	var errs []error
	if t.FilterFPRate <= 0 || t.FilterFPRate >= 1 {
		errs = append(errs, fmt.Errorf("FilterFPRate must be in (0, 1), got %g", t.FilterFPRate))
	}
	for name, d := range map[string]time.Duration{
		"SyncInterval": t.SyncInterval, "SyncOverlap": t.SyncOverlap, "RebuildInterval": t.RebuildInterval,
		"EndedKeptFor": t.EndedKeptFor, "PositiveTTL": t.PositiveTTL, "StaleFor": t.StaleFor,
		"NegativeTTL": t.NegativeTTL, "LookupTimeout": t.LookupTimeout, "UsageFlushInterval": t.UsageFlushInterval,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", name, d))
		}
	}
	for name, n := range map[string]int{
		"PositiveSize": t.PositiveSize, "NegativeSize": t.NegativeSize,
		"LookupConcurrency": t.LookupConcurrency, "LookupBatch": t.LookupBatch,
	} {
		if n < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1, got %d", name, n))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("validate: Tuning (set it from config.Config, whose declarations give every default): %w", err)
	}
	return nil
}

// Validator answers Validate from memory, and keeps that memory in step
// with the database.
type Validator struct {
	cfg Config
	// shapes is the key format with every keyspace's prefix (SetKeyspaces).
	shapes atomic.Pointer[shapes]
	store  Store       // the primary, or reads routed by the read replica rule
	reads  *readRouter // nil: no read replica
	now    func() time.Time
	log    *slog.Logger

	filter filter
	res    resident // every active key's record, in memory mode
	pos    *otter.Cache[keys.Hash, *posEntry]
	neg    *otter.Cache[keys.Hash, negEntry]
	posSt  *stats.Counter
	negSt  *stats.Counter

	sf    singleflight.Group
	batch *batcher

	// mem orders cache fills after lookups against changes applied
	// meanwhile, and knows this replica's own NOTIFY echoes (protocol.go).
	mem memoryProtocol

	usage   usageBuffer
	metrics *metrics
	// refreshAfter: a positive entry this old is refreshed when used.
	refreshAfter time.Duration
	// ready: the filter has been loaded and the cache warmed once.
	ready   atomic.Bool
	readyCh chan struct{} // closed when ready is first set
	// listening: Run was given a LISTEN connection; streamUp: it is up and
	// its backlog has been read.
	listening, streamUp atomic.Bool
	backlogPending      atomic.Bool   // LISTEN is up, its backlog sync failed
	streamLost          chan struct{} // wakes the sync loop when the stream goes down
	rebuildNow          chan struct{} // asks the rebuild loop for a rebuild before its time

	signals signals

	syncMu    sync.Mutex                // keeps syncs (the loop, catch-up after a reconnect) apart
	rebuildMu sync.Mutex                // one filter rebuild at a time
	writes    sync.WaitGroup            // snapshots being written for the fleet (Run waits for them)
	watermark atomic.Pointer[time.Time] // database time up to which changes are known
	// lastKeys: keys in the last full read, to size the next filter when the
	// planner's estimate is low.
	lastKeys atomic.Int64
	// perKeyBytes: what a key took in memory mode at the last load (0:
	// not measured yet); modeLogged: the mode has been logged once.
	perKeyBytes atomic.Int64
	budget      atomic.Int64 // MemoryBudgetMiB in bytes
	// syncedAt: unix nanos (v.now) of the last load or successful sync;
	// memory mode answers only while it is within PositiveTTL + StaleFor.
	syncedAt   atomic.Int64
	modeLogged atomic.Bool
	// basis is the watermark of the read the current filter came from
	// (guarded by rebuildMu): a snapshot is loaded only if it is newer.
	basis time.Time
}

// signals are the validator's test signals (see internal/testsignal):
// tests wait on them instead of sleeping.
type signals struct {
	loadFailed    testsignal.Signal // a filter load failed (a retry follows)
	streamUp      testsignal.Signal // LISTEN is in place and its backlog read
	synced        testsignal.Signal // an incremental sync completed
	refreshFailed testsignal.Signal // a background refresh could not be answered
}

type posEntry struct {
	key     apikey.Key
	fetched time.Time
	touched atomic.Int64 // unix nanos of the last usage recorded for flushing
	// refreshing: a background refresh of this entry is queued or running.
	refreshing atomic.Bool
	// retryAt: unix nanos before which a failed refresh is not tried again.
	retryAt atomic.Int64
}

type negEntry struct {
	code outcome.Code
	key  *apikey.Key // for REVOKED and EXPIRED
	// short: cached while the LISTEN connection was down, when a key
	// created on another replica may be unknown here; kept only briefly.
	short bool
}

// New builds a Validator. Call Run to load and maintain its memory; until
// the filter is loaded, keys that need it are answered ErrUnavailable.
func New(cfg Config) (*Validator, error) {
	if cfg.Store == nil {
		return nil, errors.New("validate: Store is required")
	}
	if err := cfg.Tuning.check(); err != nil {
		return nil, err
	}
	d := knobDefaults
	setDefault(&cfg.FilterMinKeys, d.FilterMinKeys)
	setDefault(&cfg.RefreshAhead, d.RefreshAhead)
	setDefault(&cfg.SnapshotWait, d.SnapshotWait)
	setDefault(&cfg.SyncPageSize, 10_000)
	if cfg.WarmKeys == 0 {
		cfg.WarmKeys = cfg.PositiveSize
	}
	if cfg.RefreshAhead < 0 || cfg.RefreshAhead >= 1 {
		return nil, fmt.Errorf("validate: refresh-ahead fraction must be in [0, 1), got %g", cfg.RefreshAhead)
	}
	v := &Validator{
		cfg:   cfg,
		store: cfg.Store,
		now:   cfg.Now,
		log:   cfg.Log,
		posSt: stats.NewCounter(),
		negSt: stats.NewCounter(),
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
	v.mem.init(clock)
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	v.streamLost = make(chan struct{}, 1)
	v.rebuildNow = make(chan struct{}, 1)
	v.readyCh = make(chan struct{})
	v.budget.Store(int64(cfg.MemoryBudgetMiB) << 20)
	if cfg.MemoryBudgetBytes > 0 {
		v.budget.Store(cfg.MemoryBudgetBytes)
	}
	v.batch = newBatcher(v, cfg)
	v.refreshAfter = cfg.PositiveTTL - time.Duration(float64(cfg.PositiveTTL)*cfg.RefreshAhead)
	v.metrics = newMetrics(reg, v)
	if cfg.Reads != nil {
		if v.reads, err = newReadRouter(cfg.Store, cfg.Reads, v.metrics, v.filter.loaded); err != nil {
			return nil, err
		}
		v.store = v.reads
	}
	v.SetKeyspaces(cfg.Format, nil)
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
