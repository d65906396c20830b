package workflows

import (
	"time"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/internal/contract"
)

// SessionInput starts a VerificationSession run. A run that continues as
// new passes its state and the signals it had not handled yet.
type SessionInput struct {
	contract.SessionStart
	State   *SessionState           `json:"state,omitempty"`
	Pending []contract.SessionEvent `json:"pending,omitempty"`
}

// AMLCaseInput starts an AMLCase. A case that continues as new passes its
// state.
type AMLCaseInput struct {
	Case  activities.AMLCase `json:"case"`
	State *CaseState         `json:"state,omitempty"`
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
	// DiditAPIQueue is the task queue of the activities that call Didit's
	// API, whose worker the server rate-limits to Didit's budget; empty
	// runs them on the workflow's own queue.
	DiditAPIQueue string `json:"didit_api_queue,omitempty"`
	// DiditAPIWriteQueue is the same for the calls that write to Didit,
	// whose budget is half the reads'.
	DiditAPIWriteQueue string `json:"didit_api_write_queue,omitempty"`
	// Hooks are the businesses' workflows started on every status change
	// and resolved AML case (HOOK_WORKFLOWS); none costs a session nothing.
	Hooks []activities.Hook `json:"hooks,omitempty"`
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
