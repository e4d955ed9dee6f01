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

// ChangedSince returns keys created, revoked or updated after since.
func (s *Store) ChangedSince(ctx context.Context, since time.Time) ([]apikey.KeyChange, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	rows, err := s.q.KeysChangedSince(ctx, conn, since)
	if err != nil {
		return nil, classify(fmt.Errorf("reading changes: %w", err))
	}
	out := make([]apikey.KeyChange, len(rows))
	for i, r := range rows {
		copy(out[i].Hash[:], r.KeyHash)
		out[i].CreatedAt, out[i].RevokedAt, out[i].UpdatedAt, out[i].KeyspaceID = r.CreatedAt, r.RevokedAt, r.UpdatedAt, r.KeyspaceID
	}
	return out, nil
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
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, apikey.UseCursor{}, err
	}
	defer conn.Release()
	if after.UsedAt.IsZero() {
		after = apikey.UseCursor{UsedAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
	}
	rows, err := s.q.RecentlyUsedKeys(ctx, conn, dbsqlc.RecentlyUsedKeysParams{
		BeforeUsedAt: after.UsedAt, BeforeID: after.ID, PageLimit: int32(limit),
	})
	if err != nil {
		return nil, apikey.UseCursor{}, classify(fmt.Errorf("reading recently used keys: %w", err))
	}
	out := make([]apikey.Key, 0, len(rows))
	for _, r := range rows {
		k, err := fromRow(r)
		if err != nil {
			return nil, apikey.UseCursor{}, err
		}
		out = append(out, k)
	}
	var next apikey.UseCursor
	if len(rows) == limit && limit > 0 {
		last := rows[len(rows)-1]
		next = apikey.UseCursor{UsedAt: *last.LastUsedAt, ID: last.ID}
	}
	return out, next, nil
}
