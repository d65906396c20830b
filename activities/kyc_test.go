package activities

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
	"github.com/diditflow/diditflow/kyc"
)

// temporalCalls records what the KYC activities ask of Temporal.
type temporalCalls struct {
	mu          sync.Mutex
	signalStart []client.StartWorkflowOptions
	signals     []string
	starts      []client.StartWorkflowOptions
	inputs      []kyc.Event
	closed      map[string]bool
	startErr    error
}

func (c *temporalCalls) SignalWithStartWorkflow(_ context.Context, workflowID, signal string, arg any, opts client.StartWorkflowOptions,
	wf any, args ...any) (client.WorkflowRun, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if workflowID != opts.ID || signal != contract.SubscribeSignal || wf != contract.SessionWorkflowType {
		return nil, errors.New("unexpected signal-with-start")
	}
	c.signalStart = append(c.signalStart, opts)
	return nil, nil
}

func (c *temporalCalls) SignalWorkflow(_ context.Context, workflowID, runID, name string, _ any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed[workflowID] {
		return serviceerror.NewNotFound("workflow execution already completed")
	}
	c.signals = append(c.signals, workflowID+"/"+runID+" "+name)
	return nil
}

func (c *temporalCalls) ExecuteWorkflow(_ context.Context, opts client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.startErr != nil {
		return nil, c.startErr
	}
	for _, s := range c.starts {
		if s.ID == opts.ID {
			return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("started", "", "")
		}
	}
	c.starts = append(c.starts, opts)
	c.inputs = append(c.inputs, args[0].(kyc.Event))
	return nil, nil
}

func newKYC(t *testing.T, didit http.HandlerFunc) (*KYC, *store.Store, *temporalCalls, *prometheus.Registry) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "records.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	k := &KYC{Store: st, TaskQueue: "diditflow", WorkflowID: "wf-default", Temporal: &temporalCalls{closed: map[string]bool{}}}
	if didit != nil {
		srv := httptest.NewServer(didit)
		t.Cleanup(srv.Close)
		c, err := api.New(api.Config{BaseURL: srv.URL, Key: "key"})
		if err != nil {
			t.Fatal(err)
		}
		k.API = c
	}
	reg := prometheus.NewRegistry()
	k.Metrics = NewMetrics(reg)
	return k, st, k.Temporal.(*temporalCalls), reg
}

// requestError is the *kyc.RequestError an activity's failure carries, as
// the kyc side reads it.
func requestError(t *testing.T, err error) kyc.RequestError {
	t.Helper()
	var app *temporal.ApplicationError
	var re kyc.RequestError
	if !errors.As(err, &app) || app.Type() != kyc.RequestErrorType || !app.NonRetryable() || app.Details(&re) != nil {
		t.Fatalf("error %v is not a refused request", err)
	}
	return re
}

func TestCreateSessionDefaultsTheWorkflowAndMapsRefusals(t *testing.T) {
	var body map[string]any
	k, _, _, reg := newKYC(t, func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["vendor_data"] == "refused" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"workflow_id":["Workflow not found."]}`))
			return
		}
		if body["vendor_data"] == "busy" {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"session_id":"s-1","url":"https://verify.didit.me/session/t","status":"Not Started","vendor_data":"user-1"}`))
	})
	v, err := k.CreateSession(context.Background(), kyc.Request{VendorData: "user-1", ContactDetails: &kyc.ContactDetails{Email: "u@example.com"}})
	if err != nil || v != (kyc.Verification{SessionID: "s-1", URL: "https://verify.didit.me/session/t", Status: kyc.NotStarted}) {
		t.Fatalf("created %+v, %v", v, err)
	}
	if body["workflow_id"] != "wf-default" || body["contact_details"].(map[string]any)["email"] != "u@example.com" {
		t.Fatalf("body = %v, want DIDIT_WORKFLOW_ID and the contact details", body)
	}
	re := requestError(t, func() error {
		_, err := k.CreateSession(context.Background(), kyc.Request{VendorData: "refused"})
		return err
	}())
	if re.StatusCode != 400 || re.Message != "workflow_id: Workflow not found." {
		t.Fatalf("refusal = %+v", re)
	}
	_, err = k.CreateSession(context.Background(), kyc.Request{VendorData: "busy"})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.NonRetryable() || app.NextRetryDelay() != 30*time.Second {
		t.Fatalf("429: %v, want retried after Didit's Retry-After", err)
	}
	if n := counter(t, reg, "diditflow_didit_api_calls_total", map[string]string{"call": "create_session", "result": "ok"}); n != 1 {
		t.Fatalf("create_session ok = %v", n)
	}
}

