-- +goose Up
-- Serves the warm start: a replica that (re)starts fills its cache with the
-- most recently used active keys, newest first, paged by (last_used_at, id).
CREATE INDEX api_keys_recently_used_idx ON api_keys (last_used_at, id)
    WHERE last_used_at IS NOT NULL AND revoked_at IS NULL;

-- +goose Down
DROP INDEX api_keys_recently_used_idx;
