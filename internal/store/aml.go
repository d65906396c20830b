package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/diditflow/diditflow/internal/contract"
)

// AMLCaseState is where an AML case stands.
type AMLCaseState string

// An AML case is open until compliance resolves it.
const (
	AMLCaseOpen     AMLCaseState = "open"
	AMLCaseResolved AMLCaseState = "resolved"
)

// AMLHit is one screening hit as the case keeps it. It deliberately has no
// field for the matched name or any other detail about the person.
type AMLHit struct {
	ID           string   `json:"id"`
	Datasets     []string `json:"datasets"`
	MatchScore   float64  `json:"match_score"`
	RiskScore    float64  `json:"risk_score"`
	ReviewStatus string   `json:"review_status"`
}

// Resolution is how compliance closed an AML case.
type Resolution struct {
	Outcome contract.Outcome
	// Reviewer identifies the compliance officer, not the user.
	Reviewer string
	Note     string
	// ResolvedAt is when the case was resolved; zero means now.
	ResolvedAt time.Time
}

// AMLCase is the compliance case opened for a session with AML hits, one per
// session.
type AMLCase struct {
	SessionID string
	State     AMLCaseState
	// OpenedAt is when the case was opened; zero means now.
	OpenedAt      time.Time
	Hits          []AMLHit
	RemindersSent int
	// Escalated stays true once any reminder escalated the case.
	Escalated bool
	// Resolution is nil while the case is open.
	Resolution *Resolution
}

// OpenAMLCase opens the AML case of c.SessionID with c.OpenedAt and c.Hits;
// the other fields are ignored. created is false when the session already
// has a case, which is left as it was.
func (s *Store) OpenAMLCase(ctx context.Context, c AMLCase) (created bool, err error) {
	if c.SessionID == "" {
		return false, fmt.Errorf("open aml case: session id is required: %w", ErrInvalid)
	}
	hits := c.Hits
	if hits == nil {
		hits = []AMLHit{}
	}
	hitsJSON, err := json.Marshal(hits)
	if err != nil {
		return false, fmt.Errorf("open aml case %s: %w", c.SessionID, err)
	}
	r, err := s.db.ExecContext(ctx, s.q(`
		INSERT INTO aml_cases (session_id, state, opened_at, hits, reminders_sent, escalated)
		VALUES (?, 'open', ?, ?, 0, FALSE)
		ON CONFLICT (session_id) DO NOTHING`),
		c.SessionID, s.unixOrNow(c.OpenedAt), string(hitsJSON))
	if err != nil {
		return false, fmt.Errorf("open aml case %s: %w", c.SessionID, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("open aml case %s: %w", c.SessionID, err)
	}
	return n == 1, nil
}

// AMLCase returns the AML case of a session, or ErrNotFound.
func (s *Store) AMLCase(ctx context.Context, sessionID string) (AMLCase, error) {
	var (
		c          AMLCase
		openedAt   int64
		hits       string
		outcome    sql.NullString
		reviewer   string
		note       string
		resolvedAt sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, s.q(`
		SELECT session_id, state, opened_at, hits, reminders_sent, escalated,
		       resolution, reviewer, note, resolved_at
		FROM aml_cases WHERE session_id = ?`), sessionID,
	).Scan(&c.SessionID, &c.State, &openedAt, &hits, &c.RemindersSent, &c.Escalated,
		&outcome, &reviewer, &note, &resolvedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return AMLCase{}, fmt.Errorf("get aml case %s: %w", sessionID, ErrNotFound)
	}
	if err != nil {
		return AMLCase{}, fmt.Errorf("get aml case %s: %w", sessionID, err)
	}
	if err := json.Unmarshal([]byte(hits), &c.Hits); err != nil {
		return AMLCase{}, fmt.Errorf("get aml case %s: decode hits: %w", sessionID, err)
	}
	c.OpenedAt = fromUnix(openedAt)
	if outcome.Valid {
		c.Resolution = &Resolution{
			Outcome:    contract.Outcome(outcome.String),
			Reviewer:   reviewer,
			Note:       note,
			ResolvedAt: fromNullUnix(resolvedAt),
		}
	}
	return c, nil
}

// RecordAMLReminder records that reminder number n of a case was sent, and
// whether it went to the escalation contact. It is idempotent: recording the
// same reminder again (an activity retry) does not count it twice.
func (s *Store) RecordAMLReminder(ctx context.Context, sessionID string, reminder int, escalated bool) error {
	r, err := s.db.ExecContext(ctx, s.q(`
		UPDATE aml_cases SET reminders_sent = CASE WHEN ? > reminders_sent THEN ? ELSE reminders_sent END,
		                     escalated = (escalated OR ?)
		WHERE session_id = ?`),
		reminder, reminder, escalated, sessionID)
	if err != nil {
		return fmt.Errorf("record aml reminder for %s: %w", sessionID, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return fmt.Errorf("record aml reminder for %s: %w", sessionID, err)
	}
	if n == 0 {
		return fmt.Errorf("record aml reminder for %s: %w", sessionID, ErrNotFound)
	}
	return nil
}

// ResolveAMLCase closes an open case with res. Resolving a resolved case with
// the same outcome is a no-op that keeps the first reviewer, note and time;
// another outcome returns ErrConflict, because a verdict is only changed by
// a person, not by a retry.
func (s *Store) ResolveAMLCase(ctx context.Context, sessionID string, res Resolution) error {
	if !res.Outcome.Valid() {
		return fmt.Errorf("resolve aml case %s: unknown outcome %q: %w", sessionID, res.Outcome, ErrInvalid)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return s.transition(ctx, tx, string(res.Outcome),
			`UPDATE aml_cases SET state = 'resolved', resolution = ?, reviewer = ?, note = ?, resolved_at = ?
			WHERE session_id = ? AND state = 'open'`,
			[]any{string(res.Outcome), res.Reviewer, res.Note, s.unixOrNow(res.ResolvedAt), sessionID},
			`SELECT resolution FROM aml_cases WHERE session_id = ?`, sessionID)
	})
	if err != nil {
		return fmt.Errorf("resolve aml case %s: %w", sessionID, err)
	}
	return nil
}

// Gauges are counts for monitoring.
type Gauges struct {
	OpenAMLCases   int
	NeedsAttention int
}

// Gauges counts open AML cases and sessions flagged for an operator.
func (s *Store) Gauges(ctx context.Context) (Gauges, error) {
	var g Gauges
	err := s.db.QueryRowContext(ctx, `
		SELECT (SELECT COUNT(*) FROM aml_cases WHERE state = 'open'),
		       (SELECT COUNT(*) FROM verifications WHERE needs_attention)`).Scan(&g.OpenAMLCases, &g.NeedsAttention)
	if err != nil {
		return Gauges{}, fmt.Errorf("count gauges: %w", err)
	}
	return g, nil
}
