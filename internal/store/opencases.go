package store

import (
	"context"
	"fmt"
)

// OpenAMLCases returns the open AML cases, oldest first (by when they were
// opened, then by case ID), at most limit of them, and how many are open in
// all: what compliance has still to decide, for diditflow-admin cases.
func (s *Store) OpenAMLCases(ctx context.Context, limit int) (cases []AMLCase, open int, err error) {
	if limit < 1 {
		return nil, 0, fmt.Errorf("list open aml cases: limit %d: %w", limit, ErrInvalid)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM aml_cases WHERE state = 'open'`).Scan(&open); err != nil {
		return nil, 0, fmt.Errorf("count open aml cases: %w", err)
	}
	cases, err = collect(ctx, s, s.db, `
		SELECT `+amlCaseColumns+` FROM aml_cases WHERE state = 'open' ORDER BY opened_at, case_id LIMIT ?`,
		[]any{limit}, scanAMLCase)
	if err != nil {
		return nil, 0, fmt.Errorf("list open aml cases: %w", err)
	}
	return cases, max(open, len(cases)), nil
}
