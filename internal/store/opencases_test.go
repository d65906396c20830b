package store

import (
	"errors"
	"testing"
	"time"

	"github.com/diditflow/diditflow/internal/contract"
)

// The open cases list oldest first, a resolved case is not among them, and
// a limit shows the oldest while still counting every open case.
func TestOpenAMLCases(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			s := open(t, b.newDSN(t))
			day := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
			for _, c := range []AMLCase{
				{CaseID: "aml-case-new", SessionID: "new", OpenedAt: day.Add(48 * time.Hour)},
				{CaseID: "aml-case-old-2", SessionID: "old", FollowUpOf: "aml-case-old", OpenedAt: day},
				{CaseID: "aml-case-old", SessionID: "old", OpenedAt: day},
				{CaseID: "aml-case-done", SessionID: "done", OpenedAt: day.Add(-time.Hour)},
				{CaseID: "aml-case-mid", SessionID: "mid", OpenedAt: day.Add(time.Hour), Hits: []AMLHit{{ID: "h-1", ReviewStatus: "Inconclusive"}}},
			} {
				if _, err := s.OpenAMLCase(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.ResolveAMLCase(ctx, "aml-case-done", Resolution{Outcome: contract.FalsePositive, Reviewer: "officer"}); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordAMLReminder(ctx, "aml-case-mid", 3, true); err != nil {
				t.Fatal(err)
			}

			cases, open, err := s.OpenAMLCases(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range cases {
				ids = append(ids, c.CaseID)
			}
			want := []string{"aml-case-old", "aml-case-old-2", "aml-case-mid", "aml-case-new"}
			if open != 4 || len(ids) != len(want) {
				t.Fatalf("open cases %v (%d open), want %v", ids, open, want)
			}
			for i := range want {
				if ids[i] != want[i] {
					t.Fatalf("open cases %v, want %v", ids, want)
				}
			}
			if mid := cases[2]; !mid.Escalated || mid.RemindersSent != 3 || len(mid.Hits) != 1 || mid.Hits[0].ReviewStatus != "Inconclusive" ||
				!mid.OpenedAt.Equal(day.Add(time.Hour)) {
				t.Errorf("the escalated case reads %+v", mid)
			}

			cases, open, err = s.OpenAMLCases(ctx, 2)
			if err != nil || open != 4 || len(cases) != 2 || cases[0].CaseID != "aml-case-old" || cases[1].CaseID != "aml-case-old-2" {
				t.Fatalf("limit 2: %d cases of %d open, %v", len(cases), open, err)
			}
			if _, _, err := s.OpenAMLCases(ctx, 0); !errors.Is(err, ErrInvalid) {
				t.Errorf("limit 0: %v, want ErrInvalid", err)
			}
		})
	}
}
