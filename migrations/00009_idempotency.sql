-- +goose Up
-- Admin writes named by a request_id (AIP-155): one row per admin token name
-- and request id, written in the same transaction as the write it records,
-- so a crash or a lost COMMIT keeps both or neither. A retry finds the row
-- and answers from it. Rows live for the idempotency window
-- (KEYSERVICE_IDEMPOTENCY_WINDOW); expired rows are never honoured and are
-- deleted by a periodic job.
CREATE TABLE idempotency_records (
    actor       text        NOT NULL,  -- the admin token's name: ids are per admin
    request_id  uuid        NOT NULL,
    method      text        NOT NULL,  -- CreateKey, UpdateKey, RotateKey, RevokeKey
    -- SHA-256 of the request (deterministic protobuf, request_id cleared).
    body_hash   bytea       NOT NULL,
    -- The answer, sealed with AES-256-GCM (a secret is never stored in
    -- the clear); NULL only inside the write's own transaction.
    response    bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (actor, request_id)
);

CREATE INDEX idempotency_records_expires_idx ON idempotency_records (expires_at);

-- +goose Down
DROP TABLE idempotency_records;
