package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/store"
)

const userEmail = "user@example.com"

func testSettings() Settings {
	return Settings{
		IdleWindow:          10 * time.Minute,
		StepBudget:          2 * time.Minute,
		AMLReminderInterval: time.Hour,
		AMLEscalateAfter:    2,
	}
}

// fixtureEvent reads a Didit fixture as the receiver would hand it over,
// with a contact address so that user mail has somewhere to go.
func fixtureEvent(t testing.TB, name string) contract.SessionEvent {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "didit", "testdata", "fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := didit.ParseEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	ev.Metadata = nil
	if ev.Decision != nil {
		ev.Decision.Email = userEmail
	}
	return contract.SessionEvent{Event: ev, Proof: didit.Proof{Scheme: didit.SchemeRaw, Timestamp: ev.Timestamp}}
}

// statusEvent derives an event of another status from a fixture.
func statusEvent(t testing.TB, base string, status didit.Status, createdAt int64) contract.SessionEvent {
	se := fixtureEvent(t, base)
	se.Event.EventID = "evt-" + strings.ReplaceAll(string(status), " ", "-")
	se.Event.Status = status
	se.Event.CreatedAt = createdAt
	if se.Event.Decision != nil {
		se.Event.Decision.Status = status
	}
	return se
}

// harness runs the workflows in Temporal's test environment against the
// real activities, a real SQLite store and a real outbox.
type harness struct {
	t        *testing.T
	env      *testsuite.TestWorkflowEnvironment
	store    *store.Store
	outbox   string
	acts     *activities.Activities
	kyc      *activities.KYC
	temporal *fakeTemporal
	mu       sync.Mutex
	searched []temporal.SearchAttributes
}

func newHarness(t *testing.T, mutate func(*Settings)) *harness {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "records.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	outbox := t.TempDir()
	mailer, err := notify.NewOutbox(outbox, "diditflow <no-reply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: st, outbox: outbox}
	h.acts = &activities.Activities{
		Store:      st,
		Mailer:     mailer,
		Compliance: activities.Compliance{Email: "compliance@example.com", Escalation: "head-of-compliance@example.com"},
	}
	settings := testSettings()
	if mutate != nil {
		mutate(&settings)
	}
	var suite testsuite.WorkflowTestSuite
	h.env = suite.NewTestWorkflowEnvironment()
	h.env.SetTestTimeout(time.Minute)
	(&Workflows{Settings: settings, Callers: testCallers{}}).Register(h.env)
	h.env.RegisterActivity(h.acts)
	h.temporal = newFakeTemporal()
	h.kyc = &activities.KYC{Store: st, Temporal: h.temporal, TaskQueue: "diditflow"}
	h.env.RegisterActivity(h.kyc)
	h.env.OnUpsertTypedSearchAttributes(mock.MatchedBy(func(sa temporal.SearchAttributes) bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.searched = append(h.searched, sa)
		return true
	})).Return(nil)
	return h
}

func (h *harness) signalAt(at time.Duration, name string, arg any) {
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(name, arg) }, at)
}

func (h *harness) deliverAt(at time.Duration, evs ...contract.SessionEvent) {
	for _, ev := range evs {
		h.signalAt(at, contract.EventSignal, ev)
	}
}

// resolveCaseAt resolves the session's AML case: the test environment runs
// until every workflow it started is done, and a case waits for compliance.
func (h *harness) resolveCaseAt(at time.Duration, sessionID string) {
	h.env.RegisterDelayedCallback(func() {
		err := h.env.SignalWorkflowByID(contract.AMLCaseWorkflowID(sessionID), contract.ResolveSignal,
			contract.Resolution{Outcome: contract.ConfirmedMatch, Reviewer: "officer@example.com"})
		if err != nil {
			h.t.Errorf("resolve: %v", err)
		}
	}, at)
}

func (h *harness) run(sessionID string) {
	h.t.Helper()
	h.env.ExecuteWorkflow(contract.SessionWorkflowType, SessionInput{SessionStart: contract.SessionStart{SessionID: sessionID}})
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
}

