package validate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/verify"
)

// Lookups of keys that memory cannot decide are batched: whoever needs a
// key from the database joins a queue; while fewer than LookupConcurrency
// statements run, the queue is taken at once, up to LookupBatch hashes per
// statement (key_hash = ANY(...)). Under light load every lookup is its own
// statement; under a burst, everything that arrived while the statements
// were busy goes into the next one. A lookup is refused only when it cannot
// be answered within LookupTimeout of asking: the database cannot carry the
// backlog, not "a slot was busy".

// errBacklog: the lookup could not be answered within the deadline because
// the statements ahead of it took too long. It is the database not
// answering in time, like a statement that times out.
var errBacklog = fmt.Errorf("%w: the database cannot carry the lookup backlog within the deadline", apikey.ErrUnavailable)

// cannotAnswer reports whether err means the database could not answer in
// time (down, too slow, or too far behind): only then may a stale positive
// entry be served.
func cannotAnswer(err error) bool {
	return errors.Is(err, errStoreDown) || errors.Is(err, errBacklog)
}

// lookupOutcome is what the database said about one hash.
type lookupOutcome struct {
	key   apikey.Key
	found bool
	err   error
}

// lookupReq is one hash waiting for a statement.
type lookupReq struct {
	h        keys.Hash
	ticket   ticket    // h's stripe epoch when the lookup began (see memoryProtocol.fill)
	queued   time.Time // monotonic
	deadline time.Time
	done     chan lookupOutcome // buffered; nil for a refresh nobody waits on
	refresh  *posEntry          // for a refresh: the entry to release when done
}

// batcher runs lookups in batches, at most maxRunning statements at once.
type batcher struct {
	v          *Validator
	maxRunning int
	maxBatch   int
	maxQueue   int

	mu      sync.Mutex
	queue   []*lookupReq
	running int
	// stmtTime is a moving average of how long an answered statement takes
	// (under mu); samples are capped at maxSample.
	stmtTime  time.Duration
	maxSample time.Duration
}

func newBatcher(v *Validator, cfg Config) *batcher {
	return &batcher{
		v:          v,
		maxRunning: cfg.LookupConcurrency,
		maxBatch:   cfg.LookupBatch,
		// Enough for every statement slot to take full batches several
		// times within a deadline; beyond this the backlog cannot be
		// carried in time, and the queue must not grow without bound.
		maxQueue:  cfg.LookupConcurrency * cfg.LookupBatch * 8,
		maxSample: cfg.LookupTimeout / 4,
	}
}

// submitRefresh is submit for a background refresh: refused unless the
// queue is short, so refreshes never crowd out keys someone waits for.
func (b *batcher) submitRefresh(r *lookupReq) bool {
	return b.enqueue(r, b.maxQueue/4)
}

// submit queues r and starts a statement if a slot is free. It returns
// false when the queue is full (the lookup is refused at once).
func (b *batcher) submit(r *lookupReq) bool {
	return b.enqueue(r, b.maxQueue)
}

func (b *batcher) enqueue(r *lookupReq, limit int) bool {
	b.mu.Lock()
	if len(b.queue) >= limit {
		b.mu.Unlock()
		return false
	}
	b.queue = append(b.queue, r)
	b.v.metrics.lookupQueue.Set(float64(len(b.queue)))
	if b.running >= b.maxRunning {
		b.mu.Unlock()
		return true
	}
	b.running++
	b.v.metrics.statementsInFlight.Set(float64(b.running))
	if b.running == 1 {
		// Idle until now: no batch to wait for, go at once.
		batch := b.takeLocked(time.Now())
		b.mu.Unlock()
		go b.exec(batch)
		return true
	}
	b.mu.Unlock()
	// Other statements are running: lookups are arriving in a burst (the
	// callers of a statement that just answered come back together). Wait
	// a moment so they share this statement instead of each taking a slot
	// with one key and leaving the rest to wait a whole round trip.
	go func() {
		time.Sleep(linger)
		b.mu.Lock()
		batch := b.takeLocked(time.Now())
		b.mu.Unlock()
		b.exec(batch)
	}()
	return true
}

