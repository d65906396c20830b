package kyc

import "github.com/diditflow/diditflow/internal/contract"

// The wire contract: what a business's workflow and diditflow exchange,
// recorded in both sides' histories. StartVerification, AwaitOutcome and
// Decision use it; a business names it only to stand in for diditflow
// (package kyctest does) or to read its histories. Payloads are the JSON of
// Request, Verification, Subscription, Update, DecisionRequest,
// SessionDecision and Event; after the first release they change only as
// docs/VERSIONS.md says.
const (
	// SessionWorkflowType is the type of the workflow that runs one Didit
	// session, SessionWorkflowID(session_id).
	SessionWorkflowType = contract.SessionWorkflowType

	// CreateSessionActivity creates a Didit session (Request →
	// Verification), on the task queue "<diditflow queue>-didit-api-sessions",
	// which the server rate-limits to Didit's creation budget.
	CreateSessionActivity = contract.CreateSessionActivity
	// SubscribeActivity subscribes a workflow to a session (Subscription),
	// on diditflow's task queue: it sends the session workflow
	// SubscribeSignal, starting it if no run is open.
	SubscribeActivity = contract.SubscribeActivity
	// UnsubscribeActivity sends UnsubscribeSignal (Subscription), on
	// diditflow's task queue.
	UnsubscribeActivity = contract.UnsubscribeActivity
	// DecisionActivity fetches a session's decision (DecisionRequest →
	// SessionDecision), on "<diditflow queue>-didit-api", rate-limited to
	// Didit's read budget.
	DecisionActivity = contract.DecisionActivity

	// SubscribeSignal and UnsubscribeSignal carry a Subscription to the
	// session workflow.
	SubscribeSignal   = contract.SubscribeSignal
	UnsubscribeSignal = contract.UnsubscribeSignal
)

// SessionWorkflowID is the ID of the workflow that runs a Didit session.
func SessionWorkflowID(sessionID string) string { return contract.SessionWorkflowID(sessionID) }

// UpdateSignal is the signal a session sends its subscribers (Update): one
// name per session.
func UpdateSignal(sessionID string) string { return contract.UpdateSignal(sessionID) }
