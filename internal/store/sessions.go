package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// EventRecord is one Didit webhook event, as handed to RecordEvent.
type EventRecord struct {
	SessionID string
	// EventKey identifies the event across Didit's redeliveries. Recording a
	// key a second time changes nothing.
	EventKey    string
	WebhookType string
	Status      string
	// StatusRank orders statuses of events from the same second.
	StatusRank int
	// EventCreatedAt is the envelope's created_at in unix seconds, kept as
	// Didit sent it because it decides which event is newer.
	EventCreatedAt  int64
	VendorData      string
	AMLHits         int
	AMLMaxRiskScore *float64
	// ReceivedAt is when diditflow received the webhook; zero means now.
	ReceivedAt time.Time
	// ForwardOnly marks an event whose time is only an upper bound (one that
	// only X-Signature-Simple verified: EventCreatedAt is its signing time,
	// and a resent old event is signed anew). It is applied only when it is
	// newer and does not move the record to an earlier stage.
	ForwardOnly bool
	// ContactEmail is the user's address in the event's decision, when the
	// decision is trustworthy; "" leaves the recorded one. It is kept from
	// the newest applied event that gives one, or from any event while the
	// record has none, for the notices of events that carry no decision.
	ContactEmail string
	// Unannounced: a status change this event makes waits to be announced
	// (the business's hooks to be started; MarkAnnounced records that they
	// were). Without it, there being nothing to announce, the change is
	// recorded announced at once.
	Unannounced bool
}

// RecordResult reports what RecordEvent did with an event.
type RecordResult struct {
	// Duplicate is true when the event key was already recorded; nothing
	// was written, and Applied and PreviousStatus are those of the first
	// recording.
	Duplicate bool
	// Applied is true when the event became the verification's current
	// state. An event no newer than the current one is logged but not applied.
	Applied bool
	// PreviousStatus is the record's status before the event ("" for a
	// new session), so callers can tell a status change from a data edit.
	PreviousStatus string
	// CurrentStatus is the record's status after the call.
	CurrentStatus string
	// Erased is true when the session was erased (EraseSession): the event
	// was recorded without its personal fields, and calls for no notice
	// and no fetch of the decision.
	Erased bool
	// Sequence is the session's number for the status change the event
	// made (of the first recording, for a Duplicate); 0 if it made none.
	Sequence int64
	// StatusSequence is the number of the change that set CurrentStatus.
	StatusSequence int64
	// Announced: the status change numbered Sequence has been announced
	// (MarkAnnounced), or needed no announcement. Only a Duplicate can
	// report it: a redelivery, as opposed to a first recording whose
	// answer was lost, whose announcement is still to be made.
	Announced bool
}

// SessionRecord is the business's record of one Didit session, as of the
// newest event applied to it.
type SessionRecord struct {
	SessionID string
	Status    string
	// EventCreatedAt and EventKey identify the event that set Status.
	EventCreatedAt  int64
	EventKey        string
	VendorData      string
	WebhookType     string
	AMLHits         int
	AMLMaxRiskScore *float64
	// NeedsAttention flags the session for an operator, and Attention says
	// why. Events leave them as they are; only SetAttention changes them.
	NeedsAttention bool
	Attention      string
	FirstSeenAt    time.Time
	UpdatedAt      time.Time
	// ErasedAt is when the session was last erased (EraseSession); zero if
	// it never was. An erased session's later events are recorded without
	// personal fields. A record erased before any event came has no Status.
	ErasedAt time.Time
}

// Event is one entry of a session's append-only event log.
type Event struct {
	ID             int64
	SessionID      string
	EventKey       string
	WebhookType    string
	Status         string
	EventCreatedAt int64
	ReceivedAt     time.Time
	// Applied reports whether the event changed the verification record.
	Applied bool
}

// RecordEvent appends e to its session's event log and, if e is newer than
// the event behind the current record, makes it the current state, all in
// one transaction.
//
// Ordering is by EventCreatedAt, then StatusRank: an event that is not
// strictly later by that order is logged but not applied, so redeliveries
// and late arrivals never move a record backwards. The conditional upsert makes this
// hold when several processes record events for one session at once.
func (s *Store) RecordEvent(ctx context.Context, e EventRecord) (RecordResult, error) {
	res, err := s.RecordEvents(ctx, []EventRecord{e})
	if err != nil {
		return RecordResult{}, err
	}
	return res[0], nil
}

