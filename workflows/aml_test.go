package workflows

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
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

// TestAMLCaseContinuesAsNewThroughManyReminders: compliance leaves a case
// open for a day of hourly reminders, the escalation address refusing
// them. Once its history reaches the limit the case continues as new
// between two reminders, carrying its reminders, escalation and flag; the
// next run sends no second opening notice, goes on counting from there,
// and a resolve resolves it once.
func TestAMLCaseContinuesAsNewThroughManyReminders(t *testing.T) {
	sink := smtptest.NewServer(t)
	sink.RejectRecipient(func(to string) bool { return to == "head-of-compliance@example.com" })
	mailer, err := notify.NewSMTP(sink.URL(), "diditflow <no-reply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, nil) // reminders hourly, escalation from the 2nd
	h.acts.Mailer = mailer
	in := amlCase(t)
	in.Case.CaseID = contract.AMLCaseWorkflowID(in.Case.SessionID)
	// The test environment counts no history: say it grew, between the
	// 24th reminder and the 25th.
	h.env.RegisterDelayedCallback(func() { h.env.SetCurrentHistoryLength(maxHistoryLength) }, 24*time.Hour+30*time.Minute)
	// Without continue-as-new the run would take this and complete.
	h.signalAt(40*time.Hour, contract.ResolveSignal, contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "early@example.com"})
	next := continuedAsNew(h, contract.AMLCaseWorkflowType, in)
	carried := next.State
	// A flag per refused reminder, from the 2nd (the first to escalate).
	if carried == nil || carried.Reminders != 25 || !carried.Escalated || !carried.Opened || carried.Resolution != nil ||
		len(carried.Flags) != 24 || carried.Flags[23].Kind != FlagRecipientRefused || next.Case.CaseID != in.Case.CaseID {
		t.Fatalf("carried %+v for case %q", carried, next.Case.CaseID)
	}

	h2 := newHarness(t, nil)
	h2.store, h2.acts.Store, h2.acts.Mailer = h.store, h.store, mailer
	h2.signalAt(90*time.Minute, contract.ResolveSignal, contract.Resolution{Outcome: contract.ConfirmedMatch, Reviewer: "officer@example.com"})
	var mid CaseState
	h2.env.RegisterDelayedCallback(func() {
		if v, err := h2.env.QueryWorkflow(contract.StateQuery); err == nil {
			_ = v.Get(&mid)
		}
	}, 80*time.Minute)
	h2.env.ExecuteWorkflow(contract.AMLCaseWorkflowType, next)
	var res contract.Resolution
	if err := h2.env.GetWorkflowResult(&res); err != nil || res.Outcome != contract.ConfirmedMatch {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	if mid.Runs != 1 || mid.Reminders != 26 || len(mid.Flags) != 25 {
		t.Fatalf("second run's state: runs %d, reminders %d, flags %+v", mid.Runs, mid.Reminders, mid.Flags)
	}
	c, err := h.store.AMLCase(context.Background(), in.Case.ID())
	if err != nil || c.State != store.AMLCaseResolved || c.Resolution.Outcome != contract.ConfirmedMatch ||
		c.Resolution.Reviewer != "officer@example.com" || c.RemindersSent != 26 || !c.Escalated {
		t.Fatalf("case record = %+v, %v", c, err)
	}
	opened, reminders := 0, 0
	for _, m := range sink.Mails() {
		if !slices.Contains(m.To, "compliance@example.com") {
			continue
		}
		switch {
		case strings.HasPrefix(m.Subject, "AML case opened"):
			opened++
		case strings.Contains(m.Subject, "reminder"):
			reminders++
		}
	}
	if opened != 1 || reminders != 26 {
		t.Fatalf("compliance got %d opening notices and %d reminders, want 1 and 26", opened, reminders)
	}
}

// TestAMLCaseContinuesAsNewWhenTemporalSuggests: the server's suggestion
// is enough, whatever the history's length.
func TestAMLCaseContinuesAsNewWhenTemporalSuggests(t *testing.T) {
	h := newHarness(t, nil)
	in := amlCase(t)
	h.env.RegisterDelayedCallback(func() { h.env.SetContinueAsNewSuggested(true) }, 2*time.Hour+30*time.Minute)
	h.signalAt(10*time.Hour, contract.ResolveSignal, contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "x@example.com"})
	if next := continuedAsNew(h, contract.AMLCaseWorkflowType, in); next.State == nil || next.State.Reminders != 3 {
		t.Fatalf("carried %+v; want the three reminders sent", next.State)
	}
}

// TestAMLCaseKeepsTheLatestRejections: a stream of invalid resolve signals
// leaves the latest maxRejected in the state a case carries over.
func TestAMLCaseKeepsTheLatestRejections(t *testing.T) {
	h := newHarness(t, nil)
	in := amlCase(t)
	for i := range maxRejected + 10 {
		h.signalAt(time.Duration(i+1)*time.Second, contract.ResolveSignal,
			contract.Resolution{Outcome: contract.Outcome("guess-" + strconv.Itoa(i)), Reviewer: "x@example.com"})
	}
	var mid CaseState
	h.env.RegisterDelayedCallback(func() {
		if v, err := h.env.QueryWorkflow(contract.StateQuery); err == nil {
			_ = v.Get(&mid)
		}
	}, 10*time.Minute)
	h.signalAt(20*time.Minute, contract.ResolveSignal, contract.Resolution{Outcome: contract.Inconclusive, Reviewer: "x@example.com"})
	h.env.ExecuteWorkflow(contract.AMLCaseWorkflowType, in)
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	last := "guess-" + strconv.Itoa(maxRejected+9)
	if len(mid.Rejected) != maxRejected || !strings.HasSuffix(mid.Rejected[maxRejected-1], last) {
		t.Fatalf("%d rejections kept, the last %q; want the latest %d, ending with %s", len(mid.Rejected),
			mid.Rejected[len(mid.Rejected)-1], maxRejected, last)
	}
}
