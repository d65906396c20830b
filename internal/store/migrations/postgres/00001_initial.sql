-- Times are unix seconds (UTC) in BIGINT columns, like the SQLite schema, so both
-- dialects store and return the same values. hits is TEXT rather than JSONB for
-- the same reason: JSONB would reorder keys and the two stores would disagree.

-- +goose Up
CREATE TABLE verifications (
    session_id         TEXT             NOT NULL PRIMARY KEY,
    status             TEXT             NOT NULL,
    -- Envelope created_at of the event that set the current status. It orders
    -- events, so an older one can never overwrite a newer one.
    event_created_at   BIGINT           NOT NULL,
    -- Precedence of status (didit.Status.Rank) breaks ties between events
    -- of the same second: In Progress then Approved, never the reverse.
    status_rank        INTEGER NOT NULL DEFAULT 0,
    event_key          TEXT             NOT NULL,
    vendor_data        TEXT             NOT NULL DEFAULT '',
    webhook_type       TEXT             NOT NULL,
    aml_hits           INTEGER          NOT NULL DEFAULT 0,
    aml_max_risk_score DOUBLE PRECISION,
    needs_attention    BOOLEAN          NOT NULL DEFAULT FALSE,
    first_seen_at      BIGINT           NOT NULL,
    updated_at         BIGINT           NOT NULL
);

CREATE TABLE verification_events (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Deferred because the event is inserted before the verification row it
    -- may create, inside the same transaction.
    session_id       TEXT    NOT NULL REFERENCES verifications (session_id) DEFERRABLE INITIALLY DEFERRED,
    -- Keys are unique per session: Didit's event_id is a UUID, but a
    -- derived key (no event_id) or a reused fixture must not silence
    -- another session's event.
    event_key        TEXT    NOT NULL,
    webhook_type     TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    event_created_at BIGINT  NOT NULL,
    received_at      BIGINT  NOT NULL,
    applied          BOOLEAN NOT NULL,
    -- The record's status before this event, for answering a redelivery.
    previous_status  TEXT    NOT NULL DEFAULT '',
    UNIQUE (session_id, event_key)
);

CREATE INDEX verification_events_session ON verification_events (session_id, event_created_at, id);

CREATE TABLE notifications (
    session_id     TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('claimed', 'sending', 'sent', 'undeliverable')),
    -- SHA-256 hex of the lowercased address: enough to tell recipients apart,
    -- useless to anyone reading the table for addresses.
    recipient_hash TEXT    NOT NULL,
    attempts       INTEGER NOT NULL,
    claimed_at     BIGINT  NOT NULL,
    sent_at        BIGINT,
    detail         TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, kind)
);

CREATE TABLE aml_cases (
    session_id     TEXT    NOT NULL PRIMARY KEY,
    state          TEXT    NOT NULL CHECK (state IN ('open', 'resolved')),
    opened_at      BIGINT  NOT NULL,
    -- JSON list of {id, datasets, match_score, risk_score, review_status}, and no names.
    hits           TEXT    NOT NULL,
    reminders_sent INTEGER NOT NULL DEFAULT 0,
    escalated      BOOLEAN NOT NULL DEFAULT FALSE,
    resolution     TEXT    CHECK (resolution IN ('confirmed_match', 'false_positive', 'inconclusive')),
    reviewer       TEXT    NOT NULL DEFAULT '',
    note           TEXT    NOT NULL DEFAULT '',
    resolved_at    BIGINT,
    CHECK ((state = 'resolved') = (resolution IS NOT NULL AND resolved_at IS NOT NULL))
);

-- +goose Down
DROP TABLE aml_cases;
DROP TABLE notifications;
DROP TABLE verification_events;
DROP TABLE verifications;