// linger is how long a statement slot that frees up under load waits for
// more lookups to join it: far below a database round trip.
const linger = 200 * time.Microsecond

// takeLocked removes up to maxBatch live requests from the queue; requests
// whose deadline has passed are refused on the way.
func (b *batcher) takeLocked(now time.Time) []*lookupReq {
	n := 0
	var batch []*lookupReq
	for n < len(b.queue) && len(batch) < b.maxBatch {
		r := b.queue[n]
		b.queue[n] = nil
		n++
		if !now.Before(r.deadline) || (len(batch) > 0 && now.Add(b.stmtTime).After(r.deadline)) {
			// Its deadline has passed, or passes before a statement could
			// answer it: refuse it now rather than spend the database on an
			// answer nobody waits for. (The first of a batch is never refused
			// on the estimate alone, so a wrong estimate corrects itself.)
			b.finish(r, lookupOutcome{err: errBacklog})
			continue
		}
		b.v.metrics.queueWait.Observe(now.Sub(r.queued).Seconds())
		batch = append(batch, r)
	}
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil // let the old array go
	}
	b.v.metrics.lookupQueue.Set(float64(len(b.queue)))
	return batch
}

// exec runs statements until the queue is empty, then frees its slot.
func (b *batcher) exec(batch []*lookupReq) {
	for {
		if len(batch) > 0 {
			b.run(batch)
		}
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.running--
			b.v.metrics.statementsInFlight.Set(float64(b.running))
			b.mu.Unlock()
			return
		}
		batch = b.takeLocked(time.Now())
		b.mu.Unlock()
	}
}

