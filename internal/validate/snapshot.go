package validate

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/backoff"
	"github.com/keyservice/keyservice/internal/keys"
)

// A filter load (at start-up, and every RebuildInterval) takes the fleet's
// newest snapshot when it is younger than RebuildInterval, and reads the
// whole table only when there is none:
//
//  1. A young enough snapshot is loaded, and the changes made since its
//     watermark are read by an incremental sync, as after any load.
//  2. Otherwise the replica that takes the rebuild lock reads every
//     active key (one sequential pass), answers from what it read, and
//     writes the filter it built (and in memory mode the records) as the
//     new snapshot in the background, holding the lock until it is
//     written.
//  3. A replica that finds the lock taken waits (up to SnapshotWait) for
//     that snapshot; it takes the lock itself when the lock comes free
//     with no snapshot it can use, and reads the table if none comes.
//
// So the table is read about once per RebuildInterval, however many
// replicas there are. A snapshot that does not match its checksum, does
// not decode, or was built for another false-positive rate is ignored
// with a log line, and the table is read instead.

// rebuild replaces the filter, from a snapshot or a full read, and swaps
// it in; additions applied meanwhile are carried over.
func (v *Validator) rebuild(ctx context.Context) (err error) {
	// One rebuild at a time: a second would reset the first's record of
	// additions, and the first's swap would then lose them.
	v.rebuildMu.Lock()
	defer v.rebuildMu.Unlock()
	start := time.Now()
	defer func() {
		if err != nil {
			v.metrics.syncErrors.WithLabelValues("rebuild").Inc()
		} else {
			v.metrics.buildSeconds.Observe(time.Since(start).Seconds())
		}
	}()
	if !v.cfg.Snapshots {
		_, err := v.read(ctx, false)
		return err
	}
	// This replica's own snapshot still being written: wait for it (the
	// lock is held until then, and a replica never loads its own).
	v.writes.Wait()
	seen, loaded, err := v.loadNewestSnapshot(ctx, 0)
	if loaded {
		return err
	}
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		// The snapshot path failing must not keep the filter from loading.
		v.log.Warn("loading the filter snapshot failed; reading the table", "error", err)
	}
	// Another replica holding the lock is reading the table: wait for its
	// snapshot, and take the lock when it is free (that replica done
	// with a snapshot this one cannot use, or gone).
	deadline := time.Now().Add(v.cfg.SnapshotWait)
	for {
		unlock, held, err := v.store.TryRebuildLock(ctx)
		if err != nil {
			return err
		}
		if held {
			return v.readAndShare(ctx, unlock)
		}
		if !time.Now().Before(deadline) {
			break
		}
		if !backoff.Sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
		if _, loaded, err := v.loadNewestSnapshot(ctx, seen); loaded {
			return err
		} else if err != nil {
			v.log.Warn("loading the filter snapshot failed; reading the table", "error", err)
			break
		}
	}
	v.log.Warn("no filter snapshot from the replica holding the rebuild lock; reading the table", "waited", v.cfg.SnapshotWait)
	_, err = v.read(ctx, false)
	return err
}

// readAndShare reads the table holding the fleet's rebuild lock, and
// writes the snapshot for the other replicas in the background: this
// replica answers as soon as it has read (160 MB of records for 1M keys
// take about as long to write as the table took to read); the lock is
// held until the snapshot is written, so the others wait for it rather
// than read the table too. Called with rebuildMu held.
func (v *Validator) readAndShare(ctx context.Context, unlock func()) error {
	sn, err := v.read(ctx, true)
	if err != nil || sn == nil {
		unlock()
		return err
	}
	v.writes.Go(func() {
		defer unlock()
		v.writeSnapshot(ctx, *sn)
	})
	return nil
}

// waitWrites waits for the snapshot this replica is writing, if any.
func (v *Validator) waitWrites() {
	v.rebuildMu.Lock() // writes start under it: no Add races the Wait
	defer v.rebuildMu.Unlock()
	v.writes.Wait()
}

// read reads the whole table: in memory mode when the keys may fit the
// budget, else the filter alone. With write, it returns the snapshot to
// write for the fleet (nil: none worth sharing).
func (v *Validator) read(ctx context.Context, write bool) (*apikey.Snapshot, error) {
	if v.mayFit() {
		if sn, err := v.fullReadRecords(ctx, write); !errors.Is(err, errTooMany) {
			return sn, err
		}
	}
	sn, err := v.fullRead(ctx, write)
	if err != nil {
		return nil, err
	}
	v.leaveMemoryMode(v.lastKeys.Load())
	return sn, nil
}

