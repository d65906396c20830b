-- Retention and erasure. A session's record outlives its personal data: the
-- retention purge (PurgeClosedSessions, PurgeClosedAMLCases) and the erasure
-- command (EraseSession) blank the personal fields and keep the audit trail
-- (statuses, events, decisions' facts, hit scores, times).
--
-- purged_at is when the personal fields were last blanked (NULL: they have
-- not been, or an event recorded since may have brought some back);
-- erased_at is when an erasure was asked for, and stays.

-- +goose Up
ALTER TABLE verifications ADD COLUMN purged_at BIGINT;
ALTER TABLE verifications ADD COLUMN erased_at BIGINT;
ALTER TABLE aml_cases ADD COLUMN purged_at BIGINT;

-- An event recorded after a purge may bring personal data back (its
-- vendor_data, a contact address, a notice's recipient): the session is
-- then no longer purged, and is purged again once it has been closed for
-- the retention again. Only a new event row counts; a redelivery inserts
-- none.
-- +goose StatementBegin
CREATE FUNCTION verification_events_unpurge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE verifications SET purged_at = NULL
    WHERE session_id = NEW.session_id AND purged_at IS NOT NULL;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER verification_events_unpurge AFTER INSERT ON verification_events
    FOR EACH ROW EXECUTE FUNCTION verification_events_unpurge();

-- The sessions the purge has still to look at, in the order they closed.
-- An index with a WHERE serves only queries that repeat it, so the list is
-- spelled exactly as the store builds it from didit.Status.Final.
CREATE INDEX verifications_unpurged ON verifications (applied_at, session_id)
    WHERE purged_at IS NULL AND status IN ('Approved', 'Declined', 'Expired', 'Kyc Expired', 'Abandoned');
CREATE INDEX aml_cases_unpurged ON aml_cases (resolved_at, case_id)
    WHERE purged_at IS NULL AND state = 'resolved';

-- +goose Down
DROP INDEX aml_cases_unpurged;
DROP INDEX verifications_unpurged;
DROP TRIGGER verification_events_unpurge ON verification_events;
DROP FUNCTION verification_events_unpurge();
ALTER TABLE aml_cases DROP COLUMN purged_at;
ALTER TABLE verifications DROP COLUMN erased_at;
ALTER TABLE verifications DROP COLUMN purged_at;
