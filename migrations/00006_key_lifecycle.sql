-- +goose Up
-- Keys with a life: switched off and on, pinned to addresses, rotated,
-- changed in place. Adding columns with constant defaults rewrites nothing,
-- however many keys the table holds.
ALTER TABLE api_keys
    ADD COLUMN enabled       boolean     NOT NULL DEFAULT true,
    -- Canonical CIDRs (netip.Prefix form); empty: any address.
    ADD COLUMN allowed_cidrs text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN rotated_from  uuid,
    ADD COLUMN rotated_to    uuid,
    -- Database clock of the last UpdateKey or RotateKey. Incremental sync
    -- reads changes since a watermark, so replicas whose NOTIFY connection
    -- was down catch up on updates too.
    ADD COLUMN updated_at    timestamptz;

CREATE INDEX api_keys_updated_at_idx ON api_keys (updated_at) WHERE updated_at IS NOT NULL;

-- Every admin write leaves one row here, in the same transaction as the
-- change. Values of the changed fields only: never a secret or a hash.
CREATE TABLE audit_events (
    id          uuid        PRIMARY KEY,            -- UUIDv7
    at          timestamptz NOT NULL DEFAULT now(), -- database clock
    actor       text        NOT NULL,
    action      text        NOT NULL CHECK (action IN ('create', 'update', 'rotate', 'revoke', 'enable', 'disable')),
    key_id      uuid        NOT NULL,
    request_id  text        NOT NULL DEFAULT '',
    -- [{"field": "scopes", "old": [...], "new": [...]}, ...]
    changes     jsonb       NOT NULL DEFAULT '[]'
);

-- Newest first, for everyone, one key, or one actor.
CREATE INDEX audit_events_at_idx ON audit_events (at DESC, id DESC);
CREATE INDEX audit_events_key_idx ON audit_events (key_id, at DESC, id DESC);
CREATE INDEX audit_events_actor_idx ON audit_events (actor, at DESC, id DESC);

-- +goose Down
DROP TABLE audit_events;
DROP INDEX api_keys_updated_at_idx;
ALTER TABLE api_keys
    DROP COLUMN enabled,
    DROP COLUMN allowed_cidrs,
    DROP COLUMN rotated_from,
    DROP COLUMN rotated_to,
    DROP COLUMN updated_at;
