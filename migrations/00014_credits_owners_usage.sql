-- +goose Up
-- Credits: a quota that Validate's cost spends, for a key (subject: the
-- key's budget id, the first key of its rotation chain, so rotating never
-- adds credits) or an owner (subject: the owner's id). Replicas take
-- leases from remaining (internal/credits): a lease is spent in memory, so
-- a call never writes here. epoch changes whenever remaining is set (not
-- added to) or refilled: a lease of an older epoch is void, and its unused
-- credits are not given back.
CREATE TABLE credits (
    subject_id      uuid        PRIMARY KEY,
    remaining       bigint      NOT NULL,
    refill_amount   bigint      CHECK (refill_amount > 0),
    refill_interval text        CHECK (refill_interval IN ('daily', 'monthly', 'every')),
    refill_day      smallint    CHECK (refill_day BETWEEN 1 AND 28),
    refill_every    interval    CHECK (refill_every >= interval '1 minute'),
    -- When the current period began (set or last refilled); the next
    -- refill follows from it.
    period_start    timestamptz NOT NULL,
    next_refill_at  timestamptz,
    epoch           bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((refill_amount IS NULL) = (refill_interval IS NULL))
);

-- A key that has credits says so in its record, so the validation path
-- (which holds records, not balances) knows to spend them; its balance is
-- in credits, under the key's budget id.
ALTER TABLE api_keys ADD COLUMN credits boolean NOT NULL DEFAULT false;

-- Charges with a request_id (ReportUsage, AddCredits), kept for the
-- idempotency window: a retry with the same request_id and body is
-- charged once; another body is refused.
CREATE TABLE credit_requests (
    caller      text        NOT NULL,
    request_id  uuid        NOT NULL,
    body_hash   bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, request_id)
);
CREATE INDEX credit_requests_created_idx ON credit_requests (created_at);

-- Owners with budgets: the owner string of keys, within a keyspace, given
-- its own rate limit and credits. Keys join by (keyspace_id, owner): no
-- key row changes when an owner is created.
CREATE TABLE owners (
    id           uuid        PRIMARY KEY,
    keyspace_id  uuid        NOT NULL REFERENCES keyspaces (id),
    name         text        NOT NULL,
    rate_limit   integer     CHECK (rate_limit > 0),
    rate_period  interval    CHECK (rate_period > interval '0'),
    rate_burst   integer     CHECK (rate_burst > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz,
    UNIQUE (keyspace_id, name)
);

ALTER TABLE audit_events DROP CONSTRAINT audit_events_resource_type_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_resource_type_check
    CHECK (resource_type IN ('key', 'keyspace', 'credential', 'owner')) NOT VALID;

-- Usage history: Validate answers (code > 0) and reported charges (code 0)
-- per key and bucket, written in batches by every replica (rows of the
-- same bucket add up). Minutes are partitioned by day, so retention drops
-- a partition; hours and days are small and deleted by range.
CREATE TABLE usage_minutes (
    bucket       timestamptz NOT NULL,
    key_id       uuid        NOT NULL,
    code         smallint    NOT NULL,
    keyspace_id  uuid        NOT NULL,
    owner        text        NOT NULL,
    calls        bigint      NOT NULL,
    credits      bigint      NOT NULL,
    PRIMARY KEY (bucket, key_id, code)
) PARTITION BY RANGE (bucket);

CREATE TABLE usage_hours (
    bucket       timestamptz NOT NULL,
    key_id       uuid        NOT NULL,
    code         smallint    NOT NULL,
    keyspace_id  uuid        NOT NULL,
    owner        text        NOT NULL,
    calls        bigint      NOT NULL,
    credits      bigint      NOT NULL,
    PRIMARY KEY (bucket, key_id, code)
);

CREATE TABLE usage_days (
    bucket       timestamptz NOT NULL,
    key_id       uuid        NOT NULL,
    code         smallint    NOT NULL,
    keyspace_id  uuid        NOT NULL,
    owner        text        NOT NULL,
    calls        bigint      NOT NULL,
    credits      bigint      NOT NULL,
    PRIMARY KEY (bucket, key_id, code)
);
CREATE INDEX usage_minutes_key_idx ON usage_minutes (key_id, bucket);
CREATE INDEX usage_minutes_owner_idx ON usage_minutes (keyspace_id, owner, bucket);
CREATE INDEX usage_hours_key_idx ON usage_hours (key_id, bucket);
CREATE INDEX usage_hours_owner_idx ON usage_hours (keyspace_id, owner, bucket);
CREATE INDEX usage_days_key_idx ON usage_days (key_id, bucket);
CREATE INDEX usage_days_owner_idx ON usage_days (keyspace_id, owner, bucket);

-- +goose Down
DROP TABLE usage_days;
DROP TABLE usage_hours;
DROP TABLE usage_minutes;
DELETE FROM audit_events WHERE resource_type = 'owner';
ALTER TABLE audit_events DROP CONSTRAINT audit_events_resource_type_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_resource_type_check
    CHECK (resource_type IN ('key', 'keyspace', 'credential')) NOT VALID;
DROP TABLE owners;
DROP TABLE credit_requests;
ALTER TABLE api_keys DROP COLUMN credits;
DROP TABLE credits;
