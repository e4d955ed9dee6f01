package validate

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
)

// The rules of the memory protocol (protocol.go), each stated on the type
// alone: no database, no caches.

func newProtocol() *memoryProtocol {
	p := new(memoryProtocol)
	p.init(fixedClock{time.Now})
	return p
}

// Two hashes in one stripe, one in another.
var (
	hashA  = keys.Hash{1, 1}
	hashA2 = keys.Hash{1, 2}
	hashB  = keys.Hash{2, 1}
)

// fills reports whether a fill of h with ticket t lands.
func fills(p *memoryProtocol, h keys.Hash, t ticket) bool {
	ran := false
	landed := p.fill(h, t, func() { ran = true })
	if landed != ran {
		panic("fill reported a different outcome than it had")
	}
	return ran
}

func TestFillWithNoChangeInBetweenLands(t *testing.T) {
	p := newProtocol()
	if !fills(p, hashA, p.begin(hashA)) {
		t.Fatal("a fill with no change since its lookup began was dropped")
	}
	// Fills do not move the epoch: a second fill with the same ticket lands.
	tk := p.begin(hashA)
	fills(p, hashA, tk)
	if !fills(p, hashA, tk) {
		t.Fatal("a fill counted as a change")
	}
}

func TestFillAfterAChangeIsDropped(t *testing.T) {
	p := newProtocol()
	tk := p.begin(hashA)
	ran := false
	p.change(hashA, func() { ran = true })
	if !ran {
		t.Fatal("change did not run its function")
	}
	if fills(p, hashA, tk) {
		t.Fatal("a fill whose lookup began before a change to its key landed")
	}
	// Another key of the same stripe: a change to the stripe drops it too.
	tk = p.begin(hashA2)
	p.change(hashA, func() {})
	if fills(p, hashA2, tk) {
		t.Fatal("a fill whose lookup began before a change to its stripe landed")
	}
	// A lookup that begins after the change fills.
	if !fills(p, hashA, p.begin(hashA)) {
		t.Fatal("a fill that began after the change was dropped")
	}
}

func TestAChangeAfterALocalWriteCountsAsAChange(t *testing.T) {
	p := newProtocol()
	tk := p.begin(hashA)
	p.changeAfter(hashA, p.snapshot(), func(bool) {})
	if fills(p, hashA, tk) {
		t.Fatal("a fill that began before a local write landed after it")
	}
}

func TestSnapshotTicketsFillLikeBegin(t *testing.T) {
	p := newProtocol()
	before := p.snapshot()
	if before.ticket(hashA) != p.begin(hashA) {
		t.Fatal("a snapshot's ticket differs from begin's")
	}
	p.change(hashB, func() {})
	if !fills(p, hashA, before.ticket(hashA)) {
		t.Fatal("a change to another stripe dropped a fill from a snapshot")
	}
	if fills(p, hashB, before.ticket(hashB)) {
		t.Fatal("a fill from a snapshot taken before a change landed")
	}
}

func TestLocalChangeIsStaleOnlyAfterAnotherChangeInItsStripe(t *testing.T) {
	p := newProtocol()
	stale := func(h keys.Hash, before *epochs) (out bool) {
		ran := false
		p.changeAfter(h, before, func(s bool) { ran, out = true, s })
		if !ran {
			t.Fatal("changeAfter did not run its function")
		}
		return out
	}

	if stale(hashA, p.snapshot()) {
		t.Fatal("a local write nothing overtook was told stale")
	}

	before := p.snapshot()
	p.change(hashA2, func() {}) // another replica's change, same stripe
	if !stale(hashA, before) {
		t.Fatal("a local write overtaken by a change to its stripe was not told stale")
	}

	before = p.snapshot()
	p.changeAfter(hashA2, before, func(bool) {}) // a later local write applied first
	if !stale(hashA, before) {
		t.Fatal("a local write overtaken by another local write was not told stale")
	}

	before = p.snapshot()
	p.change(hashB, func() {})
	if stale(hashA, before) {
		t.Fatal("a change to another stripe made a local write stale")
	}
}

func TestAnExpectedEchoIsSwallowedExactlyOnce(t *testing.T) {
	p := newProtocol()
	at := time.Now().Truncate(time.Microsecond)
	p.expectEcho(apikey.EventUpdated, hashA, at)
	if !p.isEcho(apikey.EventUpdated, hashA, at) {
		t.Fatal("an expected echo was not recognised")
	}
	if p.isEcho(apikey.EventUpdated, hashA, at) {
		t.Fatal("an echo was swallowed twice: a second event like it would be lost")
	}
}