// RecordEvents records events as RecordEvent does, in order and in one
// transaction: a burst of one session's deliveries costs one commit.
func (s *Store) RecordEvents(ctx context.Context, events []EventRecord) ([]RecordResult, error) {
	for _, e := range events {
		if e.SessionID == "" || e.EventKey == "" {
			return nil, fmt.Errorf("record event %q: session id and event key are required: %w", e.EventKey, ErrInvalid)
		}
	}
	out := make([]RecordResult, len(events))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for i, e := range events {
			res, err := s.recordEvent(ctx, tx, e)
			if err != nil {
				return fmt.Errorf("record event %s: %w", e.EventKey, err)
			}
			out[i] = res
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, e := range events {
		s.logger.DebugContext(ctx, "event recorded",
			"session_id", e.SessionID, "event_key", e.EventKey,
			"duplicate", out[i].Duplicate, "applied", out[i].Applied)
	}
	return out, nil
}

// recordEvent is one event of RecordEvents, inside its transaction.
func (s *Store) recordEvent(ctx context.Context, tx *sql.Tx, e EventRecord) (RecordResult, error) {
	now := s.clock().Unix()
	receivedAt := s.unixOrNow(e.ReceivedAt)
	var res RecordResult
	var id int64
	err := tx.QueryRowContext(ctx, s.q(`
		INSERT INTO verification_events
			(session_id, event_key, webhook_type, status, event_created_at, received_at, applied)
		VALUES (?, ?, ?, ?, ?, ?, FALSE)
		ON CONFLICT (session_id, event_key) DO NOTHING
		RETURNING id`),
		e.SessionID, e.EventKey, e.WebhookType, e.Status, e.EventCreatedAt, receivedAt,
	).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		// Report what the first recording did, so a caller whose first
		// attempt committed but never heard back still learns it.
		res.Duplicate = true
		var erasedAt sql.NullInt64
		var announced int64
		err = tx.QueryRowContext(ctx, s.q(`
			SELECT e.applied, e.previous_status, e.seq, v.status, v.erased_at, v.status_seq, v.announced_seq
			FROM verification_events e JOIN verifications v ON v.session_id = e.session_id
			WHERE e.session_id = ? AND e.event_key = ?`), e.SessionID, e.EventKey,
		).Scan(&res.Applied, &res.PreviousStatus, &res.Sequence, &res.CurrentStatus, &erasedAt, &res.StatusSequence, &announced)
		res.Erased = erasedAt.Valid
		res.Announced = res.Sequence > 0 && res.Sequence <= announced
		return res, err
	}
	if err != nil {
		return RecordResult{}, err
	}

	// One workflow records a session's events one at a time; the lock
	// only keeps PreviousStatus exact should two writers ever race.
	lock := ""
	if s.dialect == postgres {
		lock = " FOR UPDATE"
	}
	var erasedAt sql.NullInt64
	err = tx.QueryRowContext(ctx, s.q(`SELECT status, erased_at, status_seq FROM verifications WHERE session_id = ?`+lock), e.SessionID).
		Scan(&res.PreviousStatus, &erasedAt, &res.StatusSequence)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return RecordResult{}, err
	}
	res.Erased = erasedAt.Valid

	// vendor_data is the business's own reference for the user; an event
	// that omits it must not erase it, and one of an erased session must
	// not bring it back (the guard is here, in the write itself, so that no
	// caller can forget it). A session that moves is not stale, so an
	// applied event also resets reconciliation's backoff.
	r, err := tx.ExecContext(ctx, s.q(`
		INSERT INTO verifications
			(session_id, status, status_rank, event_created_at, event_key, vendor_data, webhook_type,
			 aml_hits, aml_max_risk_score, needs_attention, first_seen_at, updated_at, applied_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, ?, ?, ?)
		ON CONFLICT (session_id) DO UPDATE SET
			status             = excluded.status,
			status_rank        = excluded.status_rank,
			event_created_at   = excluded.event_created_at,
			event_key          = excluded.event_key,
			vendor_data        = CASE WHEN excluded.vendor_data = '' OR verifications.erased_at IS NOT NULL
			                          THEN verifications.vendor_data ELSE excluded.vendor_data END,
			webhook_type       = excluded.webhook_type,
			aml_hits           = excluded.aml_hits,
			aml_max_risk_score = excluded.aml_max_risk_score,
			updated_at         = excluded.updated_at,
			applied_at         = excluded.applied_at,
			stale_checks       = 0,
			next_check_at      = NULL
		WHERE (excluded.event_created_at > verifications.event_created_at
		       OR (excluded.event_created_at = verifications.event_created_at
		           AND excluded.status_rank > verifications.status_rank))
		  AND (? = FALSE OR excluded.status_rank >= verifications.status_rank)`),
		e.SessionID, e.Status, e.StatusRank, e.EventCreatedAt, e.EventKey, e.VendorData, e.WebhookType,
		e.AMLHits, e.AMLMaxRiskScore, now, now, now, e.ForwardOnly,
	)
	if err != nil {
		return RecordResult{}, err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return RecordResult{}, err
	}
	res.CurrentStatus = res.PreviousStatus
	if n > 0 {
		res.Applied = true
		res.CurrentStatus = e.Status
	}
	if e.ContactEmail != "" {
		_, err = tx.ExecContext(ctx, s.q(`
			UPDATE verifications SET contact_email = ?
			WHERE session_id = ? AND (? OR contact_email = '') AND erased_at IS NULL`),
			e.ContactEmail, e.SessionID, res.Applied)
		if err != nil {
			return RecordResult{}, err
		}
	}
	if res.Applied && e.Status != res.PreviousStatus {
		// The session's next number; the right-hand sides all read the
		// row as it was.
		err = tx.QueryRowContext(ctx, s.q(`
			UPDATE verifications SET last_seq = last_seq + 1, status_seq = last_seq + 1,
				announced_seq = CASE WHEN ? THEN announced_seq ELSE last_seq + 1 END
			WHERE session_id = ? RETURNING status_seq`), e.Unannounced, e.SessionID).Scan(&res.Sequence)
		if err != nil {
			return RecordResult{}, err
		}
		res.StatusSequence = res.Sequence
	}
	_, err = tx.ExecContext(ctx, s.q(`UPDATE verification_events SET applied = ?, previous_status = ?, seq = ? WHERE id = ?`),
		res.Applied, res.PreviousStatus, res.Sequence, id)
	return res, err
}

