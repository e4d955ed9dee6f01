-- Owners with budgets: few (one per customer organisation that has a
-- shared budget), read whole into every replica's memory (internal/tenancy)
-- and kept in step as keyspaces are.

-- name: AllOwners :many
-- AllOwners reads every owner, and whether it has credits.
SELECT o.id, o.keyspace_id, o.name, o.rate_limit, o.rate_period, o.rate_burst, o.created_at, o.updated_at,
       EXISTS (SELECT 1 FROM credits c WHERE c.subject_id = o.id) AS has_credits
FROM owners o ORDER BY o.created_at, o.id;

-- name: InsertOwner :one
INSERT INTO owners (id, keyspace_id, name, rate_limit, rate_period, rate_burst)
VALUES (@id, @keyspace_id, @name, @rate_limit, @rate_period, @rate_burst)
RETURNING *;

-- name: GetOwnerForUpdate :one
SELECT * FROM owners WHERE id = @id FOR UPDATE;

-- name: UpdateOwner :one
UPDATE owners SET rate_limit = @rate_limit, rate_period = @rate_period, rate_burst = @rate_burst,
    updated_at = clock_timestamp()
WHERE id = @id
RETURNING *;
