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
	// Identity is the Temporal identity of the client that sent the resolve
	// Update (empty for a signal).
	Identity string
	Note     string
	// ResolvedAt is when the case was resolved; zero means now.
	ResolvedAt time.Time
}

// AMLCase is a compliance case for AML hits of a session. A session's first
// case is aml-case-<session_id>; hits found later open follow-ups.
type AMLCase struct {
	// CaseID is the case workflow's ID, which keys the case.
	CaseID    string
	SessionID string
	// FollowUpOf is the session's first case, for a follow-up.
	FollowUpOf string
	State      AMLCaseState
	// OpenedAt is when the case was opened; zero means now.
	OpenedAt      time.Time
	Hits          []AMLHit
	RemindersSent int
	// Escalated stays true once any reminder escalated the case.
	Escalated bool
	// Resolution is nil while the case is open.
	Resolution *Resolution
	// NeedsAttention and Attention mirror the case workflow's flags: set
	// only by SetCaseAttention.
	NeedsAttention bool
	Attention      string
}

// OpenAMLCase opens the case c.CaseID of c.SessionID with c.FollowUpOf,
// c.OpenedAt and c.Hits; the other fields are ignored. created is false when
// the case exists already, which is left as it was.
func (s *Store) OpenAMLCase(ctx context.Context, c AMLCase) (created bool, err error) {
	if c.CaseID == "" || c.SessionID == "" {
		return false, fmt.Errorf("open aml case: case and session ids are required: %w", ErrInvalid)
	}
	hits := c.Hits
	if hits == nil {
		hits = []AMLHit{}
	}
	hitsJSON, err := json.Marshal(hits)
	if err != nil {
		return false, fmt.Errorf("open aml case %s: %w", c.CaseID, err)
	}
	r, err := s.db.ExecContext(ctx, s.q(`
		INSERT INTO aml_cases (case_id, session_id, follow_up_of, state, opened_at, hits, reminders_sent, escalated)
		VALUES (?, ?, ?, 'open', ?, ?, 0, FALSE)
		ON CONFLICT (case_id) DO NOTHING`),
		c.CaseID, c.SessionID, c.FollowUpOf, s.unixOrNow(c.OpenedAt), string(hitsJSON))
	if err != nil {
		return false, fmt.Errorf("open aml case %s: %w", c.CaseID, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("open aml case %s: %w", c.CaseID, err)
	}
	return n == 1, nil
}

const amlCaseColumns = `case_id, session_id, follow_up_of, state, opened_at, hits, reminders_sent, escalated,
		       resolution, reviewer, reviewer_identity, note, resolved_at, needs_attention, attention`

func scanAMLCase(row scanner) (AMLCase, error) {
	var (
		c          AMLCase
		openedAt   int64
		hits       string
		outcome    sql.NullString
		reviewer   string
		identity   string
		note       string
		resolvedAt sql.NullInt64
	)
	if err := row.Scan(&c.CaseID, &c.SessionID, &c.FollowUpOf, &c.State, &openedAt, &hits, &c.RemindersSent, &c.Escalated,
		&outcome, &reviewer, &identity, &note, &resolvedAt, &c.NeedsAttention, &c.Attention); err != nil {
		return AMLCase{}, err
	}
	if err := json.Unmarshal([]byte(hits), &c.Hits); err != nil {
		return AMLCase{}, fmt.Errorf("decode hits: %w", err)
	}
	c.OpenedAt = fromUnix(openedAt)
	if outcome.Valid {
		c.Resolution = &Resolution{
			Outcome:    contract.Outcome(outcome.String),
			Reviewer:   reviewer,
			Identity:   identity,
			Note:       note,
			ResolvedAt: fromNullUnix(resolvedAt),
		}
	}
	return c, nil
}

// AMLCase returns a case by its ID, or ErrNotFound.
func (s *Store) AMLCase(ctx context.Context, caseID string) (AMLCase, error) {
	c, err := scanAMLCase(s.db.QueryRowContext(ctx, s.q(`SELECT `+amlCaseColumns+` FROM aml_cases WHERE case_id = ?`), caseID))
	if errors.Is(err, sql.ErrNoRows) {
		return AMLCase{}, fmt.Errorf("get aml case %s: %w", caseID, ErrNotFound)
	}
	if err != nil {
		return AMLCase{}, fmt.Errorf("get aml case %s: %w", caseID, err)
	}
	return c, nil
}

// AMLCases returns a session's cases, first case first.
func (s *Store) AMLCases(ctx context.Context, sessionID string) ([]AMLCase, error) {
	out, err := collect(ctx, s, s.db, `
		SELECT `+amlCaseColumns+` FROM aml_cases WHERE session_id = ? ORDER BY opened_at, case_id`, []any{sessionID}, scanAMLCase)
	if err != nil {
		return nil, fmt.Errorf("list aml cases of %s: %w", sessionID, err)
	}
	return out, nil
}

// RecordAMLReminder records that reminder number n of a case was sent, and
// whether it went to the escalation contact. It is idempotent: recording the
// same reminder again (an activity retry) does not count it twice.
func (s *Store) RecordAMLReminder(ctx context.Context, caseID string, reminder int, escalated bool) error {
	r, err := s.db.ExecContext(ctx, s.q(`
		UPDATE aml_cases SET reminders_sent = CASE WHEN ? > reminders_sent THEN ? ELSE reminders_sent END,
		                     escalated = (escalated OR ?)
		WHERE case_id = ?`),
		reminder, reminder, escalated, caseID)
	return oneRow(r, err, "record aml reminder for "+caseID)
}

// ResolveAMLCase closes an open case with res. Resolving a resolved case with
// the same outcome is a no-op that keeps the first reviewer, identity, note and time;
// another outcome returns ErrConflict, because a verdict is only changed by
// a person, not by a retry.
func (s *Store) ResolveAMLCase(ctx context.Context, caseID string, res Resolution) error {
	if !res.Outcome.Valid() {
		return fmt.Errorf("resolve aml case %s: unknown outcome %q: %w", caseID, res.Outcome, ErrInvalid)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return s.transition(ctx, tx, string(res.Outcome),
			`UPDATE aml_cases SET state = 'resolved', resolution = ?, reviewer = ?, reviewer_identity = ?, note = ?, resolved_at = ?
			WHERE case_id = ? AND state = 'open'`,
			[]any{string(res.Outcome), res.Reviewer, res.Identity, res.Note, s.unixOrNow(res.ResolvedAt), caseID},
			`SELECT resolution FROM aml_cases WHERE case_id = ?`, caseID)
	})
	if err != nil {
		return fmt.Errorf("resolve aml case %s: %w", caseID, err)
	}
	return nil
}