// loadNewestSnapshot loads the newest snapshot if its id is above after,
// it is younger than RebuildInterval, and it was read after the current
// filter's own read (a replica never goes back to what it had, or to its
// own snapshot: then it is its turn to read the table). seen is the
// newest snapshot's id (0: none).
func (v *Validator) loadNewestSnapshot(ctx context.Context, after int64) (seen int64, loaded bool, err error) {
	info, ok, err := v.store.NewestSnapshot(ctx)
	id, age := info.ID, info.Age
	if err != nil || !ok || id <= after || !info.Watermark.After(v.basis) {
		return id, false, err
	}
	if age >= v.cfg.RebuildInterval {
		v.metrics.snapshotsIgnored.WithLabelValues("too_old").Inc()
		v.log.Info("filter snapshot too old; reading the table", "snapshot", id, "age", age.Round(time.Second), "max_age", v.cfg.RebuildInterval)
		return id, false, nil
	}
	// Memory mode takes the records too, when the snapshot's keys may fit
	// the budget; a snapshot without them (written in filter mode, or by
	// an older version) is not used then: this replica reads the table
	// and keeps them (and, holding the lock, writes them for the others).
	budget := v.budget.Load()
	memory := budget > 0 && info.Keys*v.perKey() <= budget
	if memory && !info.HasRecords {
		v.metrics.snapshotsIgnored.WithLabelValues("no_records").Inc()
		v.log.Info("filter snapshot without memory mode's records; reading the table", "snapshot", id)
		return id, false, nil
	}
	began := time.Now()
	sn, err := v.store.LoadSnapshot(ctx, id, memory)
	read := time.Since(began)
	if errors.Is(err, apikey.ErrCorruptSnapshot) {
		v.metrics.snapshotsIgnored.WithLabelValues("corrupt").Inc()
		v.log.Warn("filter snapshot does not match its checksum; ignored, reading the table", "snapshot", id)
		return id, false, nil
	}
	if errors.Is(err, apikey.ErrNotFound) { // deleted meanwhile: a newer one exists
		return id, false, nil
	}
	if err != nil {
		return id, false, err
	}
	if sn.FPRate != v.cfg.FilterFPRate {
		v.metrics.snapshotsIgnored.WithLabelValues("settings").Inc()
		v.log.Info("filter snapshot built for another false-positive rate; reading the table", "snapshot", id, "fp_rate", sn.FPRate)
		return id, false, nil
	}
	next := &generation{f: &bloom.BloomFilter{}, capacity: uint(sn.Capacity)}
	if err := next.f.UnmarshalBinary(sn.Filter); err != nil || next.f.Cap() == 0 {
		v.metrics.snapshotsIgnored.WithLabelValues("corrupt").Inc()
		v.log.Warn("filter snapshot does not decode; ignored, reading the table", "snapshot", id, "error", err)
		return id, false, nil
	}
	next.added.Store(uint64(sn.Keys))
	var recs *records
	if memory {
		recs, err = unmarshalRecords(sn.Records)
		sn.Records = nil
		if err != nil || recs.bytes.Load() > budget {
			reason := "corrupt"
			if err == nil {
				reason = "budget"
			}
			v.metrics.snapshotsIgnored.WithLabelValues(reason).Inc()
			v.log.Warn("memory mode's records in the filter snapshot not used; reading the table", "snapshot", id, "reason", reason)
			return id, false, nil
		}
	}
	// The snapshot knows nothing of changes after its watermark: add the
	// keys created since to the filter, and drop the record of every key
	// changed since that the records do not already show (a lookup, then
	// the prefetch, answers for them), before the swap; additions and
	// writes meanwhile are captured, so no key this replica already knew
	// is missing for a moment. Every change to a key sets its revoked_at
	// or its updated_at, so a record with both as the change has them is
	// the key as it is (keys written just before the watermark come back
	// within SyncOverlap, and most are such).
	v.filter.startRebuild()
	if recs != nil {
		v.res.startRebuild()
	}
	var stale []keys.Hash
	changes, err := v.store.ChangesSince(ctx, sn.Watermark.Add(-v.cfg.SyncOverlap), v.cfg.SyncPageSize, func(page []apikey.KeyChange) error {
		for _, c := range page {
			v.reads.changed(c.Hash)
			next.f.Add(c.Hash[:]) // revoked ones too: recently ended keys stay in the filter
			if c.CreatedAt.After(sn.Watermark) {
				next.added.Add(1) // not counted in the snapshot yet
			}
			if recs != nil {
				if k, ok := recs.get(&c.Hash); ok && sameTime(k.RevokedAt, c.RevokedAt) && sameTime(k.UpdatedAt, c.UpdatedAt) {
					continue
				}
				recs.del(c.Hash)
				stale = append(stale, c.Hash)
			}
		}
		return nil
	})
	if err != nil {
		v.filter.abortRebuild()
		v.res.abortRebuild()
		return id, false, fmt.Errorf("reading changes since the snapshot: %w", err)
	}
	v.filter.swap(next)
	v.basis = sn.Watermark
	v.metrics.snapshotLoads.Inc()
	v.lastKeys.Store(sn.Keys)
	if recs != nil {
		was := v.res.active()
		v.perKeyBytes.Store(max(recs.bytes.Load()/max(sn.Keys, 1), 1))
		dropped := v.res.swap(recs)
		v.syncedAt.Store(v.now().UnixNano())
		v.logMode(was, sn.Keys, false)
		for _, h := range dropped {
			v.prefetch(h)
		}
		for _, h := range stale {
			v.prefetch(h)
		}
		go debug.FreeOSMemory() // the snapshot's bytes, as after a full read
	} else {
		v.leaveMemoryMode(sn.Keys)
	}
	v.log.Info("key filter loaded from the fleet's snapshot", "snapshot", id, "age", age.Round(time.Second), "keys", sn.Keys,
		"changed_since", changes, "memory_mode", recs != nil,
		"read", read.Round(time.Millisecond), "took", time.Since(began).Round(time.Millisecond))
	if v.watermark.Load() == nil {
		// First load: the catch-up sync in Run applies the revocations
		// since the watermark to memory.
		w := sn.Watermark
		v.watermark.Store(&w)
	}
	return id, true, nil
}

