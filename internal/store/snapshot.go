package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// ScanActiveHashes reads the hash of every key that is active, or that
// ended (revoked or expired) within endedFor of the read, in one
// sequential pass inside one REPEATABLE READ transaction: start is called
// first, then add for each hash as it arrives. Nothing but the current row
// is held in memory.
func (s *Store) ScanActiveHashes(ctx context.Context, endedFor time.Duration, start func(apikey.ScanInfo) error, add func(keys.Hash)) (int64, error) {
	return s.scanActive(ctx, endedFor, start, func(tx pgx.Tx, endedSince time.Time) (int64, error) {
		var h keys.Hash
		return s.q.StreamActiveKeyHashes(ctx, tx, endedSince, func(raw []byte) error {
			switch {
			case len(raw) == len(h): // binary format (pgx's default)
				copy(h[:], raw)
			case len(raw) == 2+2*len(h) && raw[0] == '\\' && raw[1] == 'x': // text format (simple protocol)
				if _, err := hex.Decode(h[:], raw[2:]); err != nil {
					return fmt.Errorf("a key_hash that is not hex: %w", err)
				}
			default:
				return fmt.Errorf("a key_hash of %d bytes", len(raw))
			}
			add(h)
			return nil
		})
	})
}

// ScanActiveKeys reads the same keys as ScanActiveHashes, whole records
// (memory mode), in the same one pass.
func (s *Store) ScanActiveKeys(ctx context.Context, endedFor time.Duration, start func(apikey.ScanInfo) error, add func(*apikey.Key)) (int64, error) {
	return s.scanActive(ctx, endedFor, start, func(tx pgx.Tx, endedSince time.Time) (int64, error) {
		return s.q.StreamActiveKeys(ctx, tx, endedSince, func(r *dbsqlc.APIKey) error {
			k, err := fromRow(*r)
			if err != nil {
				return err
			}
			add(&k)
			return nil
		})
	})
}

