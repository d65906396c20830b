package workflows

import (
	"encoding/json"
	"errors"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/internal/contract"
)

// acts is referenced through a nil pointer: only its method values are
// needed to name the activities.
var acts *activities.Activities

// ParkedStep is a step that failed for good and waits for an operator. It is
// diditflow's dead-letter entry; a contract.RetrySignal or contract.SkipSignal is its replay.
type ParkedStep struct {
	ID    int       `json:"id"`
	Step  string    `json:"step"`
	Error string    `json:"error"`
	Since time.Time `json:"since"`
}

// OperatorDecision is an operator's answer to a parked step, kept in state.
type OperatorDecision struct {
	Step     string `json:"step"`
	Action   string `json:"action"`
	Operator string `json:"operator,omitempty"`
	// Identity is the Temporal identity of the client that sent the
	// Update (empty for a signal): the tool or login the operator used,
	// beside the name the operator gave.
	Identity string    `json:"identity,omitempty"`
	Note     string    `json:"note,omitempty"`
	At       time.Time `json:"at"`
}

// maxDecisions bounds the operator decisions a workflow keeps.
const maxDecisions = 50

// steps runs a workflow's activities with durable retries and parks the ones
// that cannot succeed, instead of failing the run.
type steps struct {
	budget    time.Duration
	parked    *[]ParkedStep
	decisions *[]OperatorDecision
	// attention is called after a step parks or is released.
	attention func(ctx workflow.Context)
	nextID    int
	answers   map[int]string
	// carried are steps parked in an earlier run, by name: running one
	// waits for the operator's answer instead of trying again at once.
	carried map[string]int
	// operator holds the channels of the operator's signals.
	operator []workflow.ReceiveChannel
}

// answersPending reports whether an operator's signal waits to be taken in,
// or an answer to be acted on: a run that continued as new now would lose
// it.
func (s *steps) answersPending() bool {
	for _, c := range s.operator {
		if c.Len() > 0 {
			return true
		}
	}
	return len(s.answers) > 0
}

// newSteps starts the coroutine that takes in operators' signals: retry and
// skip go to parked steps, acknowledge to acknowledge. A retry or skip
// applies to the parked steps whose name it gives, or to all of them; one
// that finds nothing parked is ignored, so it cannot release a step that
// parks later. Steps parked in an earlier run and carried over by
// continue-as-new wait for their answer when they run again.
func newSteps(ctx workflow.Context, budget time.Duration, parked *[]ParkedStep, decisions *[]OperatorDecision,
	attention func(workflow.Context), acknowledge func(workflow.Context, json.RawMessage)) *steps {
	s := &steps{budget: budget, parked: parked, decisions: decisions, attention: attention,
		answers: map[int]string{}, carried: map[string]int{}}
	for _, p := range *parked {
		s.nextID = max(s.nextID, p.ID)
		s.carried[p.Step] = p.ID
	}
	retry := workflow.GetSignalChannel(ctx, contract.RetrySignal)
	skip := workflow.GetSignalChannel(ctx, contract.SkipSignal)
	ack := workflow.GetSignalChannel(ctx, contract.AcknowledgeSignal)
	s.operator = []workflow.ReceiveChannel{retry, skip, ack}
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			// Awaited, then taken, rather than received in a Selector: a
			// Selector takes a signal out of its channel as it arrives,
			// before this coroutine runs, and a run loop that continued as
			// new in that task would see no signal waiting (answersPending)
			// and lose it. Awaiting leaves it in the channel until taken.
			_ = workflow.Await(ctx, func() bool { return retry.Len()+skip.Len()+ack.Len() > 0 })
			for _, c := range []struct {
				ch     workflow.ReceiveChannel
				signal string
			}{{retry, contract.RetrySignal}, {skip, contract.SkipSignal}, {ack, contract.AcknowledgeSignal}} {
				var raw json.RawMessage
				if !c.ch.ReceiveAsync(&raw) {
					continue
				}
				if c.signal == contract.AcknowledgeSignal {
					acknowledge(ctx, raw)
				} else {
					s.answer(ctx, c.signal, raw)
				}
			}
		}
	})
	return s
}

func (s *steps) answer(ctx workflow.Context, signal string, raw json.RawMessage) {
	logger := workflow.GetLogger(ctx)
	var action contract.OperatorAction
	if len(raw) > 0 && string(raw) != "null" {
		if err := decodeJSON(raw, &action); err != nil {
			logger.Warn("operator signal ignored: input is not {\"step\",\"operator\",\"note\"}", "signal", signal, "error", err)
			return
		}
	}
	if len(s.release(ctx, signal, action, "")) == 0 {
		logger.Warn("operator signal ignored: no matching step is parked", "signal", signal, "step", action.Step)
	}
}

