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

-- name: ReadStart :one
-- ReadStart is the database time a full read is consistent with (its
-- transaction's snapshot), and the planner's estimate of the table's rows,
-- to size the filter without counting them.
SELECT now()::timestamptz AS watermark,
       (SELECT c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = 'api_keys'::regclass)::bigint AS estimate;

-- name: TryRebuildLock :one
-- TryRebuildLock takes the fleet's rebuild lock for this session, if no
-- other replica holds it.
SELECT pg_try_advisory_lock(@lock_key::bigint) AS locked;

-- name: RebuildUnlock :exec
SELECT pg_advisory_unlock(@lock_key::bigint);

-- name: InsertSnapshot :one
INSERT INTO filter_snapshots (watermark, keys, capacity, fp_rate, filter, records, checksum)
VALUES (@watermark, @keys, @capacity, @fp_rate, @filter, sqlc.narg(records), @checksum)
RETURNING id;

-- name: DeleteSnapshotsBefore :exec
-- DeleteSnapshotsBefore keeps the newest snapshots only.
DELETE FROM filter_snapshots WHERE id < @before_id;

-- name: NewestSnapshotInfo :one
-- NewestSnapshotInfo describes the newest snapshot without its filter.
SELECT id, created_at, watermark, keys, (records IS NOT NULL)::bool AS has_records,
    extract(epoch FROM now() - created_at)::float8 AS age_seconds
FROM filter_snapshots ORDER BY id DESC LIMIT 1;

-- name: GetSnapshot :one
-- GetSnapshot reads a snapshot, with its records (memory mode) only when
-- asked: a replica in filter mode does not download them.
SELECT id, created_at, watermark, keys, capacity, fp_rate, filter, checksum,
    (CASE WHEN @with_records::bool THEN records END)::bytea AS records,
    (records IS NOT NULL)::bool AS has_records
FROM filter_snapshots WHERE id = @id;

-- name: KeysChangedSince :many
-- KeysChangedSince finds keys created, revoked or updated after since
-- (with their keyspace, which WatchKeyEvents filters by); the indexes on
-- created_at, revoked_at and updated_at serve it.
SELECT key_hash, created_at, revoked_at, updated_at, keyspace_id FROM api_keys
WHERE created_at > @since::timestamptz OR revoked_at > @since::timestamptz
   OR updated_at > @since::timestamptz;

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
