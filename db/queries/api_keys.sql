-- name: InsertKey :one
-- The id comes from the caller: a UUIDv7, so new keys append to the
-- primary key index and listing by creation is index order.
INSERT INTO api_keys (id, key_hash, hint, name, owner, scopes, metadata, expires_at, rate_limit, rate_period, rate_burst, allowed_cidrs, rotated_from, budget_id, keyspace_id, credits)
VALUES (@id, @key_hash, @hint, @name, @owner, @scopes, @metadata, @expires_at, @rate_limit, @rate_period, @rate_burst, @allowed_cidrs, @rotated_from, @budget_id, @keyspace_id, @credits)
RETURNING *;

-- name: GetKeyByID :one
SELECT * FROM api_keys WHERE id = @id;

-- name: GetKeyForUpdate :one
-- GetKeyForUpdate reads a key and locks its row until the transaction
-- ends, so two admin writes to one key run one after the other.
SELECT * FROM api_keys WHERE id = @id FOR UPDATE;

-- name: UpdateKey :one
-- UpdateKey writes every changeable field (UpdateKey in Go applies the
-- field mask to the row read by GetKeyForUpdate). updated_at is the clock
-- when the row is written, not the transaction's start: a write that
-- waited for the row lock must not look older than the sync window.
UPDATE api_keys
SET name = @name, scopes = @scopes, metadata = @metadata, expires_at = @expires_at,
    rate_limit = @rate_limit, rate_period = @rate_period, rate_burst = @rate_burst,
    enabled = @enabled, allowed_cidrs = @allowed_cidrs, credits = @credits, updated_at = clock_timestamp()
WHERE id = @id
RETURNING *;

-- name: MarkRotated :one
-- MarkRotated lets a rotated key expire after the grace period (database
-- clock), never later than it already would, and names its successor.
UPDATE api_keys
SET expires_at = least(coalesce(expires_at, 'infinity'::timestamptz), now() + sqlc.arg(grace)::interval),
    rotated_to = @rotated_to, updated_at = clock_timestamp()
WHERE id = @id
RETURNING *;

-- name: GetKeyByHash :one
SELECT * FROM api_keys WHERE key_hash = @key_hash;

-- name: RevokeKey :one
-- RevokeKey keeps the first revoked_at, so revoking twice is idempotent.
UPDATE api_keys
SET revoked_at = coalesce(revoked_at, clock_timestamp())
WHERE id = @id
RETURNING *;

-- name: ListKeys :many
-- ListKeys pages by (created_at, id), oldest first. An empty owner lists
-- all owners; with by_keyspace, only keys of the keyspaces named; a
-- pattern (ILIKE, escaped by the caller) keeps keys whose name or hint
-- matches it (trigram indexes of 00019); state 1 to 4 is KeyState.
SELECT * FROM api_keys
WHERE (sqlc.arg(owner)::text = '' OR owner = sqlc.arg(owner)::text)
  AND (NOT sqlc.arg(by_keyspace)::bool OR keyspace_id = ANY(sqlc.arg(keyspace_ids)::uuid[]))
  AND (sqlc.arg(pattern)::text = '' OR name ILIKE sqlc.arg(pattern)::text OR hint ILIKE sqlc.arg(pattern)::text)
  AND CASE sqlc.arg(state)::int
        WHEN 1 THEN revoked_at IS NULL AND enabled AND (expires_at IS NULL OR expires_at > now())
        WHEN 2 THEN revoked_at IS NULL AND NOT enabled AND (expires_at IS NULL OR expires_at > now())
        WHEN 3 THEN revoked_at IS NULL AND expires_at <= now()
        WHEN 4 THEN revoked_at IS NOT NULL
        ELSE true
      END
  AND (created_at, id) > (sqlc.arg(after_created_at)::timestamptz, sqlc.arg(after_id)::uuid)
ORDER BY created_at, id
LIMIT sqlc.arg(page_limit);

