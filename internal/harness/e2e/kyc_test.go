package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/business"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/kyc"
	"github.com/diditflow/diditflow/workflows"
)

// businessQueue is the task queue of a test's own business worker.
func businessQueue() string { return "business-" + strconv.FormatInt(time.Now().UnixNano(), 36) }

// withHooks has diditflow's worker start the business's hook on queue.
func withHooks(queue string) func(*stack) {
	return func(s *stack) { s.workerEnv = append(s.workerEnv, "HOOK_WORKFLOWS="+business.HookType+"@"+queue) }
}

// business runs a business's worker of the test's own on queue, in this
// process: its client set up with kyc.ConfigureClient from diditflow's
// payload keys, as a business's would be.
func (s *stack) business(queue string) client.Client {
	s.t.Helper()
	return s.businessOf(queue, func(_ client.Client, w worker.Worker) { business.Register(w) })
}

// businessOf runs a business's worker on queue as business does, with
// what register registers on it, given the business's client.
func (s *stack) businessOf(queue string, register func(client.Client, worker.Worker)) client.Client {
	s.t.Helper()
	s.t.Setenv("PAYLOAD_ENCRYPTION", "on")
	s.t.Setenv("PAYLOAD_ENCRYPTION_KEYS", launch.PayloadKeys)
	opts := client.Options{HostPort: s.address, Logger: launch.QuietLogger()}
	if err := kyc.ConfigureClient(&opts); err != nil {
		s.t.Fatal(err)
	}
	c, err := client.Dial(opts)
	if err != nil {
		s.t.Fatal(err)
	}
	w := worker.New(c, queue, worker.Options{})
	register(c, w)
	if err := w.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		w.Stop()
		c.Close()
	})
	return c
}

// start starts a business workflow.
func (s *stack) start(c client.Client, queue, id, workflowType string, args ...any) client.WorkflowRun {
	s.t.Helper()
	run, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: queue}, workflowType, args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return run
}

// result waits for a business workflow's result.
func (s *stack) result(run client.WorkflowRun, out any) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := run.Get(ctx, out); err != nil {
		s.t.Fatalf("workflow %s: %v", run.GetID(), err)
	}
}

// saveBusinessHistory records a business workflow's history for kyc's
// replay test (kyc/testdata/replay).
func (s *stack) saveBusinessHistory(workflowID, name string) {
	s.t.Helper()
	if !*updateReplay {
		return
	}
	if err := launch.WriteHistory(s.temporal, workflowID, launch.Path(s.t, "kyc", "testdata", "replay", name)); err != nil {
		s.t.Fatal(err)
	}
}

// subscribers counts a session's subscribers; -1 while its workflow does
// not answer.
func (s *stack) subscribers(session string) int {
	var st workflows.SessionState
	v, err := s.temporal.QueryWorkflow(context.Background(), contract.SessionWorkflowID(session), "", contract.StateQuery)
	if err != nil || v.Get(&st) != nil {
		return -1
	}
	return len(st.Subscribers)
}

// TestOutcomeBeforeTheWaitEndToEnd: the user was approved and the
// session's runs completed before the business's workflow waits; the
// subscription reopens the session, which answers from its records.
func TestOutcomeBeforeTheWaitEndToEnd(t *testing.T) {
	queue := businessQueue()
	s := newStack(t)
	c := s.business(queue)
	session := "e2e-before-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s.deliver(delivery(t, "status-updated-in-progress.json", session))
	s.deliver(delivery(t, "status-updated-approved.json", session))
	id := contract.SessionWorkflowID(session)
	s.waitFor("the session to complete", func() bool { return s.completed(id) })

	var got string
	s.result(s.start(c, queue, "await-"+session, business.AwaitType, business.AwaitInput{Queue: taskQueue, SessionID: session, Timeout: time.Hour}), &got)
	if got != "Approved 2" {
		t.Fatalf("outcome = %q, want Approved, change 2", got)
	}
	s.waitFor("the reopened run to complete", func() bool { return s.completed(id) })
	if n := s.sink.Count("approved"); n != 1 {
		t.Fatalf("%d approval mails, want 1: a subscription mails nobody", n)
	}
	s.saveHistory(id, "subscribed-after-completion.json")
	s.saveBusinessHistory("await-"+session, "await-decided.json")
}

