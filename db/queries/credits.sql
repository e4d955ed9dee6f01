-- Credits: one row per key budget or owner. Replicas lease from it
-- (internal/credits); Go applies refills (apikey.Refill) to the row read
-- FOR UPDATE and writes it back, in one transaction.

-- name: GetCreditsForUpdate :one
SELECT * FROM credits WHERE subject_id = @subject_id FOR UPDATE;

-- name: GetCreditsOf :many
SELECT * FROM credits WHERE subject_id = ANY(sqlc.arg(subjects)::uuid[]);

-- name: SetCredits :exec
-- SetCredits sets a subject's credits and starts a new period (and epoch:
-- leases of the old one are void).
INSERT INTO credits (subject_id, remaining, refill_amount, refill_interval, refill_day, refill_every, period_start, next_refill_at, epoch, updated_at)
VALUES (@subject_id, @remaining, @refill_amount, @refill_interval, @refill_day, @refill_every, @period_start, @next_refill_at, 1, @period_start)
ON CONFLICT (subject_id) DO UPDATE SET
    remaining = excluded.remaining, refill_amount = excluded.refill_amount, refill_interval = excluded.refill_interval,
    refill_day = excluded.refill_day, refill_every = excluded.refill_every, period_start = excluded.period_start,
    next_refill_at = excluded.next_refill_at, epoch = credits.epoch + 1, updated_at = excluded.updated_at;

-- name: DeleteCredits :exec
DELETE FROM credits WHERE subject_id = @subject_id;

-- name: WriteCredits :exec
-- WriteCredits writes back a row read FOR UPDATE: what remains, and the
-- period and epoch after a refill.
UPDATE credits SET remaining = @remaining, period_start = @period_start, next_refill_at = @next_refill_at,
    epoch = @epoch, updated_at = @updated_at
WHERE subject_id = @subject_id;

-- name: ReturnCredits :exec
-- ReturnCredits gives back a lease's unused credits, unless the credits
-- were set or refilled since it was granted (another epoch).
UPDATE credits SET remaining = remaining + @unused, updated_at = @updated_at
WHERE subject_id = @subject_id AND epoch = @epoch;

-- name: ClaimCreditRequest :one
-- ClaimCreditRequest records a charge's request id; the body hash of the
-- row (this one, or the first with that id) says whether it is a retry.
WITH ins AS (
    INSERT INTO credit_requests (caller, request_id, body_hash) VALUES (@caller, @request_id, @body_hash)
    ON CONFLICT (caller, request_id) DO NOTHING
    RETURNING body_hash, true AS fresh
)
SELECT body_hash, fresh FROM ins
UNION ALL
SELECT body_hash, false FROM credit_requests WHERE caller = @caller AND request_id = @request_id AND NOT EXISTS (SELECT 1 FROM ins);

-- name: DeleteCreditRequestsBefore :execrows
DELETE FROM credit_requests WHERE created_at < @before;
