package store

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/pii"
)

// TestRetention runs the retention and erasure tests on both dialects.
func TestRetention(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, dsn string)
	}{
		{"PurgeBlanksPersonalFieldsOfClosedSessions", testPurgeBlanksPersonalFieldsOfClosedSessions},
		{"PurgeGoesInPages", testPurgeGoesInPages},
		{"LateEventKeepsASessionOpen", testLateEventKeepsASessionOpen},
		{"EventAfterPurge", testEventAfterPurge},
		{"AMLCasesKeepTheirOwnRetention", testAMLCasesKeepTheirOwnRetention},
		{"EraseSession", testEraseSession},
		{"EventsAfterErasure", testEventsAfterErasure},
		{"UserNoticeClaimAfterErasure", testUserNoticeClaimAfterErasure},
		{"SessionsByVendorData", testSessionsByVendorData},
		{"PurgeUsesTheIndex", testPurgeUsesTheIndex},
		{"RetentionMigratesDownAndUp", testRetentionMigratesDownAndUp},
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

const day = 24 * time.Hour

// t0 is when the sessions of these tests close; the purge runs 90 days on.
var t0 = testNow.Add(-100 * day)

// personal records a final session at t0 with everything personal the
// records keep: its address, vendor_data, a flag's reason and a notice to
// two recipients of whom one was refused.
func personal(t *testing.T, s *Store, session, status string) {
	t.Helper()
	ctx := t.Context()
	at(s, t0)
	defer at(s, testNow)
	e := event(session, session+"/"+status, t0.Unix(), status)
	e.VendorData, e.ContactEmail = "customer-"+session, "jane.doe@example.com"
	if _, err := s.RecordEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAttention(ctx, session, true, "parked: notify: 550 mailbox of Jane Doe unavailable"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ClaimNotification(ctx, session, "user:approved", pii.HashAddress("jane.doe@example.com")); err != nil {
		t.Fatal(err)
	}
	refused := RefusedRecipient{RecipientHash: pii.HashAddress("old@example.com"), Code: 550, Enhanced: "5.1.1", Text: "no such user Jane"}
	if err := s.MarkNotificationSent(ctx, session, "user:approved", refused); err != nil {
		t.Fatal(err)
	}
}

// at sets the store's clock.
func at(s *Store, t time.Time) { s.now = func() time.Time { return t } }

// assertBlank checks that a session keeps its audit trail (status, event,
// notification state) and none of its personal fields; vendorData is what
// its vendor_data should be.
func assertBlank(t *testing.T, s *Store, session, vendorData string) {
	t.Helper()
	ctx := t.Context()
	v, err := s.Session(ctx, session)
	if err != nil {
		t.Fatal(err)
	}
	if v.VendorData != vendorData || v.Attention != "" || v.Status == "" || v.EventKey == "" || !v.NeedsAttention {
		t.Errorf("record of %s = %+v; want vendor_data %q, no attention text, status, event key and flag kept", session, v, vendorData)
	}
	if email, err := s.ContactAddress(ctx, session); err != nil || email != "" {
		t.Errorf("contact address of %s = %q, %v; want blank", session, email, err)
	}
	if events, err := s.Events(ctx, session); err != nil || len(events) == 0 {
		t.Errorf("events of %s = %v, %v; want them kept", session, events, err)
	}
	ns, err := s.Notifications(ctx, session)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.RecipientHash != "" || len(n.Refused) != 0 || strings.Contains(n.Detail, "sha256") || strings.Contains(n.Detail, "Jane") {
			t.Errorf("notification %s of %s = %+v; want no recipient data", n.Kind, session, n)
		}
		if n.State != NotificationSent || n.Detail != "partly sent; refused 550 5.1.1" {
			t.Errorf("notification %s of %s: state %s, detail %q; want sent and the reply code kept", n.Kind, session, n.State, n.Detail)
		}
	}
}

func testPurgeBlanksPersonalFieldsOfClosedSessions(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	personal(t, s, "s-closed", "Approved")
	personal(t, s, "s-undecided", "In Review")
	at(s, testNow.Add(-10*day))
	if _, err := s.RecordEvent(ctx, event("s-recent", "k", testNow.Add(-10*day).Unix(), "Declined")); err != nil {
		t.Fatal(err)
	}
	at(s, testNow)

	closedBefore := testNow.Add(-90 * day)
	res, err := s.PurgeClosedSessions(ctx, closedBefore, 10)
	if err != nil {
		t.Fatal(err)
	}
	if res != (PurgeResult{Records: 1, Notifications: 1}) {
		t.Fatalf("PurgeClosedSessions = %+v; want the one closed session and its notification", res)
	}
	assertBlank(t, s, "s-closed", "")
	if email, err := s.ContactAddress(ctx, "s-undecided"); err != nil || email == "" {
		t.Errorf("a session not in a final status lost its address (%q, %v)", email, err)
	}
	if v, err := s.Session(ctx, "s-undecided"); err != nil || v.VendorData == "" || v.Attention == "" {
		t.Errorf("a session not in a final status was purged: %+v, %v", v, err)
	}
	if res, err := s.PurgeClosedSessions(ctx, closedBefore, 10); err != nil || res != (PurgeResult{}) {
		t.Fatalf("purge again = %+v, %v; want nothing to do", res, err)
	}
	if _, err := s.PurgeClosedSessions(ctx, closedBefore, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("limit 0: %v, want ErrInvalid", err)
	}
}

func testPurgeGoesInPages(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	var want []string
	for i, session := range []string{"s-4", "s-1", "s-3", "s-2", "s-5"} {
		when := t0.Add(time.Duration(i) * time.Hour)
		at(s, when)
		e := event(session, "k", when.Unix(), "Expired")
		e.ContactEmail = session + "@example.com"
		if _, err := s.RecordEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
		want = append(want, session)
	}
	at(s, testNow)
	var pages []int
	for {
		res, err := s.PurgeClosedSessions(ctx, testNow.Add(-90*day), 2)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, res.Records)
		if res.Records < 2 {
			break
		}
	}
	if !slices.Equal(pages, []int{2, 2, 1}) {
		t.Fatalf("pages of %v, want 2, 2, 1", pages)
	}
	for _, session := range want {
		if email, err := s.ContactAddress(ctx, session); err != nil || email != "" {
			t.Errorf("%s: address %q, %v after the pages", session, email, err)
		}
	}
}

