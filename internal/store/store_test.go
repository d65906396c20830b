package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/pgtest"
	"github.com/diditflow/diditflow/internal/pii"
)

// testNow is the store's clock in tests, so timestamps can be compared exactly.
var testNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// backend hands out fresh, empty databases of one dialect.
type backend struct {
	name string
	// newDSN returns a database no other test uses, removed when t ends.
	newDSN func(t *testing.T) string
}

var backends = []backend{
	{name: "sqlite", newDSN: func(t *testing.T) string {
		return filepath.Join(t.TempDir(), "records.db")
	}},
	{name: "postgres", newDSN: pgtest.DSN},
}

// open opens a store on dsn with the test clock and closes it when t ends.
func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s := openUnmanaged(t, dsn)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openUnmanaged opens a store the test closes itself.
func openUnmanaged(t *testing.T, dsn string) *Store {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Open(t.Context(), dsn, logger)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.now = func() time.Time { return testNow }
	return s
}

func TestStore(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, dsn string)
	}{
		{"MigrationsIdempotentOnReopen", testMigrationsIdempotentOnReopen},
		{"ConcurrentOpenOfFreshDatabase", testConcurrentOpenOfFreshDatabase},
		{"TwoHandlesShareOneDatabase", testTwoHandlesShareOneDatabase},
		{"DuplicateEventKey", testDuplicateEventKey},
		{"SameKeyInAnotherSession", testSameKeyInAnotherSession},
		{"RecentSessions", testRecentSessions},
		{"NotificationInDoubt", testNotificationInDoubt},
		{"NotificationNotSentIsSendableAgain", testNotificationNotSentIsSendableAgain},
		{"NotificationPartlySent", testNotificationPartlySent},
		{"Gauges", testGauges},
		{"EventsApplyInEventTimeOrder", testEventsApplyInEventTimeOrder},
		{"ConcurrentEventsForOneSession", testConcurrentEventsForOneSession},
		{"NeedsAttention", testNeedsAttention},
		{"Notifications", testNotifications},
		{"AMLCase", testAMLCase},
		{"NotFound", testNotFound},
		{"InvalidArguments", testInvalidArguments},
		{"NoPIIInLogs", testNoPIIInLogs},
		{"ContactAddress", testContactAddress},
		{"SequenceAndAnnouncements", testSequenceAndAnnouncements},
		{"RecordsBeforeTheSequenceMigrate", testRecordsBeforeTheSequenceMigrate},
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

func testMigrationsIdempotentOnReopen(t *testing.T, dsn string) {
	ctx := t.Context()
	first := openUnmanaged(t, dsn)
	if _, err := first.RecordEvent(ctx, event("s-1", "k-1", 100, "In Progress")); err != nil {
		t.Fatalf("RecordEvent: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	second := open(t, dsn)
	v, err := second.Session(ctx, "s-1")
	if err != nil {
		t.Fatalf("Session after reopen: %v", err)
	}
	if v.Status != "In Progress" {
		t.Errorf("status after reopen = %q, want %q", v.Status, "In Progress")
	}
	assertMigratedOnce(t, second)
}

// assertMigratedOnce checks that every migration is recorded exactly once.
func assertMigratedOnce(t *testing.T, s *Store) {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(),
		`SELECT version_id, COUNT(*) FROM goose_db_version WHERE version_id > 0 GROUP BY version_id`)
	if err != nil {
		t.Fatalf("read goose_db_version: %v", err)
	}
	defer rows.Close()
	versions := 0
	for rows.Next() {
		var version, count int64
		if err := rows.Scan(&version, &count); err != nil {
			t.Fatal(err)
		}
		versions++
		if count != 1 {
			t.Errorf("migration %d recorded %d times, want once", version, count)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if versions == 0 {
		t.Error("no migration recorded")
	}
}

func testConcurrentOpenOfFreshDatabase(t *testing.T, dsn string) {
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = Open(t.Context(), dsn, nil)
		})
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() { _ = s.Close() })
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping %d: %v", i, err)
		}
	}
	if t.Failed() {
		return
	}
	assertMigratedOnce(t, stores[0])
}

func testTwoHandlesShareOneDatabase(t *testing.T, dsn string) {
	ctx := t.Context()
	a, b := open(t, dsn), open(t, dsn)

	if _, err := a.RecordEvent(ctx, event("s-1", "k-1", 100, "In Progress")); err != nil {
		t.Fatalf("a.RecordEvent: %v", err)
	}
	if v, err := b.Session(ctx, "s-1"); err != nil || v.Status != "In Progress" {
		t.Fatalf("b sees %+v, %v; want status In Progress", v, err)
	}
	if _, err := b.RecordEvent(ctx, event("s-1", "k-2", 200, "Approved")); err != nil {
		t.Fatalf("b.RecordEvent: %v", err)
	}
	if v, err := a.Session(ctx, "s-1"); err != nil || v.Status != "Approved" {
		t.Fatalf("a sees %+v, %v; want status Approved", v, err)
	}

	// Both handles write at once, as the worker and a tool would.
	const perHandle = 15
	var wg sync.WaitGroup
	for h, s := range []*Store{a, b} {
		wg.Go(func() {
			for i := range perHandle {
				id := fmt.Sprintf("h%d-%d", h, i)
				if _, err := s.RecordEvent(ctx, event(id, id, 100, "Approved")); err != nil {
					t.Errorf("RecordEvent %s: %v", id, err)
				}
				if _, _, err := s.ClaimNotification(ctx, id, "decision", pii.HashAddress(id+"@example.com")); err != nil {
					t.Errorf("ClaimNotification %s: %v", id, err)
				}
			}
		})
	}
	wg.Wait()
	for h, reader := range []*Store{b, a} {
		for i := range perHandle {
			id := fmt.Sprintf("h%d-%d", h, i)
			if _, err := reader.Session(ctx, id); err != nil {
				t.Errorf("Session %s from the other handle: %v", id, err)
			}
			if _, err := reader.Notification(ctx, id, "decision"); err != nil {
				t.Errorf("Notification %s from the other handle: %v", id, err)
			}
		}
	}
}

