package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/diditflow/diditflow/activities"
)

// reconcileEnv runs a Reconcile workflow with its steps mocked.
func reconcileEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *activities.Reconciler) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	rec := &activities.Reconciler{}
	env.RegisterActivity(rec)
	w := &Workflows{Settings: DefaultSettings()}
	env.RegisterWorkflow(w.Reconcile)
	return env, rec
}

var reconcileParams = ReconcileParams{Lookback: 24 * time.Hour, StaleAfter: 24 * time.Hour, PageSize: 100, MaxCalls: 1000, Queue: "rq"}

func runReconcile(t *testing.T, env *testsuite.TestWorkflowEnvironment, params ReconcileParams) (activities.ReconcileSummary, error) {
	t.Helper()
	env.ExecuteWorkflow((&Workflows{}).Reconcile, ReconcileInput{Params: params})
	if !env.IsWorkflowCompleted() {
		t.Fatal("reconcile did not complete")
	}
	var sum activities.ReconcileSummary
	err := env.GetWorkflowError()
	if err == nil {
		if err := env.GetWorkflowResult(&sum); err != nil {
			t.Fatal(err)
		}
	}
	return sum, err
}

// TestReconcileRunsEveryPathInOrder: deliveries of each destination page by
// page, then the sessions of the window, then the stale ones; the window is
// the lookback before the run's start.
func TestReconcileRunsEveryPathInOrder(t *testing.T) {
	env, rec := reconcileEnv(t)
	var order []string
	var finished activities.ReconcileSummary
	env.OnActivity(rec.ReconcileTargets, mock.Anything, "").Return(activities.ReconcileTargets{Enabled: true, Destinations: []string{"d1", "d2"}}, nil)
	env.OnActivity(rec.ReconcileDeliveries, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeliveriesStep) (activities.StepResult, error) {
			if in.To.Sub(in.From) != 24*time.Hour || in.PageSize != 100 {
				t.Errorf("window %s..%s, page %d", in.From, in.To, in.PageSize)
			}
			order = append(order, "deliveries "+in.Destination+" "+in.Cursor)
			if in.Destination == "d1" && in.Cursor == "" {
				return activities.StepResult{Examined: 100, Repaired: 2, Calls: 5, Next: "p2"}, nil
			}
			return activities.StepResult{Examined: 10, Calls: 1}, nil
		})
	env.OnActivity(rec.ReconcileSessions, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SessionsStep) (activities.StepResult, error) {
			if in.Legacy {
				t.Error("legacy with destinations")
			}
			order = append(order, "sessions")
			return activities.StepResult{Examined: 7, Repaired: 1, Calls: 2}, nil
		})
	stale := 0
	env.OnActivity(rec.ReconcileStale, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.StaleStep) (activities.StepResult, error) {
			order = append(order, "stale")
			if stale++; stale == 1 {
				return activities.StepResult{Examined: 100, Calls: 100, Next: "more"}, nil
			}
			return activities.StepResult{Examined: 3, Repaired: 1, Calls: 3}, nil
		})
	env.OnActivity(rec.ReconcileFinished, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReconcileFinish) error {
			finished = in.Summary
			return nil
		})

	sum, err := runReconcile(t, env, reconcileParams)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"deliveries d1 ", "deliveries d1 p2", "deliveries d2 ", "sessions", "stale", "stale"}
	if len(order) != len(want) {
		t.Fatalf("steps %q, want %q", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("steps %q, want %q", order, want)
		}
	}
	if sum.Result != "ok" || sum.Calls != 112 || sum.Examined["deliveries"] != 120 || sum.Repaired["deliveries"] != 2 ||
		sum.Repaired["sessions"] != 1 || sum.Examined["stale"] != 103 || finished.Calls != sum.Calls {
		t.Fatalf("summary %+v, finished %+v", sum, finished)
	}
}

