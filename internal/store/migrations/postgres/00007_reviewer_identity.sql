-- The Temporal identity of the client that resolved a case through the
-- resolve Update (what the client says: an SDK client's identity), beside the
-- reviewer the resolution names; empty for a resolve signal. Personal data
-- when it names a login: the purge blanks it with the reviewer.

-- +goose Up
ALTER TABLE aml_cases ADD COLUMN reviewer_identity TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE aml_cases DROP COLUMN reviewer_identity;