// TestAwaitOutcomeTimesOutEndToEnd: a session never decided ends the wait
// at its timeout, and the waiting workflow unsubscribes.
func TestAwaitOutcomeTimesOutEndToEnd(t *testing.T) {
	queue := businessQueue()
	s := newStack(t)
	c := s.business(queue)
	session := "e2e-timeout-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s.deliver(delivery(t, "status-updated-in-progress.json", session))
	s.waitFor("In Progress recorded", func() bool { return s.status(session) == "In Progress" })

	var got string
	s.result(s.start(c, queue, "await-"+session, business.AwaitType, business.AwaitInput{Queue: taskQueue, SessionID: session, Timeout: 3 * time.Second}), &got)
	if got != "timeout" {
		t.Fatalf("outcome = %q, want the timeout", got)
	}
	s.waitFor("the subscriber to leave", func() bool { return s.subscribers(session) == 0 })
	s.saveBusinessHistory("await-"+session, "await-timeout.json")
}

// TestHookAndSubscriberHistoryEvents counts the history of the approved
// session of TestApprovedSessionHistoryEvents with one hook and one waiting
// workflow: the budget is 30 events, every one counted.
func TestHookAndSubscriberHistoryEvents(t *testing.T) {
	queue := businessQueue()
	s := newStack(t, withHooks(queue))
	c := s.business(queue)
	session := "e2e-lean-kyc-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	wait := s.start(c, queue, "await-"+session, business.AwaitType, business.AwaitInput{Queue: taskQueue, SessionID: session, Timeout: time.Hour})
	id := contract.SessionWorkflowID(session)
	s.waitFor("the subscription", func() bool { return s.subscribers(session) == 1 })
	s.deliver(delivery(t, "status-updated-in-progress.json", session))
	s.waitFor("In Progress recorded", func() bool { return s.status(session) == "In Progress" })
	s.deliver(delivery(t, "status-updated-approved.json", session))
	var got string
	s.result(wait, &got)
	if got != "Approved 2" {
		t.Fatalf("outcome = %q", got)
	}
	s.waitFor("the session to complete", func() bool { return s.completed(id) })
	if hooks := s.hooks(c, session); len(hooks) != 2 {
		t.Fatalf("hooks = %+v, want one per status change", hooks)
	}

	n, breakdown := s.countEvents(id)
	t.Logf("history events of an approved session with one hook and one waiting workflow: %d: %s", n, breakdown)
	if n > maxHookAndSubscriberEvents {
		t.Errorf("%d history events, want at most %d: %s", n, maxHookAndSubscriberEvents, breakdown)
	}
	s.saveHistory(id, "hook-and-subscriber.json")
	s.saveBusinessHistory("await-"+session, "await-open.json")
}

// maxHookAndSubscriberEvents is the budget of an approved session with one
// hook and one waiting workflow (docs/DESIGN.md).
const maxHookAndSubscriberEvents = 30

// hooks are the hook workflows started for a session, by sequence, with
// the event each was given.
func (s *stack) hooks(c client.Client, session string) map[int64]kyc.Event {
	s.t.Helper()
	prefix := business.HookType + "-" + session + "-"
	resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: `WorkflowId STARTS_WITH "` + prefix + `"`,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[int64]kyc.Event{}
	for _, e := range resp.Executions {
		var ev kyc.Event
		s.result(c.GetWorkflow(context.Background(), e.Execution.WorkflowId, e.Execution.RunId), &ev)
		if _, dup := out[ev.Sequence]; dup || kyc.HookWorkflowID(business.HookType, ev) != e.Execution.WorkflowId {
			s.t.Fatalf("hook %s started twice or with another event: %+v", e.Execution.WorkflowId, ev)
		}
		out[ev.Sequence] = ev
	}
	return out
}

