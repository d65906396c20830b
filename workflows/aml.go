package workflows

import (
	"encoding/json"

	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/internal/contract"
)

// CaseState is what an AMLCase knows; contract.StateQuery returns it.
type CaseState struct {
	Case       activities.AMLCase   `json:"case"`
	Opened     bool                 `json:"opened"`
	Reminders  int                  `json:"reminders"`
	Escalated  bool                 `json:"escalated"`
	Resolution *contract.Resolution `json:"resolution,omitempty"`
	// Rejected lists resolve signals that were ignored, and why.
	Rejected  []string           `json:"rejected,omitempty"`
	Parked    []ParkedStep       `json:"parked,omitempty"`
	Decisions []OperatorDecision `json:"decisions,omitempty"`
}

// AMLCase is a compliance case for a session's AML hits: it records the
// case, notifies compliance, then waits for a contract.ResolveSignal, re-notifying
// every reminder interval and adding the escalation contact after
// AMLEscalateAfter reminders. It returns the resolution.
func (w *Workflows) AMLCase(ctx workflow.Context, in AMLCaseInput) (contract.Resolution, error) {
	settings := w.settings(ctx)
	state := &CaseState{Case: in.Case}
	st := newSteps(ctx, settings.StepBudget, &state.Parked, &state.Decisions, func(ctx workflow.Context) {
		_ = workflow.UpsertTypedSearchAttributes(ctx, contract.NeedsAttentionKey.ValueSet(len(state.Parked) > 0))
	})
	if err := workflow.SetQueryHandler(ctx, contract.StateQuery, func() (CaseState, error) { return *state, nil }); err != nil {
		return contract.Resolution{}, err
	}
	logger := workflow.GetLogger(ctx)

	state.Opened = st.run(ctx, "open AML case", acts.OpenAMLCase, in.Case, nil)
	st.run(ctx, "notify compliance", acts.NotifyCompliance, activities.ComplianceNotice{Case: in.Case}, nil)

	resolve := workflow.GetSignalChannel(ctx, contract.ResolveSignal)
	for {
		res, ok := awaitResolution(ctx, resolve, settings)
		if !ok {
			state.Reminders++
			state.Escalated = state.Escalated || state.Reminders >= settings.AMLEscalateAfter
			notice := activities.ComplianceNotice{Case: in.Case, Reminder: state.Reminders, Escalate: state.Escalated}
			st.run(ctx, "remind compliance", acts.NotifyCompliance, notice, nil)
			reminder := activities.ReminderInput{SessionID: in.Case.SessionID, Reminder: state.Reminders, Escalated: state.Escalated}
			st.run(ctx, "record reminder", acts.RecordAMLReminder, reminder, nil)
			continue
		}
		if reason := invalidResolution(res); reason != "" {
			state.Rejected = append(state.Rejected, reason)
			logger.Warn("resolve signal ignored", "reason", reason)
			continue
		}
		st.run(ctx, "record resolution", acts.ResolveAMLCase,
			activities.ResolveInput{SessionID: in.Case.SessionID, Resolution: res}, nil)
		state.Resolution = &res
		logger.Info("AML case resolved", "outcome", res.Outcome)
		return res, nil
	}
}

// awaitResolution waits for a resolve signal for one reminder interval; ok
// is false when the interval passed first.
func awaitResolution(ctx workflow.Context, resolve workflow.ReceiveChannel, settings Settings) (contract.Resolution, bool) {
	timerCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	var raw json.RawMessage
	got := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(resolve, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &raw); got = true })
	sel.AddFuture(workflow.NewTimer(timerCtx, settings.AMLReminderInterval), func(workflow.Future) {})
	sel.Select(ctx)
	if !got {
		return contract.Resolution{}, false
	}
	// Decoded here rather than by the SDK, which would drop a malformed
	// signal with only a log line; this way it lands in Rejected.
	var res contract.Resolution
	// workflowcheck flags encoding/json.Unmarshal only because, deep in reflect
	// and the runtime, an allocation may start the garbage collector's worker
	// goroutines (its sole reasons are runtime.gcBgMarkStartWorkers and
	// gcBgMarkWorker); decoding these bytes is deterministic.
	//workflowcheck:ignore
	if err := json.Unmarshal(raw, &res); err != nil {
		res = contract.Resolution{Outcome: contract.Outcome("malformed input: " + err.Error())}
	}
	return res, true
}

func invalidResolution(r contract.Resolution) string {
	switch {
	case !r.Outcome.Valid():
		return "outcome must be confirmed_match, false_positive or inconclusive, got " + string(r.Outcome)
	case r.Reviewer == "":
		return "reviewer is required"
	}
	return ""
}

// Register registers the workflows under their contract names.
func (w *Workflows) Register(r interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
}) {
	r.RegisterWorkflowWithOptions(w.VerificationSession, workflow.RegisterOptions{Name: contract.SessionWorkflowType})
	r.RegisterWorkflowWithOptions(w.AMLCase, workflow.RegisterOptions{Name: contract.AMLCaseWorkflowType})
}