func (h *harness) state() SessionState {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(contract.StateQuery)
	if err != nil {
		h.t.Fatal(err)
	}
	var s SessionState
	if err := v.Get(&s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) record(sessionID string) store.SessionRecord {
	h.t.Helper()
	v, err := h.store.Session(context.Background(), sessionID)
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

type sentMail struct {
	To, Subject, Body string
}

// mails reads the outbox, sorted by subject.
func (h *harness) mails() []sentMail {
	h.t.Helper()
	files, err := filepath.Glob(filepath.Join(h.outbox, "*.eml"))
	if err != nil {
		h.t.Fatal(err)
	}
	var out []sentMail
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			h.t.Fatal(err)
		}
		m, err := mail.ReadMessage(strings.NewReader(string(raw)))
		if err != nil {
			h.t.Fatal(err)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
		if err != nil {
			h.t.Fatal(err)
		}
		dec := new(mime.WordDecoder)
		subject, _ := dec.DecodeHeader(m.Header.Get("Subject"))
		out = append(out, sentMail{To: m.Header.Get("To"), Subject: subject, Body: string(body)})
	}
	slices.SortFunc(out, func(a, b sentMail) int { return strings.Compare(a.Subject, b.Subject) })
	return out
}

func (h *harness) subjects() []string {
	var s []string
	for _, m := range h.mails() {
		s = append(s, m.Subject)
	}
	return s
}

// lastSearch returns the last value upserted for a search attribute.
func lastSearch[T any](h *harness, key interface {
	GetName() string
}, get func(temporal.SearchAttributes) (T, bool)) (T, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var last T
	found := false
	for _, sa := range h.searched {
		if v, ok := get(sa); ok {
			last, found = v, true
		}
	}
	return last, found
}

func (h *harness) searchStatus() string {
	v, _ := lastSearch(h, contract.StatusKey, func(sa temporal.SearchAttributes) (string, bool) { return sa.GetKeyword(contract.StatusKey) })
	return v
}

func (h *harness) searchBool(key temporal.SearchAttributeKeyBool) (bool, bool) {
	return lastSearch(h, key, func(sa temporal.SearchAttributes) (bool, bool) { return sa.GetBool(key) })
}

func outcomes(s SessionState) []string {
	var out []string
	for _, e := range s.History {
		out = append(out, string(e.Status)+":"+e.Outcome)
	}
	return out
}

const (
	s1 = "9b2f4c1e-6d3a-4e8b-a5f0-1c7d2e9b8a64"
	s2 = "e1c7a3d5-4b92-4f0e-8d61-3a5b9c2f7e18"
)

func TestApprovedSession(t *testing.T) {
	h := newHarness(t, nil)
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-progress.json"))
	h.deliverAt(2*time.Second, fixtureEvent(t, "status-updated-approved.json"))
	h.deliverAt(3*time.Second, fixtureEvent(t, "data-updated.json"))
	h.run(s1)

	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if got := h.subjects(); len(got) != 1 || got[0] != "Your identity verification is approved" {
		t.Fatalf("mails = %q, want one approval", got)
	}
	if m := h.mails()[0]; m.To != "<"+userEmail+">" && m.To != userEmail {
		t.Fatalf("approval sent to %q", m.To)
	}
	rec := h.record(s1)
	if rec.Status != "Approved" || rec.WebhookType != "data.updated" || rec.VendorData != "user_01HZX3K9QY" {
		t.Fatalf("record = %+v", rec)
	}
	st := h.state()
	if want := []string{"In Progress:applied", "Approved:applied", "Approved:applied"}; !slices.Equal(outcomes(st), want) {
		t.Fatalf("history = %v, want %v", outcomes(st), want)
	}
	if h.searchStatus() != "Approved" {
		t.Fatalf("DiditStatus = %q", h.searchStatus())
	}
	if v, _ := h.searchBool(contract.AMLHitKey); v {
		t.Fatal("DiditAMLHit should be false")
	}
}

// TestDeclinedAfterAMLReview: the session goes In Review with an unreviewed
// hit, which opens a case; a compliance officer confirms the match in
// Didit's console and declines the user. The case is resolved from Didit's
// console, by the officer Didit's reviews name, and writes nothing back.
func TestDeclinedAfterAMLReview(t *testing.T) {
	h := newHarness(t, nil)
	api := &stubDidit{key: true}
	h.acts.Didit = api
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-review.json"))
	h.deliverAt(2*time.Second, fixtureEvent(t, "status-updated-declined-aml-hit.json"))
	h.run(s2)

	want := []string{
		"AML case opened: session " + s2,
		"Your identity verification is under review",
		"Your identity verification was not approved",
	}
	if got := h.subjects(); !slices.Equal(got, want) {
		t.Fatalf("mails = %q, want %q", got, want)
	}
	if rec := h.record(s2); rec.Status != "Declined" || rec.AMLHits != 1 {
		t.Fatalf("record = %+v", rec)
	}
	c, err := h.store.AMLCase(context.Background(), contract.AMLCaseWorkflowID(s2))
	if err != nil || c.State != store.AMLCaseResolved || len(c.Hits) != 1 || c.Hits[0].ReviewStatus != didit.ReviewConfirmedMatch {
		t.Fatalf("AML case = %+v, %v", c, err)
	}
	if r := c.Resolution; r.Source != contract.FromDiditConsole || r.Outcome != contract.ConfirmedMatch || r.Reviewer != "compliance.officer@example.com" {
		t.Fatalf("resolution = %+v, want Didit's console's confirmed match, by the officer its review names", r)
	}
	if len(api.bulk) != 0 {
		t.Fatalf("review write-backs to Didit for a case Didit's console decided: %+v", api.bulk)
	}
	st := h.state()
	if !st.AMLCase || !st.AMLHit || st.Status != didit.StatusDeclined {
		t.Fatalf("state = %+v", st)
	}
	if v, _ := h.searchBool(contract.AMLHitKey); !v {
		t.Fatal("DiditAMLHit should be true")
	}
	compliance := h.mails()[0]
	if !strings.Contains(compliance.Body, "diditflow-admin resolve aml-case-"+s2+" --outcome") {
		t.Fatalf("compliance mail does not show how to resolve:\n%s", compliance.Body)
	}
	for _, pii := range []string{"Daniel", "Navarro", "CBX482917", "1968-02-23"} {
		for _, m := range h.mails() {
			if strings.Contains(m.Body, pii) || strings.Contains(m.Subject, pii) {
				t.Fatalf("mail %q contains personal data %q", m.Subject, pii)
			}
		}
	}
}

func TestDuplicatesAndDisorderChangeNothingTwice(t *testing.T) {
	h := newHarness(t, nil)
	inReview := fixtureEvent(t, "status-updated-in-review.json")
	declined := fixtureEvent(t, "status-updated-declined-aml-hit.json")
	// Declined first, each delivery three times, the older In Review late.
	h.deliverAt(time.Second, declined, declined)
	h.deliverAt(2*time.Second, inReview, declined)
	h.deliverAt(3*time.Second, inReview)
	h.run(s2)

	st := h.state()
	want := []string{"Declined:applied", "Declined:duplicate", "In Review:stale", "Declined:duplicate", "In Review:duplicate"}
	if got := outcomes(st); !slices.Equal(got, want) {
		t.Fatalf("history = %v, want %v", got, want)
	}
	if rec := h.record(s2); rec.Status != "Declined" {
		t.Fatalf("record moved backwards to %q", rec.Status)
	}
	// The stale In Review tells the user nothing; the case opens once.
	wantMail := []string{"AML case opened: session " + s2, "Your identity verification was not approved"}
	if got := h.subjects(); !slices.Equal(got, wantMail) {
		t.Fatalf("mails = %q, want %q", got, wantMail)
	}
	events, err := h.store.Events(context.Background(), s2)
	if err != nil || len(events) != 2 {
		t.Fatalf("event rows = %d, %v; want 2", len(events), err)
	}
	// The Declined event, first, shows the hit confirmed in Didit's
	// console: the case it opens is resolved from there at once, as it is
	// when the In Review comes first (TestDeclinedAfterAMLReview).
	c, err := h.store.AMLCase(context.Background(), contract.AMLCaseWorkflowID(s2))
	if err != nil || c.Resolution == nil || c.Resolution.Source != contract.FromDiditConsole || c.Resolution.Outcome != contract.ConfirmedMatch {
		t.Fatalf("case = %+v, %v; want it resolved from Didit's console", c, err)
	}
}

func TestOutOfOrderInOneBatchAppliesInEventTime(t *testing.T) {
	h := newHarness(t, nil)
	// Both arrive before the workflow runs: they are applied oldest first.
	h.deliverAt(0, fixtureEvent(t, "status-updated-declined-aml-hit.json"), fixtureEvent(t, "status-updated-in-review.json"))
	h.run(s2)
	if got := outcomes(h.state()); !slices.Equal(got, []string{"In Review:applied", "Declined:applied"}) {
		t.Fatalf("history = %v", got)
	}
	if got := len(h.mails()); got != 3 {
		t.Fatalf("mails = %q, want review, decline and one compliance notice", h.subjects())
	}
}

func TestEveryStatusPath(t *testing.T) {
	cases := []struct {
		status  didit.Status
		subject string
	}{
		{didit.StatusApproved, "Your identity verification is approved"},
		{didit.StatusDeclined, "Your identity verification was not approved"},
		{didit.StatusInReview, "Your identity verification is under review"},
		{didit.StatusResubmitted, "Please redo part of your identity verification"},
		{didit.StatusKycExpired, "Please verify your identity again"},
		{didit.StatusExpired, ""},
		{didit.StatusAbandoned, ""},
		{didit.StatusNotStarted, ""},
		{didit.StatusAwaitingUser, ""},
		{"Something New", ""},
	}
	for _, c := range cases {
		t.Run(string(c.status), func(t *testing.T) {
			h := newHarness(t, nil)
			ev := statusEvent(t, "status-updated-approved.json", c.status, 1767225000)
			if c.status == didit.StatusResubmitted {
				ev.Event.ResubmitInfo = &didit.ResubmitInfo{NodesToResubmit: []json.RawMessage{[]byte(`"feature_liveness_1"`)}}
			}
			h.deliverAt(time.Second, ev)
			if !c.status.Final() {
				// Open sessions wait for more; a final event ends them.
				h.deliverAt(time.Hour, statusEvent(t, "status-updated-approved.json", didit.StatusExpired, 1767225100))
			}
			h.run(s1)
			var subjects []string
			for _, m := range h.mails() {
				subjects = append(subjects, m.Subject)
				if c.status == didit.StatusResubmitted && !strings.Contains(m.Body, "the selfie (liveness) check") {
					t.Fatalf("resubmission mail does not say what to redo:\n%s", m.Body)
				}
			}
			var want []string
			if c.subject != "" {
				want = []string{c.subject}
			}
			if !slices.Equal(subjects, want) {
				t.Fatalf("mails = %q, want %q", subjects, want)
			}
			if got := h.state().History[0]; got.Status != c.status || got.Outcome != "applied" {
				t.Fatalf("first event = %+v", got)
			}
		})
	}
}

func TestDataUpdatedIsRecordOnly(t *testing.T) {
	h := newHarness(t, nil)
	approved := fixtureEvent(t, "status-updated-approved.json")
	h.deliverAt(time.Second, approved)
	h.deliverAt(2*time.Second, fixtureEvent(t, "data-updated.json"))
	h.run(s1)
	if got := h.subjects(); len(got) != 1 {
		t.Fatalf("mails = %q, want the approval only", got)
	}
	if rec := h.record(s1); rec.WebhookType != "data.updated" {
		t.Fatalf("record = %+v, want the edit recorded", rec)
	}
}

func TestNoContactEmailIsUndeliverableNotParked(t *testing.T) {
	h := newHarness(t, nil)
	ev := fixtureEvent(t, "status-updated-approved.json")
	ev.Event.Decision.Email = ""
	h.deliverAt(time.Second, ev)
	var st SessionState
	h.env.RegisterDelayedCallback(func() { st = h.state() }, time.Hour)
	// The flag keeps the session open until an operator acknowledges it.
	h.signalAt(2*time.Hour, contract.AcknowledgeSignal, contract.OperatorAction{Operator: "ops"})
	h.run(s1)
	if len(h.mails()) != 0 {
		t.Fatal("no address, yet a mail was written")
	}
	n, err := h.store.Notification(context.Background(), s1, "user:approved:"+ev.Event.Key())
	if err != nil || n.State != store.NotificationUndeliverable {
		t.Fatalf("notification = %+v, %v", n, err)
	}
	if st.Parked != nil || len(st.Decisions) != 0 {
		t.Fatalf("state = %+v, want nothing parked", st)
	}
	// Nobody was told: an operator must be.
	if len(st.Flags) != 1 || st.Flags[0].Kind != FlagUndeliverable {
		t.Fatalf("flags = %+v, want the undeliverable notice flagged", st.Flags)
	}
	set := false
	for _, sa := range h.searched {
		if v, ok := sa.GetBool(contract.NeedsAttentionKey); ok && v {
			set = true
		}
	}
	if !set {
		t.Fatal("DiditNeedsAttention never set for an undeliverable notice")
	}
}

func TestRecordCommittedButUnacknowledgedStillNotifies(t *testing.T) {
	h := newHarness(t, nil)
	lost := temporal.NewApplicationError("connection reset after commit", "Transient")
	calls := 0
	h.env.OnActivity(h.acts.RecordVerification, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.RecordInput) (activities.RecordResult, error) {
			res, err := h.acts.RecordVerification(ctx, in)
			if calls++; calls == 1 && err == nil {
				return activities.RecordResult{}, lost // the write is in, the answer is not
			}
			return res, err
		})
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-approved.json"))
	h.run(s1)
	if got := h.subjects(); len(got) != 1 {
		t.Fatalf("mails = %q, want the approval", got)
	}
	if st := h.state(); st.Status != didit.StatusApproved {
		t.Fatalf("status = %q", st.Status)
	}
}

