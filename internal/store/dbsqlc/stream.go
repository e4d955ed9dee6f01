package dbsqlc

// Written by hand, next to the generated code: sqlc collects :many rows
// into a slice, and a full load must not hold ten million of them.

import (
	"context"
	"time"
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
