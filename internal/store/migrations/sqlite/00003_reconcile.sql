-- Reconciliation asks Didit what the webhooks missed. It remembers the
-- deliveries it has settled, so that each is looked at once, and it backs
-- off per session while an undecided session stays as it is.
--
-- updated_at also moves when an operator flag changes, so it cannot tell a
-- session that moved from one that was only flagged: applied_at is when the
-- event behind the current record was applied. Existing rows take the time
-- that event was received (recorded moments before it was applied), or
-- updated_at should the event be missing.

-- +goose Up
CREATE TABLE reconciled_deliveries (
    delivery_uuid TEXT    NOT NULL PRIMARY KEY,
    session_id    TEXT    NOT NULL,
    -- What reconciliation made of the delivery, a word it picks ('held',
    -- 'fed', 'unusable').
    outcome       TEXT    NOT NULL,
    settled_at    INTEGER NOT NULL
) STRICT;

-- Pruning deletes settled deliveries by age.
CREATE INDEX reconciled_deliveries_settled ON reconciled_deliveries (settled_at);

-- SQLite adds a NOT NULL column only with a default; every existing row is
-- backfilled below and every insert sets the column.
ALTER TABLE verifications ADD COLUMN applied_at INTEGER NOT NULL DEFAULT 0;
UPDATE verifications SET applied_at = COALESCE(
    (SELECT e.received_at FROM verification_events e
     WHERE e.session_id = verifications.session_id AND e.event_key = verifications.event_key),
    updated_at);
-- How many checks in a row found the session unchanged, and when to check
-- it next (NULL: not checked since its last applied event). An applied event
-- resets both.
ALTER TABLE verifications ADD COLUMN stale_checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE verifications ADD COLUMN next_check_at INTEGER;

-- Undecided sessions in the order they fall due, for StaleSessions. An index
-- with a WHERE serves only queries that repeat it, so the list is spelled
-- exactly as the store builds it from didit.Status.Final; the tests check
-- that the query uses the index.
CREATE INDEX verifications_stale ON verifications (COALESCE(next_check_at, applied_at), session_id)
    WHERE status NOT IN ('Approved', 'Declined', 'Expired', 'Kyc Expired', 'Abandoned');

-- +goose Down
DROP INDEX verifications_stale;
ALTER TABLE verifications DROP COLUMN next_check_at;
ALTER TABLE verifications DROP COLUMN stale_checks;
ALTER TABLE verifications DROP COLUMN applied_at;
DROP TABLE reconciled_deliveries;
