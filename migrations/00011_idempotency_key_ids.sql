-- +goose Up
-- The ids of the keys a recorded write returned, in the clear (ids are not
-- secrets), so a retry that is answered from the record can bring the
-- answering replica's memory up to those keys before it returns: the
-- first attempt's NOTIFY may not have reached it yet. Records from before
-- have none; their retries refresh the keys the request names.
ALTER TABLE idempotency_records ADD COLUMN key_ids uuid[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE idempotency_records DROP COLUMN key_ids;
