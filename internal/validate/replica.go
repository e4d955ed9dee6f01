package validate

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/backoff"
	"github.com/keyservice/keyservice/internal/keys"
)

// Positioner says how far a server's data reaches in the primary's
// write-ahead log (*store.Store.WALPosition): on the primary what it has
// written, on a read replica what it has replayed.
type Positioner interface {
	WALPosition(ctx context.Context) (int64, error)
}

// The read replica rule (KEYSERVICE_DATABASE_READ_URL).
//
// Lookups, full reads, snapshot loads and the warm start read the replica;
// writes, LISTEN, the incremental sync and the database clock stay on the
// primary. A replica's answer is used only when it cannot be older than
// what this replica has applied to memory:
//
//   - Every change memory learns of (this replica's own writes, NOTIFYs
//     from the primary, what sync and snapshot loads find) records the
//     key's hash as recent, before the change is applied. A lookup of a
//     recent key goes to the primary.
//   - A background loop retires recent keys: it closes the current
//     generation, reads the primary's WAL position P, waits until the
//     replica has replayed P, and retires the closed generation (every
//     change in it committed before P was read). The lag window is thus
//     measured, not guessed: a replica paused for an hour keeps its recent
//     keys on the primary for an hour.
//   - Until the replica has once caught up with a position read after this
//     replica started, or after more than recentCap keys changed within
//     one lag window, every lookup goes to the primary (changes this
//     replica never saw as events may be missing on the replica).
//   - A full read after the first load (a rebuild) starts on the replica
//     only once it has replayed the primary's position read after the
//     rebuild began capturing changes, so the read misses nothing captured
//     changes do not bring; after catchUpWait it reads the primary. The
//     first load needs no wait: its watermark is the replica's last replayed
//     commit, and the sync that follows reads every change after it from
//     the primary.
//   - A replica that fails a read is replaced by the primary for that read.
//
// So a key created on the primary and validated at once is looked up on
// the primary (its NOTIFY made it recent), and a revoked key is never
// answered from the replica's older row.
type readRouter struct {
	primary, replica Store
	pp, rp           Positioner
	metrics          *metrics
	loaded           func() bool // the first load is done (a rebuild must wait for the replica)

	mu       sync.Mutex
	gens     []recentGen // oldest first; the last is the open generation
	size     int         // hashes in gens
	allUntil uint64      // every read to the primary until this generation is retired
	retired  uint64      // every generation up to this one is retired
	wake     chan struct{}
	lag      atomic.Int64 // bytes the replica was last seen behind
}

type recentGen struct {
	gen    uint64
	hashes map[keys.Hash]struct{}
}

// recentCap bounds the hashes held as recent; past it (a bulk change
// within one lag window) every lookup goes to the primary until the
// replica catches up.
const recentCap = 100_000

// catchUpWait is how long a rebuild waits for the replica to catch up
// before it reads the primary instead.
const catchUpWait = 10 * time.Second

// replicaPoll is how often the replica's position is read while waiting.
const replicaPoll = 10 * time.Millisecond

func newReadRouter(primary, replica Store, m *metrics, loaded func() bool) (*readRouter, error) {
	pp, ok1 := primary.(Positioner)
	rp, ok2 := replica.(Positioner)
	if !ok1 || !ok2 {
		return nil, errors.New("validate: a read replica needs stores that report their WAL position")
	}
	return &readRouter{
		primary: primary, replica: replica, pp: pp, rp: rp, metrics: m, loaded: loaded,
		gens:     []recentGen{{gen: 1, hashes: map[keys.Hash]struct{}{}}},
		allUntil: 1, // nothing is known of the replica yet
		wake:     make(chan struct{}, 1),
	}, nil
}

// changed records h as changed now: until the replica has replayed the
// change, h is read on the primary.
func (r *readRouter) changed(h keys.Hash) {
	if r == nil {
		return
	}
	r.mu.Lock()
	open := &r.gens[len(r.gens)-1]
	if open.gen <= r.allUntil && r.retired < r.allUntil {
		r.mu.Unlock() // covered: everything goes to the primary until then
		r.kick()
		return
	}
	if _, ok := open.hashes[h]; !ok {
		open.hashes[h] = struct{}{}
		r.size++
	}
	if r.size > recentCap {
		// Too many to hold: everything to the primary until this
		// generation is retired.
		r.allUntil = open.gen
		for i := range r.gens {
			r.gens[i].hashes = map[keys.Hash]struct{}{}
		}
		r.size = 0
	}
	r.mu.Unlock()
	r.kick()
}

