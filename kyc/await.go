package kyc

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
)

// Outcome is a session's decided status.
type Outcome struct {
	SessionID string
	// Status is decided: Approved, Declined, Abandoned or Expired.
	Status Status
	// Sequence is the number of the status change that decided it, in the
	// session's sequence (see Event.Sequence).
	Sequence int64
	// At is when Didit decided it: the created_at of the event.
	At time.Time
}

// Subscription is a workflow waiting for a session. It is the input of
// SubscribeActivity and UnsubscribeActivity, as JSON, and the payload of
// the SubscribeSignal and UnsubscribeSignal they send the session workflow.
type Subscription struct {
	SessionID string `json:"session_id"`
	// WorkflowID and RunID name the waiting run: a run that continued as
	// new subscribes again, under its own run ID.
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// Until is when the subscriber stops waiting; the session forgets it
	// then, should its unsubscription never come.
	Until time.Time `json:"until"`
}

// Update is what a session tells a subscriber, the payload of the signal
// UpdateSignal(SessionID).
type Update struct {
	SessionID string `json:"session_id"`
	// Changes are what the subscriber has not been told yet, in Sequence
	// order: the session's current status when it subscribed, then every
	// status change after. A subscriber drops a change whose Sequence it
	// has seen: an update may come twice.
	Changes []Change `json:"changes,omitempty"`
	// Refused says why the session refused the subscription (it has
	// MaxSubscribers); no change follows.
	Refused string `json:"refused,omitempty"`
}

// Change is a session's status as one status change set it.
type Change struct {
	Sequence int64     `json:"sequence"`
	Status   Status    `json:"status"`
	At       time.Time `json:"at"`
}

// AwaitOutcome waits for the session to be decided and returns its decided
// status: where the session stands when the wait begins, if it is decided
// (however long ago), else the first decided status after. An outcome that
// came before the wait began (Didit sends a webhook at creation, and the
// user may finish before the workflow waits), webhooks duplicated or out of
// order, diditflow's worker crashing in between: none is missed. It returns
// an error wrapping ErrTimeout when timeout (which must be positive) passes
// first; a cancelled ctx ends the wait too.
//
// How: the call subscribes the workflow to the session (activity
// SubscribeActivity, which starts the session's workflow if none is open:
// a session decided last month answers from its records at once). The
// session tells a subscriber its current status when it subscribes and
// every status change after, once; this side drops what it has seen. A
// wait that ends without an outcome unsubscribes.
//
// One wait per session at a time in a workflow: two concurrent waits for
// the same session would share its updates. To continue as new while
// waiting, cancel the wait's context (it unsubscribes) and call
// AwaitOutcome again in the next run: it subscribes again and is told where
// the session stands.
func AwaitOutcome(ctx workflow.Context, sessionID string, timeout time.Duration) (Outcome, error) {
	if !didit.ValidSessionID(sessionID) {
		return Outcome{}, fmt.Errorf("kyc: await outcome: %q is not a Didit session ID", sessionID)
	}
	if timeout <= 0 {
		return Outcome{}, fmt.Errorf("kyc: await outcome of %s: the timeout must be positive, got %s", sessionID, timeout)
	}
	w := &waiter{sessionID: sessionID, seen: -1, updates: workflow.GetSignalChannel(ctx, contract.UpdateSignal(sessionID))}
	// What came after an earlier wait of this run ended is old news: the
	// subscription is told where the session stands now.
	var old Update
	for w.updates.ReceiveAsync(&old) {
	}
	info := workflow.GetInfo(ctx)
	sub := Subscription{SessionID: sessionID, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		Until: workflow.Now(ctx).Add(timeout)}
	queue := taskQueue(ctx)

	waitCtx, stop := workflow.WithCancel(ctx)
	defer stop()
	subscribing := workflow.ExecuteActivity(workflow.WithActivityOptions(waitCtx, workflow.ActivityOptions{
		TaskQueue:              queue,
		ScheduleToCloseTimeout: timeout,
		StartToCloseTimeout:    30 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	}), contract.SubscribeActivity, sub)
	deadline := workflow.NewTimer(waitCtx, timeout)
	for {
		var (
			upd               Update
			got, passed, done bool
			subErr            error
		)
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(w.updates, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &upd); got = true })
		if subscribing != nil {
			sel.AddFuture(subscribing, func(f workflow.Future) { subErr, done = f.Get(ctx, nil), true })
		}
		sel.AddFuture(deadline, func(workflow.Future) { passed = true })
		sel.Select(ctx)
		switch {
		case ctx.Err() != nil:
			unsubscribe(ctx, queue, sub)
			return Outcome{}, ctx.Err()
		case got && upd.Refused != "":
			return Outcome{}, fmt.Errorf("kyc: await outcome of %s: %w (%s)", sessionID, ErrTooManySubscribers, upd.Refused)
		case got:
			if out, ok := w.take(upd); ok {
				return out, nil
			}
		case done:
			subscribing = nil
			if subErr != nil && !temporal.IsTimeoutError(subErr) {
				return Outcome{}, fmt.Errorf("kyc: await outcome of %s: subscribe: %w", sessionID, subErr)
			}
		case passed:
			// An update that came with the deadline still counts.
			if out, ok := w.drain(); ok {
				return out, nil
			}
			unsubscribe(ctx, queue, sub)
			return Outcome{}, fmt.Errorf("kyc: await outcome of %s: %w", sessionID, ErrTimeout)
		}
	}
}

// waiter is the waiting side of a subscription: it takes the session's
// changes in order, once each.
type waiter struct {
	sessionID string
	updates   workflow.ReceiveChannel
	// seen is the highest Sequence taken; -1 before any (a session recorded
	// before sequences existed is at 0).
	seen int64
}

// take takes an update's changes and returns the first decided one.
func (w *waiter) take(u Update) (Outcome, bool) {
	for _, c := range u.Changes {
		if c.Sequence <= w.seen {
			continue
		}
		w.seen = c.Sequence
		if Decided(c.Status) {
			return Outcome{SessionID: w.sessionID, Status: c.Status, Sequence: c.Sequence, At: c.At}, true
		}
	}
	return Outcome{}, false
}

// drain takes the updates already received.
func (w *waiter) drain() (Outcome, bool) {
	for {
		var u Update
		if !w.updates.ReceiveAsync(&u) {
			return Outcome{}, false
		}
		if out, ok := w.take(u); ok {
			return out, true
		}
	}
}

// unsubscribe tells the session the wait is over, even when ctx was
// cancelled. Best effort: a session forgets a subscriber at its Until.
func unsubscribe(ctx workflow.Context, queue string, sub Subscription) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              queue,
		ScheduleToCloseTimeout: time.Minute,
		StartToCloseTimeout:    10 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second},
	})
	if err := workflow.ExecuteActivity(ctx, contract.UnsubscribeActivity, sub).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("kyc: unsubscribe failed; the session forgets the subscriber at its deadline",
			"session_id", sub.SessionID, "error", err)
	}
}
