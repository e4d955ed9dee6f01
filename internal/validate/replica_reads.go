package validate

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
)

// The read router's Store methods: where each of the validation path's
// reads goes under the read replica rule (replica.go).

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
	ks, err := r.KeysByHashes(ctx, []keys.Hash{h})
	if err != nil {
		return apikey.Key{}, err
	}
	if len(ks) == 0 {
		return apikey.Key{}, apikey.ErrNotFound
	}
	return ks[0], nil
}

// KeysByHashes reads the replica unless a key is recent; the answer is
// used only from a server at least as recent as the last retirement, and
// within half the deadline: otherwise the primary answers.
func (r *readRouter) KeysByHashes(ctx context.Context, hs []keys.Hash) ([]apikey.Key, error) {
	if r.pick("lookup", hs...) == r.primary {
		return r.primary.KeysByHashes(ctx, hs)
	}
	rctx, cancel := replicaRead(ctx)
	ks, pos, err := r.rp.KeysByHashesAt(rctx, hs)
	cancel()
	if err == nil && r.fresh(pos) {
		return ks, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	r.metrics.reads.WithLabelValues("lookup", "primary").Inc()
	return r.primary.KeysByHashes(ctx, hs)
}

// RecentlyUsed reads the warm start's page on the replica, without the
// keys changed within its lag (they are looked up, on the primary); a page
// from a server older than the last retirement is read again on the
// primary.
func (r *readRouter) RecentlyUsed(ctx context.Context, after apikey.UseCursor, limit int) ([]apikey.Key, apikey.UseCursor, error) {
	if r.pick("warm") == r.primary {
		return r.primary.RecentlyUsed(ctx, after, limit)
	}
	page, next, pos, err := r.rp.RecentlyUsedAt(ctx, after, limit)
	if err != nil || !r.fresh(pos) {
		if ctx.Err() != nil {
			return nil, apikey.UseCursor{}, ctx.Err()
		}
		return r.primary.RecentlyUsed(ctx, after, limit)
	}
	kept := page[:0]
	for _, k := range page {
		if !r.onPrimary(k.Hash) {
			kept = append(kept, k)
		}
	}
	return kept, next, nil
}

// scanStore is where a full read goes: the replica for the first load;
// for a rebuild, the replica once it has caught up, else the primary.
func (r *readRouter) scanStore(ctx context.Context) (Store, int64) {
	if r.scanPrimary.CompareAndSwap(true, false) || r.down.Load() {
		r.metrics.reads.WithLabelValues("scan", "primary").Inc()
		return r.primary, 0
	}
	var at int64
	if r.loaded() {
		var err error
		if at, err = r.caughtUp(ctx, catchUpWait); err != nil {
			r.metrics.reads.WithLabelValues("scan", "primary").Inc()
			return r.primary, 0
		}
	}
	r.metrics.reads.WithLabelValues("scan", "replica").Inc()
	return r.replica, at
}

// epochWatermark: a standby that has replayed no commit since it started
// names the epoch as its watermark; reading it would make the snapshot and
// every sync after it read the whole history.
var epochWatermark = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// scan runs a full read on the replica when it may (the server the read's
// connection reached had replayed at least at, and named a real
// watermark), else on the primary; a read that failed on the replica once
// begun sends the next one to the primary.
func (r *readRouter) scan(ctx context.Context, start func(apikey.ScanInfo) error, read func(Store, func(apikey.ScanInfo) error) (int64, error)) (int64, error) {
	st, at := r.scanStore(ctx)
	if st == r.primary {
		return read(r.primary, start)
	}
	started := false
	n, err := read(r.replica, func(i apikey.ScanInfo) error {
		if !replayed(i.Position, at) || i.Watermark.Before(epochWatermark) {
			return errReplicaBehind // another server of the pool, or one just started
		}
		started = true
		return start(i)
	})
	if fallback(ctx, err) {
		if !started {
			r.metrics.reads.WithLabelValues("scan", "primary").Inc()
			return read(r.primary, start)
		}
		r.scanPrimary.Store(true) // the caller retries: on the primary
	}
	return n, err
}

func (r *readRouter) ScanActiveHashes(ctx context.Context, endedFor time.Duration, start func(apikey.ScanInfo) error, add func(keys.Hash)) (int64, error) {
	return r.scan(ctx, start, func(st Store, start func(apikey.ScanInfo) error) (int64, error) {
		return st.ScanActiveHashes(ctx, endedFor, start, add)
	})
}

func (r *readRouter) ScanActiveKeys(ctx context.Context, endedFor time.Duration, start func(apikey.ScanInfo) error, add func(*apikey.Key)) (int64, error) {
	return r.scan(ctx, start, func(st Store, start func(apikey.ScanInfo) error) (int64, error) {
		return st.ScanActiveKeys(ctx, endedFor, start, add)
	})
}

// NewestSnapshot asks the primary (one small row): a lagging replica
// would not show the snapshot just written, and a replica waiting for it
// would read the table itself. LoadSnapshot reads the replica (a snapshot
// is consistent with its own watermark wherever it is read, and the
// changes since are read on the primary), or the primary when the replica
// has not replayed it yet.
func (r *readRouter) NewestSnapshot(ctx context.Context) (apikey.SnapshotInfo, bool, error) {
	return r.primary.NewestSnapshot(ctx)
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
