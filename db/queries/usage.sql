-- Usage history: written in batches by every replica (internal/usage),
-- read by GetUsage. Each flush upserts its rows into the three tables in
-- one transaction; rows of one bucket from several replicas add up.

-- name: UpsertUsageMinutes :exec
INSERT INTO usage_minutes AS t (bucket, key_id, code, keyspace_id, owner, calls, credits)
SELECT unnest(sqlc.arg(buckets)::timestamptz[]), unnest(sqlc.arg(key_ids)::uuid[]), unnest(sqlc.arg(codes)::smallint[]),
    unnest(sqlc.arg(keyspaces)::uuid[]), unnest(sqlc.arg(owners)::text[]), unnest(sqlc.arg(calls)::bigint[]), unnest(sqlc.arg(credits)::bigint[])
ON CONFLICT (bucket, key_id, code) DO UPDATE SET calls = t.calls + excluded.calls, credits = t.credits + excluded.credits;

-- name: UpsertUsageHours :exec
INSERT INTO usage_hours AS t (bucket, key_id, code, keyspace_id, owner, calls, credits)
SELECT unnest(sqlc.arg(buckets)::timestamptz[]), unnest(sqlc.arg(key_ids)::uuid[]), unnest(sqlc.arg(codes)::smallint[]),
    unnest(sqlc.arg(keyspaces)::uuid[]), unnest(sqlc.arg(owners)::text[]), unnest(sqlc.arg(calls)::bigint[]), unnest(sqlc.arg(credits)::bigint[])
ON CONFLICT (bucket, key_id, code) DO UPDATE SET calls = t.calls + excluded.calls, credits = t.credits + excluded.credits;

-- name: UpsertUsageDays :exec
INSERT INTO usage_days AS t (bucket, key_id, code, keyspace_id, owner, calls, credits)
SELECT unnest(sqlc.arg(buckets)::timestamptz[]), unnest(sqlc.arg(key_ids)::uuid[]), unnest(sqlc.arg(codes)::smallint[]),
    unnest(sqlc.arg(keyspaces)::uuid[]), unnest(sqlc.arg(owners)::text[]), unnest(sqlc.arg(calls)::bigint[]), unnest(sqlc.arg(credits)::bigint[])
ON CONFLICT (bucket, key_id, code) DO UPDATE SET calls = t.calls + excluded.calls, credits = t.credits + excluded.credits;

-- name: LockUsageMaintenance :exec
-- One replica at a time creates and drops partitions.
SELECT pg_advisory_xact_lock(7220141);

-- name: UsagePartitions :many
SELECT c.relname::text AS name FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'usage_minutes'::regclass ORDER BY 1;

-- name: DeleteUsageHoursBefore :execrows
DELETE FROM usage_hours WHERE bucket < @before;

-- name: DeleteUsageDaysBefore :execrows
DELETE FROM usage_days WHERE bucket < @before;

-- name: ReadUsageMinutes :many
-- ReadUsageMinutes sums usage_minutes over [from, to) by series (one per key, per
-- owner, or one for everything: group_by key, owner or none), bucket and
-- code, for at most max_series series after the first skip (in their order).
WITH g AS (
    SELECT CASE sqlc.arg(group_by)::text WHEN 'key' THEN u.key_id::text
                WHEN 'owner' THEN u.keyspace_id::text || ' ' || u.owner ELSE '' END AS series,
           u.bucket, u.code,
           max(u.keyspace_id::text)::text AS keyspace_id, max(u.owner)::text AS owner,
           sum(u.calls)::bigint AS calls, sum(u.credits)::bigint AS credits
    FROM usage_minutes u
    WHERE u.bucket >= sqlc.arg(from_time) AND u.bucket < sqlc.arg(to_time)
      AND (sqlc.narg(key_id)::uuid IS NULL OR u.key_id = sqlc.narg(key_id)::uuid)
      AND (sqlc.narg(keyspace_ids)::uuid[] IS NULL OR u.keyspace_id = ANY(sqlc.narg(keyspace_ids)::uuid[]))
      AND (sqlc.arg(owner)::text = '' OR u.owner = sqlc.arg(owner)::text)
    GROUP BY 1, u.bucket, u.code
), picked AS (
    SELECT DISTINCT series FROM g ORDER BY series OFFSET sqlc.arg(skip) LIMIT sqlc.arg(max_series)
)
SELECT g.series, g.bucket, g.code, g.keyspace_id, g.owner, g.calls, g.credits
FROM g JOIN picked USING (series)
ORDER BY g.series, g.bucket, g.code;

