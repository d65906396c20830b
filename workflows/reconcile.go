package workflows

import (
	"errors"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
)

// ReconcileParams are a reconcile run's settings. The worker writes them
// into the schedule's action, so the Temporal UI shows them and a worker
// restarted with new settings updates them.
type ReconcileParams struct {
	// Lookback is the window read back from the run's start.
	Lookback time.Duration `json:"lookback"`
	// StaleAfter is how long a session may sit in a status that is not
	// final before its decision is checked.
	StaleAfter time.Duration `json:"stale_after"`
	// Destination is the webhook destination whose deliveries are read;
	// empty reads every enabled one.
	Destination string `json:"destination,omitempty"`
	// PageSize is the page size of the lists read.
	PageSize int `json:"page_size"`
	// MaxCalls caps the Didit calls of each path of a run (deliveries,
	// sessions, stale); the next run goes on.
	MaxCalls int `json:"max_calls"`
	// Queue is the reconcile activities' task queue.
	Queue string `json:"queue"`
	// StepTimeout bounds one step (start to close); zero means 15 minutes.
	StepTimeout time.Duration `json:"step_timeout,omitempty"`
}

// ReconcileInput starts a Reconcile run: the schedule's parameters and,
// after a continue-as-new, how far the run got.
type ReconcileInput struct {
	Params   ReconcileParams    `json:"params"`
	Progress *ReconcileProgress `json:"progress,omitempty"`
}

// ReconcileProgress is where a run is: only IDs, cursors and counts.
type ReconcileProgress struct {
	From    time.Time                   `json:"from"`
	To      time.Time                   `json:"to"`
	Targets activities.ReconcileTargets `json:"targets"`
	Phase   string                      `json:"phase"`
	// Dest indexes Targets.Destinations in the deliveries phase.
	Dest   int    `json:"dest,omitempty"`
	Cursor string `json:"cursor,omitempty"`
	// PhaseCalls counts the current path's calls, against MaxCalls.
	PhaseCalls int                         `json:"phase_calls,omitempty"`
	Summary    activities.ReconcileSummary `json:"summary"`
}

// The phases of a run, in order.
const (
	phaseTargets    = "targets"
	phaseDeliveries = "deliveries"
	phaseSessions   = "sessions"
	phaseStale      = "stale"
	phaseDone       = "done"
)

// reconcileHistoryLimit is the history length past which a run continues
// as new, well under Temporal's own limits: a step costs about six events.
const reconcileHistoryLimit = 1500

// Reconcile asks Didit what the webhooks missed over the lookback and feeds
// it into the sessions: (a) failed deliveries, by their delivered body; (b)
// sessions created in the window that we never saw or hold in another
// status, by their decision; (c) sessions stuck in a status that is not
// final, by their decision, with a per-session backoff. Each step is one
// activity reading one page; steps run one at a time, which keeps every
// worker together inside the reconcile share of Didit's budget.
func (w *Workflows) Reconcile(ctx workflow.Context, in ReconcileInput) (activities.ReconcileSummary, error) {
	p := in.Progress
	if p == nil {
		now := workflow.Now(ctx)
		p = &ReconcileProgress{From: now.Add(-in.Params.Lookback), To: now, Phase: phaseTargets}
	}
	if p.Summary.Examined == nil {
		p.Summary.Examined = map[string]int{}
	}
	if p.Summary.Repaired == nil {
		p.Summary.Repaired = map[string]int{}
	}
	timeout := in.Params.StepTimeout
	if timeout <= 0 {
		timeout = 15 * time.Minute
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           in.Params.Queue,
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 2 * time.Minute,
			MaximumAttempts:        6,
			NonRetryableErrorTypes: []string{activities.ErrTypeDiditCredentials},
		},
	})
	var rec *activities.Reconciler
	var failures []string
	for p.Phase != phaseDone {
		if workflow.GetInfo(ctx).GetCurrentHistoryLength() > reconcileHistoryLimit {
			return activities.ReconcileSummary{}, workflow.NewContinueAsNewError(ctx, w.Reconcile, ReconcileInput{Params: in.Params, Progress: p})
		}
		phase := p.Phase
		err := reconcileStep(actx, rec, in.Params, p)
		if err != nil {
			// The path gives up for this run and the next path goes on,
			// unless Didit refused the key, which every path needs.
			failures = append(failures, phase+": "+err.Error())
			var appErr *temporal.ApplicationError
			if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeDiditCredentials || phase == phaseTargets {
				break
			}
			nextPhase(p)
			continue
		}
		if p.Phase == phase && p.PhaseCalls >= in.Params.MaxCalls {
			p.Summary.Capped = append(p.Summary.Capped, phase)
			nextPhase(p)
		}
	}
	switch {
	case len(failures) > 0:
		p.Summary.Result, p.Summary.Failure = "failed", strings.Join(failures, "; ")
	case p.Summary.Result == "" && len(p.Summary.Capped) > 0:
		p.Summary.Result = "capped"
	case p.Summary.Result == "":
		p.Summary.Result = "ok"
	}
	// Settled deliveries older than the window (whose dates are whole days)
	// are never read again.
	finish := activities.ReconcileFinish{Summary: p.Summary, PruneBefore: p.From.Add(-72 * time.Hour)}
	if err := workflow.ExecuteActivity(actx, rec.ReconcileFinished, finish).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("reconcile: finishing the run failed", "error", err)
	}
	if p.Summary.Result == "failed" {
		return p.Summary, temporal.NewNonRetryableApplicationError("reconcile run failed: "+p.Summary.Failure, "ReconcileFailed", nil, p.Summary)
	}
	return p.Summary, nil
}

