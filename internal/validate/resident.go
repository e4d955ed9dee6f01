package validate

// Memory mode: when the records of every active key fit MemoryBudget, the
// full load keeps them all, not only their hashes, and a key seen for the
// first time is answered from them, without a lookup (and while the
// database is down). Records are kept encoded (record.go) in 256 shards,
// each an append-only byte arena and a map from hash to offset: about a
// hundred bytes per key, no pointers for the collector to scan, and a
// record is decoded only when a key is first used (its answer then lives
// in the positive cache, as a looked-up key's does).
//
// Every change memory applies (event.go's rules, under the stripe lock)
// writes here too: a record in hand replaces the key's, a change whose
// record is not in hand (another replica's update or creation) drops it
// and asks for it in the background through the lookup batches
// (prefetch). A key the table lacks is answered by the filter and a
// lookup, as in filter mode, so a dropped record costs one lookup at
// most, never a wrong answer.
//
// A rebuild fills a new table off to the side; keys written meanwhile are
// recorded, and at the swap their current version (or their absence) is
// carried into the new table, as the filter carries its additions.

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
)

// slotBytes is what the map costs per key beyond the record: a 32-byte
// hash and a 4-byte offset in a slot, with the map's control bytes and
// free slots (measured by BenchmarkResidentMemory: 80 on average over a
// map's growth, between about 45 just before it doubles and 90 after).
const slotBytes = 80

// resident is the table of records in memory mode. cur is nil in filter
// mode.
type resident struct {
	cur atomic.Pointer[records]

	mu      sync.Mutex // serialises writes with a rebuild's swap
	capture bool
	pending map[keys.Hash]struct{} // written during a rebuild
}

type records struct {
	shards [256]recShard
	bytes  atomic.Int64 // arenas and map slots
	keys   atomic.Int64
}

type recShard struct {
	mu   sync.RWMutex
	idx  map[keys.Hash]uint32 // offset of the record in data
	data []byte
	dead int // bytes of records replaced or dropped
}

func newRecords() *records {
	t := &records{}
	for i := range t.shards {
		t.shards[i].idx = make(map[keys.Hash]uint32)
	}
	return t
}

// active reports whether memory mode is on.
func (r *resident) active() bool { return r.cur.Load() != nil }

// get decodes h's record.
func (r *resident) get(h *keys.Hash) (apikey.Key, bool) {
	t := r.cur.Load()
	if t == nil {
		return apikey.Key{}, false
	}
	return t.get(h)
}

func (t *records) get(h *keys.Hash) (k apikey.Key, ok bool) {
	s := &t.shards[h[0]]
	s.mu.RLock()
	off, ok := s.idx[*h]
	if ok {
		k, ok = decodeRecord(s.data[off:]), true
		k.Hash = *h
	}
	s.mu.RUnlock()
	return k, ok
}

// raw is h's encoded record (a copy), or nil.
func (t *records) raw(h keys.Hash) []byte {
	s := &t.shards[h[0]]
	s.mu.RLock()
	defer s.mu.RUnlock()
	off, ok := s.idx[h]
	if !ok {
		return nil
	}
	n := recordLen(s.data[off:])
	return append([]byte(nil), s.data[off:int(off)+n]...)
}

// putRaw stores an encoded record for h.
func (t *records) putRaw(h keys.Hash, rec []byte) {
	s := &t.shards[h[0]]
	s.mu.Lock()
	if old, ok := s.idx[h]; ok {
		s.dead += recordLen(s.data[old:])
		delete(s.idx, h) // so a compaction does not carry the old record over
	} else {
		t.keys.Add(1)
		t.bytes.Add(slotBytes)
	}
	t.bytes.Add(int64(s.compact()))
	s.idx[h] = uint32(len(s.data))
	c := cap(s.data)
	s.data = append(s.data, rec...)
	grown := cap(s.data) - c
	s.mu.Unlock()
	t.bytes.Add(int64(grown))
}

func (t *records) del(h keys.Hash) {
	s := &t.shards[h[0]]
	s.mu.Lock()
	if old, ok := s.idx[h]; ok {
		s.dead += recordLen(s.data[old:])
		delete(s.idx, h)
		t.keys.Add(-1)
		t.bytes.Add(-slotBytes)
	}
	s.mu.Unlock()
}

// compact rewrites the arena without dead records once they are most of
// it (s.mu held); it reports the change in the arena's capacity.
func (s *recShard) compact() int {
	if s.dead < 64<<10 || s.dead < len(s.data)/2 {
		return 0
	}
	return s.rewrite(len(s.data) - s.dead + len(s.data)/8)
}

// rewrite copies the live records into a new arena of capacity c (s.mu
// held) and reports the change in capacity.
func (s *recShard) rewrite(c int) int {
	was := cap(s.data)
	data := make([]byte, 0, c)
	for h, off := range s.idx {
		n := recordLen(s.data[off:])
		s.idx[h] = uint32(len(data))
		data = append(data, s.data[off:int(off)+n]...)
	}
	s.data, s.dead = data, 0
	return cap(data) - was
}

