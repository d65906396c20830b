package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/internal/codecserver"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/internal/harness/smtptest"
	"github.com/diditflow/diditflow/internal/store"
	"github.com/diditflow/diditflow/workflows"
)

// historyLength is the number of events in the history of the workflow's
// latest run once it is quiet: no activity or workflow task pending.
func (s *stack) historyLength(workflowID string) int64 {
	s.t.Helper()
	var n int64
	s.waitFor("the workflow to be quiet", func() bool {
		desc, err := s.temporal.DescribeWorkflow(context.Background(), workflowID, "")
		if err != nil {
			s.t.Fatal(err)
		}
		d := desc.RawResponse
		n = d.GetWorkflowExecutionInfo().GetHistoryLength()
		return len(d.GetPendingActivities()) == 0 && d.GetPendingWorkflowTask() == nil
	})
	return n
}

// updateAnswers decodes what the workflow's completed Updates answered, in
// order.
func (s *stack) updateAnswers(workflowID string) []contract.ActionResult {
	s.t.Helper()
	dc := launch.Codec().DataConverter()
	var out []contract.ActionResult
	it := s.temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			s.t.Fatal(err)
		}
		done := e.GetWorkflowExecutionUpdateCompletedEventAttributes()
		if done == nil {
			continue
		}
		var r contract.ActionResult
		if err := dc.FromPayloads(done.GetOutcome().GetSuccess(), &r); err != nil {
			s.t.Fatalf("update outcome: %v", err)
		}
		out = append(out, r)
	}
	return out
}

// mailDown stops the stack's mail server and returns its address, to start
// it again on (smtptest.Start).
func (s *stack) mailDown() string {
	s.t.Helper()
	addr := s.sink.Addr
	if err := s.sink.Close(); err != nil {
		s.t.Fatal(err)
	}
	return addr
}

// parked waits until one step of the session workflow is parked and
// returns its state.
func (s *stack) parked(workflowID string) workflows.SessionState {
	s.t.Helper()
	var state workflows.SessionState
	s.waitFor("the step to park", func() bool {
		v, err := s.temporal.QueryWorkflow(context.Background(), workflowID, "", contract.StateQuery)
		return err == nil && v.Get(&state) == nil && len(state.Parked) == 1
	})
	return state
}

// codecCLI returns the temporal CLI and the URL of a codec server with the
// stack's keys, for the CLI's --codec-endpoint as operators use it.
func codecCLI(t *testing.T) (cli, codecURL string) {
	t.Helper()
	cfg, err := config.ReadCodecServer()
	if err != nil {
		t.Fatal(err)
	}
	h, err := codecserver.New(cfg, launch.Codec(), nil)
	if err != nil {
		t.Fatal(err)
	}
	codec := httptest.NewServer(h)
	t.Cleanup(codec.Close)
	cli, err = launch.TemporalCLI()
	if err != nil {
		t.Fatal(err)
	}
	return cli, codec.URL
}

// operatorClient is a client with the payload keys whose Temporal identity
// is identity, as an operator's tool would have.
func (s *stack) operatorClient(identity string) client.Client {
	s.t.Helper()
	c, err := client.NewClientFromExisting(s.temporal, launch.WithCodec(client.Options{Identity: identity, Logger: launch.QuietLogger()}))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(c.Close)
	return c
}

// update sends the Update name with arg and waits for its answer into out.
func update(c client.Client, workflowID, name string, arg, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflowID, UpdateName: name,
		Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		return err
	}
	return h.Get(ctx, out)
}

// refused fails the test unless err is a validator's refusal saying want.
func refusedWith(t *testing.T, what string, err error, want string) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != contract.RefusedErrorType || !strings.Contains(app.Error(), want) {
		t.Fatalf("%s: %v; want a refusal saying %q", what, err, want)
	}
}

