package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// These queries feed the in-memory view of the validation path: the full
// load of the filter, incremental sync, and buffered usage.

// Now returns the database clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return time.Time{}, err
	}
	defer conn.Release()
	t, err := s.q.DBNow(ctx, conn)
	return t, classify(err)
}

// CountActiveKeys counts keys that are active, or that ended (revoked or
// expired) after endedSince.
func (s *Store) CountActiveKeys(ctx context.Context, endedSince time.Time) (int64, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	n, err := s.q.CountActiveKeys(ctx, conn, endedSince)
	return n, classify(err)
}

// changeWalks are the incremental sync's three walks: keys created,
// revoked and updated after a time, each in keyset order on its own index.
var changeWalks = [...]struct {
	name string
	at   func(r *dbsqlc.KeysCreatedAfterRow) *time.Time
	page func(q *dbsqlc.Queries, ctx context.Context, db dbsqlc.DBTX, after time.Time, id uuid.UUID, limit int32) ([]dbsqlc.KeysCreatedAfterRow, error)
}{
	{"created", func(r *dbsqlc.KeysCreatedAfterRow) *time.Time { return &r.CreatedAt },
		func(q *dbsqlc.Queries, ctx context.Context, db dbsqlc.DBTX, after time.Time, id uuid.UUID, limit int32) ([]dbsqlc.KeysCreatedAfterRow, error) {
			return q.KeysCreatedAfter(ctx, db, dbsqlc.KeysCreatedAfterParams{AfterAt: after, AfterID: id, PageLimit: limit})
		}},
	{"revoked", func(r *dbsqlc.KeysCreatedAfterRow) *time.Time { return r.RevokedAt },
		func(q *dbsqlc.Queries, ctx context.Context, db dbsqlc.DBTX, after time.Time, id uuid.UUID, limit int32) ([]dbsqlc.KeysCreatedAfterRow, error) {
			rows, err := q.KeysRevokedAfter(ctx, db, dbsqlc.KeysRevokedAfterParams{AfterAt: after, AfterID: id, PageLimit: limit})
			return convertRows(rows), err
		}},
	{"updated", func(r *dbsqlc.KeysCreatedAfterRow) *time.Time { return r.UpdatedAt },
		func(q *dbsqlc.Queries, ctx context.Context, db dbsqlc.DBTX, after time.Time, id uuid.UUID, limit int32) ([]dbsqlc.KeysCreatedAfterRow, error) {
			rows, err := q.KeysUpdatedAfter(ctx, db, dbsqlc.KeysUpdatedAfterParams{AfterAt: after, AfterID: id, PageLimit: limit})
			return convertRows(rows), err
		}},
}

// convertRows gives the revoked and updated walks' rows (the same columns
// as the created walk's, in a type of their own) the created walk's type.
func convertRows[R ~struct {
	KeyHash    []byte
	CreatedAt  time.Time
	RevokedAt  *time.Time
	UpdatedAt  *time.Time
	KeyspaceID uuid.UUID
	ID         uuid.UUID
}](rows []R) []dbsqlc.KeysCreatedAfterRow {
	out := make([]dbsqlc.KeysCreatedAfterRow, len(rows))
	for i, r := range rows {
		out[i] = dbsqlc.KeysCreatedAfterRow(r)
	}
	return out
}

// lastID is the greatest UUID: a walk starting after (since, lastID) reads
// the rows changed strictly after since.
var lastID = uuid.Max

// ChangesSince reads the keys created, revoked or updated after since, in
// pages of at most pageSize rows per statement (a million-key import is a
// thousand statements, not one result of a million rows), and gives each
// page to fn before reading the next; it stops at fn's first error. A key
// changed in several ways comes once per way. It returns how many rows
// were read.
func (s *Store) ChangesSince(ctx context.Context, since time.Time, pageSize int, fn func([]apikey.KeyChange) error) (int64, error) {
	if pageSize <= 0 {
		return 0, fmt.Errorf("store: sync page size must be positive, got %d", pageSize)
	}
	var read int64
	for _, w := range changeWalks {
		after, afterID := since, lastID
		for {
			rows, err := s.changesPage(ctx, w.page, after, afterID, pageSize)
			if err != nil {
				return read, classify(fmt.Errorf("reading %s keys: %w", w.name, err))
			}
			read += int64(len(rows))
			if len(rows) > 0 {
				page := make([]apikey.KeyChange, len(rows))
				for i := range rows {
					r := &rows[i]
					copy(page[i].Hash[:], r.KeyHash)
					page[i].CreatedAt, page[i].RevokedAt, page[i].UpdatedAt, page[i].KeyspaceID = r.CreatedAt, r.RevokedAt, r.UpdatedAt, r.KeyspaceID
				}
				if err := fn(page); err != nil {
					return read, err
				}
				last := &rows[len(rows)-1]
				after, afterID = *w.at(last), last.ID
			}
			if len(rows) < pageSize {
				break
			}
		}
	}
	return read, nil
}