// testLateEventKeepsASessionOpen: a session's last event is the last one
// recorded, applied or not; a late one that moves nothing still counts.
func testLateEventKeepsASessionOpen(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	personal(t, s, "s-1", "Approved")
	at(s, testNow.Add(-5*day))
	if res, err := s.RecordEvent(ctx, event("s-1", "k-old", t0.Unix()-60, "In Progress")); err != nil || res.Applied {
		t.Fatalf("late event = %+v, %v; want recorded, not applied", res, err)
	}
	at(s, testNow)
	if res, err := s.PurgeClosedSessions(ctx, testNow.Add(-90*day), 10); err != nil || res.Records != 0 {
		t.Fatalf("purge = %+v, %v; want the session left for now", res, err)
	}
	if res, err := s.PurgeClosedSessions(ctx, testNow.Add(-time.Hour), 10); err != nil || res.Records != 1 {
		t.Fatalf("purge past the late event = %+v, %v; want the session purged", res, err)
	}
}

// testEventAfterPurge: an event after the purge is recorded as any other,
// brings its data back, and the session is purged again once closed again.
func testEventAfterPurge(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	personal(t, s, "s-1", "Approved")
	purgeAt := t0.Add(91 * day)
	at(s, purgeAt)
	if res, err := s.PurgeClosedSessions(ctx, t0.Add(time.Hour), 10); err != nil || res.Records != 1 {
		t.Fatalf("purge = %+v, %v", res, err)
	}
	// Didit re-verifies the user later.
	later := purgeAt.Add(day)
	at(s, later)
	e := event("s-1", "k-kyc", later.Unix(), "Kyc Expired")
	if res, err := s.RecordEvent(ctx, e); err != nil || !res.Applied || res.PreviousStatus != "Approved" {
		t.Fatalf("event after the purge = %+v, %v", res, err)
	}
	if email, err := s.ContactAddress(ctx, "s-1"); err != nil || email != "" {
		t.Fatalf("address after the purge = %q, %v; want none, for the notice to find none", email, err)
	}
	e = event("s-1", "k-approved", later.Unix()+60, "Approved")
	e.VendorData, e.ContactEmail = "customer-s-1", "jane.doe@example.com"
	if _, err := s.RecordEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	if res, err := s.PurgeClosedSessions(ctx, later.Add(-time.Hour), 10); err != nil || res.Records != 0 {
		t.Fatalf("purge before the new events = %+v, %v; want nothing: the session is open again", res, err)
	}
	at(s, later.Add(100*day))
	if res, err := s.PurgeClosedSessions(ctx, later.Add(10*day), 10); err != nil || res.Records != 1 {
		t.Fatalf("purge once closed again = %+v, %v; want the session purged again", res, err)
	}
	if v, err := s.Session(ctx, "s-1"); err != nil || v.VendorData != "" || v.Status != "Approved" {
		t.Fatalf("record after the second purge = %+v, %v", v, err)
	}
	if email, err := s.ContactAddress(ctx, "s-1"); err != nil || email != "" {
		t.Fatalf("address after the second purge = %q, %v", email, err)
	}
}