func TestCreateSessionRefusedBeforeDidit(t *testing.T) {
	k, _, _, _ := newKYC(t, func(w http.ResponseWriter, r *http.Request) { t.Error("no call expected") })
	k.WorkflowID = ""
	if re := requestError(t, func() error {
		_, err := k.CreateSession(context.Background(), kyc.Request{VendorData: "u"})
		return err
	}()); re.StatusCode != 0 {
		t.Fatalf("no workflow: %+v", re)
	}
	k.API = nil
	if re := requestError(t, func() error {
		_, err := k.CreateSession(context.Background(), kyc.Request{VendorData: "u"})
		return err
	}()); re.StatusCode != 0 {
		t.Fatalf("no key: %+v", re)
	}
}

// TestSubscribeStartsTheSessionsRun: the subscription is a signal-with-start
// of the session's workflow, as a delivery's, with the recorded status.
func TestSubscribeStartsTheSessionsRun(t *testing.T) {
	k, st, calls, _ := newKYC(t, nil)
	if _, err := st.RecordEvent(context.Background(), store.EventRecord{SessionID: "s-1", EventKey: "k", Status: "Approved", StatusRank: 4, EventCreatedAt: 1}); err != nil {
		t.Fatal(err)
	}
	sub := kyc.Subscription{SessionID: "s-1", WorkflowID: "onboarding", RunID: "r", Until: time.Now().Add(time.Hour)}
	if err := k.Subscribe(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	opts := calls.signalStart[0]
	status, _ := opts.TypedSearchAttributes.GetKeyword(contract.StatusKey)
	if opts.ID != "didit-session-s-1" || opts.TaskQueue != "diditflow" || status != "Approved" ||
		opts.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING {
		t.Fatalf("start options = %+v", opts)
	}
	sub.SessionID = "../bad"
	var app *temporal.ApplicationError
	if err := k.Subscribe(context.Background(), sub); !errors.As(err, &app) || !app.NonRetryable() {
		t.Fatalf("bad session: %v", err)
	}
	calls.closed["didit-session-s-1"] = true
	if err := k.Unsubscribe(context.Background(), kyc.Subscription{SessionID: "s-1", WorkflowID: "onboarding"}); err != nil {
		t.Fatalf("unsubscribing from a closed session: %v", err)
	}
}

// TestAnnounceTellsTheRecordsTruth: an update ends with where the records
// say the session stands when they are ahead of the run; a closed
// subscriber is reported gone; hooks start once each, with the records'
// vendor_data, and the change is marked announced.
func TestAnnounceTellsTheRecordsTruth(t *testing.T) {
	k, st, calls, reg := newKYC(t, nil)
	ctx := context.Background()
	for _, e := range []store.EventRecord{
		{SessionID: "s-1", EventKey: "a", Status: "In Progress", StatusRank: 2, EventCreatedAt: 100, VendorData: "user-1", Unannounced: true},
		{SessionID: "s-1", EventKey: "b", Status: "Approved", StatusRank: 4, EventCreatedAt: 200, Unannounced: true},
	} {
		if _, err := st.RecordEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	calls.closed["gone"] = true
	event := kyc.Event{Kind: kyc.StatusChanged, Key: "s-1-2", SessionID: "s-1", Status: kyc.Approved, Sequence: 2}
	in := Announcement{SessionID: "s-1",
		Updates: []SubscriberUpdate{
			{WorkflowID: "new", RunID: "r"},
			{WorkflowID: "told", RunID: "r", Changes: []kyc.Change{{Sequence: 1, Status: kyc.InProgress}}},
			{WorkflowID: "gone", RunID: "r", Changes: []kyc.Change{{Sequence: 2, Status: kyc.Approved}}},
			{WorkflowID: "refused", RunID: "r", Refused: "full"},
		},
		Hooks: []Hook{{WorkflowType: "OnKYCEvent", TaskQueue: "business"}}, Events: []kyc.Event{event}, Announced: 2}
	for range 2 { // a retried announcement
		res, err := k.Announce(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		want := []UpdateResult{{Told: 2, Decided: true}, {Told: 2, Decided: true}, {Told: -1, Gone: true}, {Told: -1}}
		if res.Status != (SessionSnapshot{Status: "Approved", Sequence: 2, At: 200}) || len(res.Updates) != 4 ||
			res.Updates[0] != want[0] || res.Updates[1] != want[1] || res.Updates[2] != want[2] || res.Updates[3] != want[3] {
			t.Fatalf("result = %+v", res)
		}
	}
	if len(calls.starts) != 1 || calls.starts[0].ID != "OnKYCEvent-s-1-2" || calls.starts[0].TaskQueue != "business" ||
		calls.starts[0].WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE || calls.inputs[0].VendorData != "user-1" {
		t.Fatalf("starts = %+v, %+v", calls.starts, calls.inputs)
	}
	if n := counter(t, reg, "diditflow_hook_starts_total", map[string]string{"result": "duplicate"}); n != 1 {
		t.Fatalf("duplicate starts = %v, want 1", n)
	}
	if res, err := st.RecordEvent(ctx, store.EventRecord{SessionID: "s-1", EventKey: "b"}); err != nil || !res.Announced {
		t.Fatalf("redelivery after the announcement = %+v, %v", res, err)
	}

	calls.startErr = serviceerror.NewUnavailable("down")
	if _, err := k.Announce(ctx, in); err == nil || func() bool { var a *temporal.ApplicationError; return errors.As(err, &a) && a.NonRetryable() }() {
		t.Fatalf("a failed start: %v, want a retryable failure", err)
	}
}

// TestStartCaseHooksNumbersTheResolutionOnce: a resolution's hook has the
// session's next number, the same when retried, and no vendor_data once
// the session is erased.
func TestStartCaseHooksNumbersTheResolutionOnce(t *testing.T) {
	k, st, calls, _ := newKYC(t, nil)
	ctx := context.Background()
	if _, err := st.RecordEvent(ctx, store.EventRecord{SessionID: "s-1", EventKey: "a", Status: "Declined", StatusRank: 4, VendorData: "user-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenAMLCase(ctx, store.AMLCase{CaseID: "aml-case-s-1", SessionID: "s-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EraseSession(ctx, "s-1"); err != nil {
		t.Fatal(err)
	}
	in := CaseHooks{Hooks: []Hook{{WorkflowType: "OnKYCEvent", TaskQueue: "business"}}, SessionID: "s-1",
		Case: kyc.CaseResolution{CaseID: "aml-case-s-1", Outcome: "false_positive", Hits: map[string]string{"h1": "false_positive"}}}
	for range 2 {
		if err := k.StartCaseHooks(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	e := calls.inputs
	if len(e) != 1 || e[0].Sequence != 2 || e[0].Key != "s-1-2" || e[0].Kind != kyc.AMLCaseResolved || e[0].Status != kyc.Declined || e[0].VendorData != "" {
		t.Fatalf("events = %+v", e)
	}
}

// TestHookAndUpdateCountersStartAtZero: every series is exported before the
// first start or update, so an alert on increase() sees the first failure.
func TestHookAndUpdateCountersStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	for _, r := range []string{"started", "duplicate", "failed"} {
		if n := counter(t, reg, "diditflow_hook_starts_total", map[string]string{"result": r}); n != 0 {
			t.Errorf("hook starts %s = %v", r, n)
		}
	}
	for _, r := range []string{"sent", "gone", "failed"} {
		if n := counter(t, reg, "diditflow_subscriber_updates_total", map[string]string{"result": r}); n != 0 {
			t.Errorf("subscriber updates %s = %v", r, n)
		}
	}
}

// TestHooksOfAnErasedSessionCarryNoVendorData: an erased session's events
// still start the hooks, without the business's ID of the user.
func TestHooksOfAnErasedSessionCarryNoVendorData(t *testing.T) {
	k, st, calls, _ := newKYC(t, nil)
	ctx := context.Background()
	if _, err := st.RecordEvent(ctx, store.EventRecord{SessionID: "s-1", EventKey: "a", Status: "Approved", StatusRank: 4, VendorData: "user-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EraseSession(ctx, "s-1"); err != nil {
		t.Fatal(err)
	}
	in := Announcement{SessionID: "s-1", Hooks: []Hook{{WorkflowType: "OnKYCEvent", TaskQueue: "business"}},
		Events: []kyc.Event{{Kind: kyc.StatusChanged, Key: "s-1-1", SessionID: "s-1", Status: kyc.Approved, Sequence: 1}}}
	if _, err := k.Announce(ctx, in); err != nil {
		t.Fatal(err)
	}
	if len(calls.inputs) != 1 || calls.inputs[0].VendorData != "" {
		t.Fatalf("hook inputs = %+v, want one without vendor_data", calls.inputs)
	}
}