// changesPage reads one page on a connection of its own, released before
// the page is applied.
func (s *Store) changesPage(ctx context.Context, page func(*dbsqlc.Queries, context.Context, dbsqlc.DBTX, time.Time, uuid.UUID, int32) ([]dbsqlc.KeysCreatedAfterRow, error), after time.Time, afterID uuid.UUID, limit int) ([]dbsqlc.KeysCreatedAfterRow, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	return page(s.q, ctx, conn, after, afterID, int32(limit))
}

// ChangedSince returns every key created, revoked or updated after since
// (ChangesSince collected; for tests and small change sets).
func (s *Store) ChangedSince(ctx context.Context, since time.Time) ([]apikey.KeyChange, error) {
	var out []apikey.KeyChange
	_, err := s.ChangesSince(ctx, since, 10_000, func(page []apikey.KeyChange) error {
		out = append(out, page...)
		return nil
	})
	return out, err
}

// WALPosition is how far this server's data reaches in the primary's
// write-ahead log: what the primary has written, or what a read replica
// has replayed. A replica whose position is at or past a position read
// from the primary has every change committed before that read.
func (s *Store) WALPosition(ctx context.Context) (int64, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	p, err := s.q.WALPosition(ctx, conn)
	return p, classify(err)
}

// TouchLastUsed sets last_used_at for many keys in one statement; a later
// time already stored is kept.
func (s *Store) TouchLastUsed(ctx context.Context, ids []uuid.UUID, at []time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	conn, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	return classify(s.q.TouchLastUsed(ctx, conn, dbsqlc.TouchLastUsedParams{IDs: ids, UsedAt: at}))
}

// ListenConn opens a connection outside the pool for LISTEN, so the
// listener never holds (or waits for) a pooled connection.
func (s *Store) ListenConn(ctx context.Context) (*pgx.Conn, error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = ListenApplicationName
	delete(cfg.RuntimeParams, "statement_timeout")
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classify(fmt.Errorf("connecting listener: %w", err))
	}
	return conn, nil
}

// ListenApplicationName names the LISTEN connection in pg_stat_activity.
const ListenApplicationName = "keyservice-listen"

// RecentlyUsed returns up to limit active keys used before after, most
// recently used first, and the cursor of the next page (zero at the end).
func (s *Store) RecentlyUsed(ctx context.Context, after apikey.UseCursor, limit int) ([]apikey.Key, apikey.UseCursor, error) {
	page, next, _, err := s.recentlyUsed(ctx, after, limit, false)
	return page, next, err
}

// RecentlyUsedAt is RecentlyUsed on a read replica, with the WAL position
// the server had replayed before the page was read (see KeysByHashesAt).
func (s *Store) RecentlyUsedAt(ctx context.Context, after apikey.UseCursor, limit int) ([]apikey.Key, apikey.UseCursor, int64, error) {
	return s.recentlyUsed(ctx, after, limit, true)
}

func (s *Store) recentlyUsed(ctx context.Context, after apikey.UseCursor, limit int, position bool) ([]apikey.Key, apikey.UseCursor, int64, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, apikey.UseCursor{}, 0, err
	}
	defer conn.Release()
	var pos int64
	if position {
		if pos, err = s.q.WALPosition(ctx, conn); err != nil {
			return nil, apikey.UseCursor{}, 0, classify(fmt.Errorf("reading the WAL position: %w", err))
		}
	}
	if after.UsedAt.IsZero() {
		after = apikey.UseCursor{UsedAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
	}
	rows, err := s.q.RecentlyUsedKeys(ctx, conn, dbsqlc.RecentlyUsedKeysParams{
		BeforeUsedAt: after.UsedAt, BeforeID: after.ID, PageLimit: int32(limit),
	})
	if err != nil {
		return nil, apikey.UseCursor{}, 0, classify(fmt.Errorf("reading recently used keys: %w", err))
	}
	out := make([]apikey.Key, 0, len(rows))
	for _, r := range rows {
		k, err := fromRow(r)
		if err != nil {
			return nil, apikey.UseCursor{}, 0, err
		}
		out = append(out, k)
	}
	var next apikey.UseCursor
	if len(rows) == limit && limit > 0 {
		last := rows[len(rows)-1]
		next = apikey.UseCursor{UsedAt: *last.LastUsedAt, ID: last.ID}
	}
	return out, next, pos, nil
}