-- name: ReadUsageHours :many
-- ReadUsageHours sums usage_hours over [from, to) by series (one per key, per
-- owner, or one for everything: group_by key, owner or none), bucket and
-- code, for at most max_series series after the first skip (in their order).
WITH g AS (
    SELECT CASE sqlc.arg(group_by)::text WHEN 'key' THEN u.key_id::text
                WHEN 'owner' THEN u.keyspace_id::text || ' ' || u.owner ELSE '' END AS series,
           u.bucket, u.code,
           max(u.keyspace_id::text)::text AS keyspace_id, max(u.owner)::text AS owner,
           sum(u.calls)::bigint AS calls, sum(u.credits)::bigint AS credits
    FROM usage_hours u
    WHERE u.bucket >= sqlc.arg(from_time) AND u.bucket < sqlc.arg(to_time)
      AND (sqlc.narg(key_id)::uuid IS NULL OR u.key_id = sqlc.narg(key_id)::uuid)
      AND (sqlc.narg(keyspace_ids)::uuid[] IS NULL OR u.keyspace_id = ANY(sqlc.narg(keyspace_ids)::uuid[]))
      AND (sqlc.arg(owner)::text = '' OR u.owner = sqlc.arg(owner)::text)
    GROUP BY 1, u.bucket, u.code
), picked AS (
    SELECT DISTINCT series FROM g ORDER BY series OFFSET sqlc.arg(skip) LIMIT sqlc.arg(max_series)
)
SELECT g.series, g.bucket, g.code, g.keyspace_id, g.owner, g.calls, g.credits
FROM g JOIN picked USING (series)
ORDER BY g.series, g.bucket, g.code;

-- name: ReadUsageDays :many
-- ReadUsageDays sums usage_days over [from, to) by series (one per key, per
-- owner, or one for everything: group_by key, owner or none), bucket and
-- code, for at most max_series series after the first skip (in their order).
WITH g AS (
    SELECT CASE sqlc.arg(group_by)::text WHEN 'key' THEN u.key_id::text
                WHEN 'owner' THEN u.keyspace_id::text || ' ' || u.owner ELSE '' END AS series,
           u.bucket, u.code,
           max(u.keyspace_id::text)::text AS keyspace_id, max(u.owner)::text AS owner,
           sum(u.calls)::bigint AS calls, sum(u.credits)::bigint AS credits
    FROM usage_days u
    WHERE u.bucket >= sqlc.arg(from_time) AND u.bucket < sqlc.arg(to_time)
      AND (sqlc.narg(key_id)::uuid IS NULL OR u.key_id = sqlc.narg(key_id)::uuid)
      AND (sqlc.narg(keyspace_ids)::uuid[] IS NULL OR u.keyspace_id = ANY(sqlc.narg(keyspace_ids)::uuid[]))
      AND (sqlc.arg(owner)::text = '' OR u.owner = sqlc.arg(owner)::text)
    GROUP BY 1, u.bucket, u.code
), picked AS (
    SELECT DISTINCT series FROM g ORDER BY series OFFSET sqlc.arg(skip) LIMIT sqlc.arg(max_series)
)
SELECT g.series, g.bucket, g.code, g.keyspace_id, g.owner, g.calls, g.credits
FROM g JOIN picked USING (series)
ORDER BY g.series, g.bucket, g.code;
