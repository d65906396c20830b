package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/diditflow/diditflow/internal/pii"
)

// NotificationState is where a notification stands.
type NotificationState string

// The states of a notification and the moves between them:
//
//	(none) ──ClaimNotification──▶ claimed ◀──┐ ClaimNotification (another attempt)
//	claimed ──MarkNotificationSending──▶ sending          the last moment before handover
//	sending ──MarkNotificationNotSent──▶ claimed          a reply refused it, or it never left
//	claimed, sending ──MarkNotificationSent──▶ sent       acknowledged (maybe partly: Refused)
//	sending ──MarkNotificationInDoubt──▶ sent             handed over, the reply never recorded
//	claimed, sending ──MarkNotificationUndeliverable──▶ undeliverable
//
// sent and undeliverable are final. A claim succeeds only on a claimed
// notification, so a notification left sending is never sent again.
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
	// Detail says why the notification is undeliverable, in doubt or partly
	// sent, or, while claimed again, why the last attempt did not send it.
	Detail string
	// Refused lists the recipients the mail server refused for good while
	// it accepted the others (or, when undeliverable, refused them all). It
	// is kept in Detail, from which it is read back.
	Refused []RefusedRecipient
}

// RefusedRecipient is a recipient a mail server refused for good, without
// its address.
type RefusedRecipient struct {
	// RecipientHash is pii.HashAddress of the address.
	RecipientHash string
	Code          int    // reply code, such as 550
	Enhanced      string // RFC 3463 status code such as "5.1.1", or empty
	// Text is the server's text; anything shaped like an address is
	// redacted before it is stored.
	Text string
}

// refusedPattern reads back what formatRefused writes; the 64-hex hash is
// what no server text or caller detail plausibly holds.
var refusedPattern = regexp.MustCompile(`sha256:([0-9a-f]{64}) (\d{3})(?: ([245]\.\d{1,3}\.\d{1,3}))? ("(?:[^"\\]|\\.)*")`)

// formatRefused renders refusals for Detail, "" for none.
func formatRefused(refused []RefusedRecipient) string {
	if len(refused) == 0 {
		return ""
	}
	parts := make([]string, 0, len(refused))
	for _, r := range refused {
		p := "sha256:" + r.RecipientHash + " " + strconv.Itoa(r.Code)
		if r.Enhanced != "" {
			p += " " + r.Enhanced
		}
		parts = append(parts, p+" "+strconv.QuoteToASCII(pii.RedactAddresses(r.Text)))
	}
	return "refused " + strings.Join(parts, ", ")
}

// parseRefused reads the refusals back from a Detail.
func parseRefused(detail string) []RefusedRecipient {
	var out []RefusedRecipient
	for _, m := range refusedPattern.FindAllStringSubmatch(detail, -1) {
		code, _ := strconv.Atoi(m[2])
		text, err := strconv.Unquote(m[4])
		if err != nil {
			text = m[4]
		}
		out = append(out, RefusedRecipient{RecipientHash: m[1], Code: code, Enhanced: m[3], Text: text})
	}
	return out
}

// checkRefused refuses anything but hashes as identities, so an address
// cannot be stored by mistake.
func checkRefused(refused []RefusedRecipient) error {
	for i, r := range refused {
		if !isSHA256Hex(r.RecipientHash) || strings.ToLower(r.RecipientHash) != r.RecipientHash {
			return fmt.Errorf("refused recipient %d: hash is not a lower-case SHA-256 hex digest: %w", i, ErrInvalid)
		}
		if r.Code < 100 || r.Code > 999 {
			return fmt.Errorf("refused recipient %d: reply code %d: %w", i, r.Code, ErrInvalid)
		}
		if r.Enhanced != "" && !enhancedPattern.MatchString(r.Enhanced) {
			return fmt.Errorf("refused recipient %d: enhanced status code: %w", i, ErrInvalid)
		}
	}
	return nil
}