// SessionStatus is where a session stands, as its records say.
type SessionStatus struct {
	Status string
	// Sequence is the number of the status change that set Status, and At
	// the time of the event that made it (Unix seconds).
	Sequence int64
	At       int64
}

// StatusOf returns where a session stands; the zero SessionStatus for a
// session never recorded.
func (s *Store) StatusOf(ctx context.Context, sessionID string) (SessionStatus, error) {
	var st SessionStatus
	var changedAt sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q(`
		SELECT v.status, v.status_seq, v.event_created_at,
		       (SELECT e.event_created_at FROM verification_events e
		        WHERE e.session_id = v.session_id AND e.seq = v.status_seq AND e.seq > 0)
		FROM verifications v WHERE v.session_id = ?`), sessionID).Scan(&st.Status, &st.Sequence, &st.At, &changedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return SessionStatus{}, nil
	}
	if err != nil {
		return SessionStatus{}, fmt.Errorf("read status of %s: %w", sessionID, err)
	}
	if changedAt.Valid {
		// The record's time is its latest applied event's, which may be a
		// later edit of the same status.
		st.At = changedAt.Int64
	}
	return st, nil
}

// MarkAnnounced records that the session's status changes up to seq have
// been announced: a redelivery of their events is reported Announced.
func (s *Store) MarkAnnounced(ctx context.Context, sessionID string, seq int64) error {
	_, err := s.db.ExecContext(ctx, s.q(`
		UPDATE verifications SET announced_seq = CASE WHEN ? > announced_seq THEN ? ELSE announced_seq END
		WHERE session_id = ?`), seq, seq, sessionID)
	if err != nil {
		return fmt.Errorf("mark %s announced up to %d: %w", sessionID, seq, err)
	}
	return nil
}

// Session returns the record of a session, or ErrNotFound.
func (s *Store) Session(ctx context.Context, sessionID string) (SessionRecord, error) {
	v, err := scanSession(s.db.QueryRowContext(ctx, s.q(`
		SELECT `+verificationColumns+` FROM verifications WHERE session_id = ?`), sessionID))
	if errors.Is(err, sql.ErrNoRows) {
		return SessionRecord{}, fmt.Errorf("get session record %s: %w", sessionID, ErrNotFound)
	}
	if err != nil {
		return SessionRecord{}, fmt.Errorf("get session record %s: %w", sessionID, err)
	}
	return v, nil
}

