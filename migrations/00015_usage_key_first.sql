-- +goose Up
-- The usage tables' primary keys lead with the key (key_id, bucket, code)
-- instead of the bucket: the key's own index (key_id, bucket) then says
-- nothing the primary key does not, and goes. Each usage row now updates
-- two B-trees instead of three (a flush of 10,000 new keys' rows measured
-- ~20% faster: BenchmarkWriteUsage). Time-range scans and the retention's
-- deletes use a BRIN index on bucket, which costs next to nothing to keep
-- (rows arrive in bucket order). ON CONFLICT (bucket, key_id, code) still
-- infers the new key: inference matches columns, not their order.
ALTER TABLE usage_minutes DROP CONSTRAINT usage_minutes_pkey;
ALTER TABLE usage_minutes ADD PRIMARY KEY (key_id, bucket, code);
DROP INDEX usage_minutes_key_idx;
CREATE INDEX usage_minutes_bucket_brin ON usage_minutes USING brin (bucket);

ALTER TABLE usage_hours DROP CONSTRAINT usage_hours_pkey;
ALTER TABLE usage_hours ADD PRIMARY KEY (key_id, bucket, code);
DROP INDEX usage_hours_key_idx;
CREATE INDEX usage_hours_bucket_brin ON usage_hours USING brin (bucket);

ALTER TABLE usage_days DROP CONSTRAINT usage_days_pkey;
ALTER TABLE usage_days ADD PRIMARY KEY (key_id, bucket, code);
DROP INDEX usage_days_key_idx;
CREATE INDEX usage_days_bucket_brin ON usage_days USING brin (bucket);

-- +goose Down
DROP INDEX usage_days_bucket_brin;
ALTER TABLE usage_days DROP CONSTRAINT usage_days_pkey;
ALTER TABLE usage_days ADD PRIMARY KEY (bucket, key_id, code);
CREATE INDEX usage_days_key_idx ON usage_days (key_id, bucket);

DROP INDEX usage_hours_bucket_brin;
ALTER TABLE usage_hours DROP CONSTRAINT usage_hours_pkey;
ALTER TABLE usage_hours ADD PRIMARY KEY (bucket, key_id, code);
CREATE INDEX usage_hours_key_idx ON usage_hours (key_id, bucket);

DROP INDEX usage_minutes_bucket_brin;
ALTER TABLE usage_minutes DROP CONSTRAINT usage_minutes_pkey;
ALTER TABLE usage_minutes ADD PRIMARY KEY (bucket, key_id, code);
CREATE INDEX usage_minutes_key_idx ON usage_minutes (key_id, bucket);
