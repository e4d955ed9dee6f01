-- name: DBNow :one
-- DBNow is the database clock, which every replica shares.
SELECT now()::timestamptz AS now;

-- name: CountActiveKeys :one
-- CountActiveKeys counts keys that are active, or ended (revoked or
-- expired) after ended_since.
SELECT count(*) FROM api_keys
WHERE (revoked_at IS NULL OR revoked_at > @ended_since::timestamptz)
  AND (expires_at IS NULL OR expires_at > @ended_since::timestamptz);

-- name: ActiveKeyHashes :many
-- ActiveKeyHashes pages through the same keys by id (keyset), so a full
-- load never holds all rows at once.
SELECT id, key_hash FROM api_keys
WHERE id > @after_id
  AND (revoked_at IS NULL OR revoked_at > @ended_since::timestamptz)
  AND (expires_at IS NULL OR expires_at > @ended_since::timestamptz)
ORDER BY id
LIMIT @page_limit;

-- name: KeysChangedSince :many
-- KeysChangedSince finds keys created or revoked after since; the two
-- indexes on created_at and revoked_at serve it.
SELECT key_hash, created_at, revoked_at FROM api_keys
WHERE created_at > @since::timestamptz OR revoked_at > @since::timestamptz;

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