func TestParkedNoticeDoesNotHoldUpRecords(t *testing.T) {
	h := newHarness(t, nil)
	permanent := temporal.NewNonRetryableApplicationError("smtp AUTH rejected: 535", "Permanent", nil)
	h.env.OnActivity(h.acts.NotifyUser, mock.Anything, mock.Anything).Return(failing(1, permanent, h.acts.NotifyUser))
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-review.json"))
	h.deliverAt(time.Minute, fixtureEvent(t, "status-updated-declined-aml-hit.json"))
	var whileParked string
	var parked []ParkedStep
	h.env.RegisterDelayedCallback(func() {
		whileParked = h.record(s2).Status
		parked = h.state().Parked
	}, 2*time.Minute)
	inReviewKey := fixtureEvent(t, "status-updated-in-review.json").Event.Key()
	h.signalAt(3*time.Minute, contract.RetrySignal, contract.OperatorAction{Step: "notify user: in_review (event " + inReviewKey + ")"})
	h.run(s2)
	if len(parked) != 1 || whileParked != "Declined" {
		t.Fatalf("while the review notice was parked: record %q, parked %+v", whileParked, parked)
	}
	want := []string{"AML case opened: session " + s2, "Your identity verification is under review", "Your identity verification was not approved"}
	if got := h.subjects(); !slices.Equal(got, want) {
		t.Fatalf("mails = %q, want %q", got, want)
	}
}

