package workflows

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
	"github.com/diditflow/diditflow/kyc"
)

// fakeTemporal is the Temporal the announcements reach: it keeps what each
// subscriber was told and which hooks were started, refuses a hook's
// second start as Temporal does, answers NotFound for the runs closed, and
// fails the first failStarts starts.
type fakeTemporal struct {
	mu         sync.Mutex
	updates    map[string][]kyc.Update
	closed     map[string]bool
	started    []kyc.Event
	startedIDs map[string]string
	failStarts int
	// signalled, if set, is called (outside the lock) on each update.
	signalled func(workflowID string, u kyc.Update)
	// reported are the hit reviews cases handed back to their sessions.
	reported []contract.HitReviews
}

func newFakeTemporal() *fakeTemporal {
	return &fakeTemporal{updates: map[string][]kyc.Update{}, closed: map[string]bool{}, startedIDs: map[string]string{}}
}

func (f *fakeTemporal) SignalWithStartWorkflow(_ context.Context, workflowID, signal string, arg any, _ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	r, ok := arg.(contract.HitReviews)
	if !ok || signal != contract.HitReviewsSignal || workflowID != contract.SessionWorkflowID(r.SessionID) {
		return nil, errors.New("only cases handing hit reviews back to their session signal-with-start")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reported = append(f.reported, r)
	return nil, nil
}

func (f *fakeTemporal) SignalWorkflow(_ context.Context, workflowID, runID, name string, arg any) error {
	f.mu.Lock()
	u := arg.(kyc.Update)
	if f.closed[workflowID+"/"+runID] {
		f.mu.Unlock()
		return serviceerror.NewNotFound("workflow execution already completed")
	}
	if name != contract.UpdateSignal(u.SessionID) {
		f.mu.Unlock()
		return errors.New("update sent as " + name)
	}
	f.updates[workflowID] = append(f.updates[workflowID], u)
	signalled := f.signalled
	f.mu.Unlock()
	if signalled != nil {
		signalled(workflowID, u)
	}
	return nil
}

func (f *fakeTemporal) ExecuteWorkflow(_ context.Context, opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failStarts > 0 {
		f.failStarts--
		return nil, serviceerror.NewUnavailable("frontend unavailable")
	}
	if _, ok := f.startedIDs[opts.ID]; ok {
		return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", "")
	}
	f.startedIDs[opts.ID] = opts.TaskQueue + "/" + wf.(string)
	f.started = append(f.started, args[0].(kyc.Event))
	return nil, nil
}

// told is every change a subscriber was told, in order.
func (f *fakeTemporal) told(workflowID string) []kyc.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []kyc.Change
	for _, u := range f.updates[workflowID] {
		out = append(out, u.Changes...)
	}
	return out
}

func (f *fakeTemporal) hooks() []kyc.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.started)
}

// statuses lists changes as "sequence:status".
func statuses(cs []kyc.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, itoa64(c.Sequence)+":"+string(c.Status))
	}
	return out
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// subscription is a business's workflow waiting for s1 for a day.
func subscription(h *harness, workflowID string) kyc.Subscription {
	return kyc.Subscription{SessionID: s1, WorkflowID: workflowID, RunID: "run-" + workflowID, Until: h.env.Now().Add(24 * time.Hour)}
}

func (h *harness) subscribeAt(at time.Duration, workflowID string) {
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(contract.SubscribeSignal, subscription(h, workflowID)) }, at)
}

// sharing is a harness for a later run of h's session: the same records,
// mail and Temporal.
func sharing(t *testing.T, h *harness, mutate func(*Settings)) *harness {
	h2 := newHarness(t, mutate)
	h2.store, h2.acts.Store, h2.kyc.Store = h.store, h.store, h.store
	h2.outbox = h.outbox
	h2.temporal = h.temporal
	h2.kyc.Temporal = h.temporal
	return h2
}

// TestSubscriberToldCurrentStateAndEveryChangeOnce: a subscriber is told
// where the session stands when it subscribes, then each change, once,
// until a decided one; then the run completes.
func TestSubscriberToldCurrentStateAndEveryChangeOnce(t *testing.T) {
	h := newHarness(t, nil)
	inProgress := fixtureEvent(t, "status-updated-in-progress.json")
	approved := fixtureEvent(t, "status-updated-approved.json")
	h.deliverAt(time.Second, inProgress)
	h.subscribeAt(time.Minute, "onboarding-1")
	h.deliverAt(2*time.Minute, approved, inProgress, approved)
	h.deliverAt(3*time.Minute, fixtureEvent(t, "data-updated.json"))
	h.run(s1)
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(h.temporal.told("onboarding-1")), []string{"1:In Progress", "2:Approved"}; !slices.Equal(got, want) {
		t.Fatalf("told %v, want %v", got, want)
	}
	if c := h.temporal.told("onboarding-1")[1]; c.At.Unix() != approved.Event.CreatedAt {
		t.Fatalf("approval told at %v, want the event's created_at %d", c.At, approved.Event.CreatedAt)
	}
	if st := h.state(); len(st.Subscribers) != 0 {
		t.Fatalf("subscribers = %+v, want none once told a decided status", st.Subscribers)
	}
	if n := len(h.temporal.hooks()); n != 0 {
		t.Fatalf("%d hooks started without HOOK_WORKFLOWS", n)
	}
}

