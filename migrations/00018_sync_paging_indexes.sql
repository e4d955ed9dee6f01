-- +goose NO TRANSACTION
-- +goose Up
-- The incremental sync reads its changes in pages (KEYSERVICE_SYNC_PAGE_SIZE
-- rows per statement), in keyset order on each change column: a bulk
-- revocation gives many rows the same revoked_at, so the id breaks ties in
-- the index and a page starts where the last ended without re-reading the
-- tie. These replace the single-column indexes of 00002 and 00006 (their
-- leading column serves everything those served). Built CONCURRENTLY, as
-- in 00013.
CREATE INDEX CONCURRENTLY IF NOT EXISTS api_keys_revoked_at_id_idx ON api_keys (revoked_at, id) WHERE revoked_at IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS api_keys_updated_at_id_idx ON api_keys (updated_at, id) WHERE updated_at IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS api_keys_revoked_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS api_keys_updated_at_idx;

-- +goose Down
CREATE INDEX CONCURRENTLY IF NOT EXISTS api_keys_revoked_at_idx ON api_keys (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS api_keys_updated_at_idx ON api_keys (updated_at) WHERE updated_at IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS api_keys_updated_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS api_keys_revoked_at_id_idx;
