-- +goose Up
-- Keys reported as leaked (GitHub secret scanning): what was reported
-- where, and what keyservice did about it. One row per key and URL, so a
-- report delivered twice is recorded once.
CREATE TABLE leak_reports (
    id           bigserial   PRIMARY KEY,
    key_id       uuid        NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    url          text        NOT NULL,
    source       text        NOT NULL,
    token_type   text        NOT NULL,
    -- revoked: revoked by this report; flagged: recorded only
    -- (KEYSERVICE_SCANNING_ACTION=flag); already_revoked: nothing to do.
    action       text        NOT NULL CHECK (action IN ('revoked', 'flagged', 'already_revoked')),
    reported_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (key_id, url)
);

-- +goose Down
DROP TABLE leak_reports;