func testDuplicateEventKey(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	first := event("s-1", "k-1", 100, "In Review")
	first.VendorData = "user-1"

	res, err := s.RecordEvent(ctx, first)
	if err != nil {
		t.Fatalf("RecordEvent: %v", err)
	}
	if want := (RecordResult{Applied: true, CurrentStatus: "In Review", Sequence: 1, StatusSequence: 1}); res != want {
		t.Fatalf("first delivery = %+v, want %+v", res, want)
	}
	before, err := s.Session(ctx, "s-1")
	if err != nil {
		t.Fatal(err)
	}

	// A redelivery carrying different content must still change nothing.
	again := event("s-1", "k-1", 500, "Declined")
	for range 2 {
		res, err := s.RecordEvent(ctx, again)
		if err != nil {
			t.Fatalf("RecordEvent duplicate: %v", err)
		}
		// The first recording's outcome, so a caller whose first attempt
		// committed unseen still acts on it; its change needed no
		// announcement (the first recording was not Unannounced).
		if want := (RecordResult{Duplicate: true, Applied: true, CurrentStatus: "In Review", Sequence: 1, StatusSequence: 1,
			Announced: true}); res != want {
			t.Errorf("redelivery = %+v, want %+v", res, want)
		}
	}
	after, err := s.Session(ctx, "s-1")
	if err != nil {
		t.Fatal(err)
	}
	if !equalSessionRecord(before, after) {
		t.Errorf("duplicate changed the record:\nbefore %+v\nafter  %+v", before, after)
	}
	events, err := s.Events(ctx, "s-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Status != "In Review" || !events[0].Applied {
		t.Errorf("events = %+v, want the first delivery only, applied", events)
	}
}

func testSameKeyInAnotherSession(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	for _, session := range []string{"s-1", "s-2"} {
		res, err := s.RecordEvent(ctx, event(session, "shared-key", 100, "Approved"))
		if err != nil {
			t.Fatalf("RecordEvent %s: %v", session, err)
		}
		if !res.Applied || res.Duplicate {
			t.Fatalf("%s: %+v: a key seen in another session is not a duplicate", session, res)
		}
	}
}

