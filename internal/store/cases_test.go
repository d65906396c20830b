package store

import (
	"database/sql"
	"io/fs"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/diditflow/diditflow/internal/contract"
)

// TestAMLCases runs the case tests on both dialects.
func TestAMLCases(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("follow-up cases", func(t *testing.T) { testFollowUpCases(t, b.newDSN(t)) })
			t.Run("attention", func(t *testing.T) { testAttention(t, b.newDSN(t)) })
			t.Run("cases of the first schema migrate", func(t *testing.T) { testCasesMigrate(t, b, b.newDSN(t)) })
		})
	}
}

// testFollowUpCases: a session's cases are keyed by case ID, each with its
// own hits, reminders and resolution.
func testFollowUpCases(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	first, second := "aml-case-s-1", "aml-case-s-1-2"
	if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: first, SessionID: "s-1", Hits: []AMLHit{{ID: "h-1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: second, SessionID: "s-1", FollowUpOf: first, Hits: []AMLHit{{ID: "h-2"}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveAMLCase(ctx, first, Resolution{Outcome: contract.FalsePositive, Reviewer: "officer"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAMLReminder(ctx, second, 1, false); err != nil {
		t.Fatal(err)
	}
	cases, err := s.AMLCases(ctx, "s-1")
	if err != nil || len(cases) != 2 {
		t.Fatalf("AMLCases = %+v, %v", cases, err)
	}
	if c := cases[0]; c.CaseID != first || c.State != AMLCaseResolved || c.Hits[0].ID != "h-1" || c.FollowUpOf != "" {
		t.Fatalf("first case = %+v", c)
	}
	if c := cases[1]; c.CaseID != second || c.State != AMLCaseOpen || c.Hits[0].ID != "h-2" || c.FollowUpOf != first || c.RemindersSent != 1 {
		t.Fatalf("follow-up = %+v", c)
	}
	if g, err := s.Gauges(ctx); err != nil || g.OpenAMLCases != 1 {
		t.Fatalf("gauges = %+v, %v; want the follow-up open", g, err)
	}
	if others, err := s.AMLCases(ctx, "s-2"); err != nil || len(others) != 0 {
		t.Fatalf("another session's cases = %+v, %v", others, err)
	}
}

// testAttention: flags and their reasons land on the session record and on
// a case, and clear together.
func testAttention(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	if _, err := s.RecordEvent(ctx, event("s-1", "e-1", 100, "Approved")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAttention(ctx, "s-1", true, "in_doubt: the approved notice"); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Session(ctx, "s-1"); err != nil || !r.NeedsAttention || r.Attention != "in_doubt: the approved notice" {
		t.Fatalf("record = %+v, %v", r, err)
	}
	if err := s.SetAttention(ctx, "s-1", false, ""); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Session(ctx, "s-1"); r.NeedsAttention || r.Attention != "" {
		t.Fatalf("record after clearing = %+v", r)
	}
	if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: "aml-case-s-1", SessionID: "s-1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCaseAttention(ctx, "aml-case-s-1", true, "recipient_refused"); err != nil {
		t.Fatal(err)
	}
	if c, err := s.AMLCase(ctx, "aml-case-s-1"); err != nil || !c.NeedsAttention || c.Attention != "recipient_refused" {
		t.Fatalf("case = %+v, %v", c, err)
	}
	if err := s.SetCaseAttention(ctx, "aml-case-missing", true, "x"); err == nil {
		t.Fatal("SetCaseAttention on a missing case succeeded")
	}
}

// testCasesMigrate: a case recorded under the first schema (keyed by
// session) is the session's first case after the migration.
func testCasesMigrate(t *testing.T, b backend, dsn string) {
	ctx := t.Context()
	driver, dialect, dsnForDriver := "pgx", goose.DialectPostgres, dsn
	if b.name == "sqlite" {
		driver, dialect, dsnForDriver = "sqlite", goose.DialectSQLite3, sqliteDSN(dsn)
	}
	db, err := sql.Open(driver, dsnForDriver)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir, err := fs.Sub(migrations, "migrations/"+b.name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(dialect, db, dir, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO aml_cases (session_id, state, opened_at, hits, reminders_sent, escalated)
		VALUES ('s-old', 'open', 100, '[{"id":"h-1"}]', 2, TRUE)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := open(t, dsn)
	c, err := s.AMLCase(ctx, contract.AMLCaseWorkflowID("s-old"))
	if err != nil || c.SessionID != "s-old" || c.RemindersSent != 2 || !c.Escalated || len(c.Hits) != 1 || c.FollowUpOf != "" {
		t.Fatalf("migrated case = %+v, %v", c, err)
	}
}
