-- A per-session sequence: every status change, and every AML case
-- resolution that starts the business's hooks, takes the next number, so a
-- business's workflows (kyc) can order what they are told, and the numbers
-- keep increasing across the session workflow's runs.
--
-- last_seq is the last number handed out; status_seq the number of the
-- change that set the current status; announced_seq the highest status
-- change whose hooks were started (or that needed none), so a redelivered
-- event recorded again in a later run starts no hook twice. An event row's
-- seq is the number of the status change it made (0: none); a case's seq
-- the number of its resolution (0: none handed out).

-- +goose Up
ALTER TABLE verifications ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE verifications ADD COLUMN status_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE verifications ADD COLUMN announced_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE verification_events ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE aml_cases ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;

-- Sessions recorded before: their status changes so far are numbered by
-- count, and were all handled before hooks existed.
UPDATE verifications SET status_seq = (
    SELECT COUNT(*) FROM verification_events e
    WHERE e.session_id = verifications.session_id AND e.applied AND e.status <> e.previous_status);
UPDATE verifications SET last_seq = status_seq, announced_seq = status_seq;

-- +goose Down
ALTER TABLE aml_cases DROP COLUMN seq;
ALTER TABLE verification_events DROP COLUMN seq;
ALTER TABLE verifications DROP COLUMN announced_seq;
ALTER TABLE verifications DROP COLUMN status_seq;
ALTER TABLE verifications DROP COLUMN last_seq;