// fullRead builds the filter from every active key, in one pass, and
// returns it as the fleet's snapshot when write is set.
func (v *Validator) fullRead(ctx context.Context, write bool) (*apikey.Snapshot, error) {
	var (
		next *generation
		info apikey.ScanInfo
	)
	// Capture additions from before the read's snapshot is taken, so that
	// a key created just then is in the new filter one way or the other.
	v.filter.startRebuild()
	n, err := v.store.ScanActiveHashes(ctx, v.cfg.EndedKeptFor, func(i apikey.ScanInfo) error {
		info = i
		// Headroom for keys created until the next rebuild.
		expect := max(i.Estimate, v.lastKeys.Load())
		next = newGeneration(max(uint(float64(expect)*1.5), uint(v.cfg.FilterMinKeys)), v.cfg.FilterFPRate)
		return nil
	}, func(h keys.Hash) { next.f.Add(h[:]) })
	if err != nil {
		v.filter.abortRebuild()
		return nil, fmt.Errorf("loading active keys: %w", err)
	}
	v.metrics.fullReads.Inc()
	next.added.Store(uint64(n))
	v.lastKeys.Store(n)
	if write && uint64(n) > uint64(next.capacity) {
		// Sized from a stale estimate: not worth sharing. The sync loop
		// asks for a rebuild, sized from n this time, which writes one.
		v.log.Warn("the table holds more keys than the filter was sized for; not writing it as a snapshot", "keys", n, "capacity", next.capacity)
		write = false
	}
	var sn *apikey.Snapshot
	if write {
		sn = v.snapshotOf(next, info, n, nil) // before the swap, while no one else can add to next
	}
	v.filter.swap(next)
	v.basis = info.Watermark
	if v.watermark.Load() == nil {
		w := info.Watermark
		v.watermark.Store(&w)
	}
	return sn, nil
}

// snapshotOf is the fleet's snapshot of a full read: its filter, and its
// records in memory mode (recs; nil in filter mode). nil when there is
// nothing worth sharing.
func (v *Validator) snapshotOf(next *generation, info apikey.ScanInfo, n int64, recs *records) *apikey.Snapshot {
	if uint64(n) > uint64(next.capacity) {
		// Sized from a stale estimate: not worth sharing. The sync loop
		// asks for a rebuild, sized from n this time, which writes one.
		v.log.Warn("the table holds more keys than the filter was sized for; not writing it as a snapshot", "keys", n, "capacity", next.capacity)
		return nil
	}
	raw, err := next.f.MarshalBinary()
	if err != nil {
		v.log.Warn("encoding the filter snapshot failed", "error", err)
		return nil
	}
	sn := &apikey.Snapshot{Watermark: info.Watermark, Keys: n, Capacity: int64(next.capacity), FPRate: v.cfg.FilterFPRate, Filter: raw}
	if recs != nil {
		sn.Records = recs.marshal()
	}
	return sn
}

// writeSnapshot stores sn for the fleet; a failure leaves the others to
// read the table.
func (v *Validator) writeSnapshot(ctx context.Context, sn apikey.Snapshot) {
	id, err := v.store.WriteSnapshot(ctx, sn)
	if err != nil {
		v.log.Warn("writing the filter snapshot failed", "error", err)
		return
	}
	v.metrics.snapshotWrites.Inc()
	v.log.Info("filter snapshot written for the fleet", "snapshot", id, "keys", sn.Keys, "bytes", len(sn.Filter), "record_bytes", len(sn.Records))
}

// sameTime reports whether a and b are both unset or the same instant.
func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