func (r *readRouter) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// onPrimary reports whether a read of hs must go to the primary.
func (r *readRouter) onPrimary(hs ...keys.Hash) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retired < r.allUntil {
		return true
	}
	for i := range r.gens {
		for _, h := range hs {
			if _, ok := r.gens[i].hashes[h]; ok {
				return true
			}
		}
	}
	return false
}

// pending reports whether anything waits for the replica to catch up.
func (r *readRouter) pending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.size > 0 || r.retired < r.allUntil
}

// closeGen opens a new generation and returns the one closed.
func (r *readRouter) closeGen() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.gens[len(r.gens)-1].gen
	r.gens = append(r.gens, recentGen{gen: g + 1, hashes: map[keys.Hash]struct{}{}})
	return g
}

// retire forgets every generation up to g.
func (r *readRouter) retire(g uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := 0
	for i < len(r.gens)-1 && r.gens[i].gen <= g {
		r.size -= len(r.gens[i].hashes)
		i++
	}
	r.gens = r.gens[i:]
	r.retired = max(r.retired, g)
}

// run retires recent keys as the replica catches up, until ctx ends.
func (r *readRouter) run(ctx context.Context) {
	var bo backoff.Backoff
	for {
		if !r.pending() {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
				continue
			}
		}
		g := r.closeGen()
		if err := r.caughtUp(ctx, 0); err != nil {
			if !backoff.Sleep(ctx, bo.Next()) {
				return
			}
			continue
		}
		bo.Reset()
		r.retire(g)
	}
}

// caughtUp waits until the replica has replayed the primary's position as
// read now, at most wait (0: until ctx ends).
func (r *readRouter) caughtUp(ctx context.Context, wait time.Duration) error {
	p, err := r.pp.WALPosition(ctx)
	if err != nil {
		return err
	}
	var deadline time.Time
	if wait > 0 {
		deadline = time.Now().Add(wait)
	}
	for {
		rp, err := r.rp.WALPosition(ctx)
		if err != nil {
			return err
		}
		if replayed(rp, p) {
			r.lag.Store(0)
			return nil
		}
		r.lag.Store(p - rp)
		if !deadline.IsZero() && time.Now().After(deadline) {
			return errReplicaBehind
		}
		if !backoff.Sleep(ctx, replicaPoll) {
			return ctx.Err()
		}
	}
}

// replayed reports whether a replica that has replayed up to rp has
// every record before the primary's insert position p. An insert position
// at the start of a WAL page points past the page's header (24 bytes, 40
// on a segment's first page), where the end of the last record replayed
// is the page boundary itself: that is no lag.
func replayed(rp, p int64) bool {
	const page, longHeader = 8192, 40
	return rp >= p || (rp%page == 0 && p-rp <= longHeader)
}

var errReplicaBehind = errors.New("the read replica did not catch up with the primary")

// pick is the store for a read of kind about hs, counted.
func (r *readRouter) pick(kind string, hs ...keys.Hash) Store {
	if r.onPrimary(hs...) {
		r.metrics.reads.WithLabelValues(kind, "primary").Inc()
		return r.primary
	}
	r.metrics.reads.WithLabelValues(kind, "replica").Inc()
	return r.replica
}

// fallback reports whether a replica's failed read is tried again on the
// primary (not when the caller gave up).
func fallback(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil
}

func (r *readRouter) KeyByHash(ctx context.Context, h keys.Hash) (apikey.Key, error) {
	st := r.pick("lookup", h)
	k, err := st.KeyByHash(ctx, h)
	if st == r.replica && fallback(ctx, err) && !errors.Is(err, apikey.ErrNotFound) {
		r.metrics.reads.WithLabelValues("lookup", "primary").Inc()
		return r.primary.KeyByHash(ctx, h)
	}
	return k, err
}

func (r *readRouter) KeysByHashes(ctx context.Context, hs []keys.Hash) ([]apikey.Key, error) {
	st := r.pick("lookup", hs...)
	ks, err := st.KeysByHashes(ctx, hs)
	if st == r.replica && fallback(ctx, err) {
		r.metrics.reads.WithLabelValues("lookup", "primary").Inc()
		return r.primary.KeysByHashes(ctx, hs)
	}
	return ks, err
}