func TestOnlyTheExpectedEventIsAnEcho(t *testing.T) {
	p := newProtocol()
	at := time.Now().Truncate(time.Microsecond)
	p.expectEcho(apikey.EventUpdated, hashA, at)
	for name, e := range map[string]apikey.Event{
		"another kind":       {Kind: apikey.EventRevoked, Hash: hashA, At: at},
		"another key":        {Kind: apikey.EventUpdated, Hash: hashA2, At: at},
		"another stripe":     {Kind: apikey.EventUpdated, Hash: hashB, At: at},
		"another write's at": {Kind: apikey.EventUpdated, Hash: hashA, At: at.Add(time.Microsecond)},
	} {
		if p.isEcho(e.Kind, e.Hash, e.At) {
			t.Errorf("%s was taken for the echo", name)
		}
	}
	if !p.isEcho(apikey.EventUpdated, hashA, at) {
		t.Fatal("other events consumed the expected echo")
	}
}

func TestAnUnsureWriteExpectsNoEcho(t *testing.T) {
	p := newProtocol()
	p.expectEcho(apikey.EventCreated, hashA, time.Time{})
	p.unsure(apikey.EventCreated, hashA, time.Time{})
	if p.isEcho(apikey.EventCreated, hashA, time.Time{}) {
		t.Fatal("the NOTIFY of a write that may have committed would be ignored")
	}
}

func TestChangesLeaveOtherStripesAlone(t *testing.T) {
	p := newProtocol()
	tickets := p.snapshot()
	p.change(hashA, func() {})
	p.changeAfter(hashA2, p.snapshot(), func(bool) {})
	after := p.snapshot()
	for i := range after {
		if i == int(hashA[0]) {
			if after[i] != tickets[i]+4 { // two bumps a change
				t.Fatalf("stripe %d: epoch %d after two changes from %d", i, after[i], tickets[i])
			}
			continue
		}
		if after[i] != tickets[i] {
			t.Fatalf("stripe %d moved on a change to stripe %d", i, hashA[0])
		}
	}
	if !fills(p, hashB, tickets.ticket(hashB)) {
		t.Fatal("a change to one stripe dropped a fill in another")
	}
}

// TestAReadThatBeginsDuringAChangeIsDropped: memory mode reads records
// that a change writes while it holds the lock; a read whose ticket was
// taken while the change ran may have seen the record before it, so its
// fill is dropped (the epoch moves again when the change ends).
func TestAReadThatBeginsDuringAChangeIsDropped(t *testing.T) {
	p := newProtocol()
	var during ticket
	p.change(hashA, func() { during = p.begin(hashA) })
	if fills(p, hashA, during) {
		t.Fatal("a fill whose ticket was taken during a change was kept")
	}
	p.changeAfter(hashA, p.snapshot(), func(bool) { during = p.begin(hashA) })
	if fills(p, hashA, during) {
		t.Fatal("a fill whose ticket was taken during a local change was kept")
	}
	if !fills(p, hashA, p.begin(hashA)) {
		t.Fatal("a fill whose ticket was taken after the change was dropped")
	}
}

// TestProtocolUnderConcurrentUse: writers commit a new value of their key
// ("the database") and then apply the change (dropping what memory
// holds); readers read the value with a ticket taken before and fill it.
// However they interleave, memory never ends holding a value older than
// the database's: every fill that read before a change is dropped. Run
// under -race, it also shows each stripe's state is guarded by its lock.
func TestProtocolUnderConcurrentUse(t *testing.T) {
	p := newProtocol()
	const stripes, writers, readers, rounds = 4, 2, 4, 2000
	var db [stripes]atomic.Int64
	var mem [stripes]int64 // guarded by the stripe's lock; -1: nothing held
	hash := func(i int) keys.Hash { return keys.Hash{byte(i), byte(i)} }

	var wg sync.WaitGroup
	for i := range stripes {
		for range writers {
			wg.Go(func() {
				for range rounds {
					db[i].Add(1)
					p.change(hash(i), func() { mem[i] = -1 })
				}
			})
		}
		for range readers {
			wg.Go(func() {
				for range rounds {
					tk := p.begin(hash(i))
					read := db[i].Load()
					p.fill(hash(i), tk, func() { mem[i] = read })
				}
			})
		}
		wg.Go(func() { // local writes and echoes on the same stripes
			for r := range rounds {
				at := time.Unix(0, int64(r)*1000)
				before := p.snapshot()
				p.expectEcho(apikey.EventUpdated, hash(i), at)
				db[i].Add(1)
				p.changeAfter(hash(i), before, func(bool) { mem[i] = -1 })
				p.isEcho(apikey.EventUpdated, hash(i), at)
			}
		})
	}
	wg.Wait()
	for i := range stripes {
		if mem[i] != -1 && mem[i] != db[i].Load() {
			t.Errorf("stripe %d holds value %d, the database %d: a fill that read before a change landed after it", i, mem[i], db[i].Load())
		}
	}
}