// testAMLCasesKeepTheirOwnRetention: the session purge leaves AML cases,
// and the vendor_data that says whose they are, to the AML retention; an
// open case is kept whatever its age.
func testAMLCasesKeepTheirOwnRetention(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	personal(t, s, "s-resolved", "Declined")
	personal(t, s, "s-open", "Declined")
	hits := []AMLHit{{ID: "h-1", Datasets: []string{"PEP"}, MatchScore: 0.9, RiskScore: 0.7, ReviewStatus: "Unreviewed"}}
	for _, session := range []string{"s-resolved", "s-open"} {
		if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: contract.AMLCaseWorkflowID(session), SessionID: session, OpenedAt: t0, Hits: hits}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: contract.FollowUpCaseID("s-resolved", 2), SessionID: "s-resolved",
		FollowUpOf: contract.AMLCaseWorkflowID("s-resolved"), OpenedAt: t0, Hits: hits}); err != nil {
		t.Fatal(err)
	}
	resolvedAt := t0.Add(day)
	for _, id := range []string{contract.AMLCaseWorkflowID("s-resolved"), contract.FollowUpCaseID("s-resolved", 2)} {
		if err := s.ResolveAMLCase(ctx, id, Resolution{Outcome: contract.ConfirmedMatch, Reviewer: "officer@example.com",
			Identity: "temporal-cli:officer@desk", Note: "Jane Doe is the minister", ResolvedAt: resolvedAt}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetCaseAttention(ctx, contract.AMLCaseWorkflowID("s-resolved"), false, "recipient_refused: x"); err != nil {
		t.Fatal(err)
	}

	res, err := s.PurgeClosedSessions(ctx, testNow.Add(-90*day), 10)
	if err != nil || res != (PurgeResult{Records: 2, Notifications: 2, VendorDataHeld: 2}) {
		t.Fatalf("PurgeClosedSessions = %+v, %v; want both purged, their vendor_data held", res, err)
	}
	assertBlank(t, s, "s-resolved", "customer-s-resolved")
	assertBlank(t, s, "s-open", "customer-s-open")
	if retained, err := s.RetainedAMLCases(ctx, "s-resolved"); err != nil || len(retained) != 2 {
		t.Fatalf("RetainedAMLCases = %v, %v; want both cases", retained, err)
	}

	if res, err := s.PurgeClosedAMLCases(ctx, resolvedAt, 10); err != nil || res != (PurgeResult{}) {
		t.Fatalf("purge of cases resolved before their resolution = %+v, %v", res, err)
	}
	res, err = s.PurgeClosedAMLCases(ctx, resolvedAt.Add(time.Second), 1)
	if err != nil || res != (PurgeResult{Records: 1}) {
		t.Fatalf("first page = %+v, %v; want one case, the session still held by the other", res, err)
	}
	res, err = s.PurgeClosedAMLCases(ctx, resolvedAt.Add(time.Second), 1)
	if err != nil || res != (PurgeResult{Records: 1, VendorDataReleased: 1}) {
		t.Fatalf("second page = %+v, %v; want the last case and the session's vendor_data", res, err)
	}
	cases, err := s.AMLCases(ctx, "s-resolved")
	if err != nil || len(cases) != 2 {
		t.Fatalf("cases = %+v, %v", cases, err)
	}
	for _, c := range cases {
		r := c.Resolution
		if r == nil || r.Reviewer != "" || r.Identity != "" || r.Note != "" || c.Attention != "" {
			t.Errorf("purged case %s = %+v / %+v; want no reviewer, identity, note or attention", c.CaseID, c, r)
			continue
		}
		if c.State != AMLCaseResolved || r.Outcome != contract.ConfirmedMatch || !r.ResolvedAt.Equal(resolvedAt) ||
			len(c.Hits) != 1 || c.Hits[0].RiskScore != 0.7 {
			t.Errorf("purged case %s lost its facts: %+v / %+v", c.CaseID, c, r)
		}
	}
	assertBlank(t, s, "s-resolved", "")
	assertBlank(t, s, "s-open", "customer-s-open")
	if retained, err := s.RetainedAMLCases(ctx, "s-open"); err != nil || len(retained) != 1 {
		t.Fatalf("open case: RetainedAMLCases = %v, %v; want it kept", retained, err)
	}
	if res, err := s.PurgeClosedAMLCases(ctx, testNow, 10); err != nil || res != (PurgeResult{}) {
		t.Fatalf("purge again = %+v, %v; want nothing (the open case stays)", res, err)
	}
}

func testEraseSession(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	personal(t, s, "s-1", "In Review") // not final: erasure does not wait
	personal(t, s, "s-other", "Approved")
	if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: contract.AMLCaseWorkflowID("s-1"), SessionID: "s-1", Hits: []AMLHit{{ID: "h"}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveAMLCase(ctx, contract.AMLCaseWorkflowID("s-1"), Resolution{Outcome: contract.FalsePositive, Reviewer: "officer@example.com", Identity: "webui", Note: "namesake"}); err != nil {
		t.Fatal(err)
	}

	res, err := s.EraseSession(ctx, "s-1")
	if err != nil || res != (EraseResult{Found: true, Fields: 3, Notifications: 1, AMLCases: 1}) {
		t.Fatalf("EraseSession = %+v, %v", res, err)
	}
	assertBlank(t, s, "s-1", "")
	if c, err := s.AMLCase(ctx, contract.AMLCaseWorkflowID("s-1")); err != nil || c.Resolution.Reviewer != "" || c.Resolution.Identity != "" ||
		c.Resolution.Note != "" || c.Resolution.Outcome != contract.FalsePositive {
		t.Fatalf("erased case = %+v, %v", c, err)
	}
	if retained, err := s.RetainedAMLCases(ctx, "s-1"); err != nil || len(retained) != 0 {
		t.Fatalf("RetainedAMLCases after erasure = %v, %v", retained, err)
	}
	if email, err := s.ContactAddress(ctx, "s-other"); err != nil || email == "" {
		t.Fatalf("another session lost its address: %q, %v", email, err)
	}
	if res, err := s.EraseSession(ctx, "s-1"); err != nil || res != (EraseResult{Found: true}) {
		t.Fatalf("erase again = %+v, %v; want nothing left to remove", res, err)
	}
	if res, err := s.EraseSession(ctx, "s-unknown"); err != nil || res != (EraseResult{}) {
		t.Fatalf("erase an unknown session = %+v, %v", res, err)
	}
	if _, err := s.EraseSession(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty session id: %v, want ErrInvalid", err)
	}
	for session, want := range map[string]bool{"s-1": true, "s-unknown": true, "s-other": false, "s-never": false} {
		if erased, err := s.Erased(ctx, session); err != nil || erased != want {
			t.Errorf("Erased(%s) = %t, %v; want %t", session, erased, err, want)
		}
	}
	if v, err := s.Session(ctx, "s-1"); err != nil || !v.ErasedAt.Equal(testNow) {
		t.Fatalf("record = %+v, %v; want erased at %v", v, err, testNow)
	}
	if g, err := s.Gauges(ctx); err != nil || len(g.Sessions) != 2 || g.Sessions[""] != 0 {
		t.Fatalf("gauges = %+v, %v; want the two recorded sessions, not the unknown one erased", g, err)
	}
}

// testEventsAfterErasure: Didit writes again to an erased session (a Kyc
// Expired months later, a manual review, the first event of a session
// erased before it came). Each is recorded and moves the record, without
// the vendor_data, the address or a flag's reason it brings, and says the
// session is erased; redelivered, it says so again. Another session's
// events keep theirs.
func testEventsAfterErasure(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	personal(t, s, "s-1", "Approved")
	personal(t, s, "s-other", "Approved")
	for _, session := range []string{"s-1", "s-first"} {
		if _, err := s.EraseSession(ctx, session); err != nil {
			t.Fatal(err)
		}
	}

	later := func(session, key string, at int64, status string) EventRecord {
		e := event(session, key, at, status)
		e.VendorData, e.ContactEmail = "customer-again", "jane.again@example.com"
		return e
	}
	for _, tc := range []struct {
		e        EventRecord
		previous string
	}{
		{later("s-1", "k-expired", t0.Unix()+60, "Kyc Expired"), "Approved"},
		{later("s-1", "k-declined", t0.Unix()+120, "Declined"), "Kyc Expired"},
		{later("s-first", "k-first", t0.Unix(), "In Review"), ""},
	} {
		res, err := s.RecordEvent(ctx, tc.e)
		// An erased session's status changes are numbered as any other's.
		want := RecordResult{Applied: true, PreviousStatus: tc.previous, CurrentStatus: tc.e.Status, Erased: true,
			Sequence: res.Sequence, StatusSequence: res.Sequence}
		if err != nil || res != want || res.Sequence == 0 {
			t.Fatalf("%s after the erasure = %+v, %v; want %+v", tc.e.EventKey, res, err, want)
		}
		if again, err := s.RecordEvent(ctx, tc.e); err != nil || !again.Duplicate || !again.Erased {
			t.Fatalf("%s redelivered = %+v, %v; want a duplicate of an erased session", tc.e.EventKey, again, err)
		}
		if err := s.SetAttention(ctx, tc.e.SessionID, true, "parked: notify: 550 mailbox of Jane Doe unavailable"); err != nil {
			t.Fatal(err)
		}
		v, err := s.Session(ctx, tc.e.SessionID)
		if err != nil || v.Status != tc.e.Status || v.EventKey != tc.e.EventKey || v.VendorData != "" || v.Attention != "" || !v.NeedsAttention {
			t.Fatalf("record = %+v, %v; want %s from %s, flagged, without vendor_data or the flag's reason",
				v, err, tc.e.Status, tc.e.EventKey)
		}
		if email, err := s.ContactAddress(ctx, tc.e.SessionID); err != nil || email != "" {
			t.Fatalf("address of %s = %q, %v; want none", tc.e.SessionID, email, err)
		}
		if events, err := s.Events(ctx, tc.e.SessionID); err != nil || events[len(events)-1].EventKey != tc.e.EventKey {
			t.Fatalf("events of %s = %+v, %v; want %s recorded", tc.e.SessionID, events, err, tc.e.EventKey)
		}
	}

	res, err := s.RecordEvent(ctx, later("s-other", "k-expired", t0.Unix()+60, "Kyc Expired"))
	if err != nil || res.Erased {
		t.Fatalf("another session's event = %+v, %v", res, err)
	}
	if v, err := s.Session(ctx, "s-other"); err != nil || v.VendorData != "customer-again" {
		t.Fatalf("another session = %+v, %v; want its vendor_data recorded", v, err)
	}
	if email, err := s.ContactAddress(ctx, "s-other"); err != nil || email != "jane.again@example.com" {
		t.Fatalf("another session's address = %q, %v", email, err)
	}
}

func testSessionsByVendorData(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	for i, session := range []string{"s-b", "s-a", "s-c"} {
		at(s, t0.Add(time.Duration(i)*time.Hour))
		e := event(session, "k", t0.Unix(), "Approved")
		e.VendorData = "customer-1"
		if session == "s-c" {
			e.VendorData = "customer-10"
		}
		if _, err := s.RecordEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	at(s, testNow)
	if ids, err := s.SessionsByVendorData(ctx, "customer-1"); err != nil || !slices.Equal(ids, []string{"s-b", "s-a"}) {
		t.Fatalf("SessionsByVendorData = %v, %v; want s-b, s-a (first seen first)", ids, err)
	}
	if _, err := s.EraseSession(ctx, "s-b"); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.SessionsByVendorData(ctx, "customer-1"); err != nil || !slices.Equal(ids, []string{"s-a"}) {
		t.Fatalf("after erasing s-b = %v, %v", ids, err)
	}
	if ids, err := s.SessionsByVendorData(ctx, "nobody"); err != nil || len(ids) != 0 {
		t.Fatalf("unknown reference = %v, %v", ids, err)
	}
	if _, err := s.SessionsByVendorData(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty reference: %v, want ErrInvalid", err)
	}
}

// testPurgeUsesTheIndex: each page reads verifications_unpurged in order,
// so that purged sessions, however many, cost a page nothing.
func testPurgeUsesTheIndex(t *testing.T, dsn string) {
	s := open(t, dsn)
	text := queryPlan(t, s, closedSessionsQuery, int64(100), int64(100), 10)
	if !strings.Contains(text, "verifications_unpurged") || strings.Contains(text, "B-TREE FOR ORDER BY") ||
		strings.Contains(text, "Sort") {
		t.Errorf("PurgeClosedSessions does not read verifications_unpurged in order:\n%s", text)
	}
}

// testRetentionMigratesDownAndUp: 00005 goes down and up again over
// purged records.
func testRetentionMigratesDownAndUp(t *testing.T, dsn string) {
	ctx := t.Context()
	s := openUnmanaged(t, dsn)
	personal(t, s, "s-1", "Approved")
	if res, err := s.PurgeClosedSessions(ctx, testNow.Add(-90*day), 10); err != nil || res.Records != 1 {
		t.Fatalf("purge = %+v, %v", res, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, p := gooseProvider(t, dsn)
	if _, err := p.DownTo(ctx, 4); err != nil {
		t.Fatalf("migrate down to 4: %v", err)
	}
	s = open(t, dsn)
	assertMigratedOnce(t, s)
	if v, err := s.Session(ctx, "s-1"); err != nil || v.Status != "Approved" || v.VendorData != "" {
		t.Fatalf("record after down and up = %+v, %v", v, err)
	}
	// Down dropped purged_at: the session is due again, and purging it
	// again is harmless.
	if res, err := s.PurgeClosedSessions(ctx, testNow.Add(-90*day), 10); err != nil || res != (PurgeResult{Records: 1}) {
		t.Fatalf("purge after down and up = %+v, %v", res, err)
	}
}

// testUserNoticeClaimAfterErasure: a notice to the user of an erased session
// cannot be claimed, so nothing is sent or recorded for it; compliance's
// notices of its AML cases still can, and other sessions are untouched.
func testUserNoticeClaimAfterErasure(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	personal(t, s, "s-1", "Approved")
	personal(t, s, "s-other", "Approved")
	if _, err := s.EraseSession(ctx, "s-1"); err != nil {
		t.Fatal(err)
	}
	hash := strings.Repeat("ab", 32)
	if _, _, err := s.ClaimUserNotification(ctx, "s-1", "user:declined:k-2", hash); !errors.Is(err, ErrErased) {
		t.Fatalf("user notice of an erased session: %v, want ErrErased", err)
	}
	if _, claimed, err := s.ClaimNotification(ctx, "s-1", "compliance:opened:email", hash); err != nil || !claimed {
		t.Fatalf("compliance notice of an erased session: claimed %v, %v; want claimed", claimed, err)
	}
	if _, claimed, err := s.ClaimUserNotification(ctx, "s-other", "user:declined:k-2", hash); err != nil || !claimed {
		t.Fatalf("another session's user notice: claimed %v, %v; want claimed", claimed, err)
	}
}