// RecentlyUsed reads the warm start's page on the replica, without the
// keys changed within its lag (they are looked up, on the primary).
func (r *readRouter) RecentlyUsed(ctx context.Context, after apikey.UseCursor, limit int) ([]apikey.Key, apikey.UseCursor, error) {
	st := r.pick("warm")
	page, next, err := st.RecentlyUsed(ctx, after, limit)
	if st == r.replica && fallback(ctx, err) {
		return r.primary.RecentlyUsed(ctx, after, limit)
	}
	if st == r.replica && err == nil {
		kept := page[:0]
		for _, k := range page {
			if !r.onPrimary(k.Hash) {
				kept = append(kept, k)
			}
		}
		page = kept
	}
	return page, next, err
}

// scanStore is where a full read goes: the replica for the first load;
// for a rebuild, the replica once it has caught up, else the primary.
func (r *readRouter) scanStore(ctx context.Context) Store {
	if r.loaded() {
		if err := r.caughtUp(ctx, catchUpWait); err != nil {
			r.metrics.reads.WithLabelValues("scan", "primary").Inc()
			return r.primary
		}
	}
	r.metrics.reads.WithLabelValues("scan", "replica").Inc()
	return r.replica
}

func (r *readRouter) ScanActiveHashes(ctx context.Context, endedFor time.Duration, start func(apikey.ScanInfo) error, add func(keys.Hash)) (int64, error) {
	st := r.scanStore(ctx)
	started := false
	n, err := st.ScanActiveHashes(ctx, endedFor, func(i apikey.ScanInfo) error { started = true; return start(i) }, add)
	if st == r.replica && fallback(ctx, err) && !started {
		return r.primary.ScanActiveHashes(ctx, endedFor, start, add)
	}
	return n, err
}

func (r *readRouter) ScanActiveKeys(ctx context.Context, endedFor time.Duration, start func(apikey.ScanInfo) error, add func(*apikey.Key)) (int64, error) {
	st := r.scanStore(ctx)
	started := false
	n, err := st.ScanActiveKeys(ctx, endedFor, func(i apikey.ScanInfo) error { started = true; return start(i) }, add)
	if st == r.replica && fallback(ctx, err) && !started {
		return r.primary.ScanActiveKeys(ctx, endedFor, start, add)
	}
	return n, err
}

// NewestSnapshot and LoadSnapshot read the replica: a snapshot is
// consistent with its own watermark wherever it is read, and the changes
// since are read on the primary.
func (r *readRouter) NewestSnapshot(ctx context.Context) (apikey.SnapshotInfo, bool, error) {
	info, ok, err := r.replica.NewestSnapshot(ctx)
	if fallback(ctx, err) {
		return r.primary.NewestSnapshot(ctx)
	}
	return info, ok, err
}

func (r *readRouter) LoadSnapshot(ctx context.Context, id int64, withRecords bool) (apikey.Snapshot, error) {
	r.metrics.reads.WithLabelValues("snapshot", "replica").Inc()
	sn, err := r.replica.LoadSnapshot(ctx, id, withRecords)
	if fallback(ctx, err) && !errors.Is(err, apikey.ErrCorruptSnapshot) {
		r.metrics.reads.WithLabelValues("snapshot", "primary").Inc()
		return r.primary.LoadSnapshot(ctx, id, withRecords)
	}
	return sn, err
}

// The rest is the primary's.

func (r *readRouter) Now(ctx context.Context) (time.Time, error) { return r.primary.Now(ctx) }

func (r *readRouter) WriteSnapshot(ctx context.Context, sn apikey.Snapshot) (int64, error) {
	return r.primary.WriteSnapshot(ctx, sn)
}

func (r *readRouter) TryRebuildLock(ctx context.Context) (func(), bool, error) {
	return r.primary.TryRebuildLock(ctx)
}

func (r *readRouter) ChangesSince(ctx context.Context, since time.Time, pageSize int, fn func([]apikey.KeyChange) error) (int64, error) {
	return r.primary.ChangesSince(ctx, since, pageSize, fn)
}

func (r *readRouter) TouchLastUsed(ctx context.Context, ids []uuid.UUID, at []time.Time) error {
	return r.primary.TouchLastUsed(ctx, ids, at)
}

// ReadReplica says whether a read replica is set and, if so, how far
// behind the primary it was last seen, in bytes of WAL (0: caught up).
func (v *Validator) ReadReplica() (set bool, behindBytes int64) {
	if v.reads == nil {
		return false, 0
	}
	return true, v.reads.lag.Load()
}
