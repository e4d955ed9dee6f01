package validate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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
	pp               Positioner
	rp               positioned
	metrics          *metrics
	loaded           func() bool // the first load is done (a rebuild must wait for the replica)

	mu       sync.Mutex
	gens     []recentGen // oldest first; the last is the open generation
	size     int         // hashes in gens
	allUntil uint64      // every read to the primary until this generation is retired
	retired  uint64      // every generation up to this one is retired
	// retiredAt is the primary's position that retired the last
	// generation: a replica read is used only from a server that had
	// replayed at least this far (one read pool may reach several
	// servers: a multi-host URL, a pooler).
	retiredAt int64
	wake      chan struct{}
	lag       atomic.Int64 // bytes the replica was last seen behind
	// down: the replica failed its last position check; everything goes
	// to the primary until one succeeds.
	down atomic.Bool
	// scanPrimary: the last full read on the replica failed after it
	// began (a long read cancelled by replay, say): the next one reads the
	// primary.
	scanPrimary atomic.Bool
}

// positioned is what a read replica's store answers: its reads, stamped
// with the WAL position the answering server had replayed before it read.
type positioned interface {
	Positioner
	KeysByHashesAt(ctx context.Context, hs []keys.Hash) ([]apikey.Key, int64, error)
	RecentlyUsedAt(ctx context.Context, after apikey.UseCursor, limit int) ([]apikey.Key, apikey.UseCursor, int64, error)
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
	rp, ok2 := replica.(positioned)
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
	if r.down.Load() {
		return true
	}
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

// retire forgets every generation up to g, whose changes are all before
// the primary's position at.
func (r *readRouter) retire(g uint64, at int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retiredAt = max(r.retiredAt, at)
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
			// Idle, the replica is still checked each second: its lag and
			// health stay known (and retiredAt current).
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-r.wake:
				t.Stop()
			case <-t.C:
			}
		}
		// One generation closed per success: a failing replica must not
		// grow the list a lookup walks.
		g := r.closeGen()
		for {
			at, err := r.caughtUp(ctx, 0)
			if err == nil {
				r.down.Store(false)
				bo.Reset()
				r.retire(g, at)
				break
			}
			if ctx.Err() != nil {
				return
			}
			// Only the replica's own failure sends everything to the
			// primary; with the primary down the replica still answers the
			// keys not recent (nothing retires meanwhile).
			r.down.Store(errors.Is(err, errReplicaFailed))
			if !backoff.Sleep(ctx, bo.Next()) {
				return
			}
		}
	}
}

// replicaRead is the share of a read's deadline the replica gets: a hung
// replica leaves the rest to the primary.
func replicaRead(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, time.Now().Add(time.Until(d)/2))
	}
	return context.WithCancel(ctx)
}

// fresh reports whether a replica read at position pos is recent enough
// (see retiredAt).
func (r *readRouter) fresh(pos int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return replayed(pos, r.retiredAt)
}

// caughtUp waits until the replica has replayed the primary's position as
// read now, at most wait (0: until ctx ends), and returns that position.
// Its error says which side failed (errReplicaFailed: the replica's read).
// Each position read gets positionTimeout: a hung server is a failed one.
func (r *readRouter) caughtUp(ctx context.Context, wait time.Duration) (int64, error) {
	read := func(s Positioner) (int64, error) {
		pctx, cancel := context.WithTimeout(ctx, positionTimeout)
		defer cancel()
		return s.WALPosition(pctx)
	}
	p, err := read(r.pp)
	if err != nil {
		return 0, err
	}
	var deadline time.Time
	if wait > 0 {
		deadline = time.Now().Add(wait)
	}
	poll := replicaPoll
	for {
		rp, err := read(r.rp)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", errReplicaFailed, err)
		}
		if replayed(rp, p) {
			r.lag.Store(0)
			return p, nil
		}
		r.lag.Store(p - rp)
		if !deadline.IsZero() && time.Now().After(deadline) {
			return 0, errReplicaBehind
		}
		if !backoff.Sleep(ctx, poll) {
			return 0, ctx.Err()
		}
		poll = min(2*poll, time.Second) // a standby far behind is not asked 100 times a second
	}
}

// positionTimeout bounds each read of a WAL position.
const positionTimeout = 2 * time.Second

var errReplicaFailed = errors.New("the read replica did not answer")

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

// ReadReplica says whether a read replica is set and, if so, how far
// behind the primary it was last seen, in bytes of WAL (0: caught up).
func (v *Validator) ReadReplica() (set bool, behindBytes int64) {
	if v.reads == nil {
		return false, 0
	}
	return true, v.reads.lag.Load()
}
