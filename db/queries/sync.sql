-- name: DBNow :one
-- DBNow is the database clock, which every replica shares.
SELECT now()::timestamptz AS now;

-- name: CountActiveKeys :one
-- CountActiveKeys counts keys that are active, or ended (revoked or
-- expired) after ended_since.
SELECT count(*) FROM api_keys
WHERE (revoked_at IS NULL OR revoked_at > @ended_since::timestamptz)
  AND (expires_at IS NULL OR expires_at > @ended_since::timestamptz);

-- name: ScanActiveKeyHashes :many
-- ScanActiveKeyHashes is the full load: one sequential read of the hash of
-- every key active, or ended after ended_since. It is run streamed
-- (dbsqlc.StreamActiveKeyHashes), never collected into a slice.
SELECT key_hash FROM api_keys
WHERE (revoked_at IS NULL OR revoked_at > @ended_since::timestamptz)
  AND (expires_at IS NULL OR expires_at > @ended_since::timestamptz);

-- name: ScanActiveKeys :many
-- ScanActiveKeys is the full load in memory mode: the same rows as
-- ScanActiveKeyHashes, whole. It is run streamed
-- (dbsqlc.StreamActiveKeys), never collected into a slice.
SELECT * FROM api_keys
WHERE (revoked_at IS NULL OR revoked_at > @ended_since::timestamptz)
  AND (expires_at IS NULL OR expires_at > @ended_since::timestamptz);

-- name: ReadWatermark :one
-- ReadWatermark is the database time a full read about to begin is at
-- least as recent as, read before its transaction takes its snapshot:
-- now() on the primary; on a read replica (in recovery), whose data is as
-- of the last transaction it replayed, that commit's time (never later
-- than now), the epoch before it has replayed any (the sync then reads
-- every change, in pages). The incremental sync on the primary reads every change after
-- it, less the overlap.
SELECT (CASE WHEN pg_is_in_recovery()
             THEN coalesce(least(now(), pg_last_xact_replay_timestamp()), 'epoch'::timestamptz)
             ELSE now() END)::timestamptz AS watermark;

-- name: ReadEstimate :one
-- ReadEstimate is the planner's estimate of the table's rows, to size the
-- filter without counting them.
SELECT (SELECT c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = 'api_keys'::regclass)::bigint AS estimate;

-- name: WALPosition :one
-- WALPosition is how far this server's data reaches in the primary's
-- write-ahead log, in bytes: on the primary the end of what has been
-- inserted (every committed transaction's commit record is before it,
-- even with synchronous_commit off, when the write position may lag), on
-- a read replica what it has replayed (0 before it has replayed any). A
-- replica at or past the primary's position has every change committed
-- before the primary's was read.
SELECT (CASE WHEN pg_is_in_recovery()
             THEN coalesce(pg_last_wal_replay_lsn() - '0/0'::pg_lsn, 0)
             ELSE pg_current_wal_insert_lsn() - '0/0'::pg_lsn END)::bigint AS position;

-- name: TryRebuildLock :one
-- TryRebuildLock takes the fleet's rebuild lock for this session, if no
-- other replica holds it.
SELECT pg_try_advisory_lock(@lock_key::bigint) AS locked;

-- name: RebuildUnlock :exec
SELECT pg_advisory_unlock(@lock_key::bigint);

-- name: InsertSnapshot :one
-- InsertSnapshot describes a snapshot whose parts are written as chunks
-- (InsertSnapshotChunk) in the same transaction.
INSERT INTO filter_snapshots (watermark, keys, capacity, fp_rate, checksum, filter_bytes, records_bytes)
VALUES (@watermark, @keys, @capacity, @fp_rate, @checksum, @filter_bytes, sqlc.narg(records_bytes))
RETURNING id;

-- name: InsertSnapshotChunk :exec
INSERT INTO filter_snapshot_chunks (snapshot_id, part, seq, data) VALUES (@snapshot_id, @part, @seq, @data);