// TestReconcileWithoutDestinationsReadsSessionsTheLegacyWay and ends early
// without a key.
func TestReconcileWithoutDestinations(t *testing.T) {
	env, rec := reconcileEnv(t)
	env.OnActivity(rec.ReconcileTargets, mock.Anything, "").Return(activities.ReconcileTargets{Enabled: true}, nil)
	legacy := false
	env.OnActivity(rec.ReconcileSessions, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SessionsStep) (activities.StepResult, error) {
			legacy = in.Legacy
			return activities.StepResult{Calls: 1}, nil
		})
	env.OnActivity(rec.ReconcileStale, mock.Anything, mock.Anything).Return(activities.StepResult{}, nil)
	env.OnActivity(rec.ReconcileFinished, mock.Anything, mock.Anything).Return(nil)
	if _, err := runReconcile(t, env, reconcileParams); err != nil || !legacy {
		t.Fatalf("legacy %v, err %v", legacy, err)
	}

	env, rec = reconcileEnv(t)
	env.OnActivity(rec.ReconcileTargets, mock.Anything, "").Return(activities.ReconcileTargets{}, nil)
	env.OnActivity(rec.ReconcileFinished, mock.Anything, mock.Anything).Return(nil)
	if sum, err := runReconcile(t, env, reconcileParams); err != nil || sum.Result != "off" {
		t.Fatalf("no key: %+v, %v", sum, err)
	}
}

// TestReconcileCapsEachPathAndGoesOnAfterAFailure: a path past
// RECONCILE_MAX_CALLS stops for this run and the next path goes on; a path
// whose step gives up does not stop the others, and the run shows failed;
// a refused key ends the run.
func TestReconcileCapsEachPathAndGoesOnAfterAFailure(t *testing.T) {
	env, rec := reconcileEnv(t)
	env.OnActivity(rec.ReconcileTargets, mock.Anything, "").Return(activities.ReconcileTargets{Enabled: true, Destinations: []string{"d1"}}, nil)
	env.OnActivity(rec.ReconcileDeliveries, mock.Anything, mock.Anything).Return(activities.StepResult{Calls: 60, Next: "again"}, nil)
	env.OnActivity(rec.ReconcileSessions, mock.Anything, mock.Anything).Return(activities.StepResult{Calls: 1}, nil)
	env.OnActivity(rec.ReconcileStale, mock.Anything, mock.Anything).Return(activities.StepResult{Calls: 2}, nil)
	env.OnActivity(rec.ReconcileFinished, mock.Anything, mock.Anything).Return(nil)
	params := reconcileParams
	params.MaxCalls = 100
	if sum, err := runReconcile(t, env, params); err != nil || sum.Result != "capped" || sum.Calls != 123 ||
		len(sum.Capped) != 1 || sum.Capped[0] != "deliveries" {
		t.Fatalf("capped: %+v, %v", sum, err)
	}

	env, rec = reconcileEnv(t)
	env.OnActivity(rec.ReconcileTargets, mock.Anything, "").Return(activities.ReconcileTargets{Enabled: true, Destinations: []string{"d1"}}, nil)
	env.OnActivity(rec.ReconcileDeliveries, mock.Anything, mock.Anything).Return(activities.StepResult{},
		temporal.NewApplicationError("didit api destination deliveries: server (HTTP 502)", "DiditAPI"))
	stale := false
	env.OnActivity(rec.ReconcileSessions, mock.Anything, mock.Anything).Return(activities.StepResult{Calls: 1, Repaired: 1}, nil)
	env.OnActivity(rec.ReconcileStale, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.StaleStep) (activities.StepResult, error) {
			stale = true
			return activities.StepResult{}, nil
		})
	env.OnActivity(rec.ReconcileFinished, mock.Anything, mock.Anything).Return(nil)
	var result activities.ReconcileSummary
	_, err := runReconcile(t, env, reconcileParams)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != "ReconcileFailed" || !stale {
		t.Fatalf("a failed path: %v, stale ran %v", err, stale)
	}
	if appErr.Details(&result) != nil || result.Repaired["sessions"] != 1 || !strings.HasPrefix(result.Failure, "deliveries: ") {
		t.Fatalf("failed run's summary %+v", result)
	}

	env, rec = reconcileEnv(t)
	env.OnActivity(rec.ReconcileTargets, mock.Anything, "").Return(activities.ReconcileTargets{},
		temporal.NewNonRetryableApplicationError("didit api destinations: credentials (HTTP 403)", activities.ErrTypeDiditCredentials, nil))
	var finished activities.ReconcileSummary
	env.OnActivity(rec.ReconcileFinished, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReconcileFinish) error { finished = in.Summary; return nil })
	_, err = runReconcile(t, env, reconcileParams)
	if !errors.As(err, &appErr) || appErr.Type() != "ReconcileFailed" || finished.Result != "failed" {
		t.Fatalf("refused key: %v, finished %+v", err, finished)
	}
}