func TestRetryNamingAnotherStepReleasesNothing(t *testing.T) {
	h := newHarness(t, nil)
	permanent := temporal.NewNonRetryableApplicationError("boom", "Permanent", nil)
	h.env.OnActivity(h.acts.NotifyUser, mock.Anything, mock.Anything).Return(failing(1, permanent, h.acts.NotifyUser))
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-approved.json"))
	h.signalAt(time.Minute, contract.SkipSignal, contract.OperatorAction{Step: "record event nope"})
	var still int
	h.env.RegisterDelayedCallback(func() { still = len(h.state().Parked) }, 2*time.Minute)
	h.signalAt(3*time.Minute, contract.RetrySignal, nil)
	h.run(s1)
	if still != 1 {
		t.Fatalf("a signal naming another step released the parked one")
	}
	if got := h.subjects(); len(got) != 1 {
		t.Fatalf("mails = %q", got)
	}
}

// failing makes an activity fail with err the first n calls (all calls when
// n < 0), then run the real activity.
func failing[In, Out any](n int, err error, real func(context.Context, In) (Out, error)) func(context.Context, In) (Out, error) {
	var mu sync.Mutex
	calls := 0
	return func(ctx context.Context, in In) (Out, error) {
		mu.Lock()
		calls++
		c := calls
		mu.Unlock()
		if n < 0 || c <= n {
			var zero Out
			return zero, err
		}
		return real(ctx, in)
	}
}

