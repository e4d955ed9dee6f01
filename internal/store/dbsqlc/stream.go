package dbsqlc

// Written by hand, next to the generated code: sqlc collects :many rows
// into a slice, and a full load must not hold ten million of them.

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// StreamActiveKeyHashes runs ScanActiveKeyHashes (its SQL is generated
// from db/queries/sync.sql, so sqlc still checks it against the schema)
// and hands each row's key_hash to fn as it arrives. The slice fn gets is
// reused for the next row: fn must copy what it keeps.
func (q *Queries) StreamActiveKeyHashes(ctx context.Context, db DBTX, endedSince time.Time, fn func(hash []byte) error) (int64, error) {
	rows, err := db.Query(ctx, scanActiveKeyHashes, endedSince)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		if err := fn(rows.RawValues()[0]); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// StreamActiveKeys runs ScanActiveKeys (SQL generated from
// db/queries/sync.sql) and hands each row to fn as it arrives. The row fn
// gets is reused for the next one: fn must copy what it keeps. The scan
// list is APIKey's columns in order, as sqlc writes it; a column added to
// the table and not here fails the scan loudly (pgx counts them).
func (q *Queries) StreamActiveKeys(ctx context.Context, db DBTX, endedSince time.Time, fn func(*APIKey) error) (int64, error) {
	rows, err := db.Query(ctx, scanActiveKeys, endedSince)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var (
		n      int64
		i      APIKey
		id, ks pgtype.UUID
	)
	for rows.Next() {
		i = APIKey{}
		// The ids are scanned as pgtype.UUID: uuid.UUID is an sql.Scanner,
		// which pgx serves through a text round trip (a fifth of the read).
		if err := rows.Scan(
			&id,
			&i.KeyHash,
			&i.Hint,
			&i.Name,
			&i.Owner,
			&i.Scopes,
			&i.Metadata,
			&i.ExpiresAt,
			&i.CreatedAt,
			&i.RevokedAt,
			&i.LastUsedAt,
			&i.RateLimit,
			&i.RatePeriod,
			&i.RateBurst,
			&i.Enabled,
			&i.AllowedCIDRs,
			&i.RotatedFrom,
			&i.RotatedTo,
			&i.UpdatedAt,
			&i.BudgetID,
			&ks,
			&i.Credits,
		); err != nil {
			return n, err
		}
		i.ID, i.KeyspaceID = id.Bytes, ks.Bytes
		if err := fn(&i); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}
