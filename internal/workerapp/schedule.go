package workerapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
	created, err := ensureSchedule(ctx, c, opts)
	if err != nil {
		return err
	}
	log.Info("reconcile schedule "+createdOrUpdated(created), "schedule_id", opts.ID,
		"every", cfg.ReconcileInterval.String(), "lookback", cfg.ReconcileLookback.String())
	return nil
}

func createdOrUpdated(created bool) string {
	if created {
		return "created"
	}
	return "updated"
}

// ensureSchedule creates the schedule opts or, if it exists, sets its spec,
// action and policies to opts' and leaves the rest as it is: an operator's
// pause (its state) and its note stay.
func ensureSchedule(ctx context.Context, c client.Client, opts client.ScheduleOptions) (created bool, err error) {
	_, err = c.ScheduleClient().Create(ctx, opts)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return false, fmt.Errorf("create schedule %s: %w", opts.ID, err)
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
		return false, fmt.Errorf("update schedule %s: %w", opts.ID, err)
	}
	return false, nil
}

// SetUpSchedules sets up the worker's schedules, each on its own so that
// neither holds up the other: EnsureReconcileSchedule and the purge schedule
// (SetUpPurgeSchedule), each tried until it succeeds or ctx ends, every
// retry after the first failure: a worker that starts while Temporal is
// briefly away, or races another worker's update, still sets them up. Each
// failure is logged as an error, since until then nothing is reconciled or
// purged.
func SetUpSchedules(ctx context.Context, c client.Client, cfg config.Worker, log *slog.Logger, retry time.Duration) {
	var wg sync.WaitGroup
	wg.Go(func() { SetUpPurgeSchedule(ctx, c, cfg, log, retry) })
	retryUntilSetUp(ctx, log, retry, "reconcile schedule not set up yet: missed webhooks are not repaired until it is",
		func(ctx context.Context) error { return EnsureReconcileSchedule(ctx, c, cfg, log) })
	wg.Wait()
}

// retryUntilSetUp runs ensure until it succeeds or ctx ends, logging each
// failure as an error with what it means.
func retryUntilSetUp(ctx context.Context, log *slog.Logger, retry time.Duration, meaning string, ensure func(context.Context) error) {
	for {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := ensure(actx)
		cancel()
		if err == nil {
			return
		}
		log.Error(meaning, "error", err, "retry_in", retry.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

// PurgeSchedule is the schedule that starts a purge run every
// PURGE_INTERVAL, on the session workflows' queue. A run still going when
// the next is due makes it skip; after an outage one run catches up, as
// each purges everything due at its start.
func PurgeSchedule(cfg config.Worker) client.ScheduleOptions {
	return client.ScheduleOptions{
		ID:   contract.PurgeScheduleID,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cfg.PurgeInterval}}},
		Action: &client.ScheduleWorkflowAction{
			ID:        contract.PurgeWorkflowID,
			Workflow:  contract.PurgeWorkflowType,
			Args:      []any{workflows.PurgeInput{Params: PurgeParams(cfg)}},
			TaskQueue: cfg.TaskQueue,
		},
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: max(cfg.PurgeInterval, time.Minute),
		Note:          "diditflow: removes personal data past RECORD_RETENTION and AML_RECORD_RETENTION (managed by the worker; edits are overwritten at its next start)",
	}
}

// PurgeParams are the purge runs' settings from the configuration.
func PurgeParams(cfg config.Worker) workflows.PurgeParams {
	return workflows.PurgeParams{RecordRetention: cfg.RecordRetention, AMLRetention: cfg.AMLRecordRetention,
		PageSize: workflows.DefaultPurgePageSize}
}

// EnsurePurgeSchedule creates the purge schedule or, if it exists, sets it
// to this worker's configuration, keeping an operator's pause; doing it
// again changes nothing. Unlike reconciliation, the purge needs no Didit
// API key: it always runs.
func EnsurePurgeSchedule(ctx context.Context, c client.Client, cfg config.Worker, log *slog.Logger) error {
	opts := PurgeSchedule(cfg)
	created, err := ensureSchedule(ctx, c, opts)
	if err != nil {
		return err
	}
	log.Info("purge schedule "+createdOrUpdated(created), "schedule_id", opts.ID,
		"every", cfg.PurgeInterval.String(), "record_retention", cfg.RecordRetention.String(),
		"aml_record_retention", cfg.AMLRecordRetention.String())
	return nil
}

// SetUpPurgeSchedule is EnsurePurgeSchedule tried until it succeeds or ctx
// ends, as SetUpSchedules does for the reconcile schedule.
func SetUpPurgeSchedule(ctx context.Context, c client.Client, cfg config.Worker, log *slog.Logger, retry time.Duration) {
	retryUntilSetUp(ctx, log, retry, "purge schedule not set up yet: personal data past its retention is not removed until it is",
		func(ctx context.Context) error { return EnsurePurgeSchedule(ctx, c, cfg, log) })
}