// TestParkedFirstRecordFlagsTheSearchAttribute: the records refuse the
// session's first event for good. Nothing is recorded yet, and still the
// parked step sets DiditNeedsAttention, which the receiver started false;
// the operator's retry records the event and clears it.
func TestParkedFirstRecordFlagsTheSearchAttribute(t *testing.T) {
	h := newHarness(t, nil)
	started := temporal.NewSearchAttributes(contract.StatusKey.ValueSet("Approved"),
		contract.AMLHitKey.ValueSet(false), contract.NeedsAttentionKey.ValueSet(false))
	if err := h.env.SetTypedSearchAttributesOnStart(started); err != nil {
		t.Fatal(err)
	}
	permanent := temporal.NewNonRetryableApplicationError("record events: database is read-only", "Permanent", nil)
	h.env.OnActivity(h.acts.RecordEvents, mock.Anything, mock.Anything).Return(failing(1, permanent, h.acts.RecordEvents))
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-approved.json"))
	var whileParked bool
	h.env.RegisterDelayedCallback(func() { whileParked, _ = h.searchBool(contract.NeedsAttentionKey) }, time.Minute)
	h.signalAt(2*time.Minute, contract.RetrySignal, contract.OperatorAction{Operator: "ops"})
	h.run(s1)

	if !whileParked {
		t.Fatal("DiditNeedsAttention was not set while the first record was parked")
	}
	if v, _ := h.searchBool(contract.NeedsAttentionKey); v {
		t.Fatal("DiditNeedsAttention still set after the retry")
	}
	if h.record(s1).Status != "Approved" || h.searchStatus() != "Approved" {
		t.Fatalf("record %+v, status searchable as %q: want the event recorded, and Approved", h.record(s1), h.searchStatus())
	}
}