// trim gives back the arenas' spare capacity (after a load, when no more
// records are expected soon).
func (t *records) trim() {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		t.bytes.Add(int64(s.rewrite(len(s.data) - s.dead)))
		s.mu.Unlock()
	}
}

// put stores k as h's record (under h's stripe lock).
func (r *resident) put(k *apikey.Key) {
	r.write(k.Hash, encodeRecord(nil, k))
}

// drop forgets h's record (under h's stripe lock): the filter and a lookup
// answer for it.
func (r *resident) drop(h keys.Hash) { r.write(h, nil) }

func (r *resident) write(h keys.Hash, rec []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.cur.Load()
	if t == nil && !r.capture {
		return
	}
	if r.capture {
		r.pending[h] = struct{}{}
	}
	if t == nil {
		return
	}
	if rec == nil {
		t.del(h)
	} else {
		t.putRaw(h, rec)
	}
}

// startRebuild begins recording writes for a table being built.
func (r *resident) startRebuild() {
	r.mu.Lock()
	r.capture, r.pending = true, map[keys.Hash]struct{}{}
	r.mu.Unlock()
}

// abortRebuild stops recording.
func (r *resident) abortRebuild() {
	r.mu.Lock()
	r.capture, r.pending = false, nil
	r.mu.Unlock()
}

// swap makes next current (nil: filter mode), carrying over every key
// written since startRebuild as the current table has it (or dropping it,
// when the current table lacks it). next must not be visible to anyone
// else yet.
//
// It returns the keys dropped so (to be fetched again).
func (r *resident) swap(next *records) (dropped []keys.Hash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.cur.Load(); next != nil {
		for h := range r.pending {
			var rec []byte
			if old != nil {
				rec = old.raw(h)
			}
			if rec == nil {
				next.del(h)
				dropped = append(dropped, h)
			} else {
				next.putRaw(h, rec)
			}
		}
	}
	r.capture, r.pending = false, nil
	r.cur.Store(next)
	return dropped
}

// has reports whether h has a record (without decoding it).
func (r *resident) has(h keys.Hash) bool {
	t := r.cur.Load()
	if t == nil {
		return false
	}
	s := &t.shards[h[0]]
	s.mu.RLock()
	_, ok := s.idx[h]
	s.mu.RUnlock()
	return ok
}

// stats: keys and bytes held (0, 0 in filter mode).
func (r *resident) stats() (n, bytes int64) {
	t := r.cur.Load()
	if t == nil {
		return 0, 0
	}
	return t.keys.Load(), t.bytes.Load()
}

// memoryAnswers reports whether memory mode may answer at now: it holds
// the records and has been in step with the database (a load or a sync)
// within PositiveTTL + StaleFor, the bound a cached answer has in filter
// mode. Past it (the database unreachable from here that long) memory no
// longer answers, and keys are answered as in filter mode (stale cached
// entries within their own bound, lookups, else UNAVAILABLE).
func (v *Validator) memoryAnswers(now time.Time) bool {
	return v.res.active() && now.UnixNano()-v.syncedAt.Load() < int64(v.cfg.PositiveTTL+v.cfg.StaleFor)
}

// remember puts k's record in memory (memory mode, under the stripe
// lock), unless k ended before EndedKeptFor, as a full load would not
// read it: such a key is NOT_FOUND in both modes.
func (v *Validator) remember(k *apikey.Key) {
	kept := v.now().Add(-v.cfg.EndedKeptFor)
	if k.RevokedAt != nil && !k.RevokedAt.After(kept) || k.ExpiresAt != nil && !k.ExpiresAt.After(kept) {
		v.res.drop(k.Hash)
		return
	}
	v.res.put(k)
}

// errTooMany: the active keys' records would not fit MemoryBudget.
var errTooMany = errors.New("the active keys' records do not fit the memory budget")

// perKeyGuess is the bytes a key is assumed to take in memory mode before
// a load has measured it (a name, an owner and a hint of a dozen
// characters each take about 150).
const perKeyGuess = 160

// perKey is the bytes a key takes in memory mode: measured by the last
// load, else guessed.
func (v *Validator) perKey() int64 {
	if n := v.perKeyBytes.Load(); n > 0 {
		return n
	}
	return perKeyGuess
}

// mayFit reports whether a load should try memory mode: the budget is set
// and the last load's keys (none yet: the read's estimate decides) fit it.
func (v *Validator) mayFit() bool {
	return v.budget.Load() > 0 && v.lastKeys.Load()*v.perKey() <= v.budget.Load()
}

