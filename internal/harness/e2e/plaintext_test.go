package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/internal/store"
	"github.com/diditflow/diditflow/internal/temporalclient"
	"github.com/diditflow/diditflow/workflows"
)

// plainClient is a client of the stack's Temporal without the payload keys:
// anyone who reaches the frontend.
func (s *stack) plainClient() client.Client {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: s.address, Logger: launch.QuietLogger()})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(c.Close)
	return c
}

// refused is the worker's count of refused payloads of a kind and name.
func (s *stack) refused(kind, name string) float64 {
	s.t.Helper()
	mf := scrape(s.t.(*testing.T), "http://"+s.metricsAddr+"/metrics")["diditflow_untrusted_payloads_total"]
	for _, m := range mf.GetMetric() {
		if l := labelsOf(m); l["kind"] == kind && l["name"] == name {
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestUnencryptedEventChangesNothingEndToEnd: with payload keys configured,
// an Approved event with a decision and an address sent straight to
// Temporal without them (as the receiver would, SignalWithStart) fails its
// run at once: no record, no mail, counted and logged without its data.
// The workflow ID stays free, so Didit's genuine delivery of the same
// session, through the receiver, is recorded and mailed once.
func TestUnencryptedEventChangesNothingEndToEnd(t *testing.T) {
	s := newStack(t)
	session := simulator.NewUUID()
	id := contract.SessionWorkflowID(session)
	body := delivery(t, "status-updated-approved.json", session)
	ev, err := didit.ParseEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	// A forger sets the proof it likes; a signature checked with the
	// secret is the most convincing one.
	h, err := didit.Signer{Secret: secret}.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := (&didit.Verifier{Secrets: []string{secret}}).Verify(body, h)
	if err != nil {
		t.Fatal(err)
	}
	forged := contract.SessionEvent{Event: ev, Proof: proof, ReceivedAt: time.Now().UTC()}
	if _, err := s.plainClient().SignalWithStartWorkflow(context.Background(), id, contract.EventSignal, forged,
		temporalclient.SessionStartOptions(session, ev.Status, taskQueue),
		contract.SessionWorkflowType, contract.SessionStart{SessionID: session}); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the unencrypted run to close", func() bool {
		st := s.workflowStatus(id)
		return st != enums.WORKFLOW_EXECUTION_STATUS_RUNNING && st != enums.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED
	})
	if got := s.status(session); got != "" || len(s.sink.Mails()) != 0 {
		t.Fatalf("the unencrypted event was acted on: record status %q, %d mails", got, len(s.sink.Mails()))
	}
	if st := s.workflowStatus(id); st != enums.WORKFLOW_EXECUTION_STATUS_FAILED {
		t.Fatalf("the unencrypted run ended %v, want failed", st)
	}
	if n := s.refused("start", contract.SessionWorkflowType); n != 1 {
		t.Errorf("refused starts of %s = %v, want 1", contract.SessionWorkflowType, n)
	}
	if n := s.refused("signal", contract.EventSignal); n != 1 {
		t.Errorf("refused %s signals = %v, want 1", contract.EventSignal, n)
	}

	s.deliver(body)
	s.waitFor("the genuine delivery's run to complete", func() bool { return s.completed(id) })
	if got := s.status(session); got != "Approved" {
		t.Fatalf("record status = %q after the genuine delivery, want Approved", got)
	}
	if n := s.sink.Count("approved"); n != 1 || len(s.sink.Mails()) != 1 {
		t.Fatalf("mails = %+v, want the approval once", s.sink.Mails())
	}
	logs, err := os.ReadFile(s.workerLog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "unencrypted payload refused") {
		t.Error("the worker logged no refusal")
	}
	if strings.Contains(string(logs), userEmail) {
		t.Error("the worker's log holds the refused payload's address")
	}
}

// TestUnencryptedResolveIsDroppedEndToEnd: a resolve signal sent without the
// keys to an open AML case (False Positive for every hit) never reaches the
// case: it stays open, nothing is written to Didit, and the case goes on to
// take compliance's genuine resolution, sent as docs/WORKFLOWS.md says (the
// temporal CLI with the codec server encrypting its input), whose reviews
// alone reach Didit.
func TestUnencryptedResolveIsDroppedEndToEnd(t *testing.T) {
	fake, opt := withFakeDidit(t)
	s := newStack(t, opt)
	session := simulator.NewUUID()
	body := delivery(t, "status-updated-declined-aml-hit.json", session)
	var parsed map[string]any
	if err := json.Unmarshal(body, &parsed); err != nil {
		t.Fatal(err)
	}
	decision, _ := json.Marshal(parsed["decision"])
	fake.PutSession(session, "Declined", decision, "user-e2e", time.Now().Add(-time.Hour))
	s.deliver(body)
	caseID := contract.AMLCaseWorkflowID(session)
	s.waitFor("the AML case to be open", func() bool { return s.sent(session, "compliance:opened:email") })

	forged := contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "forger"}
	if err := s.plainClient().SignalWorkflow(context.Background(), caseID, "", contract.ResolveSignal, forged); err != nil {
		t.Fatal(err)
	}
	var state workflows.CaseState
	s.waitFor("the case's worker to take the signal", func() bool {
		v, err := s.temporal.QueryWorkflow(context.Background(), caseID, "", contract.StateQuery)
		return s.refused("signal", contract.ResolveSignal) == 1 ||
			err == nil && v.Get(&state) == nil && (state.Resolution != nil || len(state.Rejected) > 0)
	})
	if len(fake.HitReviewCalls()) != 0 {
		t.Fatalf("the unencrypted resolve reached Didit: %+v", fake.HitReviewCalls())
	}
	v, err := s.temporal.QueryWorkflow(context.Background(), caseID, "", contract.StateQuery)
	if err != nil || v.Get(&state) != nil {
		t.Fatalf("query the case: %v", err)
	}
	if state.Resolution != nil || len(state.Rejected) != 0 || s.workflowStatus(caseID) != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("after the unencrypted resolve: resolution %+v, rejected %v, status %v; want it unseen",
			state.Resolution, state.Rejected, s.workflowStatus(caseID))
	}

	cli, codec := codecCLI(t)
	out, err := exec.Command(cli, "workflow", "signal", "--address", s.address, "--workflow-id", caseID,
		"--name", contract.ResolveSignal, "--codec-endpoint", codec,
		"--input", `{"outcome":"confirmed_match","reviewer":"officer@example.com","note":"PEP confirmed"}`).CombinedOutput()
	if err != nil {
		t.Fatalf("temporal workflow signal: %v\n%s", err, out)
	}
	s.waitFor("the case workflow to complete", func() bool { return s.completed(caseID) })
	c, err := s.store.AMLCase(context.Background(), caseID)
	if err != nil || c.State != store.AMLCaseResolved || c.Resolution.Reviewer != "officer@example.com" {
		t.Fatalf("the case after compliance's resolve: %+v, %v", c, err)
	}
	s.waitFor("the genuine reviews at Didit", func() bool { return len(fake.HitReviewCalls()) > 0 })
	for _, c := range fake.HitReviewCalls() {
		if c.ReviewStatus != "Confirmed Match" {
			t.Errorf("review at Didit %+v, want only compliance's Confirmed Match", c)
		}
	}
}