func TestParkedStepRetriedByOperator(t *testing.T) {
	h := newHarness(t, nil)
	permanent := temporal.NewNonRetryableApplicationError("send notification user:approved: 550 mailbox unavailable", "Permanent", nil)
	h.env.OnActivity(h.acts.NotifyUser, mock.Anything, mock.Anything).Return(failing(1, permanent, h.acts.NotifyUser))
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-approved.json"))
	var parked SessionState
	h.env.RegisterDelayedCallback(func() { parked = h.state() }, time.Minute)
	h.signalAt(time.Minute+time.Second, contract.RetrySignal, contract.OperatorAction{Operator: "ops@example.com", Note: "mailbox fixed"})
	h.run(s1)

	if len(parked.Parked) != 1 || !strings.HasPrefix(parked.Parked[0].Step, "notify user: approved (event ") || !strings.Contains(parked.Parked[0].Error, "550") {
		t.Fatalf("while parked, state = %+v", parked.Parked)
	}
	if got := h.subjects(); len(got) != 1 {
		t.Fatalf("mails = %q, want the approval once, after the retry", got)
	}
	st := h.state()
	if len(st.Parked) != 0 || len(st.Decisions) != 1 || st.Decisions[0].Action != contract.RetrySignal || st.Decisions[0].Operator != "ops@example.com" {
		t.Fatalf("state = %+v", st)
	}
	if v, _ := h.searchBool(contract.NeedsAttentionKey); v {
		t.Fatal("DiditNeedsAttention should be cleared after the retry")
	}
	attention := false
	for _, sa := range h.searched {
		if v, ok := sa.GetBool(contract.NeedsAttentionKey); ok && v {
			attention = true
		}
	}
	if !attention {
		t.Fatal("DiditNeedsAttention was never set while the step was parked")
	}
}

func TestParkedStepSkippedByOperator(t *testing.T) {
	h := newHarness(t, nil)
	permanent := temporal.NewNonRetryableApplicationError("invalid address", "Permanent", nil)
	h.env.OnActivity(h.acts.NotifyUser, mock.Anything, mock.Anything).Return(failing(-1, permanent, h.acts.NotifyUser))
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-approved.json"))
	h.signalAt(time.Minute, contract.RetrySignal, contract.OperatorAction{}) // fails again: parks again
	h.signalAt(2*time.Minute, contract.SkipSignal, contract.OperatorAction{Operator: "ops@example.com"})
	h.run(s1)

	st := h.state()
	if len(st.Decisions) != 2 || st.Decisions[0].Action != contract.RetrySignal || st.Decisions[1].Action != contract.SkipSignal {
		t.Fatalf("decisions = %+v", st.Decisions)
	}
	ns, err := h.store.Notifications(context.Background(), s1)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.mails()) != 0 || slices.ContainsFunc(ns, func(n store.Notification) bool { return n.State == store.NotificationSent }) ||
		len(st.Effects) != 0 {
		t.Fatalf("notifications %+v, effects %+v: a skipped notice must not count as sent, nor wait", ns, st.Effects)
	}
	if h.record(s1).Status != "Approved" {
		t.Fatal("the record step before the skipped one must stand")
	}
}

