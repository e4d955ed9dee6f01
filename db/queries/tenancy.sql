-- Keyspaces and credentials: small tables, read whole into every
-- replica's memory (internal/tenancy) and kept in step by NOTIFY and sync.

-- name: AllKeyspaces :many
SELECT * FROM keyspaces ORDER BY created_at, id;

-- name: InsertKeyspace :one
INSERT INTO keyspaces (id, name, prefix, default_format, rate_limit, rate_period, rate_burst, default_expiry, default_scopes)
VALUES (@id, @name, @prefix, @default_format, @rate_limit, @rate_period, @rate_burst, @default_expiry, @default_scopes)
RETURNING *;

-- name: GetKeyspaceForUpdate :one
SELECT * FROM keyspaces WHERE id = @id FOR UPDATE;

-- name: UpdateKeyspace :one
UPDATE keyspaces
SET name = @name, default_format = @default_format, rate_limit = @rate_limit, rate_period = @rate_period,
    rate_burst = @rate_burst, default_expiry = @default_expiry, default_scopes = @default_scopes,
    updated_at = clock_timestamp()
WHERE id = @id
RETURNING *;

-- name: AllCredentials :many
-- AllCredentials reads every credential, revoked ones included, so that
-- a revoked secret is told apart from an unknown one.
SELECT * FROM credentials ORDER BY created_at, id;

-- name: InsertCredential :one
INSERT INTO credentials (id, name, secret_hash, permissions, all_keyspaces, keyspace_ids, expires_at, created_by, rate_limit, rate_period, rate_burst)
VALUES (@id, @name, @secret_hash, @permissions, @all_keyspaces, @keyspace_ids, @expires_at, @created_by, @rate_limit, @rate_period, @rate_burst)
RETURNING *;

-- name: GetCredentialForUpdate :one
SELECT * FROM credentials WHERE id = @id FOR UPDATE;

-- name: RevokeCredential :one
-- RevokeCredential keeps the first revoked_at, so revoking twice is idempotent.
UPDATE credentials SET revoked_at = coalesce(revoked_at, clock_timestamp())
WHERE id = @id
RETURNING *;

-- name: TouchCredentialsUsed :exec
-- TouchCredentialsUsed records buffered last-use times in one statement.
UPDATE credentials AS c SET last_used_at = u.used_at
FROM (SELECT unnest(sqlc.arg(ids)::uuid[]) AS id,
             unnest(sqlc.arg(used_at)::timestamptz[]) AS used_at) AS u
WHERE c.id = u.id AND (c.last_used_at IS NULL OR c.last_used_at < u.used_at);
