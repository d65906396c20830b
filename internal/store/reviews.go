package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
)

// lockCaseHits reads a case's state and hits in tx, locking its row on
// PostgreSQL (SQLite's transactions take the write lock up front), so the
// hits written back are the ones read. ErrNotFound for an unknown case.
func (s *Store) lockCaseHits(ctx context.Context, tx *sql.Tx, caseID string) (AMLCaseState, []AMLHit, error) {
	lock := ""
	if s.dialect == postgres {
		lock = " FOR UPDATE"
	}
	var (
		state AMLCaseState
		raw   string
	)
	err := tx.QueryRowContext(ctx, s.q(`SELECT state, hits FROM aml_cases WHERE case_id = ?`+lock), caseID).Scan(&state, &raw)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, ErrNotFound
	}
	if err != nil {
		return "", nil, err
	}
	var hits []AMLHit
	if err := json.Unmarshal([]byte(raw), &hits); err != nil {
		return "", nil, fmt.Errorf("decode hits: %w", err)
	}
	return state, hits, nil
}

// reviewHits applies reviews to hits and returns those that changed one: a
// review of a hit of the case, with another status, from an event no older
// than the one that showed the hit's status (on a tie, the later to arrive
// wins). A missing status reads as Unreviewed.
func reviewHits(hits []AMLHit, reviews []contract.HitReview) []contract.HitReview {
	var changed []contract.HitReview
	for _, r := range reviews {
		for i := range hits {
			h := &hits[i]
			if h.ID != r.HitID || r.At < h.ReviewedAt || unreviewed(r.ReviewStatus) == unreviewed(h.ReviewStatus) {
				continue
			}
			h.ReviewStatus, h.ReviewedAt = unreviewed(r.ReviewStatus), r.At
			changed = append(changed, contract.HitReview{HitID: h.ID, ReviewStatus: h.ReviewStatus, At: r.At})
		}
	}
	return changed
}

func unreviewed(status string) string {
	if status == "" {
		return didit.ReviewUnreviewed
	}
	return status
}

func (s *Store) writeCaseHits(ctx context.Context, tx *sql.Tx, caseID string, hits []AMLHit) error {
	raw, err := json.Marshal(hits)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q(`UPDATE aml_cases SET hits = ? WHERE case_id = ?`), string(raw), caseID)
	return err
}

// RecordHitReviews records the review statuses Didit shows for hits of a
// case (a review in Didit's console) and returns those that changed a
// hit's; a hit the case does not hold, a status it has, or one from an event
// older than the one it has are left (reviewHits). ErrNotFound for an
// unknown case.
func (s *Store) RecordHitReviews(ctx context.Context, caseID string, reviews []contract.HitReview) ([]contract.HitReview, error) {
	var changed []contract.HitReview
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, hits, err := s.lockCaseHits(ctx, tx, caseID)
		if err != nil {
			return err
		}
		if changed = reviewHits(hits, reviews); len(changed) == 0 {
			return nil
		}
		return s.writeCaseHits(ctx, tx, caseID, hits)
	})
	if err != nil {
		return nil, fmt.Errorf("record hit reviews of aml case %s: %w", caseID, err)
	}
	return changed, nil
}

// ReviewChange is what recording reviews that came after a case's
// resolution did.
type ReviewChange struct {
	// Hits are the reviews that changed a hit's status; none when the
	// reviews were what the records hold (Didit's echo of diditflow's
	// write-back) or older.
	Hits []contract.HitReview
	// Sequence is the change's number in the session's sequence, for the
	// business's hooks (0 without a change, or without a session record).
	Sequence int64
	// State and Outcome are the case's now.
	State   AMLCaseState
	Outcome contract.Outcome
}

// RecordReviewChange records reviews of a case's hits that came, in the
// session's event eventKey, after the case was resolved (or when its
// workflow no longer runs): it changes the hits as RecordHitReviews does
// and, when one changed, numbers the change in the session's sequence and
// keeps it. Asked again for the same case and event (a retry), it returns
// what it recorded the first time, changing nothing.
func (s *Store) RecordReviewChange(ctx context.Context, sessionID, caseID, eventKey string, reviews []contract.HitReview, at time.Time) (ReviewChange, error) {
	var out ReviewChange
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var outcome sql.NullString
		err := tx.QueryRowContext(ctx, s.q(`SELECT resolution FROM aml_cases WHERE case_id = ?`), caseID).Scan(&outcome)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		out.Outcome = contract.Outcome(outcome.String)
		var raw string
		err = tx.QueryRowContext(ctx, s.q(`SELECT seq, hits FROM aml_review_changes WHERE case_id = ? AND event_key = ?`),
			caseID, eventKey).Scan(&out.Sequence, &raw)
		if err == nil {
			out.State = AMLCaseResolved
			return json.Unmarshal([]byte(raw), &out.Hits)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		state, hits, err := s.lockCaseHits(ctx, tx, caseID)
		if err != nil {
			return err
		}
		out.State = state
		if out.Hits = reviewHits(hits, reviews); len(out.Hits) == 0 {
			return nil
		}
		if err := s.writeCaseHits(ctx, tx, caseID, hits); err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, s.q(`UPDATE verifications SET last_seq = last_seq + 1 WHERE session_id = ? RETURNING last_seq`),
			sessionID).Scan(&out.Sequence)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		changed, err := json.Marshal(out.Hits)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO aml_review_changes (case_id, event_key, seq, hits, changed_at) VALUES (?, ?, ?, ?, ?)`),
			caseID, eventKey, out.Sequence, string(changed), s.unixOrNow(at))
		return err
	})
	if err != nil {
		return ReviewChange{}, fmt.Errorf("record a review change of aml case %s: %w", caseID, err)
	}
	return out, nil
}

// OpenCaseReviews returns the review status the records hold for each hit
// of a session's open cases, by hit ID: what reconciliation compares with
// Didit's decision to find a review whose webhook was lost.
func (s *Store) OpenCaseReviews(ctx context.Context, sessionID string) (map[string]string, error) {
	out := map[string]string{}
	err := s.each(ctx, s.db, `SELECT hits FROM aml_cases WHERE session_id = ? AND state = 'open'`, []any{sessionID},
		func(rows *sql.Rows) error {
			var raw string
			if err := rows.Scan(&raw); err != nil {
				return err
			}
			var hits []AMLHit
			if err := json.Unmarshal([]byte(raw), &hits); err != nil {
				return fmt.Errorf("decode hits: %w", err)
			}
			for _, h := range hits {
				out[h.ID] = unreviewed(h.ReviewStatus)
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read the open cases' reviews of %s: %w", sessionID, err)
	}
	return out, nil
}