// TestOutcomeBeforeTheSubscription is the race on diditflow's side: the
// session was decided before the business's workflow subscribed.
func TestOutcomeBeforeTheSubscription(t *testing.T) {
	h := newHarness(t, nil)
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-progress.json"), fixtureEvent(t, "status-updated-approved.json"))
	h.subscribeAt(time.Minute, "onboarding-1")
	h.run(s1)
	if got := statuses(h.temporal.told("onboarding-1")); !slices.Equal(got, []string{"2:Approved"}) {
		t.Fatalf("told %v, want where the session stands: 2:Approved", got)
	}
}

// TestSubscriptionToAClosedSessionAnswersFromTheRecords: the session's runs
// completed last month; a subscription starts a run that knows nothing,
// which tells the subscriber what the records say, and completes.
func TestSubscriptionToAClosedSessionAnswersFromTheRecords(t *testing.T) {
	h := newHarness(t, nil)
	approved := fixtureEvent(t, "status-updated-approved.json")
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-progress.json"), approved)
	h.run(s1)

	h2 := sharing(t, h, nil)
	h2.subscribeAt(0, "onboarding-1")
	h2.run(s1)
	if err := h2.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	told := h.temporal.told("onboarding-1")
	if got := statuses(told); !slices.Equal(got, []string{"2:Approved"}) {
		t.Fatalf("told %v, want 2:Approved from the records", got)
	}
	if told[0].At.Unix() != approved.Event.CreatedAt {
		t.Fatalf("told the approval at %v, want %d", told[0].At, approved.Event.CreatedAt)
	}
	if st := h2.state(); st.Status != didit.StatusApproved || len(st.Subscribers) != 0 {
		t.Fatalf("state = %+v", st)
	}
}

// TestSubscriptionToAnUnknownSessionEnds: a subscription for a session
// that never had an event keeps a run open only while it waits.
func TestSubscriptionToAnUnknownSessionEnds(t *testing.T) {
	h := newHarness(t, nil)
	h.subscribeAt(0, "onboarding-1")
	start := h.env.Now()
	h.run(s1)
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if n := len(h.temporal.told("onboarding-1")); n != 0 {
		t.Fatalf("%d changes told of a session never recorded", n)
	}
	if ran := h.env.Now().Sub(start); ran < 24*time.Hour || ran > 24*time.Hour+subscriberGrace+testSettings().IdleWindow+time.Minute {
		t.Fatalf("the run lasted %s, want the subscriber's wait, its grace and the idle window", ran)
	}
}

// TestUnsubscribedOrGoneSubscribersAreDropped: one unsubscribes, one's run
// is closed when it is told; the run completes without them.
func TestUnsubscribedOrGoneSubscribersAreDropped(t *testing.T) {
	h := newHarness(t, nil)
	h.temporal.closed["gone/run-gone"] = true
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-progress.json"))
	h.subscribeAt(time.Minute, "gone")
	h.subscribeAt(time.Minute, "leaving")
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(contract.UnsubscribeSignal, subscription(h, "leaving"))
	}, 2*time.Minute)
	h.deliverAt(time.Hour, fixtureEvent(t, "status-updated-approved.json"))
	h.run(s1)
	if got := statuses(h.temporal.told("leaving")); !slices.Equal(got, []string{"1:In Progress"}) {
		t.Fatalf("told the leaver %v, want only where the session stood", got)
	}
	if st := h.state(); len(st.Subscribers) != 0 {
		t.Fatalf("subscribers = %+v", st.Subscribers)
	}
}

