package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/diditflow/diditflow/internal/codec"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/internal/harness/smtptest"
	"github.com/diditflow/diditflow/workflows"
)

// Values that reach Temporal payloads, chosen so that any copy of them in
// clear is found.
const (
	sentinelUser   = "privacy-sentinel-user@example.com"
	sentinelVendor = "privacy-sentinel-vendor-7f3a"
	sentinelOps    = "privacy-sentinel-ops@example.com"
)

// TestHistoryHoldsNoReadablePersonalData: a session whose notice the mail
// server refuses with a reply quoting the address, released by an
// operator's retry. Its history, read with the CLI and no codec, holds none
// of the address, the vendor_data or the operator's address; read through
// the client's codec, it decodes.
func TestHistoryHoldsNoReadablePersonalData(t *testing.T) {
	s := newStack(t, func(s *stack) { s.stepBudget = "3s" })
	s.sink.Script(smtptest.Rule{Command: smtptest.DataEnd, Calls: []int{1},
		Reply: smtptest.Reply{Code: 554, Enhanced: "5.7.1", Message: "message to <" + sentinelUser + "> refused"}})
	session := simulator.NewUUID()
	var body map[string]any
	if err := json.Unmarshal(delivery(t, "status-updated-approved.json", session), &body); err != nil {
		t.Fatal(err)
	}
	body["vendor_data"] = sentinelVendor
	d := body["decision"].(map[string]any)
	d["vendor_data"] = sentinelVendor
	d["contact_details"] = map[string]any{"email": sentinelUser}
	raw, _ := json.Marshal(body)
	s.deliver(raw)

	id := contract.SessionWorkflowID(session)
	var state workflows.SessionState
	s.waitFor("the refused notice to park", func() bool {
		v, err := s.temporal.QueryWorkflow(context.Background(), id, "", contract.StateQuery)
		return err == nil && v.Get(&state) == nil && len(state.Parked) == 1
	})
	if err := s.temporal.SignalWorkflow(context.Background(), id, "", contract.RetrySignal,
		contract.OperatorAction{Operator: sentinelOps, Note: "asked " + sentinelUser}); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the session to complete", func() bool { return s.completed(id) })

	cli, err := launch.TemporalCLI()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cli, "workflow", "show", "--address", s.address, "--workflow-id", id, "--output", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("temporal workflow show: %v\n%s", err, out)
	}
	history := readable(t, out)
	if !strings.Contains(history, "WorkflowExecutionSignaled") && !strings.Contains(history, "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED") {
		t.Fatalf("the CLI showed no signals:\n%.2000s", history)
	}
	for _, v := range []string{sentinelUser, sentinelVendor, sentinelOps} {
		if strings.Contains(history, v) {
			t.Errorf("the history read without the codec holds %q", v)
		}
	}
	if !strings.Contains(history, codec.Encoding) {
		t.Error("the history holds no encrypted payload")
	}

	// The client with the keys reads it all back.
	v, err := s.temporal.QueryWorkflow(context.Background(), id, "", contract.StateQuery)
	if err != nil || v.Get(&state) != nil {
		t.Fatalf("query through the codec: %v", err)
	}
	if len(state.Decisions) != 1 || state.Decisions[0].Operator != sentinelOps || state.VendorData != sentinelVendor {
		t.Fatalf("decoded state: decisions %+v, vendor_data %q", state.Decisions, state.VendorData)
	}
	if m := s.sink.Mails(); len(m) != 1 || m[0].To[0] != sentinelUser {
		t.Fatalf("mails = %+v, want the approval once after the retry", m)
	}
}

// readable is what a person reading the CLI's JSON history sees: the JSON,
// and every string in it that is base64 (as protojson writes a payload's
// bytes) decoded, since anyone can decode it.
func readable(t *testing.T, cliJSON []byte) string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(cliJSON, &doc); err != nil {
		t.Fatalf("the CLI's history is not JSON: %v", err)
	}
	var b strings.Builder
	b.Write(cliJSON)
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case string:
			if raw, err := base64.StdEncoding.DecodeString(v); err == nil {
				b.WriteString("\n")
				b.Write(raw)
			}
		}
	}
	walk(doc)
	return b.String()
}
