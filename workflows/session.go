package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// StateQuery returns a SessionState.
const StateQuery = "state"

// SessionState is what a session workflow has received so far.
type SessionState struct {
	SessionID string         `json:"session_id"`
	Events    []SessionEvent `json:"events"`
}

// VerificationSession runs one Didit verification session, fed by
// EventSignal. For now it only keeps the events it receives, queryable with
// StateQuery.
func VerificationSession(ctx workflow.Context, in SessionInput) error {
	state := SessionState{SessionID: in.SessionID}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (SessionState, error) { return state, nil }); err != nil {
		return err
	}
	events := workflow.GetSignalChannel(ctx, EventSignal)
	for {
		var ev SessionEvent
		events.Receive(ctx, &ev)
		state.Events = append(state.Events, ev)
	}
}