// run looks up one batch in one statement and answers every request in it.
func (b *batcher) run(batch []*lookupReq) {
	v := b.v
	hs := make([]keys.Hash, 0, len(batch))
	seen := make(map[keys.Hash]struct{}, len(batch))
	for _, r := range batch {
		if _, dup := seen[r.h]; !dup {
			seen[r.h] = struct{}{}
			hs = append(hs, r.h)
		}
	}
	v.metrics.batchSize.Observe(float64(len(hs)))
	// The statement may run until the last of its lookups gives up.
	deadline := batch[0].deadline
	for _, r := range batch[1:] {
		if r.deadline.After(deadline) {
			deadline = r.deadline
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	started := time.Now()
	found, err := v.store.KeysByHashes(ctx, hs)
	took := time.Since(started)
	cancel()
	if err == nil {
		// Only answered statements teach the estimate (a stalled database is
		// not a statement's cost), and no one sample may dominate it.
		took = min(took, b.maxSample)
		b.mu.Lock()
		b.stmtTime += (took - b.stmtTime) / 8
		b.mu.Unlock()
	}
	if err != nil {
		var out error
		switch {
		case errors.Is(err, apikey.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
			v.metrics.lookups.WithLabelValues("unavailable").Add(float64(len(hs)))
			out = fmt.Errorf("%w: %w", errStoreDown, err)
		default:
			v.metrics.lookups.WithLabelValues("error").Add(float64(len(hs)))
			out = err
		}
		for _, r := range batch {
			b.finish(r, lookupOutcome{err: out})
		}
		return
	}
	byHash := make(map[keys.Hash]*apikey.Key, len(found))
	for i := range found {
		byHash[found[i].Hash] = &found[i]
	}
	v.metrics.lookups.WithLabelValues("found").Add(float64(len(found)))
	v.metrics.lookups.WithLabelValues("not_found").Add(float64(len(hs) - len(found)))
	now := v.now()
	for _, r := range batch {
		k := byHash[r.h]
		if k == nil {
			v.mem.fill(r.h, r.ticket, func() {
				v.neg.Set(r.h, negEntry{code: outcome.NotFound, short: v.streamDown()})
				v.pos.Invalidate(r.h)
				v.res.drop(r.h)
			})
			b.finish(r, lookupOutcome{})
			continue
		}
		kc := *k
		v.mem.fill(r.h, r.ticket, func() {
			v.remember(&kc) // also while a load entering memory mode reads (see revoked)
			if code := verify.State(&kc, now); code != outcome.Valid {
				v.neg.Set(r.h, negEntry{code: code, key: &kc})
				// A stale positive entry must not outlive what the database said.
				v.pos.Invalidate(r.h)
				return
			}
			v.pos.Set(r.h, &posEntry{key: kc, fetched: now})
		})
		b.finish(r, lookupOutcome{key: kc, found: true})
	}
}

// finish answers r's waiter, or releases the entry a refresh was for.
func (b *batcher) finish(r *lookupReq, o lookupOutcome) {
	if p := r.refresh; p != nil {
		if o.err != nil {
			p.retryAt.Store(b.v.now().Add(refreshBackoff).UnixNano())
		}
		p.refreshing.Store(false)
		if o.err != nil {
			b.v.signals.refreshFailed.Signal()
		}
	}
	if r.done != nil {
		r.done <- o
	}
}

// fetch looks h up through the batcher and waits for the answer, at most
// until LookupTimeout has passed since it asked.
func (v *Validator) fetch(h keys.Hash, tk ticket) (lookupResult, error) {
	now := time.Now()
	r := &lookupReq{h: h, ticket: tk, queued: now, deadline: now.Add(v.cfg.LookupTimeout), done: make(chan lookupOutcome, 1)}
	if !v.batch.submit(r) {
		v.metrics.lookupRefusals[refusedQueueFull].Inc()
		return lookupResult{}, errBacklog
	}
	t := time.NewTimer(v.cfg.LookupTimeout)
	defer t.Stop()
	select {
	case o := <-r.done:
		return v.outcome(o)
	case <-t.C:
		select {
		case o := <-r.done: // answered just in time: select picks at random
			return v.outcome(o)
		default:
		}
		// The statement may still answer; it then fills the cache for the
		// next caller. This one is refused now.
		v.metrics.lookupRefusals[refusedDeadline].Inc()
		return lookupResult{}, errBacklog
	}
}

func (v *Validator) outcome(o lookupOutcome) (lookupResult, error) {
	if o.err != nil {
		switch {
		case errors.Is(o.err, errStoreDown):
			v.metrics.lookupRefusals[refusedStoreDown].Inc()
		case errors.Is(o.err, errBacklog):
			v.metrics.lookupRefusals[refusedDeadline].Inc()
		}
		return lookupResult{}, o.err
	}
	return lookupResult{key: o.key, found: o.found}, nil
}

// refresh looks p's key up again in the background, through the same
// batches, so a key in steady use never waits for its entry to expire.
func (v *Validator) refresh(h keys.Hash, p *posEntry) {
	if !p.refreshing.CompareAndSwap(false, true) {
		return // one refresh per entry at a time
	}
	now := time.Now()
	r := &lookupReq{h: h, ticket: v.mem.begin(h), queued: now, deadline: now.Add(v.cfg.LookupTimeout), refresh: p}
	if !v.batch.submitRefresh(r) {
		// The queue is long: try again a little later, not on every use.
		p.retryAt.Store(v.now().Add(refreshBackoff / 10).UnixNano())
		p.refreshing.Store(false)
		return
	}
	v.metrics.refreshes.Inc()
}

// prefetch looks h up in the background, through the same batches, to
// put its record in memory (memory mode, after a change whose record was
// not in hand). When the queue is long it is not asked: the key's first
// Validate looks it up instead.
func (v *Validator) prefetch(h keys.Hash) {
	now := time.Now()
	r := &lookupReq{h: h, ticket: v.mem.begin(h), queued: now, deadline: now.Add(v.cfg.LookupTimeout)}
	if v.batch.submitRefresh(r) {
		v.metrics.prefetches.Inc()
	}
}

// refreshBackoff is how long an entry whose refresh failed waits before
// the next try: a struggling database is not asked again on every use.
const refreshBackoff = time.Second
