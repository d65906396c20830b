package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/diditflow/diditflow/internal/pii"
)

// NotificationState is where a notification stands.
type NotificationState string

// A notification is claimed before it is sent, is sending from the moment
// the message is with the mail server but not yet acknowledged, and ends
// sent or undeliverable.
const (
	NotificationClaimed       NotificationState = "claimed"
	NotificationSending       NotificationState = "sending"
	NotificationSent          NotificationState = "sent"
	NotificationUndeliverable NotificationState = "undeliverable"
)

// Notification is a message to the user about a session, one per kind.
type Notification struct {
	SessionID string
	Kind      string
	State     NotificationState
	// RecipientHash is pii.HashAddress of the address of the latest attempt.
	RecipientHash string
	// Attempts counts claims, so it exceeds one only after a retry.
	Attempts  int
	ClaimedAt time.Time
	// SentAt is zero until the notification is sent.
	SentAt time.Time
	// Detail says why the notification is undeliverable.
	Detail string
}

// ClaimNotification claims the kind notification of a session for sending
// and reports whether the caller should send it now.
//
// claimed is false once the notification is sending, sent or undeliverable,
// so the caller does not send it. It is true for a new notification and for
// one still claimed by an earlier attempt that stopped before handing the
// message over; every claim counts an attempt. A notification left sending
// was handed to the mail server by an attempt that stopped before hearing
// back: it was most likely delivered, and sending it again could duplicate
// it, so the caller should settle it with MarkNotificationInDoubt.
//
// recipientHash must be pii.HashAddress of the address (64 hex digits), so a
// raw address is refused rather than stored.
func (s *Store) ClaimNotification(ctx context.Context, sessionID, kind, recipientHash string) (Notification, bool, error) {
	if sessionID == "" || kind == "" {
		return Notification{}, false, fmt.Errorf("claim notification %s/%s: session id and kind are required: %w", sessionID, kind, ErrInvalid)
	}
	if !isSHA256Hex(recipientHash) {
		return Notification{}, false, fmt.Errorf("claim notification %s/%s: recipient hash is not a SHA-256 hex digest: %w", sessionID, kind, ErrInvalid)
	}
	var (
		n       Notification
		claimed bool
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		row := tx.QueryRowContext(ctx, s.q(`
			INSERT INTO notifications (session_id, kind, state, recipient_hash, attempts, claimed_at, detail)
			VALUES (?, ?, 'claimed', ?, 1, ?, '')
			ON CONFLICT (session_id, kind) DO UPDATE SET
				attempts       = notifications.attempts + 1,
				recipient_hash = excluded.recipient_hash,
				claimed_at     = excluded.claimed_at
			WHERE notifications.state = 'claimed'
			RETURNING `+notificationColumns),
			sessionID, kind, recipientHash, s.clock().Unix())
		var err error
		n, err = scanNotification(row)
		if err == nil {
			claimed = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// The notification already reached a final state.
		n, err = scanNotification(tx.QueryRowContext(ctx, s.q(`
			SELECT `+notificationColumns+` FROM notifications WHERE session_id = ? AND kind = ?`),
			sessionID, kind))
		return err
	})
	if err != nil {
		return Notification{}, false, fmt.Errorf("claim notification %s/%s: %w", sessionID, kind, err)
	}
	return n, claimed, nil
}

// MarkNotificationSending records that a claimed notification's message is
// with the mail server and only its acknowledgement is outstanding. Marking
// it again is a no-op.
func (s *Store) MarkNotificationSending(ctx context.Context, sessionID, kind string) error {
	r, err := s.db.ExecContext(ctx, s.q(`
		UPDATE notifications SET state = 'sending' WHERE session_id = ? AND kind = ? AND state IN ('claimed', 'sending')`),
		sessionID, kind)
	if err == nil {
		var n int64
		if n, err = r.RowsAffected(); err == nil && n == 0 {
			err = ErrConflict
		}
	}
	if err != nil {
		return fmt.Errorf("mark notification %s/%s sending: %w", sessionID, kind, err)
	}
	return nil
}

