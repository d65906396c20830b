package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
)

// activities is referenced through a nil pointer: only its method values are
// needed to name the activities.
var acts *activities.Activities

// ParkedStep is a step that failed for good and waits for an operator. It is
// diditflow's dead-letter entry; a RetrySignal or SkipSignal is its replay.
type ParkedStep struct {
	Step  string    `json:"step"`
	Error string    `json:"error"`
	Since time.Time `json:"since"`
}

// OperatorDecision is an operator's answer to a parked step, kept in state.
type OperatorDecision struct {
	Step     string    `json:"step"`
	Action   string    `json:"action"`
	Operator string    `json:"operator,omitempty"`
	Note     string    `json:"note,omitempty"`
	At       time.Time `json:"at"`
}

// steps runs a workflow's activities with durable retries and parks the ones
// that cannot succeed, instead of failing the run.
type steps struct {
	budget    time.Duration
	parked    **ParkedStep
	decisions *[]OperatorDecision
	// attention is called when a step parks (true) or is released (false).
	attention func(ctx workflow.Context, on bool)
}

// activityOptions: exponential backoff from 1 s, doubling, capped at 5 min,
// for as long as the budget allows. Activities mark what can never succeed
// as non-retryable, which ends the retries at once.
func (s *steps) activityOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: s.budget,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    5 * time.Minute,
		},
	})
}

// run executes an activity and decodes its result into out (may be nil). It
// returns false when an operator skipped the step, leaving out unset.
func (s *steps) run(ctx workflow.Context, name string, activity, in, out any) bool {
	for {
		err := workflow.ExecuteActivity(s.activityOptions(ctx), activity, in).Get(ctx, out)
		if err == nil {
			return true
		}
		if temporal.IsCanceledError(err) {
			// The run itself is being cancelled; nothing to park.
			return false
		}
		if s.park(ctx, name, err) == SkipSignal {
			return false
		}
	}
}

// park records the failure, flags the workflow for ops and waits for an
// operator's retry or skip.
func (s *steps) park(ctx workflow.Context, name string, cause error) string {
	logger := workflow.GetLogger(ctx)
	retry := workflow.GetSignalChannel(ctx, RetrySignal)
	skip := workflow.GetSignalChannel(ctx, SkipSignal)
	// Signals sent while nothing was parked answer nothing; they must not
	// release this step.
	for _, ch := range []workflow.ReceiveChannel{retry, skip} {
		var stale OperatorAction
		for ch.ReceiveAsync(&stale) {
			logger.Warn("operator signal ignored: no step was parked", "signal", ch.Name())
		}
	}

	*s.parked = &ParkedStep{Step: name, Error: failureMessage(cause), Since: workflow.Now(ctx)}
	s.attention(ctx, true)
	logger.Error("step parked: waiting for an operator's retry or skip signal",
		"step", name, "error", (*s.parked).Error)

	var action OperatorAction
	var signal string
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(retry, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &action); signal = RetrySignal })
	sel.AddReceive(skip, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &action); signal = SkipSignal })
	sel.Select(ctx)

	*s.decisions = append(*s.decisions, OperatorDecision{
		Step: name, Action: signal, Operator: action.Operator, Note: action.Note, At: workflow.Now(ctx),
	})
	*s.parked = nil
	s.attention(ctx, false)
	logger.Info("parked step released", "step", name, "action", signal)
	return signal
}

// failureMessage is the innermost message of an activity failure: the
// activity's own words, without the SDK's wrapping.
func failureMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Error()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "retry budget exhausted: " + timeout.Error()
	}
	return err.Error()
}
