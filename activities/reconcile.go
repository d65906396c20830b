package activities

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/time/rate"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/reconcile"
	"github.com/diditflow/diditflow/internal/temporalclient"
)

// The reconcile activities' inputs and results, as workflows.Reconcile
// names them; internal/reconcile defines them.
type (
	ReconcileTargets = reconcile.Targets
	DeliveriesStep   = reconcile.DeliveriesStep
	SessionsStep     = reconcile.SessionsStep
	StaleStep        = reconcile.StaleStep
	StepResult       = reconcile.StepResult
	ReconcileSummary = reconcile.Summary
	ReconcileFinish  = reconcile.Finish
)

// Signaler hands an event to its session's workflow (client.Client).
type Signaler interface {
	SignalWithStartWorkflow(ctx context.Context, workflowID, signalName string, signalArg any,
		options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error)
}

// Reconciler holds the reconcile activities, the steps of a reconcile run:
// each runs one step of internal/reconcile's Engine, heartbeating before
// every Didit call, and turns the Didit failure that stops it into what
// Temporal should do.
type Reconciler struct {
	API   reconcile.API
	Store reconcile.Store
	// Temporal receives the missed events, on TaskQueue, the session
	// workflows' queue.
	Temporal  Signaler
	TaskQueue string
	// Limiter paces the Didit calls; nil does not pace them.
	Limiter *rate.Limiter
	Metrics *Metrics
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ErrTypeDiditCredentials is the failure type of a step Didit refused our
// API key for (401/403).
const ErrTypeDiditCredentials = "DiditAPIcredentials"

func (r *Reconciler) engine() *reconcile.Engine {
	e := &reconcile.Engine{API: r.API, Store: r.Store, Feed: sessionSignal{r.Temporal, r.TaskQueue},
		Pacer: heartbeat{r.Limiter}, Logger: r.Logger, Now: r.Now}
	if r.Metrics != nil {
		e.Metrics = r.Metrics
	}
	return e
}

// ReconcileTargets lists the destinations to read: the configured one, or
// every enabled destination.
func (r *Reconciler) ReconcileTargets(ctx context.Context, configured string) (ReconcileTargets, error) {
	t, err := r.engine().Targets(ctx, configured)
	return t, stepError(err)
}

// ReconcileDeliveries feeds the failed deliveries of one page of a
// destination's delivery log (reconcile.Engine.Deliveries).
func (r *Reconciler) ReconcileDeliveries(ctx context.Context, in DeliveriesStep) (StepResult, error) {
	res, err := r.engine().Deliveries(ctx, in)
	return res, stepError(err)
}

// ReconcileSessions brings up to date the sessions of one page of those
// created in the window (reconcile.Engine.Sessions).
func (r *Reconciler) ReconcileSessions(ctx context.Context, in SessionsStep) (StepResult, error) {
	res, err := r.engine().Sessions(ctx, in)
	return res, stepError(err)
}

// ReconcileStale checks the sessions that have not moved for a while
// against their decision (reconcile.Engine.Stale).
func (r *Reconciler) ReconcileStale(ctx context.Context, in StaleStep) (StepResult, error) {
	res, err := r.engine().Stale(ctx, in)
	return res, stepError(err)
}

// ReconcileFinished prunes settled deliveries older than any window will
// read again, then counts the run and logs its totals.
func (r *Reconciler) ReconcileFinished(ctx context.Context, in ReconcileFinish) error {
	return r.engine().Finished(ctx, in)
}

// stepError turns a Didit failure that stopped a step into the activity's
// failure: refused credentials fail for good (the run ends and says so),
// anything else is retried, a 429 after Didit's Retry-After. Other errors
// (the records, Temporal) are retried as they are.
func stepError(err error) error {
	var e *api.Error
	switch {
	case !errors.As(err, &e):
		return err
	case e.Kind == api.KindCredentials:
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeDiditCredentials, nil)
	}
	return apiRetryError(err)
}

// heartbeat records a heartbeat before each Didit call, so a step waiting
// for its share of Didit's budget is seen alive, then paces the call.
type heartbeat struct{ limiter *rate.Limiter }

func (h heartbeat) Wait(ctx context.Context) error {
	activity.RecordHeartbeat(ctx)
	if h.limiter == nil {
		return nil
	}
	return h.limiter.Wait(ctx)
}

// sessionSignal feeds an event the receiver missed as the receiver does:
// SignalWithStart of the session's workflow.
type sessionSignal struct {
	temporal  Signaler
	taskQueue string
}

func (s sessionSignal) Feed(ctx context.Context, se contract.SessionEvent) error {
	sid := se.Event.SessionID
	_, err := s.temporal.SignalWithStartWorkflow(ctx, contract.SessionWorkflowID(sid), contract.EventSignal, se,
		temporalclient.SessionStartOptions(sid, se.Event.Status, s.taskQueue), contract.SessionWorkflowType, contract.SessionStart{SessionID: sid})
	return err
}
