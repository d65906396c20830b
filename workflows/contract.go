// Package workflows holds diditflow's deterministic Temporal workflow code.
// It never does I/O; activities do.
package workflows

import (
	"time"

	"github.com/diditflow/diditflow/didit"
)

// Names shared by the receiver, the worker and operators. Changing any of
// them strands running workflows, so they are part of the public contract.
const (
	// SessionWorkflow is the workflow type that runs one Didit session.
	SessionWorkflow = "VerificationSession"
	// EventSignal carries a SessionEvent into a session workflow.
	EventSignal = "didit-event"
	// sessionIDPrefix makes workflow IDs of the form didit-session-<session_id>.
	sessionIDPrefix = "didit-session-"
)

// SessionWorkflowID is the ID of the one workflow that runs a session.
func SessionWorkflowID(sessionID string) string {
	return sessionIDPrefix + sessionID
}

// SessionInput starts a VerificationSession run.
type SessionInput struct {
	SessionID string `json:"session_id"`
}

// SessionEvent is the payload of an EventSignal: one verified delivery.
type SessionEvent struct {
	Event        didit.Event        `json:"event"`
	Verification didit.Verification `json:"verification"`
	// ReceivedAt is when the receiver accepted the delivery.
	ReceivedAt time.Time `json:"received_at"`
}
