package kyc

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
)

// SessionDecision is a session's decision, reduced: no images, no media,
// no names. It is the result of DecisionActivity, as JSON.
type SessionDecision struct {
	SessionID string `json:"session_id"`
	Status    Status `json:"status"`
	// ContactEmail is the user's address as Didit verified it; empty when
	// Didit has none, or the session was erased.
	ContactEmail string   `json:"contact_email,omitempty"`
	AMLHits      []AMLHit `json:"aml_hits,omitempty"`
}

// AMLHit is one hit of the session's AML screening (sanctions, PEP, adverse
// media): its identifiers, scores and review, never whom it names.
type AMLHit struct {
	// ID is the hit's ID in Didit (and in diditflow's AML cases).
	ID string `json:"id"`
	// NodeID is the screening's node, for a session with several.
	NodeID     string   `json:"node_id,omitempty"`
	Datasets   []string `json:"datasets,omitempty"`
	MatchScore *float64 `json:"match_score,omitempty"`
	RiskScore  *float64 `json:"risk_score,omitempty"`
	// ReviewStatus is Unreviewed, Confirmed Match, False Positive or
	// Inconclusive.
	ReviewStatus string `json:"review_status,omitempty"`
}

// DecisionRequest is the input of DecisionActivity, as JSON.
type DecisionRequest struct {
	SessionID string `json:"session_id"`
}

// decisionTimeout bounds the retries of a decision's fetch (Didit's 429s
// and 5xx).
const decisionTimeout = 10 * time.Minute

// Decision fetches the session's reduced decision from Didit through
// diditflow's worker (which holds the API key and Didit's read budget):
// its status, the user's verified address and its AML hits. Didit's 429s
// and 5xx are retried for up to ten minutes; a session Didit does not know
// is a *RequestError with StatusCode 404. An erased session answers its
// status alone, from diditflow's records.
func Decision(ctx workflow.Context, sessionID string) (SessionDecision, error) {
	if !didit.ValidSessionID(sessionID) {
		return SessionDecision{}, fmt.Errorf("kyc: decision: %q is not a Didit session ID", sessionID)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              contract.DiditAPIQueue(taskQueue(ctx)),
		ScheduleToCloseTimeout: decisionTimeout,
		StartToCloseTimeout:    30 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	var d SessionDecision
	if err := workflow.ExecuteActivity(ctx, contract.DecisionActivity, DecisionRequest{SessionID: sessionID}).Get(ctx, &d); err != nil {
		return SessionDecision{}, fmt.Errorf("kyc: decision of %s: %w", sessionID, refused(err))
	}
	return d, nil
}