-- name: GetSnapshotChunk :one
-- GetSnapshotChunk reads one chunk of a snapshot's part.
SELECT data FROM filter_snapshot_chunks WHERE snapshot_id = @snapshot_id AND part = @part AND seq = @seq;

-- name: DeleteSnapshotsBefore :exec
-- DeleteSnapshotsBefore keeps the newest snapshots only.
DELETE FROM filter_snapshots WHERE id < @before_id;

-- name: NewestSnapshotInfo :one
-- NewestSnapshotInfo describes the newest snapshot without its filter.
SELECT id, created_at, watermark, keys, (records IS NOT NULL OR records_bytes IS NOT NULL)::bool AS has_records,
    extract(epoch FROM now() - created_at)::float8 AS age_seconds
FROM filter_snapshots ORDER BY id DESC LIMIT 1;

-- name: GetSnapshot :one
-- GetSnapshot reads a snapshot's description, and the parts of an older
-- snapshot stored inline (its records only when asked: a replica in filter
-- mode does not download them). A chunked snapshot's parts are read with
-- GetSnapshotChunk.
SELECT id, created_at, watermark, keys, capacity, fp_rate, checksum, filter_bytes, records_bytes,
    (CASE WHEN filter_bytes IS NULL THEN filter END)::bytea AS filter,
    (CASE WHEN @with_records::bool THEN records END)::bytea AS records,
    (records IS NOT NULL OR records_bytes IS NOT NULL)::bool AS has_records
FROM filter_snapshots WHERE id = @id;

-- The incremental sync reads changes in pages, in keyset order on each
-- change column's (column, id) index, starting after (after_at, after_id):
-- a page reads at most page_limit rows, and the next starts where it
-- ended. A key changed in several ways is in several walks. Every row
-- carries its keyspace, which WatchKeyEvents filters by.

-- name: KeysCreatedAfter :many
SELECT key_hash, created_at, revoked_at, updated_at, keyspace_id, id FROM api_keys
WHERE (created_at, id) > (@after_at::timestamptz, @after_id::uuid)
ORDER BY created_at, id LIMIT @page_limit;

-- name: KeysRevokedAfter :many
SELECT key_hash, created_at, revoked_at, updated_at, keyspace_id, id FROM api_keys
WHERE revoked_at IS NOT NULL AND (revoked_at, id) > (@after_at::timestamptz, @after_id::uuid)
ORDER BY revoked_at, id LIMIT @page_limit;

-- name: KeysUpdatedAfter :many
SELECT key_hash, created_at, revoked_at, updated_at, keyspace_id, id FROM api_keys
WHERE updated_at IS NOT NULL AND (updated_at, id) > (@after_at::timestamptz, @after_id::uuid)
ORDER BY updated_at, id LIMIT @page_limit;

-- name: TouchLastUsed :exec
-- TouchLastUsed records buffered last-use times in one statement.
UPDATE api_keys AS k SET last_used_at = u.used_at
FROM (SELECT unnest(sqlc.arg(ids)::uuid[]) AS id,
             unnest(sqlc.arg(used_at)::timestamptz[]) AS used_at) AS u
WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.used_at);

-- name: RecentlyUsedKeys :many
-- RecentlyUsedKeys pages through active keys by last use, newest first,
-- before (before_used_at, before_id): the warm start of the positive cache.
SELECT * FROM api_keys
WHERE last_used_at IS NOT NULL AND revoked_at IS NULL
  AND (expires_at IS NULL OR expires_at > now())
  AND (last_used_at, id) < (sqlc.arg(before_used_at)::timestamptz, sqlc.arg(before_id)::uuid)
ORDER BY last_used_at DESC, id DESC
LIMIT sqlc.arg(page_limit);

-- name: NoStatementTimeout :exec
-- NoStatementTimeout lifts statement_timeout for the rest of the
-- transaction: a full read of a large table takes longer than a lookup may.
SELECT set_config('statement_timeout', '0', true);
