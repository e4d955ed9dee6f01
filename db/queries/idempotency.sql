-- name: ClaimRequest :execrows
-- ClaimRequest records a request id at the start of its write's
-- transaction, or replaces an expired record of it. A concurrent write with
-- the same id waits here until the first one's transaction ends. No row
-- (0): a live record exists (read it with GetRequest).
INSERT INTO idempotency_records AS r (actor, request_id, method, body_hash, created_at, expires_at)
VALUES (@actor, @request_id, @method, @body_hash, clock_timestamp(), clock_timestamp() + @lifetime::interval)
ON CONFLICT (actor, request_id) DO UPDATE
    SET method = EXCLUDED.method, body_hash = EXCLUDED.body_hash, response = NULL, key_ids = '{}',
        created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
    WHERE r.expires_at <= clock_timestamp();

-- name: GetRequest :one
-- GetRequest reads a live record.
SELECT method, body_hash, response, key_ids FROM idempotency_records
WHERE actor = @actor AND request_id = @request_id AND expires_at > clock_timestamp();

-- name: SetRequestResponse :exec
-- SetRequestResponse stores the answer of the write, in its transaction.
UPDATE idempotency_records SET response = @response, key_ids = @key_ids
WHERE actor = @actor AND request_id = @request_id;

-- name: DeleteExpiredRequests :execrows
-- DeleteExpiredRequests deletes up to batch expired records.
DELETE FROM idempotency_records
WHERE (actor, request_id) IN (
    SELECT actor, request_id FROM idempotency_records
    WHERE expires_at <= clock_timestamp()
    ORDER BY expires_at
    LIMIT @batch
)
-- Checked again on the row as it is when the delete reaches it: a claim
-- that replaced an expired record meanwhile keeps it (READ COMMITTED
-- rechecks this WHERE, not the subquery).
AND expires_at <= clock_timestamp();