// TestSubscribersAreBounded: past kyc.MaxSubscribers a subscription is
// refused, and the refused workflow is told so.
func TestSubscribersAreBounded(t *testing.T) {
	h := newHarness(t, nil)
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-progress.json"))
	h.env.RegisterDelayedCallback(func() {
		for i := range kyc.MaxSubscribers + 1 {
			h.env.SignalWorkflow(contract.SubscribeSignal, subscription(h, "w-"+itoa64(int64(i))))
		}
	}, time.Minute)
	h.deliverAt(time.Hour, fixtureEvent(t, "status-updated-approved.json"))
	h.run(s1)
	last := "w-" + itoa64(kyc.MaxSubscribers)
	h.temporal.mu.Lock()
	refusal := h.temporal.updates[last]
	h.temporal.mu.Unlock()
	if len(refusal) != 1 || refusal[0].Refused == "" || len(refusal[0].Changes) != 0 {
		t.Fatalf("the extra subscriber was told %+v, want a refusal", refusal)
	}
	if got := statuses(h.temporal.told("w-0")); !slices.Equal(got, []string{"1:In Progress", "2:Approved"}) {
		t.Fatalf("the first was told %v", got)
	}
}

// TestSubscribersCarriedByContinueAsNew: a run that continues as new hands
// its subscribers to the next, which tells them what comes.
func TestSubscribersCarriedByContinueAsNew(t *testing.T) {
	h := newHarness(t, func(s *Settings) { s.ContinueAsNewAfter = 2 })
	h.subscribeAt(0, "onboarding-1")
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-progress.json"))
	h.deliverAt(time.Minute, fixtureEvent(t, "status-updated-in-progress.json"))
	next := continuedAsNew(h, contract.SessionWorkflowType, SessionInput{SessionStart: contract.SessionStart{SessionID: s1}})
	if len(next.State.Subscribers) != 1 || next.State.Subscribers[0].Told != 1 {
		t.Fatalf("carried subscribers = %+v", next.State.Subscribers)
	}

	h2 := sharing(t, h, nil)
	h2.deliverAt(time.Second, fixtureEvent(t, "status-updated-approved.json"))
	h2.env.ExecuteWorkflow(contract.SessionWorkflowType, next)
	if err := h2.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if got := statuses(h.temporal.told("onboarding-1")); !slices.Equal(got, []string{"1:In Progress", "2:Approved"}) {
		t.Fatalf("told %v across the continue-as-new", got)
	}
}

var hookSettings = func(s *Settings) {
	s.Hooks = []activities.Hook{{WorkflowType: "OnKYCEvent", TaskQueue: "business"}}
}

// TestHookOncePerStatusChange: each status change starts the hook once,
// with its number, its previous status and a key; duplicates, a stale
// event and an edit of the same status start nothing.
func TestHookOncePerStatusChange(t *testing.T) {
	h := newHarness(t, hookSettings)
	inProgress := fixtureEvent(t, "status-updated-in-progress.json")
	approved := fixtureEvent(t, "status-updated-approved.json")
	stale := statusEvent(t, "status-updated-in-progress.json", didit.StatusInReview, inProgress.Event.CreatedAt+1)
	h.deliverAt(time.Second, inProgress, inProgress)
	h.deliverAt(time.Minute, approved, stale, approved)
	h.deliverAt(2*time.Minute, fixtureEvent(t, "data-updated.json"), approved)
	h.run(s1)
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	hooks := h.temporal.hooks()
	if len(hooks) != 2 {
		t.Fatalf("hooks = %+v, want 2", hooks)
	}
	want := kyc.Event{Kind: kyc.StatusChanged, Key: s1 + "-2", SessionID: s1, VendorData: "user_01HZX3K9QY", Status: kyc.Approved,
		PreviousStatus: kyc.InProgress, At: time.Unix(approved.Event.CreatedAt, 0).UTC(), Sequence: 2}
	if hooks[1] != want || hooks[0].Status != kyc.InProgress || hooks[0].PreviousStatus != "" || hooks[0].Sequence != 1 {
		t.Fatalf("hooks = %+v\nwant the second %+v", hooks, want)
	}
	if q := h.temporal.startedIDs["OnKYCEvent-"+s1+"-2"]; q != "business/OnKYCEvent" {
		t.Fatalf("hook started as %q", q)
	}
	// The records know both changes were announced.
	res, err := h.store.RecordEvent(context.Background(), store.EventRecord{SessionID: s1, EventKey: approved.Event.Key(), Unannounced: true})
	if err != nil || !res.Duplicate || !res.Announced {
		t.Fatalf("redelivered approval = %+v, %v; want announced", res, err)
	}
}

