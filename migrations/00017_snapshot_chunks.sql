-- +goose Up
-- The fleet's snapshot in chunks: one bytea field holds at most 1 GB, and
-- memory mode's records reach that near 6M keys (the filter alone near
-- 390M). A snapshot's filter (part 0) and records (part 1) are stored as
-- numbered chunks of KEYSERVICE's chunk size (64 MiB by default), read
-- back several at a time. The row in filter_snapshots keeps the
-- description and the filter's checksum; its filter and records columns
-- stay empty for chunked snapshots (a replica of an older version finds
-- no filter, counts the snapshot corrupt and reads the table).
CREATE TABLE filter_snapshot_chunks (
    snapshot_id bigint   NOT NULL REFERENCES filter_snapshots (id) ON DELETE CASCADE,
    part        smallint NOT NULL CHECK (part IN (0, 1)),
    seq         integer  NOT NULL CHECK (seq >= 0),
    data        bytea    NOT NULL,
    PRIMARY KEY (snapshot_id, part, seq)
);
ALTER TABLE filter_snapshot_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE filter_snapshots ALTER COLUMN filter DROP NOT NULL;
-- Lengths of the chunked parts (NULL: stored inline, an older snapshot).
ALTER TABLE filter_snapshots ADD COLUMN filter_bytes bigint CHECK (filter_bytes >= 0);
ALTER TABLE filter_snapshots ADD COLUMN records_bytes bigint CHECK (records_bytes >= 0);

-- +goose Down
DELETE FROM filter_snapshots WHERE filter IS NULL;
ALTER TABLE filter_snapshots DROP COLUMN records_bytes;
ALTER TABLE filter_snapshots DROP COLUMN filter_bytes;
ALTER TABLE filter_snapshots ALTER COLUMN filter SET NOT NULL;
DROP TABLE filter_snapshot_chunks;
