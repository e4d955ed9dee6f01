-- +goose Up
-- Memory mode's records in the fleet's snapshot: the replica that reads
-- the table in memory mode writes every record it keeps (internal/validate
-- snapshotrecords.go, versioned), so the others load them instead of
-- reading the table. Stored out of line and uncompressed: they hardly
-- compress (hashes, ids), and a load should not wait on decompression.
-- The records carry their own checksum (a replica in filter mode reads
-- and checks the filter alone).
ALTER TABLE filter_snapshots ADD COLUMN records bytea;
ALTER TABLE filter_snapshots ALTER COLUMN records SET STORAGE EXTERNAL;

-- +goose Down
ALTER TABLE filter_snapshots DROP COLUMN records;
