-- AML cases are keyed by their workflow ID: a session can have follow-up
-- cases for hits found later (ongoing monitoring), aml-case-<session_id>-2,
-- -3, ... Existing cases are the first of their session. Cases and session
-- records both keep why they need an operator (attention), beside the flag.

-- +goose Up
ALTER TABLE aml_cases ADD COLUMN case_id TEXT;
UPDATE aml_cases SET case_id = 'aml-case-' || session_id;
ALTER TABLE aml_cases ALTER COLUMN case_id SET NOT NULL;
ALTER TABLE aml_cases DROP CONSTRAINT aml_cases_pkey;
ALTER TABLE aml_cases ADD PRIMARY KEY (case_id);
-- The session's first case, for a follow-up; '' for a first case.
ALTER TABLE aml_cases ADD COLUMN follow_up_of TEXT NOT NULL DEFAULT '';
ALTER TABLE aml_cases ADD COLUMN needs_attention BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE aml_cases ADD COLUMN attention TEXT NOT NULL DEFAULT '';
CREATE INDEX aml_cases_session ON aml_cases (session_id, opened_at);

ALTER TABLE verifications ADD COLUMN attention TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE verifications DROP COLUMN attention;
DROP INDEX aml_cases_session;
DELETE FROM aml_cases WHERE follow_up_of <> '';
ALTER TABLE aml_cases DROP COLUMN attention;
ALTER TABLE aml_cases DROP COLUMN needs_attention;
ALTER TABLE aml_cases DROP COLUMN follow_up_of;
ALTER TABLE aml_cases DROP CONSTRAINT aml_cases_pkey;
ALTER TABLE aml_cases ADD PRIMARY KEY (session_id);
ALTER TABLE aml_cases DROP COLUMN case_id;
