package reconcile

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/internal/store"
)

const reconcileKey = "reconcile-test-key"

// feeds records the events reconciliation hands to sessions.
type feeds struct {
	mu     sync.Mutex
	events []contract.SessionEvent
	// then, if set, runs on each event, as the session's workflow would.
	then func(contract.SessionEvent)
}

func (f *feeds) Feed(_ context.Context, se contract.SessionEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, se)
	if f.then != nil {
		f.then(se)
	}
	return nil
}

func (f *feeds) got() []contract.SessionEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]contract.SessionEvent(nil), f.events...)
}

// reconcileRig is an Engine on a real store, against the fake Didit, whose
// receiver answers what answer holds.
type reconcileRig struct {
	t        *testing.T
	fake     *fakedidit.Server
	store    *store.Store
	signals  *feeds
	rec      *Engine
	answer   atomic.Int32
	requests atomic.Int32
}

func newReconcileRig(t *testing.T, fakeOpts fakedidit.Options) *reconcileRig {
	t.Helper()
	rig := &reconcileRig{t: t, signals: &feeds{}}
	rig.answer.Store(http.StatusServiceUnavailable)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(int(rig.answer.Load()))
	}))
	t.Cleanup(receiver.Close)
	fakeOpts.Key, fakeOpts.ReceiverURL, fakeOpts.Secret = reconcileKey, receiver.URL, "s3cret"
	fakeOpts.RetryDelays = []time.Duration{time.Millisecond, time.Millisecond}
	rig.fake = fakedidit.New(fakeOpts)
	counting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rig.requests.Add(1)
		rig.fake.Handler().ServeHTTP(w, r)
	})
	srv := httptest.NewServer(counting)
	t.Cleanup(srv.Close)
	client, err := api.New(api.Config{BaseURL: srv.URL, Key: reconcileKey})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "records.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rig.store = st
	rig.rec = &Engine{API: client, Store: st, Feed: rig.signals}
	return rig
}

// body is a v3 session event of the given status for session.
func eventBody(t *testing.T, fixture, session, eventID string, createdAt time.Time) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "didit", "testdata", "fixtures", fixture))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	body["session_id"], body["event_id"] = session, eventID
	body["created_at"], body["timestamp"] = createdAt.Unix(), createdAt.Unix()
	if d, ok := body["decision"].(map[string]any); ok {
		d["session_id"] = session
	}
	js, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func (rig *reconcileRig) deliver(body []byte) {
	rig.t.Helper()
	rig.fake.Deliver(context.Background(), body)
}

// deliveries runs Deliveries over every page of the default
// destination.
func (rig *reconcileRig) deliveries(from time.Time, pageSize int) (StepResult, int) {
	rig.t.Helper()
	var total StepResult
	steps := 0
	in := DeliveriesStep{Destination: fakedidit.DefaultDestinationUUID, From: from, To: time.Now(), PageSize: pageSize}
	for {
		steps++
		res, err := rig.rec.Deliveries(context.Background(), in)
		if err != nil {
			rig.t.Fatalf("step %d: %v", steps, err)
		}
		total.Examined += res.Examined
		total.Repaired += res.Repaired
		total.Held += res.Held
		total.Errors += res.Errors
		total.Calls += res.Calls
		if res.Next == "" {
			return total, steps
		}
		in.Cursor = res.Next
	}
}

func record(t *testing.T, st *store.Store, session, key string, status didit.Status, at time.Time) {
	t.Helper()
	if _, err := st.RecordEvent(context.Background(), store.EventRecord{SessionID: session, EventKey: key,
		WebhookType: string(didit.WebhookStatusUpdated), Status: string(status), StatusRank: status.Rank(),
		EventCreatedAt: at.Unix()}); err != nil {
		t.Fatal(err)
	}
}

