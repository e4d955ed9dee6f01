-- +goose Up
-- Only the SHA-256 of a key is stored; the plaintext is shown once at creation.
CREATE TABLE api_keys (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    key_hash      bytea       NOT NULL CHECK (octet_length(key_hash) = 32),
    hint          text        NOT NULL,
    name          text        NOT NULL,
    owner         text        NOT NULL,
    scopes        text[]      NOT NULL DEFAULT '{}',
    metadata      jsonb       NOT NULL DEFAULT '{}',
    expires_at    timestamptz,
    -- Database clock, so replicas agree on the order of creation (incremental sync).
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    -- Per-key rate limit; NULL means the configured default.
    rate_limit    integer     CHECK (rate_limit > 0),
    rate_period   interval    CHECK (rate_period > interval '0'),
    rate_burst    integer     CHECK (rate_burst > 0)
);

CREATE UNIQUE INDEX api_keys_key_hash_idx ON api_keys (key_hash);
-- Serves incremental sync (created_at > watermark) and listing without an owner.
CREATE INDEX api_keys_created_at_idx ON api_keys (created_at, id);
-- Serves listing by owner.
CREATE INDEX api_keys_owner_idx ON api_keys (owner, created_at, id);

-- +goose Down
DROP TABLE api_keys;
