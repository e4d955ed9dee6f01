-- +goose Up
-- A leak report is recorded once per key and URL, but a URL can be longer
-- than a btree index entry may be (about 2,700 bytes): the unique key is
-- the URL's SHA-256 instead, and the URL itself is stored whole.
ALTER TABLE leak_reports ADD COLUMN url_sha256 bytea;
UPDATE leak_reports SET url_sha256 = sha256(convert_to(url, 'UTF8'));
ALTER TABLE leak_reports
    ALTER COLUMN url_sha256 SET NOT NULL,
    ADD CONSTRAINT leak_reports_url_sha256_check CHECK (octet_length(url_sha256) = 32),
    DROP CONSTRAINT leak_reports_key_id_url_key,
    ADD CONSTRAINT leak_reports_key_id_url_sha256_key UNIQUE (key_id, url_sha256);

-- +goose Down
ALTER TABLE leak_reports
    DROP CONSTRAINT leak_reports_key_id_url_sha256_key,
    ADD CONSTRAINT leak_reports_key_id_url_key UNIQUE (key_id, url),
    DROP COLUMN url_sha256;