// releasable lists the parked steps an operator's retry or skip naming
// step releases: the one of that name, or every one when step is empty,
// that has no answer yet.
func (s *steps) releasable(step string) []ParkedStep {
	var out []ParkedStep
	for _, p := range *s.parked {
		if _, answered := s.answers[p.ID]; !answered && (step == "" || step == p.Step) {
			out = append(out, p)
		}
	}
	return out
}

// release answers the parked steps action names with retry or skip (the
// signal's or Update's name), records the decision with the caller's
// Temporal identity (empty for a signal), and returns the steps' names.
func (s *steps) release(ctx workflow.Context, answer string, action contract.OperatorAction, identity string) []string {
	var names []string
	for _, p := range s.releasable(action.Step) {
		s.answers[p.ID] = answer
		*s.decisions = append(*s.decisions, OperatorDecision{
			Step: p.Step, Action: answer, Operator: action.Operator, Identity: identity, Note: action.Note, At: workflow.Now(ctx),
		})
		names = append(names, p.Step)
	}
	if len(*s.decisions) > maxDecisions {
		*s.decisions = (*s.decisions)[len(*s.decisions)-maxDecisions:]
	}
	return names
}

// activityOptions: exponential backoff from 1 s, doubling, capped at 5 min,
// for as long as the budget allows. Activities mark what can never succeed
// as non-retryable, which ends the retries at once.
func (s *steps) activityOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: s.budget,
		RetryPolicy:            stepRetryPolicy(),
	})
}

func stepRetryPolicy() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute}
}

// localActivityOptions are activityOptions for a local activity: the same
// retries for as long as the budget allows. The SDK retries a short
// backoff inside the workflow task and a long one with a timer, so a
// failing step costs history only while it fails.
func (s *steps) localActivityOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: s.budget,
		RetryPolicy:            stepRetryPolicy(),
	})
}

// run executes an activity and decodes its result into out (may be nil). It
// returns false when an operator skipped the step, leaving out unset.
func (s *steps) run(ctx workflow.Context, name string, activity, in, out any) bool {
	return s.runWith(ctx, name, out, func() workflow.Future {
		return workflow.ExecuteActivity(s.activityOptions(ctx), activity, in)
	})
}

// runLocal is run with a local activity, which the workflow's own worker
// executes within the workflow task: one marker in the history instead of
// three activity events and the workflow task that follows them. Only for
// short, idempotent steps whose activity is registered on the workflow's
// worker. Its input is not serialized into the history at all.
func (s *steps) runLocal(ctx workflow.Context, name string, activity, in, out any) bool {
	return s.runWith(ctx, name, out, func() workflow.Future {
		return workflow.ExecuteLocalActivity(s.localActivityOptions(ctx), activity, in)
	})
}

func (s *steps) runWith(ctx workflow.Context, name string, out any, execute func() workflow.Future) bool {
	if id, ok := s.carried[name]; ok {
		// Parked in an earlier run: the operator answers, as if it had
		// parked just now.
		delete(s.carried, name)
		if s.await(ctx, name, id) == contract.SkipSignal {
			return false
		}
	}
	for {
		err := execute().Get(ctx, out)
		if err == nil {
			return true
		}
		if temporal.IsCanceledError(err) {
			// The run itself is being cancelled; nothing to park.
			return false
		}
		if s.park(ctx, name, err) == contract.SkipSignal {
			return false
		}
	}
}

// park records the failure, flags the workflow for ops and waits for an
// operator's retry or skip.
func (s *steps) park(ctx workflow.Context, name string, cause error) string {
	s.nextID++
	id := s.nextID
	p := ParkedStep{ID: id, Step: name, Error: failureMessage(cause), Since: workflow.Now(ctx)}
	*s.parked = append(*s.parked, p)
	s.attention(ctx)
	workflow.GetMetricsHandler(ctx).Counter("diditflow_steps_parked").Inc(1)
	workflow.GetLogger(ctx).Error("step parked: waiting for an operator's retry or skip signal",
		"step", name, "error", p.Error)

	return s.await(ctx, name, id)
}

// await waits for the operator's answer to parked step id and releases it.
func (s *steps) await(ctx workflow.Context, name string, id int) string {
	_ = workflow.Await(ctx, func() bool { _, ok := s.answers[id]; return ok })
	action := s.answers[id]
	delete(s.answers, id)
	*s.parked = slices.DeleteFunc(*s.parked, func(q ParkedStep) bool { return q.ID == id })
	s.attention(ctx)
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"action": action}).Counter("diditflow_steps_released").Inc(1)
	workflow.GetLogger(ctx).Info("parked step released", "step", name, "action", action)
	return action
}

// failureMessage is the innermost message of an activity failure: the
// activity's own words, without the SDK's wrapping.
func failureMessage(err error) string {
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		msg := "retry budget exhausted"
		var app *temporal.ApplicationError
		if errors.As(err, &app) {
			msg += "; last error: " + app.Error()
		}
		return msg
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Error()
	}
	return err.Error()
}