// TestHooksOncePerEventEndToEnd: each status change starts the hook once,
// across a worker killed while events kept coming, duplicated and out of
// order; a manual review's Declined months later, in a new run, reaches it,
// a redelivered approval in that run does not, and so does the resolution
// of the AML case the decline opened (its hit confirmed in Didit's console).
func TestHooksOncePerEventEndToEnd(t *testing.T) {
	queue := businessQueue()
	s := newStack(t, withHooks(queue))
	c := s.business(queue)
	session := "e2e-hooks-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	inProgress := delivery(t, "status-updated-in-progress.json", session)
	s.deliver(inProgress)
	s.waitFor("the first hook", func() bool { return len(s.hooks(c, session)) == 1 })

	s.stopWorker(syscall.SIGKILL)
	approved := delivery(t, "status-updated-approved.json", session)
	s.deliver(approved)
	s.deliver(inProgress)
	s.deliver(approved)
	s.startWorker()
	id := contract.SessionWorkflowID(session)
	s.waitFor("the session to complete", func() bool { return s.completed(id) })
	s.waitFor("the approval's hook", func() bool { return len(s.hooks(c, session)) == 2 })

	// A manual review months later declines the user and finds a sanctions
	// hit; Didit's retry of the approval arrives in the same new run.
	later := time.Unix(1767224643, 0).Add(90 * 24 * time.Hour).Unix()
	declined := deliveryOf(t, "status-updated-declined-aml-hit.json", session, session+"/review", time.Now().Unix(), later)
	s.deliver(approved)
	s.deliver(declined)
	s.waitFor("the decline's hook", func() bool { return len(s.hooks(c, session)) == 3 })
	s.waitFor("the session to complete again", func() bool { return s.completed(id) })
	// The decline's review confirmed the hit in Didit's console: the case
	// it opens is resolved from there.
	s.waitFor("the resolution's hook", func() bool { return len(s.hooks(c, session)) == 4 })

	hooks := s.hooks(c, session)
	want := []struct {
		kind             kyc.EventKind
		status, previous kyc.Status
	}{
		{kyc.StatusChanged, kyc.InProgress, ""},
		{kyc.StatusChanged, kyc.Approved, kyc.InProgress},
		{kyc.StatusChanged, kyc.Declined, kyc.Approved},
		{kyc.AMLCaseResolved, kyc.Declined, ""},
	}
	for i, w := range want {
		e := hooks[int64(i+1)]
		if e.Kind != w.kind || e.Status != w.status || e.PreviousStatus != w.previous || e.SessionID != session ||
			e.Key != session+"-"+strconv.Itoa(i+1) || e.VendorData == "" {
			t.Errorf("hook %d = %+v, want %+v", i+1, e, w)
		}
	}
	if c := hooks[4].Case; c == nil || c.CaseID != contract.AMLCaseWorkflowID(session) || c.Outcome != "confirmed_match" || len(c.Hits) != 1 {
		t.Fatalf("resolution = %+v", hooks[4].Case)
	}
	if !hooks[3].At.Equal(time.Unix(later, 0)) {
		t.Errorf("the decline's At = %v, want its created_at", hooks[3].At)
	}
	// The hooks' input holds vendor_data: encrypted, as every payload.
	s.noneReadable(kyc.HookWorkflowID(business.HookType, hooks[3]), "user_01HZX3K9QY")
	s.saveHistory(id, "hook-later-review.json")
	s.saveHistory(contract.AMLCaseWorkflowID(session), "aml-case-hook.json")
}

// TestStartVerificationEndToEnd: a business's workflow creates a Didit
// session through diditflow's worker (DIDIT_WORKFLOW_ID, its API key),
// waits for the outcome and fetches the decision.
func TestStartVerificationEndToEnd(t *testing.T) {
	fake := fakedidit.New(fakedidit.Options{Key: apiKey, Secret: secret, RetryDelays: []time.Duration{}})
	var (
		mu      sync.Mutex
		created []map[string]any
	)
	// Didit's Create Session, as its docs describe it, in front of the fake
	// Didit of the other calls.
	mux := http.NewServeMux()
	mux.Handle("/", fake.Handler())
	mux.HandleFunc("POST /v3/session/", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if r.Header.Get("x-api-key") != apiKey || json.NewDecoder(r.Body).Decode(&body) != nil {
			http.Error(w, `{"detail":"Authentication credentials were not provided or are invalid."}`, http.StatusUnauthorized)
			return
		}
		id := simulator.NewUUID()
		vendor, _ := body["vendor_data"].(string)
		decision, _ := json.Marshal(map[string]any{"session_id": id, "status": "Approved", "vendor_data": vendor,
			"contact_details": map[string]any{"email": userEmail}})
		fake.PutSession(id, "Approved", decision, vendor, time.Now())
		mu.Lock()
		body["session_id"] = id
		created = append(created, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"session_id": id, "session_number": 1, "session_token": "tok",
			"url": "https://verify.didit.me/session/tok", "vendor_data": vendor, "status": "Not Started",
			"workflow_id": body["workflow_id"]})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	queue := businessQueue()
	s := newStack(t, func(s *stack) {
		s.workerEnv = append(s.workerEnv, "DIDIT_API_URL="+srv.URL, "DIDIT_API_KEY="+apiKey, "DIDIT_WORKFLOW_ID=wf-e2e")
	})
	c := s.business(queue)
	run := s.start(c, queue, "onboard-"+strconv.FormatInt(time.Now().UnixNano(), 36), business.OnboardType, business.OnboardInput{Queue: taskQueue, UserID: "user-e2e"})

	var session string
	s.waitFor("the session's creation", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(created) == 1 {
			session, _ = created[0]["session_id"].(string)
		}
		return session != ""
	})
	mu.Lock()
	if created[0]["workflow_id"] != "wf-e2e" || created[0]["vendor_data"] != "user-e2e" || created[0]["callback"] != "https://business.example/welcome" {
		t.Errorf("created with %v", created[0])
	}
	mu.Unlock()
	// The user goes through Didit's flow; Didit sends its webhooks.
	s.deliver(delivery(t, "status-updated-in-progress.json", session))
	s.deliver(delivery(t, "status-updated-approved.json", session))

	var o business.Onboarding
	s.result(run, &o)
	if o.Verification.SessionID != session || !strings.HasPrefix(o.Verification.URL, "https://verify.didit.me/session/") ||
		o.Outcome.Status != kyc.Approved || o.Decision.Status != kyc.Approved || o.Decision.ContactEmail != userEmail {
		t.Fatalf("onboarding = %+v", o)
	}
	s.noneReadable(run.GetID(), "user-e2e", userEmail)
	s.saveBusinessHistory(run.GetID(), "onboard.json")
}

