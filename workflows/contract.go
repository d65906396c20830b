// Package workflows holds diditflow's deterministic Temporal workflow code.
// It never does I/O; activities do.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
)

// Names shared by the receiver, the worker and operators. Changing any of
// them strands running workflows, so they are part of the public contract.
const (
	// SessionWorkflow is the workflow type that runs one Didit session.
	SessionWorkflow = "VerificationSession"
	// AMLCaseWorkflow is the workflow type of a compliance case.
	AMLCaseWorkflow = "AMLCase"
	// EventSignal carries a SessionEvent into a session workflow.
	EventSignal = "didit-event"
	// RetrySignal releases a parked step to run again (OperatorAction).
	RetrySignal = "retry"
	// SkipSignal releases a parked step by giving it up (OperatorAction).
	SkipSignal = "skip"
	// ResolveSignal closes an AML case (activities.Resolution).
	ResolveSignal = "resolve"
	// StateQuery returns a workflow's state: SessionState or CaseState.
	StateQuery = "state"

	sessionIDPrefix = "didit-session-"
	amlCaseIDPrefix = "aml-case-"
)

// SessionWorkflowID is the ID of the one workflow that runs a session.
func SessionWorkflowID(sessionID string) string { return sessionIDPrefix + sessionID }

// AMLCaseWorkflowID is the ID of a session's one AML case.
func AMLCaseWorkflowID(sessionID string) string { return amlCaseIDPrefix + sessionID }

// Search attributes ops filter on in the Temporal UI. They must be registered
// on the namespace (make run and docker-compose do it). No personal data:
// vendor_data is the business's own user reference.
var (
	StatusKey         = temporal.NewSearchAttributeKeyKeyword("DiditStatus")
	AMLHitKey         = temporal.NewSearchAttributeKeyBool("DiditAMLHit")
	NeedsAttentionKey = temporal.NewSearchAttributeKeyBool("DiditNeedsAttention")
	VendorDataKey     = temporal.NewSearchAttributeKeyKeyword("DiditVendorData")
)

// SearchAttributes lists the search attributes to register, with their types.
func SearchAttributes() temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		StatusKey.ValueSet(""), AMLHitKey.ValueSet(false),
		NeedsAttentionKey.ValueSet(false), VendorDataKey.ValueSet(""),
	)
}

// SessionInput starts a VerificationSession run. A run that continues as
// new passes its state and the signals it had not handled yet.
type SessionInput struct {
	SessionID string         `json:"session_id"`
	State     *SessionState  `json:"state,omitempty"`
	Pending   []SessionEvent `json:"pending,omitempty"`
}

// SessionEvent is the payload of an EventSignal: one verified delivery.
type SessionEvent struct {
	Event        didit.Event        `json:"event"`
	Verification didit.Verification `json:"verification"`
	// ReceivedAt is when the receiver accepted the delivery.
	ReceivedAt time.Time `json:"received_at"`
}

// OperatorAction is the optional payload of RetrySignal and SkipSignal. Step
// names the parked step to release (as the state query shows it); empty
// releases every parked step. Operator and Note are only recorded.
type OperatorAction struct {
	Step     string `json:"step,omitempty"`
	Operator string `json:"operator,omitempty"`
	Note     string `json:"note,omitempty"`
}

// AMLCaseInput starts an AMLCase.
type AMLCaseInput struct {
	Case activities.AMLCase `json:"case"`
}

// Settings tune the workflows. The worker reads them from its environment;
// each run records the values it uses in its history, so changing them
// affects new runs without breaking the replay of old ones.
type Settings struct {
	// IdleWindow is how long a session in a final status waits for late
	// events before its run completes. A later event starts a new run.
	IdleWindow time.Duration `json:"idle_window"`
	// StepBudget is how long Temporal retries one step (schedule-to-close)
	// before the step parks for an operator.
	StepBudget time.Duration `json:"step_budget"`
	// AMLReminderInterval is how often an unresolved AML case re-notifies.
	AMLReminderInterval time.Duration `json:"aml_reminder_interval"`
	// AMLEscalateAfter is the reminder from which the escalation contact is
	// notified too.
	AMLEscalateAfter int `json:"aml_escalate_after"`
	// ContinueAsNewAfter continues a session as new once a run has handled
	// this many Didit events; 0 leaves it to the server's suggestion, which
	// comes first in practice.
	ContinueAsNewAfter int `json:"continue_as_new_after"`
}

// DefaultSettings are the production defaults.
func DefaultSettings() Settings {
	return Settings{
		IdleWindow:          time.Hour,
		StepBudget:          time.Hour,
		AMLReminderInterval: 24 * time.Hour,
		AMLEscalateAfter:    3,
	}
}