// ContactAddress returns the user's recorded contact address ("" when no
// event gave one), or ErrNotFound for a session never recorded. It is
// personal data: callers use it to send a notice and never log it.
func (s *Store) ContactAddress(ctx context.Context, sessionID string) (string, error) {
	var email string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT contact_email FROM verifications WHERE session_id = ?`), sessionID).Scan(&email)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("get contact address of %s: %w", sessionID, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("get contact address of %s: %w", sessionID, err)
	}
	return email, nil
}

// Erased reports whether the session was erased (EraseSession). An erased
// session's events are recorded without personal fields, and nothing is
// sent or fetched for it: the activities ask here before they mail the
// user or call Didit. A session never recorded is not erased.
func (s *Store) Erased(ctx context.Context, sessionID string) (bool, error) {
	var erasedAt sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT erased_at FROM verifications WHERE session_id = ?`), sessionID).Scan(&erasedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read whether %s was erased: %w", sessionID, err)
	}
	return erasedAt.Valid, nil
}

// RecentSessions returns up to limit records, most recently updated first.
func (s *Store) RecentSessions(ctx context.Context, limit int) ([]SessionRecord, error) {
	out, err := collect(ctx, s, s.db, `
		SELECT `+verificationColumns+` FROM verifications ORDER BY updated_at DESC, session_id LIMIT ?`, []any{limit}, scanSession)
	if err != nil {
		return nil, fmt.Errorf("list verifications: %w", err)
	}
	return out, nil
}

const verificationColumns = `session_id, status, event_created_at, event_key, vendor_data, webhook_type,
		       aml_hits, aml_max_risk_score, needs_attention, attention, first_seen_at, updated_at, erased_at`

func scanSession(row scanner) (SessionRecord, error) {
	var (
		v          SessionRecord
		risk       sql.NullFloat64
		first, upd int64
		erased     sql.NullInt64
	)
	if err := row.Scan(&v.SessionID, &v.Status, &v.EventCreatedAt, &v.EventKey, &v.VendorData, &v.WebhookType,
		&v.AMLHits, &risk, &v.NeedsAttention, &v.Attention, &first, &upd, &erased); err != nil {
		return SessionRecord{}, err
	}
	if risk.Valid {
		v.AMLMaxRiskScore = &risk.Float64
	}
	v.FirstSeenAt, v.UpdatedAt, v.ErasedAt = fromUnix(first), fromUnix(upd), fromNullUnix(erased)
	return v, nil
}

// Events returns a session's event log, oldest event first; events with the
// same timestamp are in the order they were recorded. A session without
// events yields an empty list.
func (s *Store) Events(ctx context.Context, sessionID string) ([]Event, error) {
	events, err := collect(ctx, s, s.db, `
		SELECT id, session_id, event_key, webhook_type, status, event_created_at, received_at, applied
		FROM verification_events WHERE session_id = ?
		ORDER BY event_created_at, id`, []any{sessionID}, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("list events of %s: %w", sessionID, err)
	}
	return events, nil
}

func scanEvent(row scanner) (Event, error) {
	var (
		e        Event
		received int64
	)
	err := row.Scan(&e.ID, &e.SessionID, &e.EventKey, &e.WebhookType, &e.Status, &e.EventCreatedAt, &received, &e.Applied)
	e.ReceivedAt = fromUnix(received)
	return e, err
}

// SetAttention sets a session's flag and the reasons for it (no personal
// data: they name steps and kinds of trouble). It returns ErrNotFound when
// the session has no record yet. An erased session takes the flag without
// the reasons, which erasure blanks because they may quote a mail server's
// reply; the workflow's state query still shows them.
func (s *Store) SetAttention(ctx context.Context, sessionID string, needs bool, attention string) error {
	r, err := s.db.ExecContext(ctx, s.q(`
		UPDATE verifications SET needs_attention = ?, attention = CASE WHEN erased_at IS NULL THEN ? ELSE '' END, updated_at = ?
		WHERE session_id = ?`),
		needs, attention, s.clock().Unix(), sessionID)
	return oneRow(r, err, "set attention on "+sessionID)
}
