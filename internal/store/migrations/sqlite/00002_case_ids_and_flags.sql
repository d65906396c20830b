-- AML cases are keyed by their workflow ID: a session can have follow-up
-- cases for hits found later (ongoing monitoring), aml-case-<session_id>-2,
-- -3, ... Existing cases are the first of their session. Cases and session
-- records both keep why they need an operator (attention), beside the flag.

-- +goose Up
CREATE TABLE aml_cases_v2 (
    case_id         TEXT    NOT NULL PRIMARY KEY,
    session_id      TEXT    NOT NULL,
    -- The session's first case, for a follow-up; '' for a first case.
    follow_up_of    TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL CHECK (state IN ('open', 'resolved')),
    opened_at       INTEGER NOT NULL,
    -- JSON list of {id, datasets, match_score, risk_score, review_status}, and no names.
    hits            TEXT    NOT NULL,
    reminders_sent  INTEGER NOT NULL DEFAULT 0,
    escalated       INTEGER NOT NULL DEFAULT 0 CHECK (escalated IN (0, 1)),
    resolution      TEXT    CHECK (resolution IN ('confirmed_match', 'false_positive', 'inconclusive')),
    reviewer        TEXT    NOT NULL DEFAULT '',
    note            TEXT    NOT NULL DEFAULT '',
    resolved_at     INTEGER,
    needs_attention INTEGER NOT NULL DEFAULT 0 CHECK (needs_attention IN (0, 1)),
    attention       TEXT    NOT NULL DEFAULT '',
    CHECK ((state = 'resolved') = (resolution IS NOT NULL AND resolved_at IS NOT NULL))
) STRICT;

INSERT INTO aml_cases_v2 (case_id, session_id, state, opened_at, hits, reminders_sent, escalated,
                          resolution, reviewer, note, resolved_at)
SELECT 'aml-case-' || session_id, session_id, state, opened_at, hits, reminders_sent, escalated,
       resolution, reviewer, note, resolved_at
FROM aml_cases;

DROP TABLE aml_cases;
ALTER TABLE aml_cases_v2 RENAME TO aml_cases;
CREATE INDEX aml_cases_session ON aml_cases (session_id, opened_at);

ALTER TABLE verifications ADD COLUMN attention TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE verifications DROP COLUMN attention;

CREATE TABLE aml_cases_v1 (
    session_id     TEXT    NOT NULL PRIMARY KEY,
    state          TEXT    NOT NULL CHECK (state IN ('open', 'resolved')),
    opened_at      INTEGER NOT NULL,
    hits           TEXT    NOT NULL,
    reminders_sent INTEGER NOT NULL DEFAULT 0,
    escalated      INTEGER NOT NULL DEFAULT 0 CHECK (escalated IN (0, 1)),
    resolution     TEXT    CHECK (resolution IN ('confirmed_match', 'false_positive', 'inconclusive')),
    reviewer       TEXT    NOT NULL DEFAULT '',
    note           TEXT    NOT NULL DEFAULT '',
    resolved_at    INTEGER,
    CHECK ((state = 'resolved') = (resolution IS NOT NULL AND resolved_at IS NOT NULL))
) STRICT;
INSERT INTO aml_cases_v1 SELECT session_id, state, opened_at, hits, reminders_sent, escalated,
                                resolution, reviewer, note, resolved_at
FROM aml_cases WHERE follow_up_of = '';
DROP TABLE aml_cases;
ALTER TABLE aml_cases_v1 RENAME TO aml_cases;
