package cases

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/internal/contract"
)

// A resolve command line is refused before anything is sent when it could
// never resolve a case: no case ID, no or an unknown outcome, a malformed
// --hit, no reviewer.
func TestResolveCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--outcome", "false_positive", "--reviewer", "officer"}, "give the case ID first"},
		{[]string{"--reviewer", "officer"}, "--outcome is required"},
		{[]string{"--outcome", "cleared", "--reviewer", "officer"}, `--outcome "cleared"`},
		{[]string{"--outcome", "false_positive"}, "--reviewer is required"},
		{[]string{"--outcome", "false_positive", "--reviewer", "  "}, "--reviewer is required"},
		{[]string{"--outcome", "false_positive", "--reviewer", "officer", "--hit", "h-1"}, "is not <hit id>=<outcome>"},
		{[]string{"--outcome", "false_positive", "--reviewer", "officer", "--hit", "h-1=match"}, `outcome "match"`},
		{[]string{"--outcome", "false_positive", "--reviewer", "officer", "--hit", "h-1=inconclusive", "--hit", "h-1=false_positive"}, "given twice"},
	} {
		fs, c := FlagSet("resolve")
		fs.SetOutput(io.Discard)
		if !strings.HasPrefix(tc.want, "give the case ID") {
			c.Request.CaseID = "aml-case-s-1"
		}
		err := fs.Parse(tc.args)
		if err == nil {
			err = c.Check()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	fs, c := FlagSet("resolve")
	c.Request.CaseID = "not-a-case"
	if err := fs.Parse([]string{"--outcome", "false_positive", "--reviewer", "officer"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err == nil || !strings.Contains(err.Error(), "is not an AML case ID") {
		t.Errorf("a session ID for a case ID: %v", err)
	}
}

// updater answers the resolve Update with err, or else echoes the
// resolution as the case would record it.
type updater struct {
	sent client.UpdateWorkflowOptions
	err  error
}

func (u *updater) UpdateWorkflow(_ context.Context, opts client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	u.sent = opts
	if u.err != nil {
		return nil, u.err
	}
	return handle{opts.Args[0].(contract.Resolution), opts.WorkflowID}, nil
}

type handle struct {
	res    contract.Resolution
	caseID string
}

func (h handle) WorkflowID() string { return h.caseID }
func (h handle) RunID() string      { return "" }
func (h handle) UpdateID() string   { return "" }
func (h handle) Get(_ context.Context, ptr any) error {
	*ptr.(*Result) = Result{CaseID: h.caseID, Outcome: h.res.Outcome, Reviewer: h.res.Reviewer, Identity: "diditflow-admin:ada@host",
		Hits: map[string]contract.Outcome{"h-1": h.res.HitOutcome("h-1"), "h-2": h.res.HitOutcome("h-2")}}
	return nil
}

// resolve sends the case's resolve Update, waiting for its completion, with
// the resolution the command line gave, and prints what the case recorded;
// the validator's refusal and a case that no longer runs are errors that
// say so.
func TestResolve(t *testing.T) {
	fs, c := FlagSet("resolve")
	c.Request.CaseID = "aml-case-s-1"
	if err := fs.Parse([]string{"--outcome", "false_positive", "--hit", "h-2=confirmed_match", "--note", "namesake", "--reviewer", "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	u := &updater{}
	res, err := Resolve(t.Context(), u, c.Request)
	if err != nil {
		t.Fatal(err)
	}
	sent := u.sent.Args[0].(contract.Resolution)
	if u.sent.WorkflowID != "aml-case-s-1" || u.sent.UpdateName != contract.ResolveSignal || u.sent.WaitForStage != client.WorkflowUpdateStageCompleted ||
		sent.Outcome != contract.FalsePositive || sent.Hits["h-2"] != contract.ConfirmedMatch || len(sent.Hits) != 1 ||
		sent.Note != "namesake" || sent.Reviewer != "ada@example.com" || sent.Identity != "" || sent.Source != "" {
		t.Fatalf("sent %+v with %+v", u.sent, sent)
	}
	var text bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("resolve:\n%s", text.String())
	out := strings.Join(strings.Fields(text.String()), " ")
	for _, want := range []string{"Resolved aml-case-s-1: false_positive", "reviewer ada@example.com", "sent by diditflow-admin:ada@host",
		"hit h-1 false_positive hit h-2 confirmed_match"} {
		if !strings.Contains(out, want) {
			t.Errorf("the result lacks %q", want)
		}
	}

	u.err = temporal.NewApplicationError("the case holds no hit h-9", contract.RefusedErrorType)
	var refused *Refused
	if _, err := Resolve(t.Context(), u, c.Request); !errors.As(err, &refused) ||
		err.Error() != "aml-case-s-1 refused the resolution: the case holds no hit h-9" {
		t.Errorf("a refusal: %v", err)
	}
	u.err = serviceerror.NewNotFound("workflow execution already completed")
	if _, err := Resolve(t.Context(), u, c.Request); errors.As(err, &refused) || err == nil || !strings.Contains(err.Error(), "is not running") {
		t.Errorf("a closed case: %v", err)
	}
}

var _ flag.Value = HitOutcomes{}
