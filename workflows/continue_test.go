package workflows

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
)

// continueAsNewWith delivers signals in one workflow task together with
// Temporal's suggestion to continue as new: the task in which a run loop
// that checks only its own channels would continue and lose them.
func continueAsNewWith(h *harness, after time.Duration, signals func()) {
	h.env.RegisterDelayedCallback(func() {
		signals()
		h.env.RegisterDelayedCallback(func() { h.env.SetContinueAsNewSuggested(true); h.env.SignalWorkflow("nudge", nil) }, 0)
	}, after)
}

// Events that arrive in the task in which the run continues as new are
// carried to the next run, not dropped.
func TestContinueAsNewCarriesTheEventsOfItsTask(t *testing.T) {
	h := newHarness(t, nil)
	h.deliverAt(time.Second, statusEvent(t, "status-updated-approved.json", didit.StatusInProgress, 1000))
	continueAsNewWith(h, time.Minute, func() {
		h.env.SignalWorkflowSkippingWorkflowTask(contract.EventSignal, fixtureEvent(t, "status-updated-approved.json"))
		h.env.SignalWorkflowSkippingWorkflowTask(contract.EventSignal, fixtureEvent(t, "data-updated.json"))
	})
	next := continuedAsNew(h, contract.SessionWorkflowType, SessionInput{SessionStart: contract.SessionStart{SessionID: s1}})
	if len(next.Pending) != 2 {
		t.Fatalf("carried %d events, want the 2 of the last task", len(next.Pending))
	}
}

// An operator's retry that arrives in the task in which the run continues
// as new is taken in first, not lost: the parked notice is sent.
func TestContinueAsNewTakesInAnOperatorsRetryFirst(t *testing.T) {
	for name, withEvent := range map[string]bool{"alone": false, "with an event": true} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			permanent := temporal.NewNonRetryableApplicationError("smtp AUTH rejected: 535", "Permanent", nil)
			h.env.OnActivity(h.acts.NotifyUser, mock.Anything, mock.Anything).Return(failing(1, permanent, h.acts.NotifyUser))
			h.deliverAt(time.Second, fixtureEvent(t, "status-updated-approved.json"))
			continueAsNewWith(h, time.Minute, func() {
				h.env.SignalWorkflowSkippingWorkflowTask(contract.RetrySignal, contract.OperatorAction{Operator: "ops"})
				if withEvent {
					h.env.SignalWorkflowSkippingWorkflowTask(contract.EventSignal, fixtureEvent(t, "data-updated.json"))
				}
			})
			next := continuedAsNew(h, contract.SessionWorkflowType, SessionInput{SessionStart: contract.SessionStart{SessionID: s1}})
			if len(next.State.Parked) != 0 || len(h.mails()) != 1 || len(next.State.Decisions) != 1 {
				t.Fatalf("the retry was lost: parked %+v, %d mails, decisions %+v", next.State.Parked, len(h.mails()), next.State.Decisions)
			}
		})
	}
}

// An acknowledge that arrives in the task in which the run continues as new
// clears the flag before the state is carried.
func TestContinueAsNewTakesInAnAcknowledgeFirst(t *testing.T) {
	h := newHarness(t, nil)
	ev := fixtureEvent(t, "status-updated-approved.json")
	ev.Event.Decision.Email = "" // undeliverable: a flag
	h.deliverAt(time.Second, ev)
	continueAsNewWith(h, 2*time.Hour, func() {
		h.env.SignalWorkflowSkippingWorkflowTask(contract.AcknowledgeSignal, contract.OperatorAction{Operator: "ops"})
	})
	next := continuedAsNew(h, contract.SessionWorkflowType, SessionInput{SessionStart: contract.SessionStart{SessionID: s1}})
	if len(next.State.Flags) != 0 || len(next.State.Decisions) != 1 {
		t.Fatalf("the acknowledge was lost: flags %+v, decisions %+v", next.State.Flags, next.State.Decisions)
	}
}

// The same for an AML case: an acknowledge that comes with a rejected
// resolve, in the task in which the case continues as new, clears its flag.
func TestAMLCaseContinueAsNewTakesInAnAcknowledgeFirst(t *testing.T) {
	h := newHarness(t, nil)
	in := amlCase(t)
	h.acts.Compliance.Email, h.acts.Compliance.Escalation = "", ""
	h.acts.Compliance.Callback = nil
	h.env.OnActivity(h.acts.NotifyCompliance, mock.Anything, mock.Anything).Return(activities.Undeliverable, nil)
	h.env.RegisterDelayedCallback(func() {
		h.env.SetContinueAsNewSuggested(true)
		h.env.SignalWorkflowSkippingWorkflowTask(contract.AcknowledgeSignal, contract.OperatorAction{Operator: "ops"})
		h.env.SignalWorkflow(contract.ResolveSignal, contract.Resolution{Outcome: "bogus", Reviewer: "x@example.com"})
	}, 30*time.Minute)
	next := continuedAsNew(h, contract.AMLCaseWorkflowType, in)
	for _, f := range next.State.Flags {
		if strings.Contains(f.Reason, "opening") {
			t.Fatalf("the opening notice's flag is still raised: the acknowledge was lost (flags %+v)", next.State.Flags)
		}
	}
	if len(next.State.Decisions) != 1 || len(next.State.Rejected) != 1 {
		t.Fatalf("decisions %+v, rejected %v; want the acknowledge recorded and the resolve rejected", next.State.Decisions, next.State.Rejected)
	}
}
