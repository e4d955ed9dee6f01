package validate

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/keyservice/keyservice/internal/keys"
)

// filter is a Bloom filter of the hashes of active keys, safe for
// concurrent use. The library's filter is not goroutine-safe, so each
// generation carries its own RWMutex: readers hold it shared (no reader
// waits for another), additions hold it exclusively for a few hundred
// nanoseconds. A rebuild fills a new generation off to the side and swaps
// the pointer; additions made meanwhile are recorded and replayed into the
// new generation before the swap, under the same lock, so none is lost.
type filter struct {
	cur atomic.Pointer[generation]

	mu      sync.Mutex  // serialises additions with the swap
	pending []keys.Hash // additions during a rebuild; nil when none runs
	capture bool
}

type generation struct {
	mu       sync.RWMutex
	f        *bloom.BloomFilter
	capacity uint
	added    atomic.Uint64
}

func newGeneration(capacity uint, fpRate float64) *generation {
	return &generation{f: bloom.NewWithEstimates(capacity, fpRate), capacity: capacity}
}

// loaded reports whether a generation has been swapped in.
func (f *filter) loaded() bool { return f.cur.Load() != nil }

// test reports whether h may be an active key. ok is false until the first
// load has finished: callers must then fail closed.
func (f *filter) test(h *keys.Hash) (maybe, ok bool) {
	g := f.cur.Load()
	if g == nil {
		return false, false
	}
	g.mu.RLock()
	maybe = g.f.Test(h[:])
	g.mu.RUnlock()
	return maybe, true
}

// add records h in the current generation and, during a rebuild, for the
// next one.
func (f *filter) add(h keys.Hash) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.capture {
		f.pending = append(f.pending, h)
	}
	if g := f.cur.Load(); g != nil {
		g.mu.Lock()
		g.f.Add(h[:])
		g.mu.Unlock()
		g.added.Add(1)
	}
}

// captureOnly records h for the generation being built, if a rebuild
// runs, without adding it to the current one (which already answers
// "maybe" for it).
func (f *filter) captureOnly(h keys.Hash) {
	f.mu.Lock()
	if f.capture {
		f.pending = append(f.pending, h)
	}
	f.mu.Unlock()
}

// startRebuild begins recording additions for a generation being built.
func (f *filter) startRebuild() {
	f.mu.Lock()
	f.capture, f.pending = true, nil
	f.mu.Unlock()
}

// abortRebuild stops recording after a failed rebuild.
func (f *filter) abortRebuild() {
	f.mu.Lock()
	f.capture, f.pending = false, nil
	f.mu.Unlock()
}

// swap replays additions recorded since startRebuild into next and makes it
// current. next must not be visible to anyone else yet.
func (f *filter) swap(next *generation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.pending {
		next.f.Add(f.pending[i][:])
	}
	next.added.Add(uint64(len(f.pending)))
	f.capture, f.pending = false, nil
	f.cur.Store(next)
}

// stats describes the current generation.
type filterStats struct {
	loaded   bool
	keys     uint64
	capacity uint
	bits     uint
	hashes   uint
	fpRate   float64 // estimated from bits, hashes and keys added
}

func (f *filter) stats() filterStats {
	g := f.cur.Load()
	if g == nil {
		return filterStats{}
	}
	n := g.added.Load()
	m, k := g.f.Cap(), g.f.K()
	return filterStats{
		loaded: true, keys: n, capacity: g.capacity, bits: m, hashes: k,
		fpRate: math.Pow(1-math.Exp(-float64(k)*float64(n)/float64(m)), float64(k)),
	}
}