// fullReadRecords is the full read in memory mode: the filter and every
// record in one pass. It returns errTooMany, having read no row, when the
// read's estimate does not fit the budget; when the rows turn out not to
// fit, it drops the records and loads the filter alone (filter mode).
// With write, it writes the fleet's snapshot: the filter, and the records
// when it kept them.
func (v *Validator) fullReadRecords(ctx context.Context, write bool) (*apikey.Snapshot, error) {
	var (
		next     *generation
		info     apikey.ScanInfo
		recs     *records
		overflow bool
		buf      []byte
	)
	budget := v.budget.Load()
	v.filter.startRebuild()
	v.res.startRebuild()
	n, err := v.store.ScanActiveKeys(ctx, v.cfg.EndedKeptFor, func(i apikey.ScanInfo) error {
		if i.Estimate*v.perKey() > budget {
			return errTooMany
		}
		info = i
		expect := max(i.Estimate, v.lastKeys.Load())
		next = newGeneration(max(uint(float64(expect)*1.5), uint(v.cfg.FilterMinKeys)), v.cfg.FilterFPRate)
		recs = newRecords()
		return nil
	}, func(k *apikey.Key) {
		next.f.Add(k.Hash[:])
		if recs == nil {
			return
		}
		buf = encodeRecord(buf[:0], k)
		recs.putRaw(k.Hash, buf)
		if recs.bytes.Load() > budget {
			recs, overflow = nil, true // freed: the rest is read for the filter alone
		}
	})
	if err != nil {
		v.filter.abortRebuild()
		v.res.abortRebuild()
		if errors.Is(err, errTooMany) {
			return nil, errTooMany
		}
		return nil, fmt.Errorf("loading active keys: %w", err)
	}
	v.metrics.fullReads.Inc()
	next.added.Store(uint64(n))
	v.lastKeys.Store(n)
	if recs != nil {
		recs.trim()
	}
	var sn *apikey.Snapshot
	if write {
		sn = v.snapshotOf(next, info, n, recs) // before the swap: no one else writes to them yet
	}
	v.filter.swap(next)
	was := v.res.active()
	var dropped []keys.Hash
	if recs != nil {
		v.perKeyBytes.Store(max(recs.bytes.Load()/max(n, 1), 1))
		dropped = v.res.swap(recs)
	} else {
		v.perKeyBytes.Store(max(budget/max(n, 1)+1, perKeyGuess))
		v.res.swap(nil)
	}
	v.basis = info.Watermark
	v.syncedAt.Store(v.now().UnixNano())
	if v.watermark.Load() == nil {
		w := info.Watermark
		v.watermark.Store(&w)
	}
	v.logMode(was, n, overflow)
	for _, h := range dropped {
		v.prefetch(h)
	}

	// The read left about as much garbage as the records it kept (each
	// row decoded whole, then encoded): give it back to the system now,
	// not at the collector's leisure, so the replica's memory is what it
	// holds (the records have no pointers: the collection is short). In
	// the background: the replica need not wait for it to be ready.
	go debug.FreeOSMemory()
	return sn, nil
}

// leaveMemoryMode drops the records after a load in filter mode.
func (v *Validator) leaveMemoryMode(n int64) {
	was := v.res.active()
	if was {
		v.res.swap(nil)
	}
	v.logMode(was, n, false)
}

// logMode says which mode the replica is in after a load, when it is the
// first load or the mode changed.
func (v *Validator) logMode(was bool, n int64, overflow bool) {
	now := v.res.active()
	if was == now && v.modeLogged.Swap(true) {
		return
	}
	v.modeLogged.Store(true)
	if now {
		held, bytes := v.res.stats()
		v.log.Info("every active key's record is in memory (memory mode): first-seen keys are answered without a lookup",
			"keys", held, "bytes", bytes, "bytes_per_key", bytes/max(held, 1), "budget", v.budget.Load())
		return
	}
	if v.budget.Load() <= 0 {
		v.log.Info("memory mode is off (KEYSERVICE_MEMORY_BUDGET=0): the filter, the caches and lookups answer", "keys", n)
		return
	}
	v.log.Warn("the active keys' records do not fit the memory budget (filter mode): the filter, the caches and lookups answer",
		"keys", n, "bytes_per_key", v.perKey(), "budget", v.budget.Load(), "overflowed_while_reading", overflow)
}

// Mode describes how this replica answers: "memory" (every active key's
// record in memory) or "filter" (the filter, the caches and lookups), with
// a sentence for /readyz.
func (v *Validator) Mode() (mode, detail string) {
	if n, bytes := v.res.stats(); v.res.active() {
		return "memory", fmt.Sprintf("every active key's record in memory: %d keys, %d MiB of a %d MiB budget", n, bytes>>20, v.budget.Load()>>20)
	}
	if v.budget.Load() <= 0 {
		return "filter", "memory mode off: the filter, the caches and lookups answer"
	}
	return "filter", fmt.Sprintf("%d keys do not fit the %d MiB memory budget: the filter, the caches and lookups answer", v.lastKeys.Load(), v.budget.Load()>>20)
}
