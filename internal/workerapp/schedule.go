package workerapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/workflows"
)

// ReconcileSchedule is the schedule that starts a reconcile run every
// RECONCILE_INTERVAL. A run still going when the next is due makes it skip
// (a long backlog is worked through by one run at a time), and missed runs
// are not caught up one by one after an outage: the next run reads the
// whole lookback anyway.
func ReconcileSchedule(cfg config.Worker) client.ScheduleOptions {
	return client.ScheduleOptions{
		ID:   contract.ReconcileScheduleID,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cfg.ReconcileInterval}}},
		Action: &client.ScheduleWorkflowAction{
			ID:        contract.ReconcileWorkflowID,
			Workflow:  contract.ReconcileWorkflowType,
			Args:      []any{workflows.ReconcileInput{Params: ReconcileParams(cfg)}},
			TaskQueue: cfg.TaskQueue,
		},
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: max(cfg.ReconcileInterval, time.Minute),
		Note:          "diditflow: asks Didit what the webhooks missed (managed by the worker; edits are overwritten at its next start)",
	}
}

// EnsureReconcileSchedule creates the reconcile schedule or, if it exists,
// sets it to this worker's configuration; every worker does it at start, and
// doing it again changes nothing. Without an API key it leaves the schedule
// as it is: runs started by it then end at once, saying the API is off.
func EnsureReconcileSchedule(ctx context.Context, c client.Client, cfg config.Worker, log *slog.Logger) error {
	if cfg.DiditAPIKey == "" {
		log.Info("reconcile schedule left alone: DIDIT_API_KEY unset", "schedule_id", contract.ReconcileScheduleID)
		return nil
	}
	opts := ReconcileSchedule(cfg)
	_, err := c.ScheduleClient().Create(ctx, opts)
	if err == nil {
		log.Info("reconcile schedule created", "schedule_id", opts.ID, "every", cfg.ReconcileInterval.String(),
			"lookback", cfg.ReconcileLookback.String())
		return nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create schedule %s: %w", opts.ID, err)
	}
	err = c.ScheduleClient().GetHandle(ctx, opts.ID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec = &opts.Spec
			s.Action = opts.Action
			if s.Policy == nil {
				s.Policy = &client.SchedulePolicies{}
			}
			s.Policy.Overlap = opts.Overlap
			s.Policy.CatchupWindow = opts.CatchupWindow
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update schedule %s: %w", opts.ID, err)
	}
	log.Info("reconcile schedule updated", "schedule_id", opts.ID, "every", cfg.ReconcileInterval.String(),
		"lookback", cfg.ReconcileLookback.String())
	return nil
}

// SetUpReconcileSchedule is EnsureReconcileSchedule tried until it
// succeeds or ctx ends, every retry after the first failure: a worker that
// starts while Temporal is briefly away, or races another worker's update,
// still sets the schedule up. Each failure is logged as an error, since
// until then nothing is reconciled.
func SetUpReconcileSchedule(ctx context.Context, c client.Client, cfg config.Worker, log *slog.Logger, retry time.Duration) {
	for {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := EnsureReconcileSchedule(actx, c, cfg, log)
		cancel()
		if err == nil {
			return
		}
		log.Error("reconcile schedule not set up yet: missed webhooks are not repaired until it is", "error", err, "retry_in", retry.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}
