package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
)

// DiditAPI is what the activities need of Didit's API (didit/api.Client).
type DiditAPI interface {
	Enabled() bool
	Decision(ctx context.Context, sessionID string) (api.DecisionResult, error)
	BulkUpdateAMLHits(ctx context.Context, sessionID, nodeID string, reviews []api.HitReview) error
}

// Why a decision could not be fetched, when no retry can help.
const (
	// DecisionNoKey: no DIDIT_API_KEY is configured.
	DecisionNoKey = "no_api_key"
	// DecisionNotFound: Didit has no such session for this key (404).
	DecisionNotFound = "not_found"
	// DecisionRefused: Didit refused the key (401/403), or refused the call
	// as malformed.
	DecisionRefused = "refused"
	// DecisionErased: the session was erased; its decision is not asked
	// for, so that nothing erased comes back.
	DecisionErased = "erased"
)

// FetchedDecision is a session's decision as Didit's API gave it, reduced
// (no names, documents or media), or why there is none.
type FetchedDecision struct {
	Decision *didit.Decision `json:"decision,omitempty"`
	// At is when Didit answered (its Date header), Unix seconds: the
	// fetched decision is ordered at that time.
	At int64 `json:"at,omitempty"`
	// Missing is set instead of Decision when no retry can fetch it:
	// DecisionNoKey, DecisionNotFound, DecisionRefused or DecisionErased.
	Missing string `json:"missing,omitempty"`
}

// FetchDecision reads a session's decision from Didit
// (GET /v3/session/{id}/decision/). A 5xx, a timeout or an unreadable answer
// fails the attempt for Temporal to retry; a 429 fails it with Didit's
// Retry-After as the next retry's delay. What no retry can fix (no key, 404,
// refused credentials) is a result the workflow flags. An erased session's
// decision is never asked for (DecisionErased): the records say so first.
func (a *Activities) FetchDecision(ctx context.Context, sessionID string) (FetchedDecision, error) {
	erased, err := a.Store.Erased(ctx, sessionID)
	if err != nil {
		return FetchedDecision{}, classify("read whether the session was erased", err)
	}
	if erased {
		a.log().InfoContext(ctx, "decision not fetched: the session was erased", "session_id", sessionID)
		return FetchedDecision{Missing: DecisionErased}, nil
	}
	if a.Didit == nil || !a.Didit.Enabled() {
		a.apiCall("decision", "no_key")
		return FetchedDecision{Missing: DecisionNoKey}, nil
	}
	res, err := a.Didit.Decision(ctx, sessionID)
	if err != nil {
		kind := api.KindOf(err)
		a.apiCall("decision", kind.String())
		a.log().WarnContext(ctx, "decision fetch failed", "session_id", sessionID, "error_kind", kind.String(), "error", err)
		switch kind {
		case api.KindNotFound:
			return FetchedDecision{Missing: DecisionNotFound}, nil
		case api.KindCredentials, api.KindRequest:
			return FetchedDecision{Missing: DecisionRefused}, nil
		}
		return FetchedDecision{}, apiRetryError(err)
	}
	if !res.Decision.Status.Known() {
		// Not a decision we can act on (a schema change, a body of another
		// call): retried, and parked if it stays so.
		a.apiCall("decision", api.KindMalformed.String())
		return FetchedDecision{}, temporal.NewApplicationError("didit api decision: malformed: unknown status", "DiditAPI")
	}
	a.apiCall("decision", "ok")
	at := res.Date
	if at.IsZero() {
		at = a.now()
	}
	d := res.Decision
	if d.SessionID == "" {
		d.SessionID = sessionID
	}
	return FetchedDecision{Decision: &d, At: at.Unix()}, nil
}

// apiRetryError is a retryable failure of a Didit API call; a 429's
// Retry-After becomes the delay of the next attempt, so Temporal, not the
// client, waits as long as Didit asked.
func apiRetryError(err error) error {
	var e *api.Error
	if errors.As(err, &e) && e.Kind == api.KindRateLimited && e.RetryAfter > 0 {
		return temporal.NewApplicationErrorWithOptions(err.Error(), "DiditRateLimited",
			temporal.ApplicationErrorOptions{NextRetryDelay: min(e.RetryAfter, 10*time.Minute)})
	}
	return temporal.NewApplicationError(err.Error(), "DiditAPI")
}

func (a *Activities) apiCall(call, result string) { a.Metrics.APICall(call, result) }

// NodeReviews are the reviews of one AML node's hits, written back to Didit
// in one bulk call.
type NodeReviews struct {
	SessionID string `json:"session_id"`
	// NodeID is the AML node; empty when the decision named none.
	NodeID  string          `json:"node_id,omitempty"`
	Reviews []api.HitReview `json:"reviews"`
}

// ReviewStatus is Didit's review status for a compliance outcome.
func ReviewStatus(o contract.Outcome) string { return o.ReviewStatus() }

// WriteHitReviews writes compliance's outcome for each hit of one AML node
// back to Didit (PATCH .../bulk-update-aml-hit-status/), so Didit's console
// shows what compliance decided. Writing the same reviews again changes
// nothing. Without an API key it does nothing and says so (false); a
// refused key or an unknown session or hit fails for good, which parks the
// step for an operator; 5xx and 429 are retried.
func (a *Activities) WriteHitReviews(ctx context.Context, in NodeReviews) (bool, error) {
	if a.Didit == nil || !a.Didit.Enabled() {
		a.apiCall("aml_hit_reviews", "no_key")
		a.log().WarnContext(ctx, "AML hit reviews not written back: Didit API off", "session_id", in.SessionID, "hits", len(in.Reviews))
		return false, nil
	}
	err := a.Didit.BulkUpdateAMLHits(ctx, in.SessionID, in.NodeID, in.Reviews)
	if err == nil {
		a.apiCall("aml_hit_reviews", "ok")
		return true, nil
	}
	kind := api.KindOf(err)
	a.apiCall("aml_hit_reviews", kind.String())
	a.log().WarnContext(ctx, "AML hit reviews not written back", "session_id", in.SessionID, "error_kind", kind.String(), "error", err)
	var e *api.Error
	if errors.As(err, &e) && !e.Retryable() {
		return false, temporal.NewNonRetryableApplicationError(err.Error(), "DiditAPI"+kind.String(), nil)
	}
	return false, apiRetryError(err)
}
