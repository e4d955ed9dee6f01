package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

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
	// The watermark first, then the transaction's snapshot: the read is at
	// least as recent as the watermark (on a read replica, which replays
	// as it goes, reading it after the snapshot could name a later time
	// than the data).
	pos, err := s.q.WALPosition(ctx, conn)
	if err != nil {
		return 0, classify(fmt.Errorf("starting the full read: %w", err))
	}
	wm, err := s.q.ReadWatermark(ctx, conn)
	if err != nil {
		return 0, classify(fmt.Errorf("starting the full read: %w", err))
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, classify(fmt.Errorf("beginning the full read: %w", err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	if err := s.q.NoStatementTimeout(ctx, tx); err != nil {
		return 0, classify(err)
	}
	est, err := s.q.ReadEstimate(ctx, tx)
	if err != nil {
		return 0, classify(fmt.Errorf("starting the full read: %w", err))
	}
	info := apikey.ScanInfo{Watermark: wm, Estimate: est, Position: pos}
	endedSince := wm.Add(-endedFor)
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

// DefaultSnapshotChunk is the size of a snapshot's chunks: well below
// PostgreSQL's 1 GB field limit, and small enough that several are read
// at once without holding much twice.
const DefaultSnapshotChunk = 64 << 20

// snapshotReaders is how many chunks a load reads at once.
const snapshotReaders = 4

// Snapshot parts, as stored in filter_snapshot_chunks.part.
const (
	partFilter  int16 = 0
	partRecords int16 = 1
)

// SetSnapshotChunk sets the size of the chunks snapshots are written in
// (tests use a small one); 0 restores DefaultSnapshotChunk.
func (s *Store) SetSnapshotChunk(n int) {
	if n <= 0 {
		n = DefaultSnapshotChunk
	}
	s.snapshotChunk.Store(int64(n))
}

func (s *Store) chunkSize() int {
	if n := s.snapshotChunk.Load(); n > 0 {
		return int(n)
	}
	return DefaultSnapshotChunk
}

// WriteSnapshot stores sn (with its filter's checksum) in chunks, and
// deletes all but the newest snapshots, in one transaction.
func (s *Store) WriteSnapshot(ctx context.Context, sn apikey.Snapshot) (int64, error) {
	sum := sha256.Sum256(sn.Filter)
	var id int64
	err := s.inTx(ctx, func(tx *writeTx) error {
		if err := s.q.NoStatementTimeout(ctx, tx); err != nil {
			return err
		}
		p := dbsqlc.InsertSnapshotParams{
			Watermark: sn.Watermark, Keys: sn.Keys, Capacity: sn.Capacity, FpRate: sn.FPRate,
			Checksum: sum[:], FilterBytes: pgtype.Int8{Int64: int64(len(sn.Filter)), Valid: true},
		}
		if sn.Records != nil {
			p.RecordsBytes = pgtype.Int8{Int64: int64(len(sn.Records)), Valid: true}
		}
		var err error
		if id, err = s.q.InsertSnapshot(ctx, tx, p); err != nil {
			return fmt.Errorf("writing the filter snapshot: %w", err)
		}
		if err := s.writeChunks(ctx, tx, id, partFilter, sn.Filter); err != nil {
			return err
		}
		if sn.Records != nil {
			if err := s.writeChunks(ctx, tx, id, partRecords, sn.Records); err != nil {
				return err
			}
		}
		return s.q.DeleteSnapshotsBefore(ctx, tx, id-snapshotsKept+1)
	})
	return id, err
}

func (s *Store) writeChunks(ctx context.Context, tx *writeTx, id int64, part int16, data []byte) error {
	size := s.chunkSize()
	for seq := 0; seq == 0 || seq*size < len(data); seq++ {
		chunk := data[seq*size : min((seq+1)*size, len(data))]
		if err := s.q.InsertSnapshotChunk(ctx, tx, dbsqlc.InsertSnapshotChunkParams{SnapshotID: id, Part: part, Seq: int32(seq), Data: chunk}); err != nil {
			return fmt.Errorf("writing the filter snapshot (part %d, chunk %d): %w", part, seq, err)
		}
	}
	return nil
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
// carry their own checksum). A chunked snapshot's chunks are read several
// at a time, each into its place; a chunk missing or of the wrong size is
// ErrCorruptSnapshot. A snapshot deleted meanwhile is ErrNotFound.
func (s *Store) LoadSnapshot(ctx context.Context, id int64, withRecords bool) (apikey.Snapshot, error) {
	r, err := s.snapshotRow(ctx, id, withRecords)
	if err != nil {
		return apikey.Snapshot{}, err
	}
	sn := apikey.Snapshot{ID: r.ID, CreatedAt: r.CreatedAt, Watermark: r.Watermark, Keys: r.Keys,
		Capacity: r.Capacity, FPRate: r.FpRate, Filter: r.Filter, Records: r.Records, HasRecords: r.HasRecords}
	if r.FilterBytes.Valid {
		if sn.Filter, err = s.readChunks(ctx, id, partFilter, r.FilterBytes.Int64); err != nil {
			return apikey.Snapshot{}, err
		}
	}
	if withRecords && r.RecordsBytes.Valid {
		if sn.Records, err = s.readChunks(ctx, id, partRecords, r.RecordsBytes.Int64); err != nil {
			return apikey.Snapshot{}, err
		}
	}
	sum := sha256.Sum256(sn.Filter)
	if subtle.ConstantTimeCompare(sum[:], r.Checksum) != 1 {
		return apikey.Snapshot{}, apikey.ErrCorruptSnapshot
	}
	return sn, nil
}

func (s *Store) snapshotRow(ctx context.Context, id int64, withRecords bool) (dbsqlc.GetSnapshotRow, error) {
	var r dbsqlc.GetSnapshotRow
	err := s.inTx(ctx, func(tx *writeTx) error {
		if err := s.q.NoStatementTimeout(ctx, tx); err != nil {
			return err
		}
		var err error
		r, err = s.q.GetSnapshot(ctx, tx, dbsqlc.GetSnapshotParams{ID: id, WithRecords: withRecords})
		if errors.Is(err, pgx.ErrNoRows) {
			return apikey.ErrNotFound
		}
		return err
	})
	return r, err
}

// readChunks reads a part of total bytes, snapshotReaders chunks at a
// time, each straight into its place in the result.
func (s *Store) readChunks(ctx context.Context, id int64, part int16, total int64) ([]byte, error) {
	out := make([]byte, total)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		first    error
		next     int
		wg       sync.WaitGroup
		chunkLen int // the first chunk's length: every chunk but the last has it
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			cancel()
		}
		mu.Unlock()
	}
	// The first chunk alone: its length is the chunk size the writer used.
	c0, err := s.chunk(ctx, id, part, 0)
	if err != nil {
		return nil, err
	}
	if int64(len(c0)) > total || (len(c0) == 0 && total > 0) {
		return nil, apikey.ErrCorruptSnapshot
	}
	chunkLen = copy(out, c0)
	if int64(chunkLen) == total {
		return out, nil
	}
	count := int((total + int64(chunkLen) - 1) / int64(chunkLen))
	next = 1
	for range min(snapshotReaders, count-1) {
		wg.Go(func() {
			for {
				mu.Lock()
				seq := next
				next++
				stop := first != nil
				mu.Unlock()
				if stop || seq >= count {
					return
				}
				data, err := s.chunk(ctx, id, part, seq)
				if err != nil {
					fail(err)
					return
				}
				off := int64(seq) * int64(chunkLen)
				want := min(int64(chunkLen), total-off)
				if int64(len(data)) != want {
					fail(apikey.ErrCorruptSnapshot)
					return
				}
				copy(out[off:], data)
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return out, nil
}

func (s *Store) chunk(ctx context.Context, id int64, part int16, seq int) ([]byte, error) {
	var data []byte
	err := s.inTx(ctx, func(tx *writeTx) error {
		if err := s.q.NoStatementTimeout(ctx, tx); err != nil {
			return err
		}
		var err error
		data, err = s.q.GetSnapshotChunk(ctx, tx, dbsqlc.GetSnapshotChunkParams{SnapshotID: id, Part: part, Seq: int32(seq)})
		if errors.Is(err, pgx.ErrNoRows) {
			// Deleted meanwhile (a newer snapshot replaced it: ErrNotFound),
			// or never written (corrupt).
			if _, gone := s.q.GetSnapshot(ctx, tx, dbsqlc.GetSnapshotParams{ID: id}); errors.Is(gone, pgx.ErrNoRows) {
				return apikey.ErrNotFound
			}
			return apikey.ErrCorruptSnapshot
		}
		return err
	})
	return data, err
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