func TestTransientFailureParksAfterTheRetryBudget(t *testing.T) {
	h := newHarness(t, nil)
	down := temporal.NewApplicationError("send notification user:approved: dial tcp 127.0.0.1:25: connection refused", "Transient")
	var mu sync.Mutex
	attempts := 0
	h.env.OnActivity(h.acts.NotifyUser, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.UserNotice) (activities.NoticeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			attempts++
			return "", down
		})
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-approved.json"))
	var parked SessionState
	h.env.RegisterDelayedCallback(func() { parked = h.state() }, time.Hour)
	h.signalAt(time.Hour+time.Second, contract.SkipSignal, contract.OperatorAction{})
	h.run(s1)

	if attempts < 4 {
		t.Fatalf("%d attempts: transient failures should be retried with backoff", attempts)
	}
	if len(parked.Parked) != 1 || !strings.Contains(parked.Parked[0].Error, "connection refused") {
		t.Fatalf("parked = %+v", parked.Parked)
	}
}

func TestOperatorSignalWithNothingParkedIsIgnored(t *testing.T) {
	h := newHarness(t, nil)
	h.signalAt(time.Second, contract.SkipSignal, contract.OperatorAction{})
	permanent := temporal.NewNonRetryableApplicationError("boom", "Permanent", nil)
	h.env.OnActivity(h.acts.NotifyUser, mock.Anything, mock.Anything).Return(failing(1, permanent, h.acts.NotifyUser))
	h.deliverAt(2*time.Second, fixtureEvent(t, "status-updated-approved.json"))
	h.signalAt(time.Minute, contract.RetrySignal, contract.OperatorAction{})
	h.run(s1)
	if got := h.subjects(); len(got) != 1 {
		t.Fatalf("mails = %q: the stale skip must not have skipped the parked step", got)
	}
}

// TestEventAtEndOfIdleWindowIsHandled: an event arriving in the last moment
// of the idle window is handled, not completed over. (An event that lands in
// the very workflow task that fires the timer is drained before completing;
// and one that lands while that task runs makes the server reject the
// completion, so the SDK runs the task again and the drain sees it.)
func TestEventAtEndOfIdleWindowIsHandled(t *testing.T) {
	h := newHarness(t, nil)
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-approved.json"))
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflowSkippingWorkflowTask(contract.EventSignal, fixtureEvent(t, "data-updated.json"))
	}, time.Second+testSettings().IdleWindow-time.Millisecond)
	h.run(s1)
	if got := outcomes(h.state()); !slices.Equal(got, []string{"Approved:applied", "Approved:applied"}) {
		t.Fatalf("history = %v, want both events", got)
	}
	if h.record(s1).WebhookType != "data.updated" {
		t.Fatal("the late event was not recorded")
	}
}

func TestOpenSessionWaitsForever(t *testing.T) {
	h := newHarness(t, nil)
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-progress.json"))
	h.deliverAt(30*24*time.Hour, fixtureEvent(t, "status-updated-approved.json"))
	h.run(s1)
	if got := outcomes(h.state()); !slices.Equal(got, []string{"In Progress:applied", "Approved:applied"}) {
		t.Fatalf("history = %v: an open session must wait for its outcome", got)
	}
}

func TestContinueAsNewCarriesState(t *testing.T) {
	h := newHarness(t, func(s *Settings) { s.ContinueAsNewAfter = 2 })
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-progress.json"))
	h.deliverAt(2*time.Second, fixtureEvent(t, "status-updated-approved.json"))
	next := continuedAsNew(h, contract.SessionWorkflowType, SessionInput{SessionStart: contract.SessionStart{SessionID: s1}})
	if next.State == nil || len(next.State.Seen) == 0 || next.State.Runs != 1 {
		t.Fatalf("carried state = %+v", next.State)
	}

	// The next run drops a redelivery of an event the first run handled.
	h2 := newHarness(t, func(s *Settings) { s.ContinueAsNewAfter = 0 })
	h2.store, h2.acts.Store = h.store, h.store
	h2.outbox = h.outbox
	h2.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-progress.json"))
	h2.env.ExecuteWorkflow(contract.SessionWorkflowType, next)
	if err := h2.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	st := h2.state()
	if st.Runs != 2 || st.History[len(st.History)-1].Outcome != "duplicate" {
		t.Fatalf("second run state = %+v", outcomes(st))
	}
}

// continuedAsNew runs a workflow that must continue as new and returns the
// input of its next run.
func continuedAsNew[In any](h *harness, workflowType string, in In) In {
	h.t.Helper()
	h.env.ExecuteWorkflow(workflowType, in)
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		h.t.Fatalf("workflow error = %v, want continue-as-new", err)
	}
	var next In
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		h.t.Fatal(err)
	}
	return next
}