// TestReconcileDeliveriesFeedsWhatWasMissed: Didit's three failed attempts
// of an event are read once each and fed once; an event we hold is not fed;
// delivered ones cost no call; a second run reads only the list.
func TestReconcileDeliveriesFeedsWhatWasMissed(t *testing.T) {
	rig := newReconcileRig(t, fakedidit.Options{})
	a, b := simulator.NewUUID(), simulator.NewUUID()
	now := time.Now()
	rig.deliver(eventBody(t, "status-updated-in-progress.json", a, "ev-a1", now.Add(-time.Hour)))
	rig.deliver(eventBody(t, "status-updated-approved.json", a, "ev-a2", now.Add(-50*time.Minute)))
	rig.deliver(eventBody(t, "status-updated-in-progress.json", b, "ev-b1", now.Add(-40*time.Minute)))
	rig.answer.Store(http.StatusOK)
	rig.deliver(eventBody(t, "status-updated-approved.json", b, "ev-b2", now.Add(-30*time.Minute)))
	// ev-b1 reached us another way (a resend an operator made).
	record(t, rig.store, b, "ev-b1", didit.StatusInProgress, now.Add(-40*time.Minute))

	res, steps := rig.deliveries(now.Add(-2*time.Hour), 4)
	if res.Examined != 10 || steps != 3 {
		t.Fatalf("examined %d rows in %d steps, want 10 (3 attempts × 3 failed events + 1) in 3", res.Examined, steps)
	}
	// An event whose attempts fall on two pages may be fed twice: the
	// session's workflow drops the second by its event_id.
	got := rig.signals.got()
	fed := map[string]bool{}
	for _, se := range got {
		if se.Event.SessionID != a || se.Proof.Source != didit.SourceAPI || se.Proof.EnvelopeOnly || se.Event.Metadata != nil {
			t.Fatalf("fed %+v", se)
		}
		if se.Event.Status == didit.StatusApproved && se.Event.Decision == nil {
			t.Fatal("the Approved body lost its decision")
		}
		fed[se.Event.EventID] = true
	}
	if len(fed) != 2 || !fed["ev-a1"] || !fed["ev-a2"] || len(got) > 3 || res.Repaired != len(got) {
		t.Fatalf("fed %v (%d signals, repaired %d), want ev-a1 and ev-a2", fed, len(got), res.Repaired)
	}
	// 3 list pages, and a session's own delivery list for each page on
	// which it has several failed attempts (b on the first, a on the
	// others), instead of a read per failed attempt (9).
	if res.Calls != 6 || res.Held+res.Repaired != 9 {
		t.Fatalf("calls %d, held %d, repaired %d; want 6 calls and every failed attempt settled", res.Calls, res.Held, res.Repaired)
	}
	sent := len(got)

	before := rig.requests.Load()
	res, _ = rig.deliveries(now.Add(-2*time.Hour), 4)
	if res.Repaired != 0 || len(rig.signals.got()) != sent {
		t.Fatalf("second run fed %d", res.Repaired)
	}
	if n := rig.requests.Load() - before; n != 3 {
		t.Fatalf("second run made %d requests, want the 3 list pages only", n)
	}
}

