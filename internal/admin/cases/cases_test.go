package cases

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/harness/pgtest"
	"github.com/diditflow/diditflow/internal/store"
)

var backends = []struct {
	name   string
	newDSN func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "records.db") }},
	{"postgres", pgtest.DSN},
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var opened = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// seedCases opens three cases, one of them escalated and flagged, with
// hits in every review status, and resolves a fourth.
func seedCases(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := t.Context()
	for _, c := range []store.AMLCase{
		{CaseID: "aml-case-s-new", SessionID: "s-new", OpenedAt: opened.Add(50 * time.Hour),
			Hits: []store.AMLHit{{ID: "h-5"}}},
		{CaseID: "aml-case-s-old", SessionID: "s-old", OpenedAt: opened, Hits: []store.AMLHit{
			{ID: "h-1", ReviewStatus: didit.ReviewFalsePositive}, {ID: "h-2", ReviewStatus: didit.ReviewUnreviewed},
			{ID: "h-3", ReviewStatus: didit.ReviewInconclusive}, {ID: "h-4"}}},
		{CaseID: "aml-case-s-mid", SessionID: "s-mid", OpenedAt: opened.Add(90 * time.Minute),
			Hits: []store.AMLHit{{ID: "h-6", ReviewStatus: didit.ReviewConfirmedMatch}}},
		{CaseID: "aml-case-s-done", SessionID: "s-done", OpenedAt: opened.Add(-time.Hour), Hits: []store.AMLHit{{ID: "h-7"}}},
	} {
		if _, err := st.OpenAMLCase(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for i, escalated := range []bool{false, false, true} {
		if err := st.RecordAMLReminder(ctx, "aml-case-s-old", i+1, escalated); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetCaseAttention(ctx, "aml-case-s-old", true, "parked: notify compliance"); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordAMLReminder(ctx, "aml-case-s-mid", 1, false); err != nil {
		t.Fatal(err)
	}
	if err := st.ResolveAMLCase(ctx, "aml-case-s-done", store.Resolution{Outcome: "false_positive", Reviewer: "officer"}); err != nil {
		t.Fatal(err)
	}
}

// The open cases list oldest first with their age, reminders, the
// escalation the reminders set, hits reviewed (a final status in Didit) x
// of y and the operator's flag; a resolved case is not among them; a limit
// shows the oldest and says how many more there are; --json says the same.
func TestListing(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := openStore(t, b.newDSN(t))
			seedCases(t, st)
			now := opened.Add(75*time.Hour + 20*time.Minute)
			l, err := List(t.Context(), st, DefaultLimit, now)
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			if err := l.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			t.Logf("cases:\n%s", text.String())
			lines := strings.Split(strings.TrimSpace(text.String()), "\n")
			want := [][]string{
				{"CASE", "SESSION", "OPENED", "AGE", "REMINDERS", "ESCALATED", "REVIEWED", "ATTENTION"},
				{"aml-case-s-old", "s-old", "2026-03-01T09:00:00Z", "3d3h", "3", "yes", "2", "of", "4", "yes"},
				{"aml-case-s-mid", "s-mid", "2026-03-01T10:30:00Z", "3d1h", "1", "-", "1", "of", "1", "-"},
				{"aml-case-s-new", "s-new", "2026-03-03T11:00:00Z", "1d1h", "0", "-", "0", "of", "1", "-"},
			}
			if len(lines) != len(want) {
				t.Fatalf("%d lines, want %d", len(lines), len(want))
			}
			for i, w := range want {
				if got := strings.Join(strings.Fields(lines[i]), " "); got != strings.Join(w, " ") {
					t.Errorf("line %d: %q, want %q", i, got, strings.Join(w, " "))
				}
			}

			l, err = List(t.Context(), st, 2, now)
			if err != nil {
				t.Fatal(err)
			}
			text.Reset()
			if err := l.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "1 more open, newer: raise --limit") || strings.Contains(text.String(), "aml-case-s-new") {
				t.Errorf("limit 2:\n%s", text.String())
			}
			var js bytes.Buffer
			if err := l.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			var got Listing
			if err := json.Unmarshal(js.Bytes(), &got); err != nil {
				t.Fatalf("%v:\n%s", err, js.String())
			}
			if got.Open != 3 || got.More != 1 || len(got.Cases) != 2 {
				t.Fatalf("json: %+v", got)
			}
			if c := got.Cases[0]; c.CaseID != "aml-case-s-old" || c.HitsReviewed != 2 || c.Hits != 4 || !c.Escalated ||
				c.Reminders != 3 || !c.NeedsAttention || c.AgeSeconds != int64((75*time.Hour+20*time.Minute)/time.Second) ||
				!c.OpenedAt.Equal(opened) {
				t.Errorf("json: the oldest case reads %+v", c)
			}
		})
	}
}

func TestNoOpenCase(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "records.db"))
	l, err := List(context.Background(), st, 10, time.Now())
	var text, js bytes.Buffer
	if err != nil || l.WriteText(&text) != nil || l.WriteJSON(&js) != nil {
		t.Fatal(err)
	}
	if text.String() != "No open AML case.\n" || !strings.Contains(js.String(), `"cases": []`) {
		t.Errorf("no case:\n%s\n%s", text.String(), js.String())
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0m", 59 * time.Second: "0m", 42 * time.Minute: "42m", 5*time.Hour + 12*time.Minute: "5h12m",
		24 * time.Hour: "1d0h", 49*time.Hour + 59*time.Minute: "2d1h",
	} {
		if got := Age(d); got != want {
			t.Errorf("Age(%v) = %q, want %q", d, got, want)
		}
	}
}
