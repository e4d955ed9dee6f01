-- +goose NO TRANSACTION
-- +goose Up
-- ListKeys' query finds keys whose name or hint contains a text, ignoring
-- case (name ILIKE '%text%'): trigram indexes answer that without reading
-- every row of a large table. pg_trgm ships with PostgreSQL (contrib) and
-- is a trusted extension: the database's owner may create it. Built
-- CONCURRENTLY, as in 00013.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX CONCURRENTLY IF NOT EXISTS api_keys_name_trgm_idx ON api_keys USING gin (name gin_trgm_ops);
CREATE INDEX CONCURRENTLY IF NOT EXISTS api_keys_hint_trgm_idx ON api_keys USING gin (hint gin_trgm_ops);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS api_keys_hint_trgm_idx;
DROP INDEX CONCURRENTLY IF EXISTS api_keys_name_trgm_idx;
