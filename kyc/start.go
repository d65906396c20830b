package kyc

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
)

// Request asks for a new verification. It is the input of
// CreateSessionActivity, as JSON.
type Request struct {
	// VendorData is required: the business's ID of the user. Didit returns
	// an unfinished session of the same vendor_data (Not Started, In
	// Progress, Resubmitted, Awaiting User) on the Didit workflow's latest
	// version instead of creating another, which makes a retried start
	// safe; the Verification may then be an older session.
	VendorData string `json:"vendor_data"`
	// WorkflowID is the Didit workflow (what the user is asked to do);
	// empty is diditflow's DIDIT_WORKFLOW_ID.
	WorkflowID string `json:"workflow_id,omitempty"`
	// Callback is where Didit sends the user's browser after the flow,
	// with verificationSessionId and status appended. It is not a webhook.
	Callback string `json:"callback,omitempty"`
	// Metadata is the business's JSON, hidden from the user and echoed in
	// Didit's webhooks.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Language is the flow's language (ISO 639-1); empty lets Didit choose.
	Language        string           `json:"language,omitempty"`
	ContactDetails  *ContactDetails  `json:"contact_details,omitempty"`
	ExpectedDetails *ExpectedDetails `json:"expected_details,omitempty"`
	// TaskQueue is diditflow's task queue; empty is the one WithTaskQueue
	// gave the context, else DefaultTaskQueue.
	TaskQueue string `json:"-"`
}

// ContactDetails are the user's contacts, for Didit's own messages to the
// user during the flow: email, email_lang, phone, send_notification_emails.
type ContactDetails = api.ContactDetails

// ExpectedDetails are what the business expects the user's document to
// show (date_of_birth as YYYY-MM-DD); Didit checks the document against
// them.
type ExpectedDetails = api.ExpectedDetails

// Verification is a Didit session created for the user: the result of
// CreateSessionActivity, as JSON.
type Verification struct {
	SessionID string `json:"session_id"`
	// URL is Didit's hosted page: send the user there.
	URL string `json:"url"`
	// Status is Not Started, or the status of a reused unfinished session.
	Status Status `json:"status"`
}

// RequestError is a request Didit refused: its HTTP status (a 4xx other
// than 429, which is retried) and why, as Didit put it. StatusCode is 0
// when diditflow refused the request before sending it (no Didit workflow
// to start: neither Request.WorkflowID nor DIDIT_WORKFLOW_ID, or no API key).
type RequestError struct {
	StatusCode int    `json:"status_code"`
	Message    string `json:"message"`
}

func (e *RequestError) Error() string {
	if e.StatusCode == 0 {
		return "request refused by diditflow: " + e.Message
	}
	return "request refused by Didit (HTTP " + strconv.Itoa(e.StatusCode) + "): " + e.Message
}

// RequestErrorType is the type of the non-retryable application error
// diditflow's activities fail with when a request is refused; its details
// are a RequestError.
const RequestErrorType = "KYCRequestRefused"

// startTimeout bounds the retries of a session's creation: Didit's 429s
// and 5xx are retried with backoff for this long, then the last error is
// returned (a retried start is safe: see Request.VendorData).
const startTimeout = time.Hour

// StartVerification creates a Didit session for the user through
// diditflow's worker, which holds Didit's API key and spends the creation
// rate budget on a task queue of its own; the caller's worker needs
// neither. Didit's 429s and 5xx are retried with backoff for up to an
// hour; a request Didit refuses is a *RequestError.
//
// Didit sends the session's first webhook (Not Started) at creation, and
// the user may finish before the workflow waits: AwaitOutcome misses
// none of it.
func StartVerification(ctx workflow.Context, req Request) (Verification, error) {
	if req.VendorData == "" {
		return Verification{}, errors.New("kyc: start verification: Request.VendorData is required (the business's ID of the user)")
	}
	queue := cmp.Or(req.TaskQueue, taskQueue(ctx))
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              contract.DiditSessionsQueue(queue),
		ScheduleToCloseTimeout: startTimeout,
		StartToCloseTimeout:    30 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	var v Verification
	if err := workflow.ExecuteActivity(ctx, contract.CreateSessionActivity, req).Get(ctx, &v); err != nil {
		return Verification{}, fmt.Errorf("kyc: start verification: %w", refused(err))
	}
	return v, nil
}

// refused is the *RequestError an activity failed with, or err.
func refused(err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == RequestErrorType && app.HasDetails() {
		var re RequestError
		if app.Details(&re) == nil {
			return &re
		}
	}
	return err
}
