package app

import (
	"errors"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/kyc"
)

// Workflow types, as the worker registers them; HOOK_WORKFLOWS names
// HookWorkflowType (HOOK_WORKFLOWS=OnKYCEvent@onboarding).
const (
	OnboardingWorkflowType = "Onboarding"
	HookWorkflowType       = "OnKYCEvent"
)

// VerificationWindow is how long an account waits for its verification's
// outcome before it is marked expired.
const VerificationWindow = 7 * 24 * time.Hour

// OnboardingInput is the account Onboarding verifies.
type OnboardingInput struct {
	AccountID string `json:"account_id"`
	// Attempt numbers the account's verifications, from 1.
	Attempt int `json:"attempt"`
	// Email is where Didit may write to the user during the flow.
	Email string `json:"email"`
	// AccountURL is the account's page, where Didit sends the user's
	// browser back.
	AccountURL string `json:"account_url"`
	// KYCQueue is diditflow's task queue; empty is kyc.DefaultTaskQueue.
	KYCQueue string `json:"kyc_queue,omitempty"`
}

// OnboardingWorkflowID is the ID of an account's verification numbered
// attempt: one at a time, started with the reject-duplicate policy.
func OnboardingWorkflowID(accountID string, attempt int) string {
	return "onboarding-" + accountID + "-" + strconv.Itoa(attempt)
}

// accountActivity is how the workflows run the accounts' activities, on
// the workflow's own task queue: a database that is down is retried until
// it is back.
var accountActivity = workflow.ActivityOptions{
	StartToCloseTimeout: 10 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{MaximumInterval: time.Minute},
}

// Onboarding verifies a new account's user with Didit, through diditflow:
// it records the verification's link for the account page, waits for the
// outcome, and activates or rejects the account; a verification not
// decided within VerificationWindow expires it. It returns the account's
// status. A request Didit refuses (no Didit workflow, a bad callback) fails
// the workflow: that is the team's to fix, not the user's.
func Onboarding(ctx workflow.Context, in OnboardingInput) (Status, error) {
	if in.KYCQueue != "" {
		ctx = kyc.WithTaskQueue(ctx, in.KYCQueue)
	}
	v, err := kyc.StartVerification(ctx, kyc.Request{
		VendorData:     in.AccountID,
		Callback:       in.AccountURL,
		ContactDetails: &kyc.ContactDetails{Email: in.Email},
	})
	if err != nil {
		return "", err
	}
	var a *Activities
	actx := workflow.WithActivityOptions(ctx, accountActivity)
	err = workflow.ExecuteActivity(actx, a.RecordVerification, Verification{AccountID: in.AccountID, Attempt: in.Attempt,
		SessionID: v.SessionID, URL: v.URL}).Get(ctx, nil)
	if err != nil {
		return "", err
	}

	var done Applied
	out, err := kyc.AwaitOutcome(ctx, v.SessionID, VerificationWindow)
	switch {
	case errors.Is(err, kyc.ErrTimeout):
		err = workflow.ExecuteActivity(actx, a.Expire, Expiry{AccountID: in.AccountID, SessionID: v.SessionID}).Get(ctx, &done)
	case err == nil:
		err = workflow.ExecuteActivity(actx, a.Settle, Outcome{AccountID: in.AccountID, Outcome: out}).Get(ctx, &done)
	}
	return done.To, err
}

// OnKYCEvent is the hook diditflow starts on every event of every session
// (HOOK_WORKFLOWS=OnKYCEvent@onboarding): it applies the event to the
// account the session verifies. Hooks run in any order; the account keeps
// the last Sequence applied and ignores older events, and Event.Key makes
// a retried hook answer what the first did.
func OnKYCEvent(ctx workflow.Context, e kyc.Event) (Applied, error) {
	var a *Activities
	var done Applied
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, accountActivity), a.ApplyEvent, e).Get(ctx, &done)
	return done, err
}
