package workerapp

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/workflows"
)

func TestMain(m *testing.M) {
	code := m.Run()
	launch.StopTemporal()
	os.Exit(code)
}

// TestPurgeScheduleKeepsAnOperatorsPause: the worker's one call sets up the
// purge schedule without a Didit API key (the reconcile schedule it leaves
// alone); setting it up again with new settings updates its spec and
// action and keeps an operator's pause.
func TestPurgeScheduleKeepsAnOperatorsPause(t *testing.T) {
	tc := launch.Temporal(t)
	ctx := t.Context()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	cfg := config.Worker{TaskQueue: "schedule-test", PurgeInterval: 24 * time.Hour,
		RecordRetention: 90 * 24 * time.Hour, AMLRecordRetention: 43800 * time.Hour, ReconcileInterval: 15 * time.Minute}

	setUp, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	SetUpSchedules(setUp, tc, cfg, log, time.Second)
	purge := tc.ScheduleClient().GetHandle(ctx, contract.PurgeScheduleID)
	d := describe(t, purge)
	action := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if got := d.Schedule.Spec.Intervals; len(got) != 1 || got[0].Every != 24*time.Hour ||
		action.Workflow != contract.PurgeWorkflowType || action.TaskQueue != "schedule-test" {
		t.Fatalf("purge schedule: every %v, action %+v", got, action)
	}
	var in workflows.PurgeInput
	if err := launch.Codec().DataConverter().FromPayload(action.Args[0].(*commonpb.Payload), &in); err != nil {
		t.Fatal(err)
	}
	if in.Params != (workflows.PurgeParams{RecordRetention: cfg.RecordRetention, AMLRetention: cfg.AMLRecordRetention,
		PageSize: workflows.DefaultPurgePageSize}) || in.Progress != nil {
		t.Fatalf("purge input %+v", in)
	}
	if _, err := tc.ScheduleClient().GetHandle(ctx, contract.ReconcileScheduleID).Describe(ctx); err == nil {
		t.Fatal("reconcile schedule created without DIDIT_API_KEY")
	}

	if err := purge.Pause(ctx, client.SchedulePauseOptions{Note: "an operator's pause"}); err != nil {
		t.Fatal(err)
	}
	cfg.PurgeInterval = 6 * time.Hour
	if err := EnsurePurgeSchedule(ctx, tc, cfg, log); err != nil {
		t.Fatal(err)
	}
	d = describe(t, purge)
	if !d.Schedule.State.Paused || d.Schedule.Spec.Intervals[0].Every != 6*time.Hour {
		t.Fatalf("after an update: paused %v, every %v; want paused, every 6h", d.Schedule.State.Paused, d.Schedule.Spec.Intervals)
	}
}

func describe(t *testing.T, h client.ScheduleHandle) *client.ScheduleDescription {
	t.Helper()
	d, err := h.Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return d
}
