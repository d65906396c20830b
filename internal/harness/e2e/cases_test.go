package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/internal/store"
)

// TestComplianceCommandsEndToEnd: an In Review session with a PEP hit
// opens a case; compliance finds it with diditflow-admin cases, sees the
// hit's name (from the fake Didit) with case, has a resolution naming a hit
// the case does not hold refused by the case's validator (exit 1), then
// resolves it: the command prints what the case recorded, with its own
// Temporal identity, the case's workflow completes and the records hold the
// resolution. A second resolve is refused.
func TestComplianceCommandsEndToEnd(t *testing.T) {
	fake, _, opt := fakeDidit(t)
	s := newStack(t, opt)
	for _, kv := range s.workerEnv {
		if k, v, _ := strings.Cut(kv, "="); k == "DIDIT_API_URL" || k == "DIDIT_API_KEY" {
			t.Setenv(k, v)
		}
	}
	session := simulator.NewUUID()
	body := delivery(t, "status-updated-in-review.json", session)
	var event struct {
		Decision json.RawMessage `json:"decision"`
	}
	if err := json.Unmarshal(body, &event); err != nil {
		t.Fatal(err)
	}
	fake.PutSession(session, "In Review", event.Decision, "user_01HZX4M2RT", time.Now())
	s.deliver(body)
	caseID := contract.AMLCaseWorkflowID(session)
	ctx := context.Background()
	s.waitFor("the case to open", func() bool { _, err := s.store.AMLCase(ctx, caseID); return err == nil })

	out, code := s.adminExit(t, "cases")
	if code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), caseID+" "+session) || !strings.Contains(out, "0 of 1") {
		t.Fatalf("cases: exit %d", code)
	}
	out, code = s.adminExit(t, "case", caseID)
	if code != 0 || !strings.Contains(out, "Daniel Navarro Ruiz") || !strings.Contains(out, "NK-4fTq8Xw2bLmZpR7cVd3sYe") ||
		strings.Contains(out, "user_01HZX4M2RT") || strings.Contains(out, "CBX482917") {
		t.Fatalf("case: exit %d", code)
	}

	out, code = s.adminExit(t, "resolve", caseID, "--outcome", "false_positive", "--hit", "h-nope=confirmed_match", "--reviewer", "officer@example.com")
	if code != 1 || !strings.Contains(out, caseID+" refused the resolution: hit h-nope is not a hit of this case") {
		t.Fatalf("resolve naming a hit the case does not hold: exit %d", code)
	}
	if c, err := s.store.AMLCase(ctx, caseID); err != nil || c.State != store.AMLCaseOpen {
		t.Fatalf("after a refusal the case is %+v, %v; want it open", c, err)
	}

	out, code = s.adminExit(t, "resolve", caseID, "--outcome", "false_positive", "--note", "a namesake", "--reviewer", "officer@example.com")
	flat := strings.Join(strings.Fields(out), " ")
	if code != 0 || !strings.Contains(flat, "Resolved "+caseID+": false_positive") || !strings.Contains(flat, "reviewer officer@example.com") ||
		!strings.Contains(flat, "sent by diditflow-admin:") || !strings.Contains(flat, "hit NK-4fTq8Xw2bLmZpR7cVd3sYe false_positive") {
		t.Fatalf("resolve: exit %d", code)
	}
	s.waitFor("the case workflow to complete", func() bool { return s.completed(caseID) })
	c, err := s.store.AMLCase(ctx, caseID)
	if err != nil || c.State != store.AMLCaseResolved || c.Resolution.Outcome != contract.FalsePositive ||
		c.Resolution.Reviewer != "officer@example.com" || !strings.HasPrefix(c.Resolution.Identity, "diditflow-admin:") {
		t.Fatalf("the records: %+v, %v", c.Resolution, err)
	}

	if _, code := s.adminExit(t, "resolve", caseID, "--outcome", "confirmed_match", "--reviewer", "officer@example.com"); code != 1 {
		t.Errorf("a second resolve: exit %d, want 1", code)
	}
	if out, code := s.adminExit(t, "cases"); code != 0 || !strings.Contains(out, "No open AML case.") {
		t.Errorf("cases after the resolution: exit %d", code)
	}
}

// adminExit runs diditflow-admin as admin does and returns its output and
// exit code.
func (s *stack) adminExit(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := s.admin(args...)
	t.Logf("diditflow-admin %s:\n%s", strings.Join(args, " "), out)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out, exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out, 0
}
