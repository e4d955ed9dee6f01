-- +goose Up
-- Incremental sync also reads revocations since a watermark, so replicas
-- whose NOTIFY connection was down catch up on revoked keys too.
CREATE INDEX api_keys_revoked_at_idx ON api_keys (revoked_at) WHERE revoked_at IS NOT NULL;

-- +goose Down
DROP INDEX api_keys_revoked_at_idx;