var enhancedPattern = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}$`)

// joinDetail joins the non-empty parts of a detail with "; ".
func joinDetail(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "; ")
}

// ClaimNotification claims the kind notification of a session for sending
// and reports whether the caller should send it now.
//
// claimed is false once the notification is sending, sent or undeliverable,
// so the caller does not send it. It is true for a new notification and for
// one still claimed by an earlier attempt that stopped before handing the
// message over, or that learned it was not delivered (MarkNotificationNotSent:
// a refusal, even of the whole message, is not a delivery, so an operator's
// retry sends it); every claim counts an attempt. A notification left sending
// was handed to the mail server by an attempt that stopped before hearing
// back: it was most likely delivered, and sending it again could duplicate
// it, so the caller should settle it with MarkNotificationInDoubt.
//
// recipientHash must be pii.HashAddress of the address (64 hex digits), so a
// raw address is refused rather than stored.
func (s *Store) ClaimNotification(ctx context.Context, sessionID, kind, recipientHash string) (Notification, bool, error) {
	return s.claimNotification(ctx, sessionID, kind, recipientHash, false)
}

// ClaimUserNotification is ClaimNotification for a notice to the session's
// user: refused with ErrErased once the session is erased, checked in the
// claim's own transaction (the session's record locked on PostgreSQL), so
// an erasure that lands after a caller last looked still stops the mail.
func (s *Store) ClaimUserNotification(ctx context.Context, sessionID, kind, recipientHash string) (Notification, bool, error) {
	return s.claimNotification(ctx, sessionID, kind, recipientHash, true)
}

func (s *Store) claimNotification(ctx context.Context, sessionID, kind, recipientHash string, user bool) (Notification, bool, error) {
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
		if user {
			lock := ""
			if s.dialect == postgres {
				lock = " FOR UPDATE"
			}
			var erased bool
			err := tx.QueryRowContext(ctx, s.q(`SELECT erased_at IS NOT NULL FROM verifications WHERE session_id = ?`+lock), sessionID).Scan(&erased)
			switch {
			case err != nil && !errors.Is(err, sql.ErrNoRows):
				return err
			case erased:
				return ErrErased
			}
		}
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
// about to be handed over (just before SMTP's final ".", or the outbox's
// rename): from here a crash leaves it in doubt. refused are the recipients
// the server refused for good so far; they are kept for MarkNotificationInDoubt.
// Marking it again is a no-op; a notification in a final state returns
// ErrConflict.
func (s *Store) MarkNotificationSending(ctx context.Context, sessionID, kind string, refused ...RefusedRecipient) error {
	if err := checkRefused(refused); err != nil {
		return fmt.Errorf("mark notification %s/%s sending: %w", sessionID, kind, err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return s.transition(ctx, tx, string(NotificationSending),
			`UPDATE notifications SET state = 'sending', detail = ?
			WHERE session_id = ? AND kind = ? AND state IN ('claimed', 'sending')`,
			[]any{formatRefused(refused), sessionID, kind},
			`SELECT state FROM notifications WHERE session_id = ? AND kind = ?`, sessionID, kind)
	})
	if err != nil {
		return fmt.Errorf("mark notification %s/%s sending: %w", sessionID, kind, err)
	}
	return nil
}

// MarkNotificationNotSent records that an attempt ended knowing its message
// was delivered to no one: the mail server refused it with a reply (a 4xx or
// 5xx, to the final "." too), or it never got the whole message. The
// notification goes back to claimed, even from sending, so that the next
// claim sends it; detail, with addresses redacted, says why. Marking it
// again is a no-op; a notification in a final state returns ErrConflict.
func (s *Store) MarkNotificationNotSent(ctx context.Context, sessionID, kind, detail string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return s.transition(ctx, tx, string(NotificationClaimed),
			`UPDATE notifications SET state = 'claimed', detail = ?
			WHERE session_id = ? AND kind = ? AND state IN ('claimed', 'sending')`,
			[]any{joinDetail("not sent", pii.RedactAddresses(detail)), sessionID, kind},
			`SELECT state FROM notifications WHERE session_id = ? AND kind = ?`, sessionID, kind)
	})
	if err != nil {
		return fmt.Errorf("mark notification %s/%s not sent: %w", sessionID, kind, err)
	}
	return nil
}

// inDoubtDetail is the Detail of a notification settled in doubt.
const inDoubtDetail = "in doubt: handed to the mail server, acknowledgement not recorded"

// MarkNotificationInDoubt settles a notification left sending as sent, with
// a detail saying its delivery was not confirmed (and the refusals recorded
// when it was marked sending).
func (s *Store) MarkNotificationInDoubt(ctx context.Context, sessionID, kind string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var detail string
		err := tx.QueryRowContext(ctx, s.q(`SELECT detail FROM notifications WHERE session_id = ? AND kind = ?`),
			sessionID, kind).Scan(&detail)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return s.finish(ctx, tx, sessionID, kind, NotificationSent,
			joinDetail(inDoubtDetail, formatRefused(parseRefused(detail))))
	})
	if err != nil {
		return fmt.Errorf("mark notification %s/%s in doubt: %w", sessionID, kind, err)
	}
	return nil
}

// MarkNotificationSent records that a claimed notification was sent: to
// every recipient, or, with refused, to all but those, which the detail
// then lists (Notification.Refused). Marking a sent notification again is a
// no-op; marking an undeliverable one returns ErrConflict, and an unclaimed
// one ErrNotFound.
func (s *Store) MarkNotificationSent(ctx context.Context, sessionID, kind string, refused ...RefusedRecipient) error {
	err := checkRefused(refused)
	if err == nil {
		detail := ""
		if len(refused) > 0 {
			detail = joinDetail("partly sent", formatRefused(refused))
		}
		err = s.finishNotification(ctx, sessionID, kind, NotificationSent, detail)
	}
	if err != nil {
		return fmt.Errorf("mark notification %s/%s sent: %w", sessionID, kind, err)
	}
	return nil
}

// MarkNotificationUndeliverable records that a claimed notification can never
// be delivered, and why, so later claims skip it; refused lists the
// recipients the server refused, if that is why. Marking it again is a
// no-op that keeps the first detail; marking a sent notification returns
// ErrConflict, and an unclaimed one ErrNotFound.
//
// detail must not carry PII. Anything shaped like an email address, as an
// SMTP error may quote, is redacted before it is stored.
func (s *Store) MarkNotificationUndeliverable(ctx context.Context, sessionID, kind, detail string, refused ...RefusedRecipient) error {
	err := checkRefused(refused)
	if err == nil {
		err = s.finishNotification(ctx, sessionID, kind, NotificationUndeliverable,
			joinDetail(pii.RedactAddresses(detail), formatRefused(refused)))
	}
	if err != nil {
		return fmt.Errorf("mark notification %s/%s undeliverable: %w", sessionID, kind, err)
	}
	return nil
}

// finishNotification moves a claimed or sending notification to the final
// state to.
func (s *Store) finishNotification(ctx context.Context, sessionID, kind string, to NotificationState, detail string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return s.finish(ctx, tx, sessionID, kind, to, detail)
	})
}

func (s *Store) finish(ctx context.Context, tx *sql.Tx, sessionID, kind string, to NotificationState, detail string) error {
	var sentAt sql.NullInt64
	if to == NotificationSent {
		sentAt = sql.NullInt64{Int64: s.clock().Unix(), Valid: true}
	}
	return s.transition(ctx, tx, string(to),
		`UPDATE notifications SET state = ?, sent_at = ?, detail = ?
		WHERE session_id = ? AND kind = ? AND state IN ('claimed', 'sending')`,
		[]any{string(to), sentAt, detail, sessionID, kind},
		`SELECT state FROM notifications WHERE session_id = ? AND kind = ?`, sessionID, kind)
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
	ns, err := collect(ctx, s, s.db, `
		SELECT `+notificationColumns+` FROM notifications WHERE session_id = ? ORDER BY kind`, []any{sessionID}, scanNotification)
	if err != nil {
		return nil, fmt.Errorf("list notifications of %s: %w", sessionID, err)
	}
	return ns, nil
}

const notificationColumns = `session_id, kind, state, recipient_hash, attempts, claimed_at, sent_at, detail`

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
	n.Refused = parseRefused(n.Detail)
	return n, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