-- name: ListKeysNewest :many
-- ListKeysNewest is ListKeys newest first: the same filters and
-- parameters, (created_at, id) walked down (its index, backwards); after_*
-- is the previous page's last row, which this walk's next rows are older
-- than.
SELECT * FROM api_keys
WHERE (sqlc.arg(owner)::text = '' OR owner = sqlc.arg(owner)::text)
  AND (NOT sqlc.arg(by_keyspace)::bool OR keyspace_id = ANY(sqlc.arg(keyspace_ids)::uuid[]))
  AND (sqlc.arg(pattern)::text = '' OR name ILIKE sqlc.arg(pattern)::text OR hint ILIKE sqlc.arg(pattern)::text)
  AND CASE sqlc.arg(state)::int
        WHEN 1 THEN revoked_at IS NULL AND enabled AND (expires_at IS NULL OR expires_at > now())
        WHEN 2 THEN revoked_at IS NULL AND NOT enabled AND (expires_at IS NULL OR expires_at > now())
        WHEN 3 THEN revoked_at IS NULL AND expires_at <= now()
        WHEN 4 THEN revoked_at IS NOT NULL
        ELSE true
      END
  AND (created_at, id) < (sqlc.arg(after_created_at)::timestamptz, sqlc.arg(after_id)::uuid)
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(page_limit);

-- name: Notify :exec
-- Notify tells every replica about a change; it is delivered at commit.
SELECT pg_notify(sqlc.arg(channel)::text, sqlc.arg(payload)::text);

-- name: GetKeysByHashes :many
-- GetKeysByHashes is the validation path's batched lookup: every key whose
-- SHA-256 is among key_hashes, in one statement.
SELECT * FROM api_keys WHERE key_hash = ANY(sqlc.arg(key_hashes)::bytea[]);

-- name: CopyKeys :copyfrom
-- CopyKeys is the import's bulk insert (COPY); keyservice import skips
-- hashes already present first.
INSERT INTO api_keys (id, key_hash, hint, name, owner, scopes, metadata, expires_at, revoked_at, rate_limit, rate_period, rate_burst, allowed_cidrs)
VALUES (@id, @key_hash, @hint, @name, @owner, @scopes, @metadata, @expires_at, @revoked_at, @rate_limit, @rate_period, @rate_burst, @allowed_cidrs);

-- name: ExistingHashes :many
-- ExistingHashes returns which of key_hashes are already stored.
SELECT key_hash FROM api_keys WHERE key_hash = ANY(sqlc.arg(key_hashes)::bytea[]);

-- name: InsertLeakReport :execrows
-- InsertLeakReport records a leak report once per key and URL (by the
-- URL's SHA-256, which any URL fits in an index by).
INSERT INTO leak_reports (key_id, url, url_sha256, source, token_type, action)
VALUES (@key_id, @url, @url_sha256, @source, @token_type, @action)
ON CONFLICT (key_id, url_sha256) DO NOTHING;

-- name: InsertAuditEvent :exec
-- InsertAuditEvent records an admin write, in the write's transaction.
INSERT INTO audit_events (id, at, actor, action, key_id, request_id, changes, resource_type, resource_id, keyspace_id)
VALUES (@id, clock_timestamp(), @actor, @action, @key_id, @request_id, @changes, @resource_type, @resource_id, @keyspace_id);

-- name: ListAuditEvents :many
-- ListAuditEvents pages by (at, id), newest first, optionally for one key
-- and one actor; with by_keyspace, only events of the keyspaces named. An
-- event of a key written before keyspaces (or by a replica of the release
-- before) has no keyspace_id: its key's keyspace is its own (a key never
-- changes keyspace).
SELECT a.id, a.at, a.actor, a.action, a.key_id, a.request_id, a.changes, a.resource_type, a.resource_id,
       coalesce(a.keyspace_id, (SELECT k.keyspace_id FROM api_keys k WHERE k.id = a.key_id)) AS keyspace_id
FROM audit_events a
WHERE (NOT sqlc.arg(by_key)::bool OR a.key_id = sqlc.arg(key_id)::uuid)
  AND (NOT sqlc.arg(by_keyspace)::bool
       OR coalesce(a.keyspace_id, (SELECT k.keyspace_id FROM api_keys k WHERE k.id = a.key_id)) = ANY(sqlc.arg(keyspace_ids)::uuid[]))
  AND (sqlc.arg(actor)::text = '' OR a.actor = sqlc.arg(actor)::text)
  AND (a.at, a.id) < (sqlc.arg(before_at)::timestamptz, sqlc.arg(before_id)::uuid)
ORDER BY a.at DESC, a.id DESC
LIMIT sqlc.arg(page_limit);
