-- +goose Up
-- A key and every key rotated from it spend one per-key budget: the
-- budget is named by the first key of the rotation chain. NULL: the key's
-- own id (a key that was not made by a rotation). RotateKey sets it on the
-- new key to the old key's budget.
ALTER TABLE api_keys ADD COLUMN budget_id uuid;

-- Chains rotated before this migration join their first key's budget.
WITH RECURSIVE chain (id, root) AS (
    SELECT id, id FROM api_keys WHERE rotated_from IS NULL AND rotated_to IS NOT NULL
    UNION ALL
    SELECT k.id, c.root FROM api_keys k JOIN chain c ON k.rotated_from = c.id
)
UPDATE api_keys SET budget_id = chain.root
FROM chain WHERE api_keys.id = chain.id AND chain.id <> chain.root;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN budget_id;