// TestOperatorUpdatesEndToEnd: through the dev server, an operator's
// Updates to a session whose notice parked are refused while they have
// nothing to act on or name no operator, with the validator's reason, and
// the refusals leave the history as it was; the retry after the mail
// server is back answers with the step it released, the user gets the mail
// once, and the decision keeps the client's identity beside the operator.
func TestOperatorUpdatesEndToEnd(t *testing.T) {
	s := newStack(t, func(s *stack) { s.stepBudget = "3s" })
	addr := s.mailDown()
	session := simulator.NewUUID()
	s.deliver(delivery(t, "status-updated-approved.json", session))
	id := contract.SessionWorkflowID(session)
	state := s.parked(id)
	ops := s.operatorClient("ops-console@e2e")

	before := s.historyLength(id)
	refusedWith(t, "acknowledge with no flag", update(ops, id, contract.AcknowledgeSignal,
		contract.OperatorAction{Operator: "ops@example.com"}, nil), "nothing to acknowledge: no flag is raised")
	refusedWith(t, "skip naming another step", update(ops, id, contract.SkipSignal,
		contract.OperatorAction{Step: "record event nope", Operator: "ops@example.com"}, nil), `no step named "record event nope" is parked`)
	refusedWith(t, "retry without operator", update(ops, id, contract.RetrySignal,
		contract.OperatorAction{Note: "SMTP is back"}, nil), `"operator" is required`)
	if after := s.historyLength(id); after != before {
		t.Fatalf("the refused Updates grew the history from %d to %d events", before, after)
	}

	sink, err := smtptest.Start(addr) // the mail server is back
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	var answer contract.ActionResult
	if err := update(ops, id, contract.RetrySignal, contract.OperatorAction{Operator: "ops@example.com", Note: "SMTP is back"}, &answer); err != nil {
		t.Fatal(err)
	}
	if answer.Action != contract.RetrySignal || len(answer.Steps) != 1 || answer.Steps[0] != state.Parked[0].Step ||
		answer.Operator != "ops@example.com" || answer.Identity != "ops-console@e2e" {
		t.Fatalf("the retry answered %+v", answer)
	}
	s.waitFor("the session to complete", func() bool { return s.completed(id) })
	if n := len(sink.Mails()); n != 1 || sink.Count("is approved") != 1 {
		t.Fatalf("%d mails after the retry, want the approval once", n)
	}
	v, err := s.temporal.QueryWorkflow(context.Background(), id, "", contract.StateQuery)
	state = workflows.SessionState{}
	if err != nil || v.Get(&state) != nil {
		t.Fatalf("query the completed session: %v", err)
	}
	if len(state.Parked) != 0 {
		t.Fatalf("still parked: %+v", state.Parked)
	}
	if len(state.Decisions) != 1 || state.Decisions[0].Identity != "ops-console@e2e" || state.Decisions[0].Operator != "ops@example.com" {
		t.Fatalf("decisions = %+v, want the retry with the client's identity", state.Decisions)
	}
	s.saveHistory(id, "parked-retry-update.json")
}

// TestResolveUpdateEndToEnd: compliance resolves an AML case with the
// temporal CLI's Update, as docs/WORKFLOWS.md says (the codec server
// encrypting its input): a hit the case does not hold is refused, readable
// in the CLI's output; the valid resolution answers with every hit's
// outcome, completes the case, and the case's record keeps the CLI's
// identity beside the reviewer.
func TestResolveUpdateEndToEnd(t *testing.T) {
	s := newStack(t)
	session := simulator.NewUUID()
	s.deliver(delivery(t, "status-updated-declined-aml-hit.json", session))
	caseID := contract.AMLCaseWorkflowID(session)
	s.waitFor("the AML case to be open", func() bool { return s.sent(session, "compliance:opened:email") })

	cli, codec := codecCLI(t)
	resolve := func(input string) (string, error) {
		out, err := exec.Command(cli, "workflow", "update", "execute", "--address", s.address, "--workflow-id", caseID,
			"--name", contract.ResolveSignal, "--codec-endpoint", codec, "--output", "json",
			"--input", input).CombinedOutput()
		return string(out), err
	}
	before := s.historyLength(caseID)
	out, err := resolve(`{"outcome":"false_positive","reviewer":"officer@example.com","hits":{"not-a-hit":"confirmed_match"}}`)
	if err == nil || !strings.Contains(out, "hit not-a-hit is not a hit of this case") {
		t.Fatalf("the CLI's refused resolve: %v\n%s", err, out)
	}
	t.Logf("the CLI's refusal:\n%s", out)
	if after := s.historyLength(caseID); after != before {
		t.Fatalf("the refused resolve grew the case's history from %d to %d events", before, after)
	}

	out, err = resolve(`{"outcome":"confirmed_match","reviewer":"officer@example.com","note":"PEP confirmed"}`)
	if err != nil {
		t.Fatalf("temporal workflow update execute: %v\n%s", err, out)
	}
	var printed struct {
		Result contract.ResolveResult `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &printed); err != nil {
		t.Fatalf("the CLI's output: %v\n%s", err, out)
	}
	// The CLI (v1.5.1) sends its SDK client's default identity, <pid>@<host>@,
	// whatever its --identity says.
	answer := printed.Result
	if answer.CaseID != caseID || answer.Outcome != contract.ConfirmedMatch || len(answer.Hits) != 1 || answer.Identity == "" {
		t.Fatalf("the resolve answered %+v\n%s", answer, out)
	}
	s.waitFor("the case workflow to complete", func() bool { return s.completed(caseID) })
	c, err := s.store.AMLCase(context.Background(), caseID)
	if err != nil || c.State != store.AMLCaseResolved || c.Resolution.Reviewer != "officer@example.com" || c.Resolution.Identity != answer.Identity {
		t.Fatalf("the case after the resolve: %+v, %v", c, err)
	}
	s.saveHistory(caseID, "aml-case-resolve-update.json")
}
