package validate

// The memory protocol: how changes to keys and answers read from the
// database meet in memory without one overwriting the other out of order.
//
// Memory is split into 256 stripes by the first byte of a key's hash. Each
// stripe has a lock and an epoch. Every change to memory (a write on this
// replica, another replica's NOTIFY, incremental sync) takes its stripe's
// lock and bumps its epoch; every answer read from the database (a lookup,
// a refresh, the warm start) notes the epoch before it reads and fills a
// cache only if, under the lock, the epoch has not moved since. So a
// revoke that has returned is visible to every Validate that starts after
// it: no lookup that read the row before the revoke can cache VALID.
//
// A write on this replica also sends NOTIFY, which Postgres delivers to
// this replica's own LISTEN connection too. A create, an update or a
// rotation expects that echo before it commits, and it is swallowed once
// when it arrives, so it neither counts as another change nor is applied
// twice (a create that fails forgets it: its commit may have happened). A
// revocation expects it after the commit: an echo that beats it is applied
// twice, which costs one more epoch bump (fills in flight are dropped and
// looked up again) and nothing else, since a key is revoked once; its
// expectation then lapses within a minute.
//
// Every user goes through memoryProtocol's methods; nothing else touches a
// stripe or the expected echoes.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
)

// memoryProtocol owns the stripes (lock and epoch) and the expected
// echoes. Its zero value needs init before use.
type memoryProtocol struct {
	stripes [256]stripe
	// echoes remembers events this replica applied itself, so their NOTIFY
	// is not applied twice: a second apply would bump the epoch again and
	// throw away a lookup's answer for nothing.
	echoes *otter.Cache[echoKey, struct{}]
}

type stripe struct {
	mu    sync.Mutex
	epoch atomic.Uint64
}

type echoKey struct {
	kind apikey.EventKind
	hash keys.Hash
	// at tells one write's event from another's of the same kind and key
	// (revoked_at, updated_at; zero for created).
	at int64
}

// ticket is a stripe's epoch when a read from the database began.
type ticket uint64

// epochs is every stripe's epoch, read before a local write or a page of
// the warm start began.
type epochs [256]uint64

// ticket is the ticket of h's stripe in e.
func (e *epochs) ticket(h keys.Hash) ticket { return ticket(e[h[0]]) }

// init makes the expected-echo memory; an echo is expected for a minute
// at most (clock: otter's, so tests with an injected clock control it).
func (p *memoryProtocol) init(clock otter.Clock) {
	p.echoes = otter.Must(&otter.Options[echoKey, struct{}]{
		MaximumSize:      10_000,
		ExpiryCalculator: otter.ExpiryCreating[echoKey, struct{}](time.Minute),
		Clock:            clock,
	})
}

func (p *memoryProtocol) stripe(h keys.Hash) *stripe { return &p.stripes[h[0]] }

// begin is read before a lookup of h: its ticket, for fill. Lookups of h
// are joined only with lookups holding the same ticket, so a caller never
// joins a lookup that began before a change it has seen.
func (p *memoryProtocol) begin(h keys.Hash) ticket {
	return ticket(p.stripe(h).epoch.Load())
}

// snapshot is every stripe's epoch: read before a local write (for
// changeAfter) or before reading a page of many keys (for fill).
func (p *memoryProtocol) snapshot() *epochs {
	var out epochs
	for i := range p.stripes {
		out[i] = p.stripes[i].epoch.Load()
	}
	return &out
}

// fill runs set under h's stripe lock, unless a change touched the stripe
// since t was read (the answer may predate the change); it reports whether
// set ran.
func (p *memoryProtocol) fill(h keys.Hash, t ticket, set func()) bool {
	st := p.stripe(h)
	st.mu.Lock()
	defer st.mu.Unlock()
	if ticket(st.epoch.Load()) != t {
		return false
	}
	set()
	return true
}

// change applies a change to h: under the stripe lock, it bumps the epoch
// (so every fill of the stripe whose read began before is dropped), runs
// apply, and bumps it again: a read that began while apply ran (memory
// mode reads records that apply writes, without the lock) is dropped too.
func (p *memoryProtocol) change(h keys.Hash, apply func()) {
	st := p.stripe(h)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.epoch.Add(1)
	apply()
	st.epoch.Add(1)
}

// changeAfter is change for this replica's own write, which began when
// the epochs were before: apply is told whether another change reached h's
// stripe since (stale), in which case the write's record may already be
// out of date (another replica's revocation committed right after it and
// its NOTIFY was applied first, or a later write here was applied first).
// The check is under the stripe lock, which every change takes. The
// write's own echo does not count: an update or rotation expects it
// before it commits (expectEcho), and it is swallowed.
func (p *memoryProtocol) changeAfter(h keys.Hash, before *epochs, apply func(stale bool)) {
	st := p.stripe(h)
	st.mu.Lock()
	defer st.mu.Unlock()
	stale := st.epoch.Load() != before[h[0]]
	st.epoch.Add(1)
	apply(stale)
	st.epoch.Add(1) // as in change
}

// expectEcho notes that this replica's NOTIFY of a change it applies
// itself will come back, so it is not applied twice. An update or a
// rotation expects it before it commits (its echo may arrive before the
// write returns); see the package comment for creates and revocations.
func (p *memoryProtocol) expectEcho(kind apikey.EventKind, h keys.Hash, at time.Time) {
	p.echoes.Set(echoKey{kind, h, at.UnixMicro()}, struct{}{})
}

// isEcho reports whether an event heard on NOTIFY is this replica's own
// expected echo, and forgets it: an echo is swallowed once.
func (p *memoryProtocol) isEcho(kind apikey.EventKind, h keys.Hash, at time.Time) bool {
	_, mine := p.echoes.Invalidate(echoKey{kind, h, at.UnixMicro()})
	return mine
}

// unsure is for a write that failed after its echo was expected: the
// commit may still have happened (a cancelled or broken connection during
// COMMIT), and then its NOTIFY comes back and, as an expected echo, would
// be ignored. So the echo is no longer expected; the caller then applies
// the change as if sync had found it (Validator.unsure).
func (p *memoryProtocol) unsure(kind apikey.EventKind, h keys.Hash, at time.Time) {
	p.echoes.Invalidate(echoKey{kind, h, at.UnixMicro()})
}