// nextPhase moves p to the path after its current one.
func nextPhase(p *ReconcileProgress) {
	p.Cursor, p.PhaseCalls = "", 0
	switch p.Phase {
	case phaseDeliveries:
		if p.Dest++; p.Dest < len(p.Targets.Destinations) {
			return
		}
		p.Phase = phaseSessions
	case phaseSessions:
		p.Phase = phaseStale
	default:
		p.Phase = phaseDone
	}
}

// reconcileStep runs the next step of the run and moves p on.
func reconcileStep(ctx workflow.Context, rec *activities.Reconciler, params ReconcileParams, p *ReconcileProgress) error {
	var res activities.StepResult
	path := p.Phase
	switch p.Phase {
	case phaseTargets:
		if err := workflow.ExecuteActivity(ctx, rec.ReconcileTargets, params.Destination).Get(ctx, &p.Targets); err != nil {
			return err
		}
		switch {
		case !p.Targets.Enabled:
			p.Summary.Result, p.Phase = "off", phaseDone
		case len(p.Targets.Destinations) == 0:
			p.Phase = phaseSessions
		default:
			p.Phase = phaseDeliveries
		}
		return nil
	case phaseDeliveries:
		in := activities.DeliveriesStep{Destination: p.Targets.Destinations[p.Dest], From: p.From, To: p.To,
			Cursor: p.Cursor, PageSize: params.PageSize}
		if err := workflow.ExecuteActivity(ctx, rec.ReconcileDeliveries, in).Get(ctx, &res); err != nil {
			return err
		}
		p.Cursor = res.Next
	case phaseSessions:
		in := activities.SessionsStep{From: p.From, To: p.To, Cursor: p.Cursor, PageSize: params.PageSize,
			Legacy: len(p.Targets.Destinations) == 0}
		if err := workflow.ExecuteActivity(ctx, rec.ReconcileSessions, in).Get(ctx, &res); err != nil {
			return err
		}
		p.Cursor = res.Next
	case phaseStale:
		in := activities.StaleStep{StaleAfter: params.StaleAfter, Limit: params.PageSize}
		if err := workflow.ExecuteActivity(ctx, rec.ReconcileStale, in).Get(ctx, &res); err != nil {
			return err
		}
		p.Cursor = res.Next
	}
	p.PhaseCalls += res.Calls
	if res.Next == "" {
		nextPhase(p)
	}
	p.Summary.Examined[path] += res.Examined
	p.Summary.Repaired[path] += res.Repaired
	p.Summary.Errors += res.Errors
	p.Summary.Calls += res.Calls
	return nil
}
