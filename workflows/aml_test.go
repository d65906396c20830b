package workflows

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/smtptest"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/store"
)

func amlCase(t *testing.T) AMLCaseInput {
	ev := fixtureEvent(t, "status-updated-in-review.json").Event
	return AMLCaseInput{Case: activities.AMLCase{SessionID: ev.SessionID, Status: ev.Status, VendorData: ev.VendorData, Hits: ev.Decision.AMLHits()}}
}

// complianceHook is a real HTTP endpoint that records what it receives.
func complianceHook(t *testing.T) (*notify.Callback, func() []map[string]any) {
	var mu sync.Mutex
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Errorf("compliance webhook got %q: %v", body, err)
		}
		mu.Lock()
		got = append(got, doc)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	hook, err := notify.NewCallback(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return hook, func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

func TestAMLCaseResolved(t *testing.T) {
	h := newHarness(t, nil)
	hook, posted := complianceHook(t)
	h.acts.Compliance.Callback = hook
	in := amlCase(t)
	h.signalAt(30*time.Minute, contract.ResolveSignal, contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "officer@example.com", Note: "different person"})
	h.env.ExecuteWorkflow(contract.AMLCaseWorkflowType, in)

	var res contract.Resolution
	if err := h.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Outcome != contract.FalsePositive || res.Reviewer != "officer@example.com" {
		t.Fatalf("result = %+v", res)
	}
	c, err := h.store.AMLCase(context.Background(), in.Case.ID())
	if err != nil || c.State != store.AMLCaseResolved || c.Resolution.Outcome != contract.FalsePositive || c.RemindersSent != 0 {
		t.Fatalf("case = %+v, %v", c, err)
	}
	if got := h.subjects(); len(got) != 1 || got[0] != "AML case opened: session "+in.Case.SessionID {
		t.Fatalf("mails = %q", got)
	}
	if m := h.mails()[0]; m.To != "<compliance@example.com>" {
		t.Fatalf("opening notice went to %q", m.To)
	}
	docs := posted()
	if len(docs) != 1 || docs[0]["type"] != "aml_case.opened" || docs[0]["case_id"] != "aml-case-"+in.Case.SessionID {
		t.Fatalf("webhook documents = %v", docs)
	}
}

func TestAMLCaseRemindsThenEscalates(t *testing.T) {
	h := newHarness(t, nil) // reminders hourly, escalation from the 2nd
	in := amlCase(t)
	h.signalAt(3*time.Hour+30*time.Minute, contract.ResolveSignal, contract.Resolution{Outcome: contract.ConfirmedMatch, Reviewer: "head@example.com"})
	h.env.ExecuteWorkflow(contract.AMLCaseWorkflowType, in)
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var reminders []sentMail
	for _, m := range h.mails() {
		if strings.Contains(m.Subject, "reminder") {
			reminders = append(reminders, m)
		}
	}
	if len(reminders) != 3 {
		t.Fatalf("reminders = %d, want 3 (after 1h, 2h, 3h)", len(reminders))
	}
	for _, m := range reminders {
		escalated := strings.HasPrefix(m.Subject, "ESCALATED")
		toHead := strings.Contains(m.To, "head-of-compliance@example.com")
		first := strings.Contains(m.Subject, "reminder 1)")
		if escalated == first || toHead == first {
			t.Fatalf("reminder %q to %q: only reminders from the 2nd escalate", m.Subject, m.To)
		}
	}
	c, err := h.store.AMLCase(context.Background(), in.Case.ID())
	if err != nil || c.RemindersSent != 3 || !c.Escalated || c.State != store.AMLCaseResolved {
		t.Fatalf("case = %+v, %v", c, err)
	}
}

func TestAMLCaseIgnoresInvalidResolutions(t *testing.T) {
	h := newHarness(t, nil)
	in := amlCase(t)
	h.signalAt(time.Minute, contract.ResolveSignal, contract.Resolution{Outcome: "looks fine", Reviewer: "x@example.com"})
	h.signalAt(2*time.Minute, contract.ResolveSignal, contract.Resolution{Outcome: contract.Inconclusive})
	h.signalAt(150*time.Second, contract.ResolveSignal, map[string]any{"outcome": 7})
	var mid CaseState
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(contract.StateQuery)
		if err == nil {
			_ = v.Get(&mid)
		}
	}, 3*time.Minute)
	h.signalAt(4*time.Minute, contract.ResolveSignal, contract.Resolution{Outcome: contract.Inconclusive, Reviewer: "x@example.com"})
	h.env.ExecuteWorkflow(contract.AMLCaseWorkflowType, in)
	var res contract.Resolution
	if err := h.env.GetWorkflowResult(&res); err != nil || res.Outcome != contract.Inconclusive {
		t.Fatalf("result = %+v, %v", res, err)
	}
	if len(mid.Rejected) != 3 || mid.Resolution != nil || !mid.Opened {
		t.Fatalf("state before the valid signal = %+v", mid)
	}
}

func TestAMLCaseHitsCarryNoNames(t *testing.T) {
	in := amlCase(t)
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, pii := range []string{"Daniel", "Navarro", "1968-02-23", "CBX482917"} {
		if strings.Contains(string(raw), pii) {
			t.Fatalf("AML case input carries %q: %s", pii, raw)
		}
	}
	if len(in.Case.Hits) != 1 || in.Case.Hits[0].ID == "" || in.Case.Hits[0].ReviewStatus != didit.ReviewUnreviewed {
		t.Fatalf("hits = %+v", in.Case.Hits)
	}
}

// TestRefusedComplianceRecipientFlagsTheCase: the escalation address refuses
// a reminder for good (550 at RCPT); the compliance address still gets every
// notice, the reminders go on, and the refusal is flagged on the case: its
// search attribute, its record and its state.
func TestRefusedComplianceRecipientFlagsTheCase(t *testing.T) {
	h := newHarness(t, nil)
	sink := smtptest.NewServer(t)
	sink.RejectRecipient(func(to string) bool { return to == "head-of-compliance@example.com" })
	mailer, err := notify.NewSMTP(sink.URL(), "diditflow <no-reply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	h.acts.Mailer = mailer
	in := amlCase(t)
	in.Case.CaseID = contract.AMLCaseWorkflowID(in.Case.SessionID)
	// Reminders every hour; the second one escalates (testSettings).
	var flagged CaseState
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(contract.StateQuery)
		if err == nil {
			_ = v.Get(&flagged)
		}
	}, 2*time.Hour+30*time.Minute)
	h.signalAt(3*time.Hour+30*time.Minute, contract.ResolveSignal, contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "officer@example.com"})
	h.env.ExecuteWorkflow(contract.AMLCaseWorkflowType, in)
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}

	toCompliance := 0
	for _, m := range sink.Mails() {
		if slices.Contains(m.To, "compliance@example.com") {
			toCompliance++
		}
	}
	if toCompliance != 4 {
		t.Fatalf("compliance got %d notices, want the opening and three reminders", toCompliance)
	}
	if len(flagged.Flags) != 1 || flagged.Flags[0].Kind != FlagRecipientRefused {
		t.Fatalf("flags = %+v, want the refused recipient", flagged.Flags)
	}
	c, err := h.store.AMLCase(context.Background(), in.Case.ID())
	if err != nil || !c.NeedsAttention || !strings.Contains(c.Attention, FlagRecipientRefused) || c.RemindersSent != 3 {
		t.Fatalf("case record = %+v, %v", c, err)
	}
	if v, _ := h.searchBool(contract.NeedsAttentionKey); !v {
		t.Fatal("DiditNeedsAttention not set on the case")
	}
}