// TestReconcileDeliveriesStopsAtTheWindow: newest first, the list is read
// only down to the window's start.
func TestReconcileDeliveriesStopsAtTheWindow(t *testing.T) {
	var clock atomic.Int64
	start := time.Now().Add(-3 * time.Hour)
	clock.Store(start.UnixNano())
	rig := newReconcileRig(t, fakedidit.Options{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	old := simulator.NewUUID()
	rig.deliver(eventBody(t, "status-updated-in-progress.json", old, "ev-old", start))
	clock.Store(time.Now().UnixNano())
	recent := simulator.NewUUID()
	rig.deliver(eventBody(t, "status-updated-in-progress.json", recent, "ev-new", time.Now()))

	res, _ := rig.deliveries(time.Now().Add(-time.Hour), 100)
	if res.Examined != 3 || len(rig.signals.got()) != 1 || rig.signals.got()[0].Event.SessionID != recent {
		t.Fatalf("examined %d, fed %d; want only the recent event's 3 attempts", res.Examined, len(rig.signals.got()))
	}
}

// TestReconcileSessionsBringsSessionsUpToDate: a session Didit lists in
// another status than ours, or that we never saw, is fed the event of its
// decision; one we hold as Didit does, or never opened, costs nothing more.
func TestReconcileSessionsBringsSessionsUpToDate(t *testing.T) {
	rig := newReconcileRig(t, fakedidit.Options{})
	now := time.Now()
	behind, unseen, same, untouched := simulator.NewUUID(), simulator.NewUUID(), simulator.NewUUID(), simulator.NewUUID()
	approved := func(id string) json.RawMessage {
		js, _ := json.Marshal(map[string]any{"session_id": id, "status": "Approved",
			"contact_details": map[string]any{"email": "user@example.com"}})
		return js
	}
	rig.fake.PutSession(behind, "Approved", approved(behind), "u-1", now.Add(-2*time.Hour))
	rig.fake.PutSession(unseen, "In Progress", nil, "u-2", now.Add(-time.Hour))
	rig.fake.PutSession(same, "Approved", approved(same), "u-3", now.Add(-time.Hour))
	rig.fake.PutSession(untouched, "Not Started", nil, "u-4", now.Add(-time.Hour))
	record(t, rig.store, behind, "ev-1", didit.StatusInProgress, now.Add(-2*time.Hour))
	record(t, rig.store, same, "ev-2", didit.StatusApproved, now.Add(-time.Hour))

	res, err := rig.rec.Sessions(context.Background(), SessionsStep{From: now.Add(-24 * time.Hour), To: now, PageSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	got := rig.signals.got()
	if res.Examined != 4 || res.Repaired != 2 || len(got) != 2 || res.Calls != 3 {
		t.Fatalf("examined %d, repaired %d, signals %d, calls %d; want 4, 2, 2, 3", res.Examined, res.Repaired, len(got), res.Calls)
	}
	byID := map[string]contract.SessionEvent{}
	for _, se := range got {
		byID[se.Event.SessionID] = se
	}
	if se := byID[behind]; se.Event.Status != didit.StatusApproved || se.Event.Decision.ContactEmail() != "user@example.com" ||
		se.Event.EventID != contract.DecisionEventID(behind, se.Event.CreatedAt) || se.Proof.Source != didit.SourceAPI {
		t.Fatalf("behind session fed %+v", se)
	}
	if se := byID[unseen]; se.Event.Status != didit.StatusInProgress {
		t.Fatalf("unseen session fed %+v", se)
	}
}

// TestReconcileSessionsSkipsIDsDidItCannotIssue: a listed session whose ID
// is not one Didit issues (1 to 64 of [A-Za-z0-9_-]) is neither read nor
// signalled: session IDs name workflows, records and API paths.
func TestReconcileSessionsSkipsIDsDidItCannotIssue(t *testing.T) {
	rig := newReconcileRig(t, fakedidit.Options{})
	now := time.Now()
	for _, id := range []string{`x' OR WorkflowId STARTS_WITH 'didit-session-`, strings.Repeat("a", 65), "../../webhook"} {
		rig.fake.PutSession(id, "Approved", json.RawMessage(`{"status":"Approved"}`), "u-1", now.Add(-time.Hour))
	}
	res, err := rig.rec.Sessions(context.Background(), SessionsStep{From: now.Add(-24 * time.Hour), To: now, PageSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rig.signals.got()); n != 0 || res.Calls != 1 {
		t.Fatalf("%d signals, %d calls; want none fed, the list read alone", n, res.Calls)
	}
}

// TestReconcileSessionsLegacyFeedsTheSessionsDeliveries: without a
// destination to read, a session behind has its own delivery list read and
// its failed deliveries fed; its decision is read only when they do not
// bring its status.
func TestReconcileSessionsLegacyFeedsTheSessionsDeliveries(t *testing.T) {
	rig := newReconcileRig(t, fakedidit.Options{})
	now := time.Now()
	sid := simulator.NewUUID()
	rig.fake.PutSession(sid, "In Progress", nil, "u-1", now.Add(-time.Hour))
	rig.deliver(eventBody(t, "status-updated-approved.json", sid, "ev-approved", now.Add(-time.Minute)))

	res, err := rig.rec.Sessions(context.Background(), SessionsStep{From: now.Add(-24 * time.Hour), To: now, PageSize: 50, Legacy: true})
	if err != nil {
		t.Fatal(err)
	}
	got := rig.signals.got()
	if len(got) != 1 || got[0].Event.EventID != "ev-approved" || res.Calls != 2 {
		t.Fatalf("fed %d events, %d calls; want ev-approved alone, from the list and the session's deliveries", len(got), res.Calls)
	}
}

// TestReconcileStaleChecksWithBackoff: a session stuck in a status that is
// not final is checked against its decision, and then waits twice as long.
func TestReconcileStaleChecksWithBackoff(t *testing.T) {
	rig := newReconcileRig(t, fakedidit.Options{})
	now := time.Now()
	moved, waiting, final := simulator.NewUUID(), simulator.NewUUID(), simulator.NewUUID()
	rig.fake.PutSession(moved, "Declined", nil, "", now.Add(-72*time.Hour))
	rig.fake.PutSession(waiting, "In Progress", nil, "", now.Add(-72*time.Hour))
	record(t, rig.store, moved, "ev-1", didit.StatusInProgress, now)
	record(t, rig.store, waiting, "ev-2", didit.StatusInProgress, now)
	record(t, rig.store, final, "ev-3", didit.StatusApproved, now)

	later := now.Add(25 * time.Hour)
	rig.rec.Now = func() time.Time { return later }
	stale := func() StepResult {
		res, err := rig.rec.Stale(context.Background(), StaleStep{StaleAfter: 24 * time.Hour, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := stale()
	got := rig.signals.got()
	if res.Examined != 2 || res.Repaired != 1 || len(got) != 1 || got[0].Event.SessionID != moved || got[0].Event.Status != didit.StatusDeclined {
		t.Fatalf("examined %d, repaired %d, fed %+v", res.Examined, res.Repaired, got)
	}
	if res := stale(); res.Examined != 0 {
		t.Fatalf("checked %d sessions again at once", res.Examined)
	}
	later = later.Add(47 * time.Hour)
	if res := stale(); res.Examined != 0 {
		t.Fatal("a session checked once was checked again before twice the wait")
	}
	later = later.Add(2 * time.Hour)
	if res := stale(); res.Examined != 2 {
		t.Fatalf("after 48 h, %d sessions checked, want both again", res.Examined)
	}
}

func TestStaleWaitDoublesUpToAWeek(t *testing.T) {
	for n, want := range []time.Duration{24 * time.Hour, 48 * time.Hour, 96 * time.Hour, MaxStaleWait, MaxStaleWait} {
		if got := StaleWait(24*time.Hour, n); got != want {
			t.Errorf("StaleWait(24h, %d) = %s, want %s", n, got, want)
		}
	}
	if got := StaleWait(time.Minute, 100); got != MaxStaleWait {
		t.Errorf("StaleWait(1m, 100) = %s", got)
	}
}

// TestReconcileSkipsWhatTheReceiverWouldNot: the body of a failed delivery
// that the receiver would have ignored (an unhandled webhook_type), that is
// of another webhook_version, or that does not parse is settled as
// unusable, never fed.
func TestReconcileSkipsWhatTheReceiverWouldNot(t *testing.T) {
	rig := newReconcileRig(t, fakedidit.Options{})
	var body map[string]any
	if err := json.Unmarshal(eventBody(t, "status-updated-in-progress.json", simulator.NewUUID(), "ev-x", time.Now()), &body); err != nil {
		t.Fatal(err)
	}
	body["webhook_type"] = "activity.created"
	unhandled, _ := json.Marshal(body)
	body["webhook_type"], body["webhook_version"] = "status.updated", "v2"
	v2, _ := json.Marshal(body)
	body["webhook_version"], body["session_id"] = "v3", `x' OR WorkflowId STARTS_WITH 'didit-session-`
	oddSession, _ := json.Marshal(body)
	for _, raw := range [][]byte{unhandled, v2, oddSession, []byte(`{"truncated":`)} {
		got, err := rig.rec.newStep().feedBody(context.Background(), raw)
		if err != nil || got != Unusable {
			t.Errorf("%.40s: %q, %v; want unusable", raw, got, err)
		}
	}
	if n := len(rig.signals.got()); n != 0 {
		t.Fatalf("fed %d events", n)
	}
}

// TestReconcileStaleSurvivesAPoisonDecision: a decision that does not
// parse is counted and backed off like any check, so it cannot stop every
// later run at the same session; a repair recorded at once keeps the reset
// its event made.
func TestReconcileStaleSurvivesAPoisonDecision(t *testing.T) {
	rig := newReconcileRig(t, fakedidit.Options{})
	now := time.Now()
	poison, moved := simulator.NewUUID(), simulator.NewUUID()
	rig.fake.PutSession(poison, "In Progress", json.RawMessage(`{"status":"In Progress","aml_screenings":"oops"}`), "", now)
	rig.fake.PutSession(moved, "In Review", nil, "", now)
	record(t, rig.store, poison, "ev-1", didit.StatusInProgress, now.Add(-48*time.Hour))
	record(t, rig.store, moved, "ev-2", didit.StatusInProgress, now.Add(-48*time.Hour))
	// The records keep whole seconds: the repair is recorded in a later
	// one than the event it replaces, as it is a day later in production.
	time.Sleep(1100 * time.Millisecond)
	rig.signals.then = func(se contract.SessionEvent) {
		record(t, rig.store, se.Event.SessionID, se.Event.Key(), se.Event.Status, time.Unix(se.Event.CreatedAt, 0))
	}
	later := now.Add(25 * time.Hour)
	rig.rec.Now = func() time.Time { return later }
	res, err := rig.rec.Stale(context.Background(), StaleStep{StaleAfter: 24 * time.Hour, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Examined != 2 || res.Errors != 1 || res.Repaired != 1 {
		t.Fatalf("examined %d, errors %d, repaired %d; want 2, 1, 1", res.Examined, res.Errors, res.Repaired)
	}
	due, err := rig.store.StaleSessions(context.Background(), later.Add(-24*time.Hour), later, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].SessionID != moved || due[0].Checks != 0 {
		t.Fatalf("due after the step: %+v; want the moved session alone, its backoff reset by its new event", due)
	}
}

// noSessionLists is a key scoped without sessions:read.
type noSessionLists struct{ API }

func (noSessionLists) SessionDeliveries(context.Context, string) ([]api.Delivery, error) {
	return nil, &api.Error{Kind: api.KindCredentials, Op: "session deliveries", Status: 403}
}

// TestReconcileDeliveriesWithoutSessionLists: a key that may not read a
// session's delivery list reads each failed delivery instead.
func TestReconcileDeliveriesWithoutSessionLists(t *testing.T) {
	rig := newReconcileRig(t, fakedidit.Options{})
	rig.rec.API = noSessionLists{rig.rec.API}
	a := simulator.NewUUID()
	rig.deliver(eventBody(t, "status-updated-approved.json", a, "ev-a", time.Now()))
	res, _ := rig.deliveries(time.Now().Add(-time.Hour), 100)
	if got := rig.signals.got(); len(got) != 1 || got[0].Event.EventID != "ev-a" {
		t.Fatalf("fed %+v", got)
	}
	// The page, the refused list, and a read per attempt.
	if res.Calls != 5 || res.Held+res.Repaired != 3 {
		t.Fatalf("calls %d, held %d, repaired %d", res.Calls, res.Held, res.Repaired)
	}
}

// TestReconcileReadsNothingOfAnErasedSession: an erased session that Didit
// failed to deliver to, lists in another status than ours and that has
// not moved for days costs one look at each list and nothing more: no
// failed delivery is read, no decision asked for, nothing fed. Its failed
// deliveries are settled, so later runs skip them too.
func TestReconcileReadsNothingOfAnErasedSession(t *testing.T) {
	rig := newReconcileRig(t, fakedidit.Options{})
	ctx := context.Background()
	now := time.Now()
	erased := simulator.NewUUID()
	rig.deliver(eventBody(t, "status-updated-approved.json", erased, "ev-approved", now.Add(-time.Minute)))
	approved, _ := json.Marshal(map[string]any{"session_id": erased, "status": "Approved",
		"contact_details": map[string]any{"email": "user@example.com"}})
	rig.fake.PutSession(erased, "Approved", approved, "u-1", now.Add(-72*time.Hour))
	record(t, rig.store, erased, "ev-1", didit.StatusInProgress, now.Add(-48*time.Hour))
	if _, err := rig.store.EraseSession(ctx, erased); err != nil {
		t.Fatal(err)
	}

	before := rig.requests.Load()
	if res, _ := rig.deliveries(now.Add(-time.Hour), 100); res.Examined != 3 || res.Repaired+res.Held+res.Errors != 0 {
		t.Fatalf("deliveries: %+v; want the three failed attempts examined and none read", res)
	}
	for _, legacy := range []bool{false, true} {
		res, err := rig.rec.Sessions(ctx, SessionsStep{From: now.Add(-96 * time.Hour), To: now, PageSize: 50, Legacy: legacy})
		if err != nil || res.Examined != 1 || res.Repaired != 0 {
			t.Fatalf("sessions (legacy %t): %+v, %v", legacy, res, err)
		}
	}
	rig.rec.Now = func() time.Time { return now.Add(25 * time.Hour) }
	if res, err := rig.rec.Stale(ctx, StaleStep{StaleAfter: 24 * time.Hour, Limit: 10}); err != nil || res.Examined != 0 {
		t.Fatalf("stale: %+v, %v; want the erased session left alone", res, err)
	}
	if n := rig.requests.Load() - before; n != 3 {
		t.Fatalf("%d requests to Didit, want the three lists alone", n)
	}
	if got := rig.signals.got(); len(got) != 0 {
		t.Fatalf("fed %d events of an erased session", len(got))
	}
	before = rig.requests.Load()
	if res, _ := rig.deliveries(now.Add(-time.Hour), 100); res.Examined != 3 || rig.requests.Load()-before != 1 {
		t.Fatalf("again: %+v in %d requests; want the settled attempts skipped", res, rig.requests.Load()-before)
	}
}

// TestReconcileStaleFindsAMissedReview: an approved session's AML case is
// still open in our records while Didit's console has reviewed its hit (the
// webhook was lost): the stale check reads the decision and feeds it. One
// whose hits Didit shows as we hold them is read and not fed; one whose
// case is resolved is not checked at all.
func TestReconcileStaleFindsAMissedReview(t *testing.T) {
	rig := newReconcileRig(t, fakedidit.Options{})
	ctx := context.Background()
	now := time.Now()
	missed, unchanged, resolved := simulator.NewUUID(), simulator.NewUUID(), simulator.NewUUID()
	decision := func(session, review string) json.RawMessage {
		return json.RawMessage(`{"session_id":"` + session + `","status":"Approved","aml_screenings":[{"node_id":"feature_aml_1",` +
			`"total_hits":1,"hits":[{"id":"NK-` + session + `","review_status":"` + review + `"}]}]}`)
	}
	for session, review := range map[string]string{missed: "False Positive", unchanged: "Unreviewed", resolved: "Confirmed Match"} {
		rig.fake.PutSession(session, "Approved", decision(session, review), "", now.Add(-72*time.Hour))
		record(t, rig.store, session, "ev-"+session, didit.StatusApproved, now)
		c := store.AMLCase{CaseID: contract.AMLCaseWorkflowID(session), SessionID: session,
			Hits: []store.AMLHit{{ID: "NK-" + session, ReviewStatus: "Unreviewed"}}}
		if _, err := rig.store.OpenAMLCase(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := rig.store.ResolveAMLCase(ctx, contract.AMLCaseWorkflowID(resolved), store.Resolution{Outcome: contract.ConfirmedMatch, Reviewer: "o"}); err != nil {
		t.Fatal(err)
	}

	rig.rec.Now = func() time.Time { return now.Add(25 * time.Hour) }
	res, err := rig.rec.Stale(ctx, StaleStep{StaleAfter: 24 * time.Hour, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := rig.signals.got()
	if res.Examined != 2 || res.Repaired != 1 || len(got) != 1 || got[0].Event.SessionID != missed || got[0].Event.Status != didit.StatusApproved {
		t.Fatalf("examined %d, repaired %d, fed %+v; want the missed review's decision fed", res.Examined, res.Repaired, got)
	}
	hits := got[0].Event.Decision.ScreenedHits()
	if len(hits) != 1 || hits[0].ReviewStatus != didit.ReviewFalsePositive || got[0].Proof.Source != didit.SourceAPI {
		t.Fatalf("fed decision's hits = %+v, proof %+v", hits, got[0].Proof)
	}
}
