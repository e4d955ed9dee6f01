-- +goose Up
-- Keyspaces: one deployment, many products. Each keyspace has its own key
-- prefix (so a key's keyspace is known from its shape, before any lookup)
-- and defaults for new keys. Every key belongs to exactly one.
CREATE TABLE keyspaces (
    id              uuid        PRIMARY KEY,
    name            text        NOT NULL UNIQUE,
    -- '' for the default keyspace: its prefix is the configured one
    -- (KEYSERVICE_KEY_PREFIX), as before keyspaces existed.
    prefix          text        NOT NULL,
    default_format  text        NOT NULL DEFAULT '' CHECK (default_format IN ('', 'checksum', 'signed')),
    rate_limit      integer     CHECK (rate_limit > 0),
    rate_period     interval    CHECK (rate_period > interval '0'),
    rate_burst      integer     CHECK (rate_burst > 0),
    default_expiry  interval    CHECK (default_expiry > interval '0'),
    default_scopes  text[]      NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz
);
CREATE UNIQUE INDEX keyspaces_prefix_idx ON keyspaces (prefix) WHERE prefix <> '';

-- The default keyspace: every key made before keyspaces existed is in it.
INSERT INTO keyspaces (id, name, prefix) VALUES ('00000000-0000-0000-0000-000000000001', 'default', '');

-- A constant default adds the column without rewriting the table; the
-- foreign key is NOT VALID so that upgrading does not scan every key (all
-- of them are in the default keyspace, which exists); new rows are checked.
ALTER TABLE api_keys ADD COLUMN keyspace_id uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001';
ALTER TABLE api_keys ADD CONSTRAINT api_keys_keyspace_fk FOREIGN KEY (keyspace_id) REFERENCES keyspaces (id) NOT VALID;

-- Credentials: who may call which methods for which keyspaces. Only the
-- SHA-256 of a secret is stored; the secret is shown once.
CREATE TABLE credentials (
    id             uuid        PRIMARY KEY,
    name           text        NOT NULL UNIQUE,
    secret_hash    bytea       NOT NULL UNIQUE CHECK (octet_length(secret_hash) = 32),
    permissions    text[]      NOT NULL,
    all_keyspaces  boolean     NOT NULL,
    keyspace_ids   uuid[]      NOT NULL DEFAULT '{}',
    expires_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text        NOT NULL,
    revoked_at     timestamptz,
    last_used_at   timestamptz,
    -- Its own caller budget for Validate; NULL: the configured one.
    rate_limit     integer     CHECK (rate_limit > 0),
    rate_period    interval    CHECK (rate_period > interval '0'),
    rate_burst     integer     CHECK (rate_burst > 0),
    CHECK (all_keyspaces OR cardinality(keyspace_ids) > 0)
);

-- The audit trail records writes to keyspaces and credentials too, and
-- each event's keyspace, so a credential bound to keyspaces reads only
-- theirs. Events from before (and written by replicas still running the
-- release before) have no resource_id or keyspace_id: they are of keys
-- (key_id), and their key's keyspace is theirs (ListAuditEvents reads it;
-- no table rewrite). The CHECK is NOT VALID: adding it validated would scan
-- the whole audit trail while this transaction holds api_keys' lock.
ALTER TABLE audit_events
    ALTER COLUMN key_id DROP NOT NULL,
    ADD COLUMN resource_type text NOT NULL DEFAULT 'key',
    ADD COLUMN resource_id   uuid,
    ADD COLUMN keyspace_id   uuid;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_resource_type_check
    CHECK (resource_type IN ('key', 'keyspace', 'credential')) NOT VALID;

-- +goose Down
DELETE FROM audit_events WHERE resource_type <> 'key';
ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_resource_type_check,
    DROP COLUMN resource_type,
    DROP COLUMN resource_id,
    DROP COLUMN keyspace_id,
    ALTER COLUMN key_id SET NOT NULL;
DROP TABLE credentials;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_keyspace_fk;
ALTER TABLE api_keys DROP COLUMN keyspace_id;
DROP TABLE keyspaces;
