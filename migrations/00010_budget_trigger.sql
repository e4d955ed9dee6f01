-- +goose Up
-- A successor inserted without budget_id (by a replica still running the
-- code before 00008, during a rolling deploy) still joins its chain's
-- budget: the database sets it, whoever inserts.
-- +goose StatementBegin
CREATE FUNCTION api_keys_chain_budget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.rotated_from IS NOT NULL AND NEW.budget_id IS NULL THEN
        SELECT coalesce(budget_id, id) INTO NEW.budget_id FROM api_keys WHERE id = NEW.rotated_from;
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER api_keys_chain_budget BEFORE INSERT OR UPDATE OF rotated_from ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_keys_chain_budget();

-- Chains that gained a successor without budget_id between 00008 and this
-- migration join their first key's budget too (safe to repeat).
WITH RECURSIVE chain (id, root) AS (
    SELECT id, id FROM api_keys WHERE rotated_from IS NULL AND rotated_to IS NOT NULL
    UNION ALL
    SELECT k.id, c.root FROM api_keys k JOIN chain c ON k.rotated_from = c.id
)
UPDATE api_keys SET budget_id = chain.root
FROM chain WHERE api_keys.id = chain.id AND chain.id <> chain.root AND api_keys.budget_id IS DISTINCT FROM chain.root;

-- +goose Down
DROP TRIGGER api_keys_chain_budget ON api_keys;
DROP FUNCTION api_keys_chain_budget();
