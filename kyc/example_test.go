package kyc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/kyc"
	"github.com/diditflow/diditflow/kyctest"
)

// Onboarding is a business's workflow: verify the new user, then activate
// or reject the account.
func Onboarding(ctx workflow.Context, userID string) (string, error) {
	v, err := kyc.StartVerification(ctx, kyc.Request{VendorData: userID, Callback: "https://example.com/welcome"})
	var refused *kyc.RequestError
	if errors.As(err, &refused) {
		return "", fmt.Errorf("fix the request: %w", err)
	}
	if err != nil {
		return "", err
	}
	// Mail v.URL to the user (an activity of the business's); the user may
	// well finish before the next line runs.
	out, err := kyc.AwaitOutcome(ctx, v.SessionID, 7*24*time.Hour)
	switch {
	case errors.Is(err, kyc.ErrTimeout):
		return "reminded", nil
	case err != nil:
		return "", err
	case out.Status == kyc.Approved:
		return "active", nil
	}
	return "rejected", nil
}

// A business's onboarding workflow, run in Temporal's testsuite with
// kyctest standing in for diditflow: the user is approved before the
// workflow waits, and the wait returns the approval.
func Example() {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := suite.NewTestWorkflowEnvironment()
	didit := kyctest.New(env)
	didit.OnCreate(func(s *kyctest.Session) {
		s.Set(kyc.InProgress)
		s.Set(kyc.Approved)
	})
	env.RegisterWorkflow(Onboarding)
	env.ExecuteWorkflow(Onboarding, "user-42")

	var account string
	if err := env.GetWorkflowResult(&account); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(account)
	// Output: active
}

// accounts is the business's own records, which its activities keep: the
// last event applied to each account, by session.
type accounts struct{ applied map[string]int64 }

// Apply applies a KYC event to the user's account once, in order: an event
// older than one applied is ignored, and Key makes a retried call harmless
// downstream.
func (a *accounts) Apply(_ context.Context, e kyc.Event) (string, error) {
	if e.Sequence <= a.applied[e.SessionID] {
		return "ignored " + string(e.Status) + " (older)", nil
	}
	a.applied[e.SessionID] = e.Sequence
	switch e.Status {
	case kyc.Approved:
		return "activated", nil
	case kyc.Declined:
		return "closed", nil
	}
	return "noted " + string(e.Status), nil
}

// OnKYCEvent is a hook: diditflow starts it on every event of every session
// (HOOK_WORKFLOWS=OnKYCEvent@business).
func OnKYCEvent(ctx workflow.Context, e kyc.Event) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var done string
	err := workflow.ExecuteActivity(ctx, (*accounts).Apply, e).Get(ctx, &done)
	return done, err
}

// A hook applies a session's events in Sequence order, whatever order the
// hooks run in: here an approval later declined by a manual review, the
// decline's hook running first.
func ExampleEvent() {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	didit := kyctest.New(suite.NewTestWorkflowEnvironment())
	s := didit.Session("8c5a41f6-0d0e-4a43-9c1f-4b3c7e3f2a10")
	s.Set(kyc.Approved)
	s.Set(kyc.Declined)
	events := s.Events() // Not Started, Approved, Declined

	acct := &accounts{applied: map[string]int64{}}
	for _, e := range []kyc.Event{events[2], events[1]} {
		env := suite.NewTestWorkflowEnvironment()
		env.RegisterActivity(acct)
		env.ExecuteWorkflow(OnKYCEvent, e)
		var done string
		_ = env.GetWorkflowResult(&done)
		fmt.Println(kyc.HookWorkflowID("OnKYCEvent", e), done)
	}
	// Output:
	// OnKYCEvent-8c5a41f6-0d0e-4a43-9c1f-4b3c7e3f2a10-3 closed
	// OnKYCEvent-8c5a41f6-0d0e-4a43-9c1f-4b3c7e3f2a10-2 ignored Approved (older)
}

// The business's worker: its own workflows on its own task queue, on a
// client that shares diditflow's payload keys.
func ExampleConfigureClient() {
	opts := client.Options{HostPort: client.DefaultHostPort}
	if err := kyc.ConfigureClient(&opts); err != nil {
		panic(err)
	}
	c, err := client.Dial(opts)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	w := worker.New(c, "business", worker.Options{})
	w.RegisterWorkflow(Onboarding)
	w.RegisterWorkflow(OnKYCEvent)
	w.RegisterActivity(&accounts{applied: map[string]int64{}})
	_ = w.Run(worker.InterruptCh())
}
