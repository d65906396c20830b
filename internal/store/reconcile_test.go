package store

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
)

// TestReconcile runs the reconciliation tests on both dialects.
func TestReconcile(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, dsn string)
	}{
		{"HeldEventsAndStatuses", testHeldEventsAndStatuses},
		{"LookupsOfNothingRunNoQuery", testLookupsOfNothingRunNoQuery},
		{"LookupsSpanChunks", testLookupsSpanChunks},
		{"SettleDeliveries", testSettleDeliveries},
		{"PruneSettledDeliveries", testPruneSettledDeliveries},
		{"StaleSessions", testStaleSessions},
		{"FlagIsNoChange", testFlagIsNoChange},
		{"AppliedEventResetsBackoff", testAppliedEventResetsBackoff},
		{"StaleSessionsUseTheIndex", testStaleSessionsUseTheIndex},
		{"RecordsOfTheSecondSchemaMigrate", testRecordsOfTheSecondSchemaMigrate},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, b.newDSN(t))
				})
			}
		})
	}
}

func testHeldEventsAndStatuses(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	for _, e := range []EventRecord{
		event("s-1", "k-1", 100, "In Progress"),
		event("s-1", "k-2", 200, "Approved"),
		event("s-1", "k-0", 50, "Not Started"), // logged, not applied, but held all the same
		event("s-2", "k-1", 100, "In Progress"),
	} {
		if _, err := s.RecordEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	held, err := s.HeldEvents(ctx, []EventRef{
		{"s-1", "k-1"}, {"s-1", "k-2"}, {"s-1", "k-0"}, {"s-2", "k-1"},
		{"s-2", "k-2"}, {"s-3", "k-1"}, {"s-1", "k-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[EventRef]bool{{"s-1", "k-1"}: true, {"s-1", "k-2"}: true, {"s-1", "k-0"}: true, {"s-2", "k-1"}: true}
	if !maps.Equal(held, want) {
		t.Errorf("HeldEvents = %v, want %v (k-2 is held in s-1 only)", held, want)
	}

	statuses, err := s.SessionStatuses(ctx, []string{"s-1", "s-2", "s-missing"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"s-1": "Approved", "s-2": "In Progress"}; !maps.Equal(statuses, want) {
		t.Errorf("SessionStatuses = %v, want %v", statuses, want)
	}
}

// testLookupsOfNothingRunNoQuery asks a closed store, which fails any query.
func testLookupsOfNothingRunNoQuery(t *testing.T, dsn string) {
	ctx := t.Context()
	s := openUnmanaged(t, dsn)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if held, err := s.HeldEvents(ctx, nil); err != nil || held == nil || len(held) != 0 {
		t.Errorf("HeldEvents(nil) = %v, %v; want an empty map", held, err)
	}
	if statuses, err := s.SessionStatuses(ctx, []string{}); err != nil || statuses == nil || len(statuses) != 0 {
		t.Errorf("SessionStatuses(none) = %v, %v; want an empty map", statuses, err)
	}
	if settled, err := s.SettledDeliveries(ctx, nil); err != nil || settled == nil || len(settled) != 0 {
		t.Errorf("SettledDeliveries(nil) = %v, %v; want an empty map", settled, err)
	}
	if err := s.SettleDeliveries(ctx, nil); err != nil {
		t.Errorf("SettleDeliveries(nil) = %v", err)
	}
}

func testLookupsSpanChunks(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	const n = 450 // three chunks to look up, two to settle
	var (
		events []EventRecord
		refs   []EventRef
		ids    []string
		uuids  []string
		ds     []SettledDelivery
	)
	for i := range n {
		id := fmt.Sprintf("s-%03d", i)
		ids, uuids = append(ids, id), append(uuids, "u-"+id)
		refs = append(refs, EventRef{id, "k"})
		if i%2 == 0 {
			events = append(events, event(id, "k", 100, "In Review"))
			ds = append(ds, SettledDelivery{UUID: "u-" + id, SessionID: id, Outcome: "held"})
		}
	}
	if _, err := s.RecordEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	if err := s.SettleDeliveries(ctx, ds); err != nil {
		t.Fatal(err)
	}

	held, err := s.HeldEvents(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	statuses, err := s.SessionStatuses(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	settled, err := s.SettledDeliveries(ctx, uuids)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != n/2 || len(statuses) != n/2 || len(settled) != n/2 {
		t.Fatalf("found %d events, %d statuses, %d settled deliveries; want %d of each", len(held), len(statuses), len(settled), n/2)
	}
	for i, id := range ids {
		known := i%2 == 0
		if held[refs[i]] != known || (statuses[id] == "In Review") != known || settled[uuids[i]] != known {
			t.Errorf("%s: held %t, status %q, settled %t; want known = %t",
				id, held[refs[i]], statuses[id], settled[uuids[i]], known)
		}
	}
}

func testSettleDeliveries(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	first := []SettledDelivery{
		{UUID: "u-1", SessionID: "s-1", Outcome: "held"},
		{UUID: "u-2", Outcome: "unusable"}, // a delivery naming no session
	}
	for range 2 { // a retry changes nothing
		if err := s.SettleDeliveries(ctx, first); err != nil {
			t.Fatalf("SettleDeliveries: %v", err)
		}
	}
	s.now = func() time.Time { return testNow.Add(time.Hour) }
	if err := s.SettleDeliveries(ctx, []SettledDelivery{
		{UUID: "u-1", SessionID: "s-1", Outcome: "fed"},
		{UUID: "u-3", SessionID: "s-3", Outcome: "fed"},
		{UUID: "u-3", SessionID: "s-3", Outcome: "held"}, // the first of a batch wins too
	}); err != nil {
		t.Fatalf("SettleDeliveries again: %v", err)
	}

	for name, ds := range map[string][]SettledDelivery{
		"no uuid":    {{UUID: "u-4", Outcome: "fed"}, {SessionID: "s-5", Outcome: "fed"}},
		"no outcome": {{UUID: "u-4", Outcome: "fed"}, {UUID: "u-5", SessionID: "s-5"}},
	} {
		if err := s.SettleDeliveries(ctx, ds); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}

	rows, err := s.db.QueryContext(ctx, `
		SELECT delivery_uuid, session_id, outcome, settled_at FROM reconciled_deliveries ORDER BY delivery_uuid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var uuid, session, outcome string
		var at int64
		if err := rows.Scan(&uuid, &session, &outcome, &at); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %q %s %s", uuid, session, outcome, fromUnix(at).Format(time.RFC3339)))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`u-1 "s-1" held 2025-03-14T15:09:26Z`,
		`u-2 "" unusable 2025-03-14T15:09:26Z`,
		`u-3 "s-3" fed 2025-03-14T16:09:26Z`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("settled deliveries:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func testPruneSettledDeliveries(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	settleAt := func(at time.Time, uuids ...string) {
		t.Helper()
		s.now = func() time.Time { return at }
		defer func() { s.now = func() time.Time { return testNow } }()
		var ds []SettledDelivery
		for _, u := range uuids {
			ds = append(ds, SettledDelivery{UUID: u, SessionID: "s-" + u, Outcome: "fed"})
		}
		if err := s.SettleDeliveries(ctx, ds); err != nil {
			t.Fatal(err)
		}
	}
	settleAt(testNow.Add(-48*time.Hour), "u-old-1", "u-old-2")
	settleAt(testNow.Add(-time.Hour), "u-new")

	for _, tc := range []struct {
		before time.Time
		want   int64
	}{
		{testNow.Add(-24 * time.Hour), 2},
		{testNow.Add(-24 * time.Hour), 0},
		{testNow.Add(-time.Hour), 0}, // settled at before itself: kept
	} {
		n, err := s.PruneSettledDeliveries(ctx, tc.before)
		if err != nil || n != tc.want {
			t.Fatalf("PruneSettledDeliveries(%v) = %d, %v; want %d", tc.before, n, err, tc.want)
		}
	}
	settled, err := s.SettledDeliveries(ctx, []string{"u-old-1", "u-old-2", "u-new"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"u-new": true}; !maps.Equal(settled, want) {
		t.Errorf("settled after pruning = %v, want %v", settled, want)
	}
}

func testStaleSessions(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	ago := func(d time.Duration) time.Time { return testNow.Add(-d) }
	for _, st := range []string{"Approved", "Declined", "Expired", "Kyc Expired", "Abandoned"} {
		recordAt(t, s, ago(5*time.Hour), "final "+st, st)
	}
	recordAt(t, s, ago(3*time.Hour), "a-progress", "In Progress")
	recordAt(t, s, ago(3*time.Hour), "b-unknown", "Paused") // a status diditflow does not know is not final
	recordAt(t, s, ago(2*time.Hour), "c-review", "In Review")
	recordAt(t, s, ago(10*time.Minute), "d-recent", "In Progress")
	recordAt(t, s, ago(time.Hour), "e-boundary", "In Progress") // applied at unchangedSince, not before
	recordAt(t, s, ago(4*time.Hour), "f-backed-off", "Awaiting User")
	recordAt(t, s, ago(6*time.Hour), "g-due-again", "Resubmitted")
	recordAt(t, s, ago(6*time.Hour), "h-due-now", "Not Started")
	for id, next := range map[string]struct {
		checks int
		at     time.Time
	}{
		"f-backed-off": {1, testNow.Add(time.Hour)},
		"g-due-again":  {2, ago(30 * time.Minute)},
		"h-due-now":    {4, testNow},
	} {
		if err := s.MarkStaleChecked(ctx, id, next.checks, next.at, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}

	want := []string{
		"a-progress In Progress 0 12:09",
		"b-unknown Paused 0 12:09",
		"c-review In Review 0 13:09",
		"g-due-again Resubmitted 2 09:09",
		"h-due-now Not Started 4 09:09",
	}
	assertStale(t, s, ago(time.Hour), testNow, 10, want...)
	assertStale(t, s, ago(time.Hour), testNow, 2, want[:2]...)
	if _, err := s.StaleSessions(ctx, ago(time.Hour), testNow, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("limit 0: err = %v, want ErrInvalid", err)
	}

	// An erased session's decision is not read again, however stale, nor
	// is one erased before any event came (whose record has no status).
	recordAt(t, s, ago(5*time.Hour), "0-erased", "In Review")
	s.now = func() time.Time { return ago(5 * time.Hour) }
	for _, id := range []string{"0-erased", "0-erased-unknown"} {
		if _, err := s.EraseSession(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	s.now = func() time.Time { return testNow }
	assertStale(t, s, ago(time.Hour), testNow, 10, want...)
	erased, err := s.ErasedSessions(ctx, []string{"0-erased", "0-erased-unknown", "a-progress", "s-missing"})
	if want := map[string]bool{"0-erased": true, "0-erased-unknown": true}; err != nil || !maps.Equal(erased, want) {
		t.Errorf("ErasedSessions = %v, %v; want %v", erased, err, want)
	}
}

// testFlagIsNoChange: an operator flag moves the record's updated_at but is
// not news about the session, which stays stale.
func testFlagIsNoChange(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	recordAt(t, s, testNow.Add(-3*time.Hour), "s-1", "In Review")
	if err := s.SetAttention(ctx, "s-1", true, "aml_review: overdue"); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Session(ctx, "s-1"); err != nil || !r.UpdatedAt.Equal(testNow) {
		t.Fatalf("record = %+v, %v; want updated now by the flag", r, err)
	}
	assertStale(t, s, testNow.Add(-time.Hour), testNow, 10, "s-1 In Review 0 12:09")
}

func testAppliedEventResetsBackoff(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	hourAgo, inAnHour := testNow.Add(-time.Hour), testNow.Add(time.Hour)
	recordAt(t, s, testNow.Add(-3*time.Hour), "s-1", "In Progress")
	if err := s.MarkStaleChecked(ctx, "s-1", 3, inAnHour, time.Time{}); err != nil {
		t.Fatal(err)
	}
	assertStale(t, s, hourAgo, testNow, 10)
	assertStale(t, s, hourAgo, inAnHour, 10, "s-1 In Progress 3 12:09")

	// An older event is logged but not applied: the session has not moved.
	if res, err := s.RecordEvent(ctx, event("s-1", "k-old", 1, "Not Started")); err != nil || res.Applied {
		t.Fatalf("older event = %+v, %v; want not applied", res, err)
	}
	assertStale(t, s, hourAgo, inAnHour, 10, "s-1 In Progress 3 12:09")

	// A newer one moves it: it is not stale until it stays put again, and
	// then its checks start over.
	if res, err := s.RecordEvent(ctx, event("s-1", "k-new", testNow.Unix(), "In Review")); err != nil || !res.Applied {
		t.Fatalf("newer event = %+v, %v; want applied", res, err)
	}
	assertStale(t, s, hourAgo, inAnHour, 10)
	soon := testNow.Add(time.Minute)
	assertStale(t, s, soon, soon, 10, "s-1 In Review 0 15:09")

	if err := s.MarkStaleChecked(ctx, "missing", 1, inAnHour, time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkStaleChecked of a missing session: %v, want ErrNotFound", err)
	}
	for _, bad := range []struct {
		checks int
		next   time.Time
	}{{-1, inAnHour}, {1, time.Time{}}} {
		if err := s.MarkStaleChecked(ctx, "s-1", bad.checks, bad.next, time.Time{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("MarkStaleChecked(%d, %v): %v, want ErrInvalid", bad.checks, bad.next, err)
		}
	}
}

// testStaleSessionsUseTheIndex: the partial index spells the final statuses
// in SQL, the query builds them from didit.Status.Final; should the two
// drift apart, the index no longer serves the query.
func testStaleSessionsUseTheIndex(t *testing.T, dsn string) {
	s := open(t, dsn)
	text := queryPlan(t, s, staleSessionsQuery, int64(100), int64(200), int64(200), 10)
	if !strings.Contains(text, "verifications_stale") || strings.Contains(text, "B-TREE FOR ORDER BY") ||
		strings.Contains(text, "Sort") {
		t.Errorf("StaleSessions does not read verifications_stale in order:\n%s", text)
	}
}

// queryPlan is the planner's plan for query (in SQLite's ? form) with args,
// one line per step. On PostgreSQL it asks what the planner would use for a
// large table: an empty one is cheapest to read whole and then sort.
func queryPlan(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	ctx := t.Context()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	explain := "EXPLAIN QUERY PLAN "
	if s.dialect == postgres {
		explain = "EXPLAIN "
		for _, set := range []string{"SET LOCAL enable_seqscan = off", "SET LOCAL enable_bitmapscan = off"} {
			if _, err := tx.ExecContext(ctx, set); err != nil {
				t.Fatal(err)
			}
		}
	}
	rows, err := tx.QueryContext(ctx, explain+s.q(query), args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		fields := make([]any, len(cols))
		var detail string
		for i := range fields {
			fields[i] = new(any)
		}
		fields[len(cols)-1] = &detail // the plan line is the last column in both
		if err := rows.Scan(fields...); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}

// testRecordsOfTheSecondSchemaMigrate: sessions recorded before 00003 are
// dated by the receipt of their current event, not by updated_at, which a
// flag may have moved; and the migration goes down and up again.
func testRecordsOfTheSecondSchemaMigrate(t *testing.T, dsn string) {
	ctx := t.Context()
	db, p := gooseProvider(t, dsn)
	if _, err := p.UpTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO verifications (session_id, status, event_created_at, status_rank, event_key, webhook_type,
			needs_attention, attention, first_seen_at, updated_at)
		VALUES ('s-flagged', 'In Review', 100, 3, 'k-1', 'status.updated', TRUE, 'x', 1000, 5000),
		       ('s-orphan', 'In Progress', 100, 2, 'k-gone', 'status.updated', FALSE, '', 1000, 3000),
		       ('s-done', 'Approved', 100, 4, 'k-9', 'status.updated', FALSE, '', 1000, 1000)`,
		`INSERT INTO verification_events (session_id, event_key, webhook_type, status, event_created_at, received_at, applied)
		VALUES ('s-flagged', 'k-0', 'status.updated', 'Not Started', 50, 1100, TRUE),
		       ('s-flagged', 'k-1', 'status.updated', 'In Review', 100, 1200, TRUE),
		       ('s-flagged', 'k-late', 'status.updated', 'In Progress', 60, 1300, FALSE),
		       ('s-done', 'k-9', 'status.updated', 'Approved', 100, 1000, TRUE)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}

	s := openUnmanaged(t, dsn)
	assertMigratedOnce(t, s)
	at := fromUnix(10000)
	assertStale(t, s, at, at, 10, "s-flagged In Review 0 00:20", "s-orphan In Progress 0 00:50")
	if res, err := s.RecordEvent(ctx, event("s-orphan", "k-2", 200, "In Review")); err != nil || !res.Applied {
		t.Fatalf("RecordEvent after the migration = %+v, %v", res, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if _, err := p.DownTo(ctx, 2); err != nil {
		t.Fatalf("migrate down to 2: %v", err)
	}
	s = open(t, dsn)
	statuses, err := s.SessionStatuses(ctx, []string{"s-flagged", "s-orphan", "s-done"})
	if want := map[string]string{"s-flagged": "In Review", "s-orphan": "In Review", "s-done": "Approved"}; err != nil || !maps.Equal(statuses, want) {
		t.Errorf("statuses after down and up = %v, %v; want %v", statuses, err, want)
	}
}

// gooseProvider opens dsn's database without the store, with a goose
// provider for the store's migrations.
func gooseProvider(t *testing.T, dsn string) (*sql.DB, *goose.Provider) {
	t.Helper()
	driver, dialect, dir, dsnForDriver := "pgx", goose.DialectPostgres, "migrations/postgres", dsn
	if !isPostgresDSN(dsn) {
		driver, dialect, dir, dsnForDriver = "sqlite", goose.DialectSQLite3, "migrations/sqlite", sqliteDSN(dsn)
	}
	db, err := sql.Open(driver, dsnForDriver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(dialect, db, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return db, p
}

// recordAt records a status event for a session as received at.
func recordAt(t *testing.T, s *Store, at time.Time, session, status string) {
	t.Helper()
	s.now = func() time.Time { return at }
	defer func() { s.now = func() time.Time { return testNow } }()
	if _, err := s.RecordEvent(t.Context(), event(session, session+"/"+status, at.Unix(), status)); err != nil {
		t.Fatal(err)
	}
}

// assertStale checks StaleSessions against "id status checks hh:mm" lines.
func assertStale(t *testing.T, s *Store, unchangedSince, now time.Time, limit int, want ...string) {
	t.Helper()
	stale, err := s.StaleSessions(t.Context(), unchangedSince, now, limit)
	if err != nil {
		t.Fatalf("StaleSessions: %v", err)
	}
	got := []string{}
	for _, st := range stale {
		got = append(got, fmt.Sprintf("%s %s %d %s", st.SessionID, st.Status, st.Checks, st.UpdatedAt.Format("15:04")))
	}
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("StaleSessions(%v, %v, %d):\n%s\nwant\n%s", unchangedSince, now, limit,
			strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
