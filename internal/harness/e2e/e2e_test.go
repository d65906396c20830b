// Package e2e runs diditflow end to end on real components: a Temporal dev
// server, the worker binary as a separate process, the receiver, SQLite and
// an SMTP server.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/smtptest"
	"github.com/diditflow/diditflow/internal/receiver"
	"github.com/diditflow/diditflow/internal/store"
)

var updateReplay = flag.Bool("update-replay", false, "write the runs' histories to workflows/testdata/replay")

const (
	secret    = "e2e-secret"
	taskQueue = "e2e"
	userEmail = "user@example.com"
)

var workerBin, starterBin, adminBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "diditflow-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workerBin, starterBin, adminBin = filepath.Join(dir, "worker"), filepath.Join(dir, "starter"), filepath.Join(dir, "diditflow-admin")
	if err := launch.Build(context.Background(), dir, "./worker", "./starter", "./cmd/diditflow-admin"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	launch.StopTemporal()
	os.RemoveAll(dir)
	os.Exit(code)
}

// stack is one diditflow deployment: receiver, worker process, records, mail.
type stack struct {
	t        testing.TB
	temporal client.Client
	address  string
	receiver *httptest.Server
	sink     *smtptest.Server
	dbPath   string
	store    *store.Store
	worker   *launch.Proc
	workers  int
	// metricsAddr is where the worker serves /metrics; starterMetricsAddr
	// where the starter binary does, once startStarter ran it.
	metricsAddr, starterMetricsAddr string
	// stepBudget is the worker's STEP_RETRY_BUDGET.
	stepBudget string
	// workerEnv is added to the worker's environment.
	workerEnv []string
	// workerLog is the log file of the worker last started.
	workerLog string
}

