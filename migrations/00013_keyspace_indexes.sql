-- +goose NO TRANSACTION
-- +goose Up
-- Built CONCURRENTLY, outside a transaction: on a large table the build
-- takes a while, and writes (admin calls, last-use flushes) go on
-- meanwhile. IF NOT EXISTS: a build interrupted part way is retried by
-- dropping the invalid index first (see docs/operations.md, upgrading).
-- Serves listing one keyspace's keys, oldest first.
CREATE INDEX CONCURRENTLY IF NOT EXISTS api_keys_keyspace_idx ON api_keys (keyspace_id, created_at, id);
-- Serves a keyspace-bound credential's audit trail, newest first.
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_events_keyspace_idx ON audit_events (keyspace_id, at DESC, id DESC);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS audit_events_keyspace_idx;
DROP INDEX CONCURRENTLY IF EXISTS api_keys_keyspace_idx;