// scanActive runs read in the full read's transaction, after start.
func (s *Store) scanActive(ctx context.Context, endedFor time.Duration, start func(apikey.ScanInfo) error, read func(pgx.Tx, time.Time) (int64, error)) (int64, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, classify(fmt.Errorf("beginning the full read: %w", err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	if err := s.q.NoStatementTimeout(ctx, tx); err != nil {
		return 0, classify(err)
	}
	rs, err := s.q.ReadStart(ctx, tx)
	if err != nil {
		return 0, classify(fmt.Errorf("starting the full read: %w", err))
	}
	info := apikey.ScanInfo{Watermark: rs.Watermark, Estimate: rs.Estimate}
	endedSince := rs.Watermark.Add(-endedFor)
	if info.Estimate <= 0 { // never analysed: count (in the same snapshot)
		if info.Estimate, err = s.q.CountActiveKeys(ctx, tx, endedSince); err != nil {
			return 0, classify(fmt.Errorf("counting active keys: %w", err))
		}
	}
	if err := start(info); err != nil {
		return 0, err
	}
	n, err := read(tx, endedSince)
	if err != nil {
		return n, classify(fmt.Errorf("reading active keys: %w", err))
	}
	return n, nil
}

// snapshotsKept is how many snapshots stay in the table.
const snapshotsKept = 2

// WriteSnapshot stores sn (with its checksum) and deletes all but the
// newest snapshots.
func (s *Store) WriteSnapshot(ctx context.Context, sn apikey.Snapshot) (int64, error) {
	sum := sha256.Sum256(sn.Filter)
	var id int64
	err := s.inTx(ctx, func(tx *writeTx) error {
		if err := s.q.NoStatementTimeout(ctx, tx); err != nil {
			return err
		}
		var err error
		id, err = s.q.InsertSnapshot(ctx, tx, dbsqlc.InsertSnapshotParams{
			Watermark: sn.Watermark, Keys: sn.Keys, Capacity: sn.Capacity, FpRate: sn.FPRate,
			Filter: sn.Filter, Records: sn.Records, Checksum: sum[:],
		})
		if err != nil {
			return fmt.Errorf("writing the filter snapshot: %w", err)
		}
		return s.q.DeleteSnapshotsBefore(ctx, tx, id-snapshotsKept+1)
	})
	return id, err
}

// NewestSnapshot describes the newest snapshot; ok is false when there is
// none.
func (s *Store) NewestSnapshot(ctx context.Context) (info apikey.SnapshotInfo, ok bool, err error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return info, false, err
	}
	defer conn.Release()
	row, err := s.q.NewestSnapshotInfo(ctx, conn)
	if errors.Is(err, pgx.ErrNoRows) {
		return info, false, nil
	}
	if err != nil {
		return info, false, classify(err)
	}
	return apikey.SnapshotInfo{ID: row.ID, Watermark: row.Watermark, Keys: row.Keys, HasRecords: row.HasRecords,
		Age: time.Duration(row.AgeSeconds * float64(time.Second))}, true, nil
}

// LoadSnapshot reads snapshot id and checks its filter against its
// checksum (ErrCorruptSnapshot); its records only when withRecords (they
// carry their own checksum).
func (s *Store) LoadSnapshot(ctx context.Context, id int64, withRecords bool) (apikey.Snapshot, error) {
	var sn apikey.Snapshot
	err := s.inTx(ctx, func(tx *writeTx) error {
		if err := s.q.NoStatementTimeout(ctx, tx); err != nil {
			return err
		}
		r, err := s.q.GetSnapshot(ctx, tx, dbsqlc.GetSnapshotParams{ID: id, WithRecords: withRecords})
		if errors.Is(err, pgx.ErrNoRows) {
			return apikey.ErrNotFound
		}
		if err != nil {
			return err
		}
		sum := sha256.Sum256(r.Filter)
		if subtle.ConstantTimeCompare(sum[:], r.Checksum) != 1 {
			return apikey.ErrCorruptSnapshot
		}
		sn = apikey.Snapshot{ID: r.ID, CreatedAt: r.CreatedAt, Watermark: r.Watermark, Keys: r.Keys,
			Capacity: r.Capacity, FPRate: r.FpRate, Filter: r.Filter, Records: r.Records, HasRecords: r.HasRecords}
		return nil
	})
	return sn, err
}

// rebuildLockKey names the fleet's rebuild lock (pg_advisory_lock): the
// first bytes of "keyservice filter rebuild".
const rebuildLockKey int64 = 0x6b65797365727669

// WithRebuildLock runs fn while this replica holds the fleet's rebuild
// lock, a session advisory lock on a pooled connection: one replica at a
// time reads the whole table and writes the snapshot, and the lock goes
// with the session if the replica dies. held is false, and fn not run,
// when another replica holds it.
func (s *Store) WithRebuildLock(ctx context.Context, fn func(context.Context) error) (held bool, err error) {
	unlock, held, err := s.TryRebuildLock(ctx)
	if !held || err != nil {
		return held, err
	}
	defer unlock()
	return true, fn(ctx)
}

// TryRebuildLock takes the fleet's rebuild lock if no replica holds it;
// unlock releases it and its connection (it may be called from another
// goroutine: the replica that read the table answers while it writes the
// snapshot, holding the lock until it is written).
func (s *Store) TryRebuildLock(ctx context.Context) (unlock func(), held bool, err error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	locked, err := s.q.TryRebuildLock(ctx, conn, rebuildLockKey)
	if err != nil || !locked {
		conn.Release()
		return nil, false, classify(err)
	}
	return func() {
		defer conn.Release()
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if uerr := s.q.RebuildUnlock(uctx, conn, rebuildLockKey); uerr != nil {
			// Closing the session releases the lock (and the pool drops
			// the closed connection).
			_ = conn.Conn.Conn().Close(uctx)
		}
	}, true, nil
}