func testRecentSessions(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	for i, session := range []string{"s-1", "s-2", "s-3"} {
		if _, err := s.RecordEvent(ctx, event(session, session+"-k", int64(100+i), "Approved")); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.RecentSessions(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Status != "Approved" {
		t.Fatalf("RecentSessions = %+v", got)
	}
}

func testNotificationInDoubt(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	hash := pii.HashAddress("user@example.com")
	if _, claimed, err := s.ClaimNotification(ctx, "s-1", "approved", hash); err != nil || !claimed {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	for range 2 {
		if err := s.MarkNotificationSending(ctx, "s-1", "approved"); err != nil {
			t.Fatalf("MarkNotificationSending: %v", err)
		}
	}
	n, claimed, err := s.ClaimNotification(ctx, "s-1", "approved", hash)
	if err != nil || claimed || n.State != NotificationSending {
		t.Fatalf("claim after handover = %+v, %v, %v; want not claimed, sending", n, claimed, err)
	}
	if err := s.MarkNotificationInDoubt(ctx, "s-1", "approved"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Notification(ctx, "s-1", "approved"); n.State != NotificationSent || n.Detail == "" {
		t.Fatalf("settled = %+v", n)
	}
	if err := s.MarkNotificationSending(ctx, "s-1", "approved"); !errors.Is(err, ErrConflict) {
		t.Fatalf("sending after sent: %v, want ErrConflict", err)
	}
}

// testNotificationNotSentIsSendableAgain: a reply refusing the message
// (even after it was marked sending) puts it back to claimed, so the next
// claim sends it; a settled notification cannot go back.
func testNotificationNotSentIsSendableAgain(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	hash := pii.HashAddress("user@example.com")
	if _, claimed, err := s.ClaimNotification(ctx, "s-1", "approved", hash); err != nil || !claimed {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	if err := s.MarkNotificationSending(ctx, "s-1", "approved"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a retry of the write changes nothing more
		if err := s.MarkNotificationNotSent(ctx, "s-1", "approved", `smtp "." rejected: 451 4.7.1 <user@example.com> greylisted`); err != nil {
			t.Fatalf("MarkNotificationNotSent: %v", err)
		}
	}
	n, err := s.Notification(ctx, "s-1", "approved")
	if err != nil || n.State != NotificationClaimed || !strings.Contains(n.Detail, "451") || strings.Contains(n.Detail, "user@") {
		t.Fatalf("not sent = %+v, %v; want claimed with the redacted reason", n, err)
	}
	n, claimed, err := s.ClaimNotification(ctx, "s-1", "approved", hash)
	if err != nil || !claimed || n.Attempts != 2 {
		t.Fatalf("claim after a refusal = %+v, %v, %v; want claimed again", n, claimed, err)
	}
	if err := s.MarkNotificationSending(ctx, "s-1", "approved"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkNotificationSent(ctx, "s-1", "approved"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Notification(ctx, "s-1", "approved"); n.State != NotificationSent || n.Detail != "" || len(n.Refused) != 0 {
		t.Fatalf("sent = %+v", n)
	}
	if err := s.MarkNotificationNotSent(ctx, "s-1", "approved", "late"); !errors.Is(err, ErrConflict) {
		t.Fatalf("not sent after sent: %v, want ErrConflict", err)
	}
	if err := s.MarkNotificationNotSent(ctx, "s-1", "missing", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("not sent of a missing notification: %v, want ErrNotFound", err)
	}
}

// testNotificationPartlySent: refused recipients are kept by hash, with the
// reply and the redacted text, through sending, sent, in doubt and
// undeliverable; anything but a hash is refused.
func testNotificationPartlySent(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	head := RefusedRecipient{RecipientHash: pii.HashAddress("head@example.com"), Code: 550, Enhanced: "5.1.1",
		Text: `<head@example.com>: User unknown; "quoted", back\slash`}
	other := RefusedRecipient{RecipientHash: pii.HashAddress("other@example.com"), Code: 553}
	want := []RefusedRecipient{
		{RecipientHash: head.RecipientHash, Code: 550, Enhanced: "5.1.1", Text: `<[redacted]>: User unknown; "quoted", back\slash`},
		other,
	}
	claim := func(kind string) {
		t.Helper()
		if _, claimed, err := s.ClaimNotification(ctx, "s-1", kind, pii.HashAddress("a,b")); err != nil || !claimed {
			t.Fatalf("claim %s: %v, %v", kind, claimed, err)
		}
	}
	check := func(kind string, state NotificationState, detail string) {
		t.Helper()
		n, err := s.Notification(ctx, "s-1", kind)
		if err != nil || n.State != state || !slices.Equal(n.Refused, want) || !strings.Contains(n.Detail, detail) ||
			strings.Contains(n.Detail, "@example.com") {
			t.Fatalf("%s = %+v, %v; want %s with %q and refusals %+v", kind, n, err, state, detail, want)
		}
	}

	claim("sent")
	if err := s.MarkNotificationSending(ctx, "s-1", "sent", head, other); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkNotificationSent(ctx, "s-1", "sent", head, other); err != nil {
		t.Fatal(err)
	}
	check("sent", NotificationSent, "partly sent")

	claim("doubt") // refusals recorded at the handover survive the settlement
	if err := s.MarkNotificationSending(ctx, "s-1", "doubt", head, other); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkNotificationInDoubt(ctx, "s-1", "doubt"); err != nil {
		t.Fatal(err)
	}
	check("doubt", NotificationSent, "in doubt")

	claim("none")
	if err := s.MarkNotificationUndeliverable(ctx, "s-1", "none", "recipient rejected: smtp RCPT rejected: 550 5.1.1", head, other); err != nil {
		t.Fatal(err)
	}
	check("none", NotificationUndeliverable, "recipient rejected")

	claim("bad")
	bad := RefusedRecipient{RecipientHash: "head@example.com", Code: 550}
	if err := s.MarkNotificationSent(ctx, "s-1", "bad", bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an address for a hash: %v, want ErrInvalid", err)
	}
	if err := s.MarkNotificationSending(ctx, "s-1", "bad", RefusedRecipient{RecipientHash: head.RecipientHash}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no reply code: %v, want ErrInvalid", err)
	}
	if n, _ := s.Notification(ctx, "s-1", "bad"); n.State != NotificationClaimed {
		t.Fatalf("a refused write changed the notification: %+v", n)
	}
}

func testGauges(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	if _, err := s.RecordEvent(ctx, event("s-1", "k", 1, "In Review")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAttention(ctx, "s-1", true, "in_doubt: the approved notice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: "aml-case-s-1", SessionID: "s-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordEvent(ctx, event("s-2", "k", 1, "Declined")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: "aml-case-s-2", SessionID: "s-2"}); err != nil {
		t.Fatal(err)
	}
	// The third reminder escalated the second case: it is overdue.
	if err := s.RecordAMLReminder(ctx, "aml-case-s-2", 3, true); err != nil {
		t.Fatal(err)
	}
	g, err := s.Gauges(ctx)
	want := Gauges{OpenAMLCases: 2, OverdueAMLCases: 1, NeedsAttention: 1, Sessions: map[string]int{"In Review": 1, "Declined": 1}}
	if err != nil || !reflect.DeepEqual(g, want) {
		t.Fatalf("Gauges = %+v, %v; want %+v", g, err, want)
	}
}

func testEventsApplyInEventTimeOrder(t *testing.T, dsn string) {
	risk := 0.87
	type step struct {
		key        string
		at         int64
		status     string
		vendorData string
		amlHits    int
		risk       *float64
		wantApply  bool
		wantPrev   string
	}
	tests := []struct {
		name  string
		steps []step
		// want is the record's final state and the event log, oldest first.
		wantStatus, wantKey, wantVendor string
		wantAt                          int64
		wantHits                        int
		wantRisk                        *float64
		wantLog                         []string // "key:applied"
	}{
		{
			name: "in order",
			steps: []step{
				{key: "a", at: 100, status: "Not Started", vendorData: "user-1", wantApply: true},
				{key: "b", at: 200, status: "In Progress", vendorData: "user-1", wantApply: true, wantPrev: "Not Started"},
				{key: "c", at: 300, status: "Approved", vendorData: "user-1", amlHits: 2, risk: &risk, wantApply: true, wantPrev: "In Progress"},
			},
			wantStatus: "Approved", wantKey: "c", wantVendor: "user-1", wantAt: 300, wantHits: 2, wantRisk: &risk,
			wantLog: []string{"a:true", "b:true", "c:true"},
		},
		{
			name: "older events arrive late",
			steps: []step{
				{key: "c", at: 300, status: "Declined", vendorData: "user-1", wantApply: true},
				{key: "a", at: 100, status: "Not Started", vendorData: "user-2", wantPrev: "Declined"},
				{key: "b", at: 200, status: "In Progress", vendorData: "user-2", amlHits: 5, risk: &risk, wantPrev: "Declined"},
			},
			wantStatus: "Declined", wantKey: "c", wantVendor: "user-1", wantAt: 300,
			wantLog: []string{"a:false", "b:false", "c:true"},
		},
		{
			name: "same second: the later stage wins",
			steps: []step{
				{key: "a", at: 100, status: "In Review", wantApply: true},
				{key: "b", at: 100, status: "Approved", wantApply: true, wantPrev: "In Review"},
				{key: "c", at: 100, status: "In Progress", wantPrev: "Approved"},
				{key: "d", at: 100, status: "Declined", wantPrev: "Approved"},
			},
			wantStatus: "Approved", wantKey: "b", wantAt: 100,
			wantLog: []string{"a:true", "b:true", "c:false", "d:false"},
		},
		{
			name: "interleaved, and an event without vendor data keeps it",
			steps: []step{
				{key: "b", at: 200, status: "In Progress", vendorData: "user-1", wantApply: true},
				{key: "a", at: 100, status: "Not Started", vendorData: "user-1", wantPrev: "In Progress"},
				{key: "d", at: 400, status: "Approved", wantApply: true, wantPrev: "In Progress"},
				{key: "c", at: 300, status: "In Review", vendorData: "user-1", wantPrev: "Approved"},
			},
			wantStatus: "Approved", wantKey: "d", wantVendor: "user-1", wantAt: 400,
			wantLog: []string{"a:false", "b:true", "c:false", "d:true"},
		},
	}
	s := open(t, dsn)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			session := fmt.Sprintf("s-%d", i)
			// Each status change the record takes is numbered, in the order
			// the record takes them.
			var seq int64
			for _, st := range tc.steps {
				e := event(session, session+"-"+st.key, st.at, st.status)
				e.VendorData, e.AMLHits, e.AMLMaxRiskScore = st.vendorData, st.amlHits, st.risk
				res, err := s.RecordEvent(ctx, e)
				if err != nil {
					t.Fatalf("RecordEvent %s: %v", st.key, err)
				}
				cur, changed := st.wantPrev, int64(0)
				if st.wantApply {
					cur = st.status
					seq++
					changed = seq
				}
				want := RecordResult{Applied: st.wantApply, PreviousStatus: st.wantPrev, CurrentStatus: cur, Sequence: changed, StatusSequence: seq}
				if res != want {
					t.Errorf("RecordEvent %s = %+v, want %+v", st.key, res, want)
				}
			}

			v, err := s.Session(ctx, session)
			if err != nil {
				t.Fatalf("Session: %v", err)
			}
			if v.Status != tc.wantStatus || v.EventKey != session+"-"+tc.wantKey || v.EventCreatedAt != tc.wantAt ||
				v.VendorData != tc.wantVendor || v.AMLHits != tc.wantHits || !equalFloatPtr(v.AMLMaxRiskScore, tc.wantRisk) {
				t.Errorf("record = status %q key %q at %d vendor %q hits %d risk %v; want %q %q %d %q %d %v",
					v.Status, v.EventKey, v.EventCreatedAt, v.VendorData, v.AMLHits, fmtFloatPtr(v.AMLMaxRiskScore),
					tc.wantStatus, session+"-"+tc.wantKey, tc.wantAt, tc.wantVendor, tc.wantHits, fmtFloatPtr(tc.wantRisk))
			}
			if !v.FirstSeenAt.Equal(testNow) || !v.UpdatedAt.Equal(testNow) {
				t.Errorf("first seen %v, updated %v, want both %v", v.FirstSeenAt, v.UpdatedAt, testNow)
			}

			events, err := s.Events(ctx, session)
			if err != nil {
				t.Fatalf("Events: %v", err)
			}
			var log []string
			for _, e := range events {
				log = append(log, fmt.Sprintf("%s:%t", strings.TrimPrefix(e.EventKey, session+"-"), e.Applied))
			}
			if !slices.Equal(log, tc.wantLog) {
				t.Errorf("event log = %v, want %v", log, tc.wantLog)
			}
		})
	}
}

func testConcurrentEventsForOneSession(t *testing.T, dsn string) {
	ctx := t.Context()
	// Two handles stand in for two worker processes.
	handles := []*Store{open(t, dsn), open(t, dsn)}
	const n = 24
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		s := handles[i%len(handles)]
		wg.Go(func() {
			<-start
			e := event("s-race", fmt.Sprintf("k-%02d", i), int64(1000+i), fmt.Sprintf("status-%02d", i))
			if _, err := s.RecordEvent(ctx, e); err != nil {
				t.Errorf("RecordEvent %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()

	v, err := handles[0].Session(ctx, "s-race")
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	want := fmt.Sprintf("status-%02d", n)
	if v.Status != want || v.EventCreatedAt != 1000+n {
		t.Errorf("record = %q at %d, want %q at %d", v.Status, v.EventCreatedAt, want, 1000+n)
	}
	events, err := handles[1].Events(ctx, "s-race")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(events) != n {
		t.Fatalf("got %d events, want %d", len(events), n)
	}
	for i, e := range events {
		if e.EventCreatedAt != int64(1001+i) {
			t.Errorf("event %d created at %d, want %d (ordered by event time)", i, e.EventCreatedAt, 1001+i)
		}
	}
	if !events[n-1].Applied {
		t.Errorf("newest event not applied: %+v", events[n-1])
	}
}

func testNeedsAttention(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	if _, err := s.RecordEvent(ctx, event("s-1", "k-1", 100, "In Review")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAttention(ctx, "s-1", true, "in_doubt: the approved notice"); err != nil {
		t.Fatalf("SetAttention(true): %v", err)
	}
	// A newer event must not silently clear an operator flag.
	if res, err := s.RecordEvent(ctx, event("s-1", "k-2", 200, "Approved")); err != nil || !res.Applied {
		t.Fatalf("RecordEvent = %+v, %v", res, err)
	}
	if v, err := s.Session(ctx, "s-1"); err != nil || !v.NeedsAttention || v.Status != "Approved" {
		t.Fatalf("after newer event: %+v, %v; want flagged and Approved", v, err)
	}
	if err := s.SetAttention(ctx, "s-1", false, ""); err != nil {
		t.Fatalf("SetAttention(false): %v", err)
	}
	if v, err := s.Session(ctx, "s-1"); err != nil || v.NeedsAttention {
		t.Fatalf("after clearing: %+v, %v; want not flagged", v, err)
	}
}

func testNotifications(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	alice := pii.HashAddress("Alice@Example.com ")
	if alice != pii.HashAddress("alice@example.com") {
		t.Fatal("HashRecipient depends on case or surrounding space")
	}

	type step struct {
		do           string // claim, sent, undeliverable
		detail       string
		wantClaimed  bool
		wantErr      error
		wantState    NotificationState
		wantAttempts int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "claim, crash, claim again, send, skip",
			steps: []step{
				{do: "claim", wantClaimed: true, wantState: NotificationClaimed, wantAttempts: 1},
				{do: "claim", wantClaimed: true, wantState: NotificationClaimed, wantAttempts: 2},
				{do: "sent", wantState: NotificationSent, wantAttempts: 2},
				{do: "claim", wantClaimed: false, wantState: NotificationSent, wantAttempts: 2},
				{do: "sent", wantState: NotificationSent, wantAttempts: 2},
				{do: "undeliverable", detail: "late bounce", wantErr: ErrConflict, wantState: NotificationSent, wantAttempts: 2},
			},
		},
		{
			name: "undeliverable is final",
			steps: []step{
				{do: "claim", wantClaimed: true, wantState: NotificationClaimed, wantAttempts: 1},
				{do: "undeliverable", detail: "mailbox does not exist", wantState: NotificationUndeliverable, wantAttempts: 1},
				{do: "undeliverable", detail: "second reason", wantState: NotificationUndeliverable, wantAttempts: 1},
				{do: "claim", wantClaimed: false, wantState: NotificationUndeliverable, wantAttempts: 1},
				{do: "sent", wantErr: ErrConflict, wantState: NotificationUndeliverable, wantAttempts: 1},
			},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			session := fmt.Sprintf("s-%d", i)
			for j, st := range tc.steps {
				var (
					claimed bool
					err     error
				)
				switch st.do {
				case "claim":
					_, claimed, err = s.ClaimNotification(ctx, session, "decision", alice)
				case "sent":
					err = s.MarkNotificationSent(ctx, session, "decision")
				case "undeliverable":
					err = s.MarkNotificationUndeliverable(ctx, session, "decision", st.detail)
				}
				if !errors.Is(err, st.wantErr) {
					t.Fatalf("step %d %s: err = %v, want %v", j, st.do, err, st.wantErr)
				}
				if claimed != st.wantClaimed {
					t.Errorf("step %d %s: claimed = %t, want %t", j, st.do, claimed, st.wantClaimed)
				}
				n, err := s.Notification(ctx, session, "decision")
				if err != nil {
					t.Fatalf("step %d: Notification: %v", j, err)
				}
				if n.State != st.wantState || n.Attempts != st.wantAttempts {
					t.Errorf("step %d %s: state %s attempts %d, want %s %d", j, st.do, n.State, n.Attempts, st.wantState, st.wantAttempts)
				}
			}
		})
	}

	sent, err := s.Notification(ctx, "s-0", "decision")
	if err != nil {
		t.Fatal(err)
	}
	if !sent.SentAt.Equal(testNow) || !sent.ClaimedAt.Equal(testNow) || sent.RecipientHash != alice || sent.Detail != "" {
		t.Errorf("sent notification = %+v", sent)
	}
	failed, err := s.Notification(ctx, "s-1", "decision")
	if err != nil {
		t.Fatal(err)
	}
	if !failed.SentAt.IsZero() || failed.Detail != "mailbox does not exist" {
		t.Errorf("undeliverable notification = %+v, want no SentAt and the first detail", failed)
	}

	// Kinds are independent, and listing orders them by kind.
	if _, claimed, err := s.ClaimNotification(ctx, "s-0", "aml_review", alice); err != nil || !claimed {
		t.Fatalf("claim another kind: claimed %t, %v", claimed, err)
	}
	list, err := s.Notifications(ctx, "s-0")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, n := range list {
		kinds = append(kinds, n.Kind+"="+string(n.State))
	}
	if want := []string{"aml_review=claimed", "decision=sent"}; !slices.Equal(kinds, want) {
		t.Errorf("Notifications = %v, want %v", kinds, want)
	}
}

func testAMLCase(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	opened := testNow.Add(-time.Hour)
	hits := []AMLHit{
		{ID: "hit-1", Datasets: []string{"PEP", "Sanctions"}, MatchScore: 0.93, RiskScore: 0.8, ReviewStatus: "Unreviewed"},
		{ID: "hit-2", Datasets: []string{"Adverse Media"}, MatchScore: 0.41, RiskScore: 0.2, ReviewStatus: "Unreviewed"},
	}

	created, err := s.OpenAMLCase(ctx, AMLCase{CaseID: "aml-case-s-1", SessionID: "s-1", OpenedAt: opened, Hits: hits})
	if err != nil || !created {
		t.Fatalf("OpenAMLCase = %t, %v; want created", created, err)
	}
	created, err = s.OpenAMLCase(ctx, AMLCase{CaseID: "aml-case-s-1", SessionID: "s-1", Hits: hits[:1]})
	if err != nil || created {
		t.Fatalf("second OpenAMLCase = %t, %v; want not created", created, err)
	}
	c, err := s.AMLCase(ctx, "aml-case-s-1")
	if err != nil {
		t.Fatalf("AMLCase: %v", err)
	}
	if c.State != AMLCaseOpen || !c.OpenedAt.Equal(opened) || len(c.Hits) != 2 ||
		!slices.Equal(c.Hits[0].Datasets, hits[0].Datasets) || c.Hits[1].ID != "hit-2" || c.Resolution != nil {
		t.Errorf("opened case = %+v, want the first open unchanged", c)
	}

	// Reminder 2 is recorded twice, as an activity retry would.
	for i, escalated := range []bool{false, true, true, false} {
		n := []int{1, 2, 2, 3}[i]
		if err := s.RecordAMLReminder(ctx, "aml-case-s-1", n, escalated); err != nil {
			t.Fatalf("RecordAMLReminder(%d, %t): %v", n, escalated, err)
		}
	}
	if c, err = s.AMLCase(ctx, "aml-case-s-1"); err != nil || c.RemindersSent != 3 || !c.Escalated {
		t.Fatalf("after reminders: %+v, %v; want 3 reminders, escalated", c, err)
	}

	res := Resolution{Outcome: contract.FalsePositive, Reviewer: "officer-7", Identity: "temporal-cli:officer7@desk", Note: "different birth year"}
	if err := s.ResolveAMLCase(ctx, "aml-case-s-1", res); err != nil {
		t.Fatalf("ResolveAMLCase: %v", err)
	}
	retry := Resolution{Outcome: contract.FalsePositive, Reviewer: "officer-9", Identity: "webui", Note: "retry"}
	if err := s.ResolveAMLCase(ctx, "aml-case-s-1", retry); err != nil {
		t.Fatalf("ResolveAMLCase with the same outcome: %v", err)
	}
	other := Resolution{Outcome: contract.ConfirmedMatch, Reviewer: "officer-9"}
	if err := s.ResolveAMLCase(ctx, "aml-case-s-1", other); !errors.Is(err, ErrConflict) {
		t.Fatalf("ResolveAMLCase with another outcome: %v, want ErrConflict", err)
	}

	c, err = s.AMLCase(ctx, "aml-case-s-1")
	if err != nil {
		t.Fatal(err)
	}
	want := Resolution{Outcome: contract.FalsePositive, Reviewer: "officer-7", Identity: "temporal-cli:officer7@desk", Note: "different birth year", ResolvedAt: testNow}
	if c.State != AMLCaseResolved || c.Resolution == nil || *c.Resolution != want {
		t.Errorf("resolved case = %+v resolution %+v, want %+v", c, c.Resolution, want)
	}
	if c.RemindersSent != 3 || !c.Escalated {
		t.Errorf("resolving changed reminders: %+v", c)
	}
}

func testNotFound(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	calls := map[string]func() error{
		"Session": func() error { _, err := s.Session(ctx, "missing"); return err },
		"SetAttention": func() error {
			return s.SetAttention(ctx, "missing", true, "")
		},
		"Notification":         func() error { _, err := s.Notification(ctx, "missing", "decision"); return err },
		"MarkNotificationSent": func() error { return s.MarkNotificationSent(ctx, "missing", "decision") },
		"MarkNotificationUndeliverable": func() error {
			return s.MarkNotificationUndeliverable(ctx, "missing", "decision", "gone")
		},
		"AMLCase":           func() error { _, err := s.AMLCase(ctx, "missing"); return err },
		"RecordAMLReminder": func() error { return s.RecordAMLReminder(ctx, "missing", 1, true) },
		"ResolveAMLCase": func() error {
			return s.ResolveAMLCase(ctx, "missing", Resolution{Outcome: contract.Inconclusive})
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", name, err)
		}
	}
	if events, err := s.Events(ctx, "missing"); err != nil || len(events) != 0 {
		t.Errorf("Events = %v, %v; want empty", events, err)
	}
	if ns, err := s.Notifications(ctx, "missing"); err != nil || len(ns) != 0 {
		t.Errorf("Notifications = %v, %v; want empty", ns, err)
	}
}

func testInvalidArguments(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: "aml-case-s-1", SessionID: "s-1"}); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"event without key": func() error {
			_, err := s.RecordEvent(ctx, EventRecord{SessionID: "s-1", EventCreatedAt: 1})
			return err
		},
		"raw address instead of hash": func() error {
			_, _, err := s.ClaimNotification(ctx, "s-1", "decision", "alice@example.com")
			return err
		},
		"unknown outcome": func() error {
			return s.ResolveAMLCase(ctx, "aml-case-s-1", Resolution{Outcome: "probably_fine"})
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.Notification(ctx, "s-1", "decision"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused claim was stored: %v", err)
	}
}

func testNoPIIInLogs(t *testing.T, dsn string) {
	ctx := t.Context()
	var logs syncBuffer
	s, err := Open(ctx, dsn, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })

	e := event("s-1", "k-1", 100, "Approved")
	e.VendorData = "customer-4711"
	if _, err := s.RecordEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ClaimNotification(ctx, "s-1", "decision", pii.HashAddress("jane.doe@example.com")); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkNotificationUndeliverable(ctx, "s-1", "decision",
		"550 5.1.1 <jane.doe@example.com>: Recipient address rejected"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: "aml-case-s-1", SessionID: "s-1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveAMLCase(ctx, "aml-case-s-1", Resolution{Outcome: contract.FalsePositive, Note: "Jane Doe is not the listed person"}); err != nil {
		t.Fatal(err)
	}

	n, err := s.Notification(ctx, "s-1", "decision")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(n.Detail, "jane.doe") || !strings.Contains(n.Detail, "Recipient address rejected") {
		t.Errorf("stored detail %q: want the reason without the address", n.Detail)
	}
	out := logs.String()
	if !strings.Contains(out, "event recorded") {
		t.Fatalf("expected debug logs to check, got %q", out)
	}
	for _, pii := range []string{"customer-4711", "jane.doe", "Jane Doe"} {
		if strings.Contains(out, pii) {
			t.Errorf("logs contain %q:\n%s", pii, out)
		}
	}
}

// TestSQLiteSharedByTwoProcesses runs two copies of the test binary against
// one new SQLite file: both migrate it at once and then record events for the
// same session, as the worker and a tool would.
func TestSQLiteSharedByTwoProcesses(t *testing.T) {
	const (
		dsnEnv   = "STORE_TEST_CHILD_DSN"
		idEnv    = "STORE_TEST_CHILD_ID"
		perChild = 25
	)
	if dsn := os.Getenv(dsnEnv); dsn != "" {
		child, err := strconv.Atoi(os.Getenv(idEnv))
		if err != nil {
			t.Fatal(err)
		}
		s := open(t, dsn)
		for i := range perChild {
			at := int64(2*i + child) // The children's events interleave in time.
			key := fmt.Sprintf("child%d-%d", child, i)
			if _, err := s.RecordEvent(t.Context(), event("s-shared", key, at, fmt.Sprintf("status-%d", at))); err != nil {
				t.Fatalf("RecordEvent %s: %v", key, err)
			}
		}
		return
	}

	dsn := filepath.Join(t.TempDir(), "shared", "records.db")
	errs := make([]error, 2)
	outs := make([][]byte, 2)
	var wg sync.WaitGroup
	for child := range 2 {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSQLiteSharedByTwoProcesses$", "-test.count=1")
			cmd.Env = append(os.Environ(), dsnEnv+"="+dsn, idEnv+"="+strconv.Itoa(child))
			outs[child], errs[child] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	for child := range 2 {
		if errs[child] != nil {
			t.Fatalf("child %d: %v\n%s", child, errs[child], outs[child])
		}
	}

	s := open(t, dsn)
	assertMigratedOnce(t, s)
	v, err := s.Session(t.Context(), "s-shared")
	if err != nil {
		t.Fatal(err)
	}
	newest := int64(2*(perChild-1) + 1)
	if v.EventCreatedAt != newest || v.Status != fmt.Sprintf("status-%d", newest) {
		t.Errorf("record = %q at %d, want the newest event, at %d", v.Status, v.EventCreatedAt, newest)
	}
	events, err := s.Events(t.Context(), "s-shared")
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2*perChild {
		t.Errorf("got %d events, want %d", len(events), 2*perChild)
	}
}

func TestSQLiteConnectionSettings(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "records.db"))
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"busy_timeout": "5000",
		"foreign_keys": "1",
		"synchronous":  "2",
	} {
		var got string
		if err := s.db.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

func TestOpenSQLiteDSNForms(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct {
		dsn  string
		file string // relative to dir
	}{
		{dsn: "plain.db", file: "plain.db"},
		{dsn: filepath.Join(dir, "nested", "deeper", "abs.db"), file: "nested/deeper/abs.db"},
		{dsn: "sqlite://rel/scheme.db", file: "rel/scheme.db"},
		{dsn: "sqlite://" + filepath.Join(dir, "abs-scheme.db"), file: "abs-scheme.db"},
		{dsn: "file:fileform.db", file: "fileform.db"},
		{dsn: "file://" + filepath.Join(dir, "file uri #1.db"), file: "file uri #1.db"},
	}
	for _, tc := range tests {
		t.Run(tc.dsn, func(t *testing.T) {
			s := open(t, tc.dsn)
			if _, err := s.RecordEvent(t.Context(), event("s-1", "k-1", 1, "Approved")); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, tc.file)); err != nil {
				t.Errorf("database not at %s: %v", tc.file, err)
			}
		})
	}

	for _, dsn := range []string{"", "sqlite://", "records.db?_pragma=journal_mode(DELETE)"} {
		if _, err := Open(t.Context(), dsn, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%q) = %v, want ErrInvalid", dsn, err)
		}
	}
}

func TestRebind(t *testing.T) {
	pg := &Store{dialect: postgres}
	if got, want := pg.q(`SELECT a FROM t WHERE b = ? AND c IN (?, ?)`), `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)`; got != want {
		t.Errorf("postgres q = %s, want %s", got, want)
	}
	lite := &Store{dialect: sqlite}
	if got, want := lite.q(`WHERE b = ?`), `WHERE b = ?`; got != want {
		t.Errorf("sqlite q = %s, want %s", got, want)
	}
}

func event(session, key string, at int64, status string) EventRecord {
	return EventRecord{
		SessionID:      session,
		EventKey:       key,
		WebhookType:    "status.updated",
		Status:         status,
		StatusRank:     didit.Status(status).Rank(),
		EventCreatedAt: at,
	}
}

func equalSessionRecord(a, b SessionRecord) bool {
	return equalFloatPtr(a.AMLMaxRiskScore, b.AMLMaxRiskScore) &&
		a.SessionID == b.SessionID && a.Status == b.Status && a.EventCreatedAt == b.EventCreatedAt &&
		a.EventKey == b.EventKey && a.VendorData == b.VendorData && a.WebhookType == b.WebhookType &&
		a.AMLHits == b.AMLHits && a.NeedsAttention == b.NeedsAttention &&
		a.FirstSeenAt.Equal(b.FirstSeenAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func equalFloatPtr(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func fmtFloatPtr(f *float64) string {
	if f == nil {
		return "<nil>"
	}
	return strconv.FormatFloat(*f, 'g', -1, 64)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testContactAddress: the newest applied event's address wins; an older one
// fills the record only while it has none; an event without one keeps it.
func testContactAddress(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	if _, err := s.ContactAddress(ctx, "s1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown session: %v, want ErrNotFound", err)
	}
	record := func(key string, at int64, status, email string) {
		t.Helper()
		e := event("s1", key, at, status)
		e.ContactEmail = email
		if _, err := s.RecordEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	want := func(email string) {
		t.Helper()
		got, err := s.ContactAddress(ctx, "s1")
		if err != nil || got != email {
			t.Fatalf("ContactAddress = %q, %v; want %q", got, err, email)
		}
	}
	// Newest first: Kyc Expired without an address, then the older
	// Approved that has one: not applied, but the record had none.
	record("e3", 300, "Kyc Expired", "")
	want("")
	record("e1", 100, "Approved", "old@example.com")
	want("old@example.com")
	record("e2", 200, "In Review", "older-not-applied@example.com")
	want("old@example.com")
	record("e4", 400, "In Review", "new@example.com")
	want("new@example.com")
	record("e5", 500, "Approved", "")
	want("new@example.com")
}

// testSequenceAndAnnouncements: a session's status changes and the
// resolutions of its AML cases are numbered in one increasing sequence; an
// edit that keeps the status takes no number; a redelivery reports whether
// its change was announced, which MarkAnnounced records.
func testSequenceAndAnnouncements(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	record := func(e EventRecord) RecordResult {
		t.Helper()
		e.Unannounced = true
		res, err := s.RecordEvent(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if st, err := s.StatusOf(ctx, "s-1"); err != nil || st != (SessionStatus{}) {
		t.Fatalf("status of a session never recorded = %+v, %v", st, err)
	}
	inReview := event("s-1", "k-review", 100, "In Review")
	if res := record(inReview); res.Sequence != 1 || res.StatusSequence != 1 {
		t.Fatalf("first change = %+v, want number 1", res)
	}
	edit := event("s-1", "k-edit", 150, "In Review")
	edit.WebhookType = "data.updated"
	if res := record(edit); !res.Applied || res.Sequence != 0 || res.StatusSequence != 1 {
		t.Fatalf("an edit of the same status = %+v, want applied without a number", res)
	}
	if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: "aml-case-s-1", SessionID: "s-1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveAMLCase(ctx, "aml-case-s-1", Resolution{Outcome: contract.ConfirmedMatch, Reviewer: "officer"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if seq, err := s.ResolutionSequence(ctx, "aml-case-s-1"); err != nil || seq != 2 {
			t.Fatalf("resolution's number = %d, %v; want 2, asked once or twice", seq, err)
		}
	}
	declined := event("s-1", "k-declined", 200, "Declined")
	if res := record(declined); res.Sequence != 3 || res.StatusSequence != 3 {
		t.Fatalf("change after the resolution = %+v, want number 3", res)
	}
	if res := record(event("s-1", "k-late", 120, "In Progress")); res.Applied || res.Sequence != 0 || res.StatusSequence != 3 {
		t.Fatalf("a stale event = %+v, want no number, the current one 3", res)
	}
	st, err := s.StatusOf(ctx, "s-1")
	if want := (SessionStatus{Status: "Declined", Sequence: 3, At: 200}); err != nil || st != want {
		t.Fatalf("status = %+v, %v; want %+v", st, err, want)
	}

	// Redelivered before its announcement: the announcement is still due
	// (the first recording's answer may have been lost).
	if res := record(inReview); !res.Duplicate || res.Sequence != 1 || res.Announced {
		t.Fatalf("redelivery before MarkAnnounced = %+v, want number 1, not announced", res)
	}
	if err := s.MarkAnnounced(ctx, "s-1", 1); err != nil {
		t.Fatal(err)
	}
	if res := record(inReview); !res.Duplicate || !res.Announced {
		t.Fatalf("redelivery after MarkAnnounced(1) = %+v, want announced", res)
	}
	if res := record(declined); res.Announced {
		t.Fatalf("change 3 redelivered after MarkAnnounced(1) = %+v, want not announced", res)
	}
	if err := s.MarkAnnounced(ctx, "s-1", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkAnnounced(ctx, "s-1", 2); err != nil {
		t.Fatal(err)
	}
	if res := record(declined); !res.Announced {
		t.Fatalf("change 3 after MarkAnnounced(3), then (2) = %+v, want announced: the mark never goes back", res)
	}
	if _, err := s.ResolutionSequence(ctx, "aml-case-unknown"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown case: %v, want ErrNotFound", err)
	}
}

// testRecordsBeforeTheSequenceMigrate: a session recorded before 00006 has
// its status changes so far numbered by count, all announced (they were
// handled before hooks existed), and the next change takes the next number.
func testRecordsBeforeTheSequenceMigrate(t *testing.T, dsn string) {
	ctx := t.Context()
	db, p := gooseProvider(t, dsn)
	if _, err := p.UpTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO verifications (session_id, status, event_created_at, status_rank, event_key, webhook_type,
			needs_attention, attention, first_seen_at, updated_at, applied_at)
		VALUES ('s-old', 'Approved', 300, 4, 'k-3', 'status.updated', FALSE, '', 1000, 1000, 1000)`,
		`INSERT INTO verification_events (session_id, event_key, webhook_type, status, event_created_at, received_at, applied, previous_status)
		VALUES ('s-old', 'k-1', 'status.updated', 'Not Started', 100, 1000, TRUE, ''),
		       ('s-old', 'k-2', 'status.updated', 'In Progress', 200, 1000, TRUE, 'Not Started'),
		       ('s-old', 'k-2b', 'data.updated', 'In Progress', 250, 1000, TRUE, 'In Progress'),
		       ('s-old', 'k-0', 'status.updated', 'Not Started', 50, 1000, FALSE, 'In Progress'),
		       ('s-old', 'k-3', 'status.updated', 'Approved', 300, 1000, TRUE, 'In Progress')`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	s := openUnmanaged(t, dsn)
	defer s.Close()
	if st, err := s.StatusOf(ctx, "s-old"); err != nil || st != (SessionStatus{Status: "Approved", Sequence: 3, At: 300}) {
		t.Fatalf("status after the migration = %+v, %v; want Approved numbered 3", st, err)
	}
	if res, err := s.RecordEvent(ctx, EventRecord{SessionID: "s-old", EventKey: "k-2", Unannounced: true}); err != nil || !res.Duplicate || res.Announced {
		t.Fatalf("an event recorded before the migration, redelivered = %+v, %v; want a duplicate of no numbered change", res, err)
	}
	next := event("s-old", "k-4", 400, "Declined")
	next.Unannounced = true
	if res, err := s.RecordEvent(ctx, next); err != nil || res.Sequence != 4 {
		t.Fatalf("the next change = %+v, %v; want number 4", res, err)
	}
}
