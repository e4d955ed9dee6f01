package validate

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/backoff"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/verify"
)

// Feed delivers changes made by other replicas; *store.Store is one (its
// LISTEN connection).
type Feed interface {
	Listen(ctx context.Context, h apikey.ChangeHandler) error
}

// Run loads the filter (retrying with jittered backoff while the database
// is unreachable), then keeps memory in step until ctx ends: changes from
// feed, incremental sync, periodic rebuilds, and usage flushes. feed may be
// nil (sync alone then keeps replicas in step, within SyncInterval).
func (v *Validator) Run(ctx context.Context, feed Feed) error {
	defer v.waitWrites()   // a snapshot being written for the fleet
	var bo backoff.Backoff // 100 ms .. 5 s
	if v.reads != nil {
		// Started first: until the replica is seen caught up, every
		// lookup goes to the primary.
		rctx, cancel := context.WithCancel(ctx)
		var rwg sync.WaitGroup
		rwg.Go(func() { v.reads.run(rctx) })
		defer rwg.Wait()
		defer cancel()
	}
	for {
		err := v.rebuild(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := bo.Next()
		v.log.Warn("loading the key filter failed; retrying", "error", err, "retry_in", wait.Round(time.Millisecond))
		v.signals.loadFailed.Signal()
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
	}
	st := v.filter.stats()
	v.log.Info("key filter loaded", "keys", st.keys, "capacity", st.capacity, "bits", st.bits)
	v.warm(ctx)
	// The feed starts below: changes made while the cache was being warmed
	// (a key revoked after its page was read) are caught up now, before the
	// first answer.
	if err := v.sync(ctx); err != nil && ctx.Err() == nil {
		v.log.Warn("catch-up sync after the warm start failed; will retry", "error", err)
		v.pos.InvalidateAll() // nothing warmed may be served unchecked
	}
	v.ready.Store(true)
	close(v.readyCh)

	var wg sync.WaitGroup
	if feed != nil {
		v.listening.Store(true)
		wg.Go(func() {
			err := feed.Listen(ctx, changeHandler{v})
			if ctx.Err() == nil {
				// The feed ended early: treat the stream as down for good
				// (frequent sync, short NOT_FOUND entries).
				changeHandler{v}.StreamLost()
				v.log.Error("listening for key changes stopped; sync alone keeps this replica in step", "error", err)
			}
		})
	}
	wg.Go(func() { v.syncLoop(ctx) })
	wg.Go(func() { v.rebuildLoop(ctx) })
	wg.Go(func() { v.usageLoop(ctx) })
	wg.Wait()
	return nil
}

func (v *Validator) rebuildLoop(ctx context.Context) {
	for {
		// ±10% jitter, so replicas started together do not rebuild together.
		t := time.NewTimer(backoff.Jitter(v.cfg.RebuildInterval, 0.1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-v.rebuildNow: // grown past capacity (syncLoop)
			t.Stop()
		case <-t.C:
		}
		if err := v.rebuild(ctx); err != nil {
			if ctx.Err() == nil {
				v.log.Warn("filter rebuild failed; keeping the current filter", "error", err)
			}
			continue
		}
		v.warm(ctx)
	}
}

// warmPageSize is how many keys one page of the warm start reads.
const warmPageSize = 1000

// warm fills the positive cache with the most recently used active keys,
// newest first, up to WarmKeys, so a replica that just (re)started answers
// the keys in use from memory. Entries already cached are kept; a key
// changed while its page was read is skipped (stripe epochs, as for a
// lookup). Failures are logged: lookups still answer those keys.
func (v *Validator) warm(ctx context.Context) {
	if v.cfg.WarmKeys <= 0 || v.res.active() {
		return // memory mode holds every key already
	}
	start := time.Now()
	var (
		after          apikey.UseCursor
		read, inserted int
	)
	for read < v.cfg.WarmKeys {
		before := v.mem.snapshot()
		page, next, err := v.store.RecentlyUsed(ctx, after, min(warmPageSize, v.cfg.WarmKeys-read))
		if err != nil {
			if ctx.Err() == nil {
				v.metrics.syncErrors.WithLabelValues("warm").Inc()
				v.log.Warn("warming the key cache failed; those keys will be looked up", "error", err)
			}
			return
		}
		read += len(page)
		now := v.now()
		for i := range page {
			k := page[i]
			if verify.State(&k, now) != outcome.Valid {
				continue
			}
			// Entries of different ages, so they come up for refresh spread
			// over the refresh window rather than all at once.
			age := time.Duration(rand.Int64N(int64(v.refreshAfter) + 1))
			v.mem.fill(k.Hash, before.ticket(k.Hash), func() {
				if _, negative := v.neg.GetEntryQuietly(k.Hash); negative {
					return
				}
				if _, set := v.pos.SetIfAbsent(k.Hash, &posEntry{key: k, fetched: now.Add(-age)}); set {
					inserted++
				}
			})
		}
		if next == (apikey.UseCursor{}) {
			break
		}
		after = next
	}
	v.metrics.warmed.Add(float64(inserted))
	v.log.Info("key cache warmed with recently used keys", "keys", inserted, "read", read, "took", time.Since(start).Round(time.Millisecond))
}

// streamDownSync is how often incremental sync runs while the LISTEN
// connection is down: other replicas' new keys would otherwise be answered
// NOT_FOUND here for a whole SyncInterval.
const streamDownSync = 250 * time.Millisecond

func (v *Validator) syncLoop(ctx context.Context) {
	for {
		d := v.cfg.SyncInterval
		if v.streamDown() {
			d = min(d, streamDownSync)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-v.streamLost: // sooner from now on
			t.Stop()
			continue
		case <-t.C:
		}
		if err := v.sync(ctx); err != nil {
			if ctx.Err() == nil {
				v.log.Warn("incremental sync failed; will retry", "error", err)
			}
		} else if v.backlogPending.CompareAndSwap(true, false) {
			v.streamUp.Store(true)
		}
		// More keys than the filter was sized for: its false-positive rate
		// climbs, so ask for a rebuild now rather than at the next interval
		// (the rebuild loop runs it: a rebuild may wait minutes for another
		// replica's snapshot, and sync must not wait with it).
		if st := v.filter.stats(); st.loaded && st.keys > uint64(st.capacity) {
			select {
			case v.rebuildNow <- struct{}{}:
			default:
			}
		}
	}
}

// sync applies keys created or revoked since the watermark minus the
// overlap, using the database clock, so a transaction that committed late
// on another replica is still seen.
func (v *Validator) sync(ctx context.Context) (err error) {
	v.syncMu.Lock()
	defer v.syncMu.Unlock()
	start := time.Now()
	defer func() {
		if err != nil {
			v.metrics.syncErrors.WithLabelValues("sync").Inc()
		} else {
			v.metrics.syncSeconds.Observe(time.Since(start).Seconds())
		}
	}()
	wm := v.watermark.Load()
	if wm == nil {
		return nil // not loaded yet; the load reads everything
	}
	dbNow, err := v.store.Now(ctx)
	if err != nil {
		return err
	}
	since := wm.Add(-v.cfg.SyncOverlap)
	// Page by page (SyncPageSize rows per statement), each applied before
	// the next is read: a million-key import is read in bounded pieces.
	n, err := v.store.ChangesSince(ctx, since, v.cfg.SyncPageSize, func(page []apikey.KeyChange) error {
		for i := range page {
			v.syncOne(&page[i], since, *wm, dbNow)
		}
		return nil
	})
	v.metrics.syncRows.Add(float64(n))
	if err != nil {
		return err
	}
	v.watermark.Store(&dbNow)
	v.syncedAt.Store(v.now().UnixNano())
	v.signals.synced.Signal()
	return nil
}

// syncOne applies one change found by the incremental sync. With a read
// replica the key is read on the primary until the replica has the change
// (replica.go): marked here when the change is new to this sync (after
// wm, the previous watermark), and in each branch that skips it unless
// memory already shows this very change; the branches that apply it mark
// it in applyEvent. (The overlap re-reads every recent change at each
// sync: marking them all again would keep every read on the primary.)
func (v *Validator) syncOne(c *apikey.KeyChange, since, wm, dbNow time.Time) {
	if changedAt(c).After(wm) {
		v.reads.changed(c.Hash)
	}
	if c.RevokedAt != nil {
		// Always applied, even with nothing cached: it also bumps the
		// stripe epoch, so a lookup that read the row before the revoke
		// cannot cache VALID afterwards. Skipped when already known.
		if n, ok := v.neg.GetEntryQuietly(c.Hash); ok && n.Value.code == outcome.Revoked {
			return
		}
		if c.RevokedAt.After(dbNow.Add(-v.cfg.EndedKeptFor)) {
			// A key ended this recently is answered REVOKED, so the
			// filter must know it, as a full load would: one this
			// replica never saw (imported already revoked, with no
			// NOTIFY; created and revoked between two syncs while
			// NOTIFY was down) would otherwise be NOT_FOUND until the
			// next rebuild, and spend end clients' failed attempts.
			if maybe, _ := v.filter.test(&c.Hash); maybe {
				v.filter.captureOnly(c.Hash)
			} else {
				v.filter.add(c.Hash)
			}
		}
		v.applyRemote(apikey.Event{Kind: apikey.EventRevoked, Hash: c.Hash, At: *c.RevokedAt, Keyspace: c.KeyspaceID}, fromSync)
		return
	}
	if c.UpdatedAt != nil && c.UpdatedAt.After(since) {
		// The overlap re-reads recent changes at every sync: skipped when
		// memory already holds the record as updated, and, for a key
		// memory holds nothing of that the filter knows, only noted for
		// a filter being rebuilt (as for a known created key).
		if v.holdsUpdate(c.Hash, *c.UpdatedAt) {
			return
		}
		if maybe, _ := v.filter.test(&c.Hash); maybe {
			// Bump first, then look, in one critical section: no lookup
			// that read the row before the update can fill afterwards,
			// and one that filled before is seen here and dropped.
			var held bool
			v.mem.change(c.Hash, func() { held = v.holds(c.Hash) })
			if !held {
				v.reads.changed(c.Hash) // memory shows nothing of it: a lookup may come
				v.filter.captureOnly(c.Hash)
				return
			}
		}
		v.applyRemote(apikey.Event{Kind: apikey.EventUpdated, Hash: c.Hash, At: *c.UpdatedAt, Keyspace: c.KeyspaceID}, fromSync)
		return
	}
	maybe, _ := v.filter.test(&c.Hash)
	if _, negative := v.neg.GetEntryQuietly(c.Hash); maybe && !negative {
		// Known, or a false positive of the current filter: either way
		// a filter being rebuilt must get it too.
		if !v.holds(c.Hash) {
			v.reads.changed(c.Hash) // a lookup may come, and must find it
		}
		v.filter.captureOnly(c.Hash)
		return
	}
	v.applyRemote(apikey.Event{Kind: apikey.EventCreated, Hash: c.Hash, Keyspace: c.KeyspaceID}, fromSync)
}

// changedAt is the latest of a change's times.
func changedAt(c *apikey.KeyChange) time.Time {
	t := c.CreatedAt
	if c.RevokedAt != nil && c.RevokedAt.After(t) {
		t = *c.RevokedAt
	}
	if c.UpdatedAt != nil && c.UpdatedAt.After(t) {
		t = *c.UpdatedAt
	}
	return t
}

func (v *Validator) usageLoop(ctx context.Context) {
	t := time.NewTicker(v.cfg.UsageFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// Last flush on the way out, briefly.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			v.flushUsage(fctx)
			cancel()
			return
		case <-t.C:
			v.flushUsage(ctx)
		}
	}
}