// noneReadable fails unless the workflow's history, as the CLI shows it
// without the codec (base64 payloads decoded), holds none of values.
func (s *stack) noneReadable(workflowID string, values ...string) {
	s.t.Helper()
	cli, err := launch.TemporalCLI()
	if err != nil {
		s.t.Fatal(err)
	}
	out, err := exec.Command(cli, "workflow", "show", "--address", s.address, "--workflow-id", workflowID, "--output", "json").CombinedOutput()
	if err != nil {
		s.t.Fatalf("temporal workflow show: %v\n%s", err, out)
	}
	history := readable(s.t.(*testing.T), out)
	for _, v := range values {
		if strings.Contains(history, v) {
			s.t.Errorf("the history of %s holds %q readable", workflowID, v)
		}
	}
}

// TestWaitAcrossAWorkerKillEndToEnd: the business's workflow waits; the
// worker dies, and Didit's webhooks come meanwhile, twice and out of order;
// the restarted worker tells the waiting workflow the approval, once.
func TestWaitAcrossAWorkerKillEndToEnd(t *testing.T) {
	queue := businessQueue()
	s := newStack(t)
	c := s.business(queue)
	session := "e2e-wait-kill-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	inProgress := delivery(t, "status-updated-in-progress.json", session)
	s.deliver(inProgress)
	wait := s.start(c, queue, "await-"+session, business.AwaitType, business.AwaitInput{Queue: taskQueue, SessionID: session, Timeout: time.Hour})
	s.waitFor("the subscription", func() bool { return s.subscribers(session) == 1 })

	s.stopWorker(syscall.SIGKILL)
	approved := delivery(t, "status-updated-approved.json", session)
	s.deliver(approved)
	s.deliver(inProgress)
	s.deliver(approved)
	s.startWorker()
	var got string
	s.result(wait, &got)
	if got != "Approved 2" {
		t.Fatalf("outcome = %q, want Approved, change 2", got)
	}
	s.waitFor("the session to complete", func() bool { return s.completed(contract.SessionWorkflowID(session)) })
}

// TestUnencryptedBusinessIsRefusedEndToEnd: with payload keys, diditflow's
// worker takes nothing unencrypted, a business's activity input included:
// a business whose client lacks the keys cannot subscribe.
func TestUnencryptedBusinessIsRefusedEndToEnd(t *testing.T) {
	queue := businessQueue()
	s := newStack(t)
	c, err := client.Dial(client.Options{HostPort: s.address, Logger: launch.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := worker.New(c, queue, worker.Options{})
	business.Register(w)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	session := "e2e-plain-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	run := s.start(c, queue, "await-"+session, business.AwaitType, business.AwaitInput{Queue: taskQueue, SessionID: session, Timeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := run.Get(ctx, new(string)); err == nil || !strings.Contains(err.Error(), "subscribe") {
		t.Fatalf("an unencrypted subscription: %v, want it refused", err)
	}
	if st := s.workflowStatus(contract.SessionWorkflowID(session)); st != 0 {
		t.Fatalf("the session's workflow is %v, want none started", st)
	}
}
