package kyc

import (
	"time"

	"github.com/diditflow/diditflow/internal/contract"
)

// EventKind is what happened to a session, as a hook is told.
type EventKind string

// The kinds of Event.
const (
	// StatusChanged: the session took a new status (Event.Status), from
	// Event.PreviousStatus.
	StatusChanged EventKind = "status_changed"
	// AMLCaseResolved: compliance resolved one of the session's AML cases
	// (Event.Case), in diditflow or in Didit's console; Event.Status is the
	// session's status then.
	AMLCaseResolved EventKind = "aml_case_resolved"
	// AMLReviewChanged: the review of some hits of a resolved AML case
	// changed in Didit afterwards (Event.Case: the case's resolution as
	// recorded, and in Hits only the hits whose review changed, with their
	// new outcomes); diditflow flagged the session for a person.
	AMLReviewChanged EventKind = "aml_review_changed"
)

// Unreviewed is a hit's outcome in an AMLReviewChanged event when Didit's
// review of it was cleared.
const Unreviewed = "unreviewed"

// Event is the one input of a hook: the business's workflow diditflow
// starts for each of a session's events (HOOK_WORKFLOWS=Type@queue). A
// hook runs once per status change, per resolved AML case and per review
// changed after a resolution, never for a redelivery or a stale event: it is started with the ID HookWorkflowID and
// the reject-duplicate ID reuse policy, so Temporal refuses a second start
// across diditflow's crashes and new runs.
//
// Hooks are independent workflows and may run out of order: one that sees
// a Sequence lower than one it already acted on for the session ignores it.
// Key is stable for the event: pass it downstream as the idempotency key of
// what the hook does. Event carries no personal data beyond VendorData,
// which is empty for an erased session (and once the records' retention
// purged it).
type Event struct {
	Kind EventKind `json:"kind"`
	// Key identifies the event across retries: the session and Sequence.
	Key        string `json:"key"`
	SessionID  string `json:"session_id"`
	VendorData string `json:"vendor_data,omitempty"`
	// Status is the new status (StatusChanged), or the session's status
	// when the case was resolved (AMLCaseResolved) or its review changed
	// (AMLReviewChanged; empty when a run that knew no status told it).
	Status Status `json:"status"`
	// PreviousStatus is the status before (StatusChanged only; empty for a
	// session's first).
	PreviousStatus Status `json:"previous_status,omitempty"`
	// At is when it happened: Didit's created_at of the event that changed
	// the status or the review; the time of the resolution.
	At time.Time `json:"at"`
	// Sequence numbers the session's status changes, resolutions and
	// review changes in the order they happened, across all of diditflow's
	// runs: a hook that sees a lower Sequence than one it already acted on
	// ignores it.
	Sequence int64 `json:"sequence"`
	// Case is the resolution (AMLCaseResolved), or, for AMLReviewChanged,
	// the case's resolution as recorded with, in Hits, only the hits whose
	// review changed.
	Case *CaseResolution `json:"case,omitempty"`
}

// CaseResolution is how compliance resolved an AML case, in diditflow or in
// Didit's console (each hit's review there, the case's the worst of them:
// confirmed_match if any, else inconclusive if any, else false_positive).
type CaseResolution struct {
	// CaseID is the case's workflow ID (AMLCaseWorkflowID, or a follow-up).
	CaseID string `json:"case_id"`
	// Outcome is ConfirmedMatch, FalsePositive or Inconclusive.
	Outcome string `json:"outcome"`
	// Hits is each hit's outcome, by hit ID; never whom a hit names. In an
	// AMLReviewChanged event a hit may be Unreviewed.
	Hits map[string]string `json:"hits"`
}

// The outcomes of an AML case and of each of its hits (CaseResolution).
const (
	ConfirmedMatch = string(contract.ConfirmedMatch)
	FalsePositive  = string(contract.FalsePositive)
	Inconclusive   = string(contract.Inconclusive)
)

// HookWorkflowID is the workflow ID diditflow starts a hook with: derived
// from the event's Key and the hook's workflow type, started with the
// reject-duplicate ID reuse policy, so Temporal refuses a second start of
// the same hook for the same event.
func HookWorkflowID(workflowType string, e Event) string {
	return contract.HookWorkflowID(workflowType, e.Key)
}