// ResolutionSequence numbers a resolved case's resolution in its session's
// sequence, once: asked again, it returns the same number. A session
// without a record gives 0.
func (s *Store) ResolutionSequence(ctx context.Context, caseID string) (int64, error) {
	var seq int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var sessionID string
		err := tx.QueryRowContext(ctx, s.q(`SELECT session_id, seq FROM aml_cases WHERE case_id = ?`), caseID).Scan(&sessionID, &seq)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil || seq > 0 {
			return err
		}
		err = tx.QueryRowContext(ctx, s.q(`UPDATE verifications SET last_seq = last_seq + 1 WHERE session_id = ? RETURNING last_seq`),
			sessionID).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			seq = 0
			return nil
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE aml_cases SET seq = ? WHERE case_id = ?`), seq, caseID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("number the resolution of aml case %s: %w", caseID, err)
	}
	return seq, nil
}

// SetCaseAttention sets a case's flag and the reasons for it (no personal
// data: they name steps and kinds of trouble). ErrNotFound when the case was
// never recorded.
func (s *Store) SetCaseAttention(ctx context.Context, caseID string, needs bool, attention string) error {
	r, err := s.db.ExecContext(ctx, s.q(`UPDATE aml_cases SET needs_attention = ?, attention = ? WHERE case_id = ?`),
		needs, attention, caseID)
	return oneRow(r, err, "set attention on aml case "+caseID)
}

// oneRow checks that an UPDATE of one keyed row found it.
func oneRow(r sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// Gauges are counts for monitoring.
type Gauges struct {
	OpenAMLCases int
	// OverdueAMLCases are open cases past escalation: AML_ESCALATE_AFTER
	// reminders went out and compliance has not decided.
	OverdueAMLCases int
	NeedsAttention  int
	// Sessions counts the verification records by their current status.
	Sessions map[string]int
}

// Gauges counts open and overdue AML cases, sessions flagged for an
// operator, and sessions by status.
func (s *Store) Gauges(ctx context.Context) (Gauges, error) {
	g := Gauges{Sessions: map[string]int{}}
	err := s.db.QueryRowContext(ctx, `
		SELECT (SELECT COUNT(*) FROM aml_cases WHERE state = 'open'),
		       (SELECT COUNT(*) FROM aml_cases WHERE state = 'open' AND escalated),
		       (SELECT COUNT(*) FROM verifications WHERE needs_attention)`).Scan(&g.OpenAMLCases, &g.OverdueAMLCases, &g.NeedsAttention)
	if err != nil {
		return Gauges{}, fmt.Errorf("count gauges: %w", err)
	}
	// A session erased before any event has a record without a status.
	err = s.each(ctx, s.db, `SELECT status, COUNT(*) FROM verifications WHERE status <> '' GROUP BY status`, nil,
		func(rows *sql.Rows) error {
			var status string
			var n int
			if err := rows.Scan(&status, &n); err != nil {
				return err
			}
			g.Sessions[status] = n
			return nil
		})
	if err != nil {
		return Gauges{}, fmt.Errorf("count sessions by status: %w", err)
	}
	return g, nil
}