// MarkNotificationInDoubt settles a notification left sending as sent, with
// a detail saying its delivery was not confirmed.
func (s *Store) MarkNotificationInDoubt(ctx context.Context, sessionID, kind string) error {
	err := s.finishNotification(ctx, sessionID, kind, NotificationSent,
		"in doubt: handed to the mail server, acknowledgement not recorded")
	if err != nil {
		return fmt.Errorf("mark notification %s/%s in doubt: %w", sessionID, kind, err)
	}
	return nil
}

// MarkNotificationSent records that a claimed notification was sent. Marking
// a sent notification again is a no-op; marking an undeliverable one returns
// ErrConflict, and an unclaimed one ErrNotFound.
func (s *Store) MarkNotificationSent(ctx context.Context, sessionID, kind string) error {
	err := s.finishNotification(ctx, sessionID, kind, NotificationSent, "")
	if err != nil {
		return fmt.Errorf("mark notification %s/%s sent: %w", sessionID, kind, err)
	}
	return nil
}

// MarkNotificationUndeliverable records that a claimed notification can never
// be delivered, and why, so later claims skip it. Marking it again is a
// no-op that keeps the first detail; marking a sent notification returns
// ErrConflict, and an unclaimed one ErrNotFound.
//
// detail must not carry PII. Anything shaped like an email address, as an
// SMTP error may quote, is redacted before it is stored.
func (s *Store) MarkNotificationUndeliverable(ctx context.Context, sessionID, kind, detail string) error {
	err := s.finishNotification(ctx, sessionID, kind, NotificationUndeliverable, pii.RedactAddresses(detail))
	if err != nil {
		return fmt.Errorf("mark notification %s/%s undeliverable: %w", sessionID, kind, err)
	}
	return nil
}

// finishNotification moves a claimed or sending notification to the final
// state to.
func (s *Store) finishNotification(ctx context.Context, sessionID, kind string, to NotificationState, detail string) error {
	var sentAt sql.NullInt64
	if to == NotificationSent {
		sentAt = sql.NullInt64{Int64: s.clock().Unix(), Valid: true}
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return s.transition(ctx, tx, string(to),
			`UPDATE notifications SET state = ?, sent_at = ?, detail = ?
			WHERE session_id = ? AND kind = ? AND state IN ('claimed', 'sending')`,
			[]any{string(to), sentAt, detail, sessionID, kind},
			`SELECT state FROM notifications WHERE session_id = ? AND kind = ?`, sessionID, kind)
	})
}

// Notification returns the kind notification of a session, or ErrNotFound.
func (s *Store) Notification(ctx context.Context, sessionID, kind string) (Notification, error) {
	n, err := scanNotification(s.db.QueryRowContext(ctx, s.q(`
		SELECT `+notificationColumns+` FROM notifications WHERE session_id = ? AND kind = ?`),
		sessionID, kind))
	if errors.Is(err, sql.ErrNoRows) {
		return Notification{}, fmt.Errorf("get notification %s/%s: %w", sessionID, kind, ErrNotFound)
	}
	if err != nil {
		return Notification{}, fmt.Errorf("get notification %s/%s: %w", sessionID, kind, err)
	}
	return n, nil
}

// Notifications returns every notification of a session, ordered by kind.
func (s *Store) Notifications(ctx context.Context, sessionID string) ([]Notification, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`
		SELECT `+notificationColumns+` FROM notifications WHERE session_id = ? ORDER BY kind`),
		sessionID)
	if err != nil {
		return nil, fmt.Errorf("list notifications of %s: %w", sessionID, err)
	}
	defer rows.Close()
	var ns []Notification
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, fmt.Errorf("list notifications of %s: %w", sessionID, err)
		}
		ns = append(ns, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list notifications of %s: %w", sessionID, err)
	}
	return ns, nil
}

const notificationColumns = `session_id, kind, state, recipient_hash, attempts, claimed_at, sent_at, detail`

// scanner is satisfied by *sql.Row and *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

func scanNotification(row scanner) (Notification, error) {
	var (
		n         Notification
		claimedAt int64
		sentAt    sql.NullInt64
	)
	if err := row.Scan(&n.SessionID, &n.Kind, &n.State, &n.RecipientHash, &n.Attempts,
		&claimedAt, &sentAt, &n.Detail); err != nil {
		return Notification{}, err
	}
	n.ClaimedAt, n.SentAt = fromUnix(claimedAt), fromNullUnix(sentAt)
	return n, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
