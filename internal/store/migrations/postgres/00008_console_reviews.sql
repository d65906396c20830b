-- Reviews in Didit's console resolve diditflow's AML cases (issue 25).
--
-- A case's source says where it was decided: 'diditflow' (a resolve signal
-- or Update, whose outcomes are written back to Didit) or 'didit_console'
-- (every hit reviewed in Didit's console); '' for cases resolved before,
-- all from diditflow. Each hit in the hits JSON now also carries
-- reviewed_at, the time of the event that showed its review status.
--
-- aml_review_changes records each change of a hit's review that came after
-- its case was resolved, once per case and session event (event_key), with
-- the number it took in the session's sequence (seq) for the business's
-- hooks, and the hits it changed (JSON list of {hit_id, review_status, at}:
-- ids and statuses, no names).
--
-- aml_cases_open finds the sessions with an open case for reconciliation.

-- +goose Up
ALTER TABLE aml_cases ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX aml_cases_open ON aml_cases (session_id) WHERE state = 'open';
CREATE TABLE aml_review_changes (
    case_id    TEXT    NOT NULL,
    event_key  TEXT    NOT NULL,
    seq        BIGINT NOT NULL,
    hits       TEXT    NOT NULL,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (case_id, event_key)
);

-- +goose Down
DROP TABLE aml_review_changes;
DROP INDEX aml_cases_open;
ALTER TABLE aml_cases DROP COLUMN source;