// TestHookNeverForARedeliveryInALaterRun: after the runs completed, a
// redelivered approval (recognised by the records, not the run) starts no
// hook; a manual review's Declined months later starts one, in order.
func TestHookNeverForARedeliveryInALaterRun(t *testing.T) {
	h := newHarness(t, hookSettings)
	approved := fixtureEvent(t, "status-updated-approved.json")
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-progress.json"), approved)
	h.run(s1)

	h2 := sharing(t, h, hookSettings)
	declined := statusEvent(t, "status-updated-approved.json", didit.StatusDeclined, approved.Event.CreatedAt+90*24*3600)
	h2.deliverAt(time.Second, approved)
	h2.deliverAt(time.Minute, declined)
	h2.run(s1)
	hooks := h.temporal.hooks()
	if len(hooks) != 3 || hooks[2].Status != kyc.Declined || hooks[2].PreviousStatus != kyc.Approved || hooks[2].Sequence != 3 {
		t.Fatalf("hooks = %+v, want In Progress, Approved, then the Declined as 3", hooks)
	}
}

// TestHookForAChangeWhoseAnswerWasLost: an earlier attempt recorded the
// event (and its change) but its answer never reached the workflow; the
// change is still announced.
func TestHookForAChangeWhoseAnswerWasLost(t *testing.T) {
	h := newHarness(t, hookSettings)
	approved := fixtureEvent(t, "status-updated-approved.json")
	in := activities.RecordInput{SessionID: s1, EventKey: approved.Event.Key(), WebhookType: approved.Event.WebhookType,
		Status: approved.Event.Status, EventCreatedAt: approved.Event.CreatedAt, Unannounced: true}
	if _, err := h.acts.RecordEvents(context.Background(), []activities.RecordInput{in}); err != nil {
		t.Fatal(err)
	}
	h.deliverAt(time.Second, approved)
	h.run(s1)
	if hooks := h.temporal.hooks(); len(hooks) != 1 || hooks[0].Status != kyc.Approved || hooks[0].Sequence != 1 {
		t.Fatalf("hooks = %+v, want the approval's", hooks)
	}
}

// TestHookStartsRetryWithoutParking: Temporal refuses the starts for a
// while; the notice goes out meanwhile, nothing parks, and each hook starts
// once.
func TestHookStartsRetryWithoutParking(t *testing.T) {
	h := newHarness(t, hookSettings)
	h.temporal.failStarts = 5
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-progress.json"), fixtureEvent(t, "status-updated-approved.json"))
	h.run(s1)
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if n := len(h.temporal.hooks()); n != 2 {
		t.Fatalf("%d hooks started, want 2", n)
	}
	st := h.state()
	if len(st.Parked) != 0 || len(st.Decisions) != 0 || len(st.Hooked) != 0 {
		t.Fatalf("state = %+v", st)
	}
	if got := h.subjects(); len(got) != 1 {
		t.Fatalf("mails = %q, want the approval", got)
	}
}

// TestResolvedCaseStartsHooks: compliance's resolution of an AML case
// starts the hook once, numbered after the session's changes, with each
// hit's outcome and the session's status.
func TestResolvedCaseStartsHooks(t *testing.T) {
	h := newHarness(t, hookSettings)
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-review.json"))
	h.deliverAt(2*time.Second, withHits(t, statusEvent(t, "status-updated-in-review.json", didit.StatusDeclined, 1767225391)))
	h.resolveCaseAt(5*time.Minute, s2)
	h.run(s2)
	assertResolutionHook(t, h.temporal.hooks())
}

// TestConsoleResolutionStartsHooks: a case resolved in Didit's console
// (the officer confirmed the match there, then declined the user) starts
// the hooks as one resolved in diditflow does.
func TestConsoleResolutionStartsHooks(t *testing.T) {
	h := newHarness(t, hookSettings)
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-in-review.json"))
	h.deliverAt(2*time.Second, fixtureEvent(t, "status-updated-declined-aml-hit.json"))
	h.run(s2)
	assertResolutionHook(t, h.temporal.hooks())
}

// assertResolutionHook checks the hooks of In Review, Declined, and the
// case's resolution as a confirmed match.
func assertResolutionHook(t *testing.T, hooks []kyc.Event) {
	t.Helper()
	if len(hooks) != 3 {
		t.Fatalf("hooks = %+v, want In Review, Declined and the resolution", hooks)
	}
	r := hooks[2]
	if r.Kind != kyc.AMLCaseResolved || r.Sequence != 3 || r.Key != s2+"-3" || r.Status != kyc.Declined || r.Case == nil ||
		r.Case.CaseID != contract.AMLCaseWorkflowID(s2) || r.Case.Outcome != "confirmed_match" || len(r.Case.Hits) != 1 {
		t.Fatalf("resolution hook = %+v (case %+v)", r, r.Case)
	}
	for id, outcome := range r.Case.Hits {
		if id == "" || outcome != "confirmed_match" {
			t.Fatalf("hits = %v", r.Case.Hits)
		}
	}
}
