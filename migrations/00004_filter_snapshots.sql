-- +goose Up
-- One replica per rebuild interval reads every active key and writes the
-- Bloom filter it built here; the others load it and catch up from its
-- watermark with the incremental sync, instead of reading the table too.
CREATE TABLE filter_snapshots (
    id          bigserial        PRIMARY KEY,
    created_at  timestamptz      NOT NULL DEFAULT now(),
    -- Database time the read was consistent with: every change after it
    -- is read again by the incremental sync.
    watermark   timestamptz      NOT NULL,
    keys        bigint           NOT NULL CHECK (keys >= 0),
    capacity    bigint           NOT NULL CHECK (capacity > 0),
    fp_rate     double precision NOT NULL CHECK (fp_rate > 0 AND fp_rate < 1),
    -- The filter in bits-and-blooms/bloom/v3 binary form, and its SHA-256.
    filter      bytea            NOT NULL,
    checksum    bytea            NOT NULL CHECK (octet_length(checksum) = 32)
);

-- +goose Down
DROP TABLE filter_snapshots;
