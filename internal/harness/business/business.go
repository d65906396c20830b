// Package business is a business's workflows for the harness: what a team
// that runs Temporal writes with package kyc, on its own task queue and
// worker. The end-to-end tests run them against diditflow, and kyc's replay
// test replays the histories they recorded (kyc/testdata/replay).
package business

import (
	"errors"
	"strconv"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/kyc"
)

// Workflow types, as the harness registers and starts them.
const (
	AwaitType   = "Await"
	OnboardType = "Onboard"
	HookType    = "OnKYCEvent"
)

// Register registers the workflows under their types.
func Register(r interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
}) {
	r.RegisterWorkflowWithOptions(Await, workflow.RegisterOptions{Name: AwaitType})
	r.RegisterWorkflowWithOptions(Onboard, workflow.RegisterOptions{Name: OnboardType})
	r.RegisterWorkflowWithOptions(Hook, workflow.RegisterOptions{Name: HookType})
}

// AwaitInput is what Await waits for: a session, for a while, diditflow
// running on Queue.
type AwaitInput struct {
	Queue     string        `json:"queue"`
	SessionID string        `json:"session_id"`
	Timeout   time.Duration `json:"timeout"`
}

// Await waits for a session's outcome: the result is "<status>
// <sequence>", or "timeout".
func Await(ctx workflow.Context, in AwaitInput) (string, error) {
	out, err := kyc.AwaitOutcome(kyc.WithTaskQueue(ctx, in.Queue), in.SessionID, in.Timeout)
	if errors.Is(err, kyc.ErrTimeout) {
		return "timeout", nil
	}
	if err != nil {
		return "", err
	}
	return string(out.Status) + " " + strconv.FormatInt(out.Sequence, 10), nil
}

// Onboarding is what Onboard returns.
type Onboarding struct {
	Verification kyc.Verification    `json:"verification"`
	Outcome      kyc.Outcome         `json:"outcome"`
	Decision     kyc.SessionDecision `json:"decision"`
	// Refused is Didit's refusal of the request, if it refused it.
	Refused *kyc.RequestError `json:"refused,omitempty"`
}

// OnboardInput is whom Onboard verifies, diditflow running on Queue.
type OnboardInput struct {
	Queue  string `json:"queue"`
	UserID string `json:"user_id"`
}

// Onboard starts a verification for the user, waits for its outcome and
// fetches its decision.
func Onboard(ctx workflow.Context, in OnboardInput) (Onboarding, error) {
	ctx = kyc.WithTaskQueue(ctx, in.Queue)
	var o Onboarding
	v, err := kyc.StartVerification(ctx, kyc.Request{VendorData: in.UserID, Callback: "https://business.example/welcome"})
	if errors.As(err, &o.Refused) {
		return o, nil
	}
	if err != nil {
		return o, err
	}
	o.Verification = v
	if o.Outcome, err = kyc.AwaitOutcome(ctx, v.SessionID, time.Hour); err != nil {
		return o, err
	}
	o.Decision, err = kyc.Decision(ctx, v.SessionID)
	return o, err
}

// Hook is a hook: it returns the event it was started with, for the test
// to read.
func Hook(_ workflow.Context, e kyc.Event) (kyc.Event, error) { return e, nil }