func newStack(t testing.TB, opts ...func(*stack)) *stack {
	t.Helper()
	s := &stack{t: t, sink: smtptest.NewServer(t)}
	s.metricsAddr = "127.0.0.1:" + launch.Port(t)
	s.stepBudget = "1m"
	for _, o := range opts {
		o(s)
	}
	if s.temporal == nil {
		// The package's shared server, unless an option gave its own.
		s.temporal, s.address = launch.Temporal(t), launch.TemporalAddress(t)
	}
	s.dbPath = filepath.Join(t.TempDir(), "records.db")
	// The receiver as the starter runs it, with the defaults of its settings.
	defaults, err := config.ReadReceiver()
	if err != nil {
		t.Fatal(err)
	}
	rcv := receiver.New(s.temporal, receiver.Config{Verifier: &didit.Verifier{Secrets: []string{secret}}, TaskQueue: taskQueue,
		ReplayCacheSize: defaults.ReplayCacheSize, ReplayCacheTTL: defaults.ReplayCacheTTL})
	s.receiver = httptest.NewServer(rcv.Handler())
	t.Cleanup(s.receiver.Close)
	s.startWorker()
	t.Cleanup(func() { s.stopWorker(syscall.SIGTERM) })
	// The test reads the records through its own handle, as a second process would.
	st, err := store.Open(context.Background(), s.dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s.store = st
	return s
}

func (s *stack) startWorker() {
	s.t.Helper()
	s.workers++
	s.workerLog = filepath.Join(s.t.TempDir(), fmt.Sprintf("worker-%d.log", s.workers))
	p, err := launch.Start(workerBin, nil, append([]string{
		"TEMPORAL_ADDRESS=" + s.address,
		"TEMPORAL_TASK_QUEUE=" + taskQueue,
		"DATABASE_URL=" + s.dbPath,
		"SMTP_URL=" + s.sink.URL(),
		"COMPLIANCE_EMAIL=compliance@example.com",
		"SESSION_IDLE_WINDOW=2s",
		"STEP_RETRY_BUDGET=" + s.stepBudget,
		"LOG_FORMAT=text",
		"METRICS_ADDR=" + s.metricsAddr,
		"PAYLOAD_ENCRYPTION_KEYS=" + launch.PayloadKeys,
		// Every stack with a Didit API key updates the one reconcile
		// schedule of the shared dev server; its runs start only when a
		// test sets an interval of its own (the schedule fires on the
		// interval's multiples of the epoch, so 15m could fire mid-test).
		"RECONCILE_INTERVAL=24h",
	}, s.workerEnv...), s.workerLog)
	if err != nil {
		s.t.Fatal(err)
	}
	s.worker = p
}

func (s *stack) stopWorker(sig syscall.Signal) {
	if s.worker == nil {
		return
	}
	s.worker.Stop(sig)
	s.worker = nil
}

// delivery builds a Didit delivery from a fixture for the given session,
// signed now, as Didit would send it.
func delivery(t *testing.T, fixture, session string) []byte {
	t.Helper()
	return deliveryOf(t, fixture, session, session+"/"+fixture, time.Now().Unix(), 0)
}

// deliveryOf builds a delivery with the given event_id, signing time and, if
// not zero, created_at.
func deliveryOf(t *testing.T, fixture, session, eventID string, signedAt, createdAt int64) []byte {
	t.Helper()
	raw, err := os.ReadFile(launch.Path(t, "didit", "testdata", "fixtures", fixture))
	if err != nil {
		t.Fatal(err)
	}
	return rewire(t, raw, func(body map[string]any) {
		body["session_id"] = session
		body["event_id"] = eventID
		body["timestamp"] = json.Number(strconv.FormatInt(signedAt, 10))
		if createdAt != 0 {
			body["created_at"] = json.Number(strconv.FormatInt(createdAt, 10))
		}
		if d, ok := body["decision"].(map[string]any); ok {
			d["session_id"] = session
			d["contact_details"] = map[string]any{"email": userEmail}
		}
	})
}

// rewire decodes a delivery body (numbers kept as written), lets edit
// change it, and encodes it as Didit puts it on the wire.
func rewire(t *testing.T, raw []byte, edit func(body map[string]any)) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil {
		t.Fatal(err)
	}
	edit(body)
	js, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := didit.Wire(js)
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

func (s *stack) deliver(body []byte) {
	s.t.Helper()
	s.deliverTo(s.receiver.URL, body)
}

// deliverTo posts a signed delivery to the receiver at base, as Didit
// would, and fails the test unless it is answered 200.
func (s *stack) deliverTo(base string, body []byte) {
	s.t.Helper()
	h, err := didit.Signer{Secret: secret}.Sign(body)
	if err != nil {
		s.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/didit", bytes.NewReader(body))
	h.Set(req.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("delivery answered %d", resp.StatusCode)
	}
}

// waitFor polls cond; the limit bounds a wait, it does not measure speed.
func (s *stack) waitFor(what string, cond func() bool) {
	s.t.Helper()
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	s.t.Fatalf("timed out waiting for %s", what)
}

func (s *stack) completed(workflowID string) bool {
	return s.workflowStatus(workflowID) == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED
}

func (s *stack) workflowStatus(workflowID string) enums.WorkflowExecutionStatus {
	d, err := s.temporal.DescribeWorkflow(context.Background(), workflowID, "")
	if err != nil {
		return enums.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED
	}
	return d.Status
}

func (s *stack) status(session string) string {
	v, err := s.store.Session(context.Background(), session)
	if err != nil {
		return ""
	}
	return v.Status
}

// sent reports whether a notification of the session whose kind starts
// with kind was sent: user notices are keyed per status change
// ("user:in_review:<event key>").
func (s *stack) sent(session, kind string) bool {
	ns, err := s.store.Notifications(context.Background(), session)
	if err != nil {
		return false
	}
	for _, n := range ns {
		if strings.HasPrefix(n.Kind, kind) && n.State == store.NotificationSent {
			return true
		}
	}
	return false
}

// saveHistory records a run's history for the replay and golden payload
// tests in workflows/ (go test ./internal/harness/e2e -run ... -args
// -update-replay). Until the first release a workflow change re-records
// them; from then on they are kept, and a change that breaks them is
// versioned (docs/VERSIONS.md).
func (s *stack) saveHistory(workflowID, name string) {
	s.t.Helper()
	if !*updateReplay {
		return
	}
	if err := launch.WriteHistory(s.temporal, workflowID, launch.Path(s.t, "workflows", "testdata", "replay", name)); err != nil {
		s.t.Fatal(err)
	}
}

func TestApprovedSessionEndToEnd(t *testing.T) {
	s := newStack(t)
	session := "e2e-approved-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, f := range []string{"status-updated-in-progress.json", "status-updated-approved.json", "data-updated.json"} {
		s.deliver(delivery(t, f, session))
	}
	id := contract.SessionWorkflowID(session)
	s.waitFor("the session to complete", func() bool { return s.completed(id) })

	if got := s.status(session); got != "Approved" {
		t.Fatalf("record status = %q", got)
	}
	if n := s.sink.Count("approved"); n != 1 || len(s.sink.Mails()) != 1 {
		t.Fatalf("mails = %+v, want exactly one approval", s.sink.Mails())
	}
	if to := s.sink.Mails()[0].To; len(to) != 1 || to[0] != userEmail {
		t.Fatalf("approval sent to %v", to)
	}
	resp, err := http.Get("http://" + s.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(raw)
	for _, want := range []string{
		`diditflow_events_recorded_total{outcome="applied"} 3`,
		`diditflow_notifications_total{audience="user",result="sent"} 1`,
		`diditflow_aml_cases_open 0`,
		`diditflow_sessions_needing_attention 0`,
		`temporal_local_activity_execution_latency`,
		`temporal_workflow_completed`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("worker /metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, session) || strings.Contains(metrics, userEmail) {
		t.Error("worker /metrics names a session or a person")
	}
	s.saveHistory(id, "approved.json")
}

func TestAMLSessionWithDuplicatesAndDisorder(t *testing.T) {
	s := newStack(t)
	session := "e2e-aml-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	// Didit's resends keep the event_id and refresh the signing time
	// (SPEC §4.5), so they are new deliveries to the receiver's replay
	// cache and reach the workflow, which drops them by event key.
	now := time.Now().Unix()
	resent := func(fixture string, ago int64) []byte {
		return deliveryOf(t, fixture, session, session+"/"+fixture, now-ago, 0)
	}
	for _, body := range [][]byte{
		resent("status-updated-declined-aml-hit.json", 4), resent("status-updated-declined-aml-hit.json", 3),
		resent("status-updated-in-review.json", 2), resent("status-updated-declined-aml-hit.json", 1),
		resent("status-updated-in-review.json", 0),
	} {
		s.deliver(body)
	}
	id := contract.SessionWorkflowID(session)
	s.waitFor("the session to complete", func() bool { return s.completed(id) })

	if got := s.status(session); got != "Declined" {
		t.Fatalf("record status = %q, want Declined", got)
	}
	s.checkAMLOutcome(session)
	s.saveHistory(id, "aml-disorder.json")
	s.resolve(session)
	s.saveHistory(contract.AMLCaseWorkflowID(session), "aml-case.json")
}

func TestWorkerKilledMidwayEndToEnd(t *testing.T) {
	s := newStack(t)
	session := "e2e-kill-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s.deliver(delivery(t, "status-updated-in-review.json", session))
	s.waitFor("the review to be handled", func() bool {
		return s.sent(session, "user:in_review") && s.sent(session, "compliance:opened:email")
	})

	s.stopWorker(syscall.SIGKILL)
	// Didit keeps delivering while no worker runs; Temporal holds the events.
	declined := delivery(t, "status-updated-declined-aml-hit.json", session)
	s.deliver(declined)
	s.deliver(declined)
	s.deliver(delivery(t, "status-updated-in-review.json", session))
	s.startWorker()

	id := contract.SessionWorkflowID(session)
	s.waitFor("the session to complete", func() bool { return s.completed(id) })
	if got := s.status(session); got != "Declined" {
		t.Fatalf("record status = %q, want Declined", got)
	}
	if n := s.sink.Count("under review"); n != 1 {
		t.Fatalf("%d review notices, want 1", n)
	}
	s.checkAMLOutcome(session)
}

func (s *stack) checkAMLOutcome(session string) {
	s.t.Helper()
	if n := s.sink.Count("AML case opened"); n != 1 {
		s.t.Fatalf("%d compliance notices, want 1", n)
	}
	if n := s.sink.Count("was not approved"); n != 1 {
		s.t.Fatalf("%d decline notices, want 1", n)
	}
	if n := s.sink.Count("under review"); n > 1 {
		s.t.Fatalf("%d review notices, want at most 1", n)
	}
	c, err := s.store.AMLCase(context.Background(), contract.AMLCaseWorkflowID(session))
	if err != nil || c.State != store.AMLCaseOpen || len(c.Hits) != 1 {
		s.t.Fatalf("AML case = %+v, %v", c, err)
	}
	if st := s.workflowStatus(contract.AMLCaseWorkflowID(session)); st != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		s.t.Fatalf("AML case workflow is %v, want running until compliance resolves it", st)
	}
}

// resolve sends the signal an operator sends from the UI or the CLI.
func (s *stack) resolve(session string) {
	s.t.Helper()
	res := contract.Resolution{Outcome: contract.ConfirmedMatch, Reviewer: "officer@example.com", Note: "confirmed PEP"}
	if err := s.temporal.SignalWorkflow(context.Background(), contract.AMLCaseWorkflowID(session), "", contract.ResolveSignal, res); err != nil {
		s.t.Fatal(err)
	}
	s.waitFor("the case to be resolved", func() bool {
		c, err := s.store.AMLCase(context.Background(), contract.AMLCaseWorkflowID(session))
		return err == nil && c.State == store.AMLCaseResolved && strings.Contains(c.Resolution.Reviewer, "officer")
	})
	s.waitFor("the case workflow to complete", func() bool { return s.completed(contract.AMLCaseWorkflowID(session)) })
}

// TestParkedNoticeReleasedByRetry: the mail server is down past the retry
// budget, the notice parks and the session is flagged; an operator's retry
// after recovery delivers it once.
func TestParkedNoticeReleasedByRetry(t *testing.T) {
	s := newStack(t, func(s *stack) { s.stepBudget = "3s" })
	addr := s.mailDown()
	session := "e2e-parked-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s.deliver(delivery(t, "status-updated-approved.json", session))
	id := contract.SessionWorkflowID(session)
	state := s.parked(id)
	if !strings.HasPrefix(state.Parked[0].Step, "notify user: approved (event ") {
		t.Fatalf("parked = %+v", state.Parked)
	}
	d, err := s.temporal.DescribeWorkflow(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := d.TypedSearchAttributes.GetBool(contract.NeedsAttentionKey); !ok || !v {
		t.Fatal("DiditNeedsAttention should be true while the notice is parked")
	}

	sink, err := smtptest.Start(addr) // the mail server is back
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	// The signal an operator sends from the UI or the CLI.
	if err := s.temporal.SignalWorkflow(context.Background(), id, "", contract.RetrySignal,
		contract.OperatorAction{Operator: "ops@example.com", Note: "SMTP is back"}); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the session to complete", func() bool { return s.completed(id) })
	if n := len(sink.Mails()); n != 1 || sink.Count("is approved") != 1 {
		t.Fatalf("%d mails after the retry, want the approval once", n)
	}
	s.saveHistory(id, "parked-retry.json")
}
