package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
)

// purgeEnv runs a Purge workflow with its pages mocked.
func purgeEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *activities.Activities) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	a := &activities.Activities{}
	env.RegisterActivity(a)
	w := &Workflows{Settings: DefaultSettings()}
	env.RegisterWorkflowWithOptions(w.Purge, workflow.RegisterOptions{Name: "Purge"})
	return env, a
}

var purgeParams = PurgeParams{RecordRetention: 90 * 24 * time.Hour, AMLRetention: 5 * 365 * 24 * time.Hour, PageSize: 2}

// TestPurgePagesSessionsThenAMLCases: sessions page by page until a page
// comes back short, then the AML cases; both cut-offs are the retentions
// before the run's start, the same on every page.
func TestPurgePagesSessionsThenAMLCases(t *testing.T) {
	env, a := purgeEnv(t)
	start := env.Now()
	var order []string
	sessions := []activities.PurgeCounts{{Records: 2, Notifications: 3}, {Records: 2, VendorDataHeld: 1}, {Records: 1}}
	env.OnActivity(a.PurgeSessions, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PurgeStep) (activities.PurgeCounts, error) {
			if !in.ClosedBefore.Equal(start.Add(-purgeParams.RecordRetention)) || in.Limit != 2 {
				t.Errorf("sessions page %+v, want closed before %v, limit 2", in, start.Add(-purgeParams.RecordRetention))
			}
			order = append(order, "sessions")
			got := sessions[0]
			sessions = sessions[1:]
			return got, nil
		})
	env.OnActivity(a.PurgeAMLCases, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PurgeStep) (activities.PurgeCounts, error) {
			if !in.ClosedBefore.Equal(start.Add(-purgeParams.AMLRetention)) {
				t.Errorf("aml page %+v, want closed before %v", in, start.Add(-purgeParams.AMLRetention))
			}
			order = append(order, "aml_cases")
			return activities.PurgeCounts{Records: 1, VendorDataReleased: 1}, nil
		})

	env.ExecuteWorkflow("Purge", PurgeInput{Params: purgeParams})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed %v, error %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var sum PurgeSummary
	if err := env.GetWorkflowResult(&sum); err != nil {
		t.Fatal(err)
	}
	want := PurgeSummary{Sessions: 5, Notifications: 3, AMLCases: 1, VendorDataHeld: 1, VendorDataReleased: 1, Pages: 4}
	if sum != want {
		t.Fatalf("summary %+v, want %+v", sum, want)
	}
	if len(order) != 4 || order[2] != "sessions" || order[3] != "aml_cases" {
		t.Fatalf("pages %q, want three of sessions then one of aml cases", order)
	}
}

// TestPurgeFailsWithoutLosingWhatItDid: a page that fails after its
// retries fails the run, and the AML cases wait for the next one.
func TestPurgeFailsWithoutLosingWhatItDid(t *testing.T) {
	env, a := purgeEnv(t)
	env.OnActivity(a.PurgeSessions, mock.Anything, mock.Anything).Return(activities.PurgeCounts{},
		temporal.NewNonRetryableApplicationError("purge closed sessions: database is locked", "Permanent", nil))
	aml := false
	env.OnActivity(a.PurgeAMLCases, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.PurgeStep) (activities.PurgeCounts, error) {
			aml = true
			return activities.PurgeCounts{}, nil
		})
	env.ExecuteWorkflow("Purge", PurgeInput{Params: purgeParams})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || aml {
		t.Fatalf("error %v, aml cases purged %v; want the run failed before them", err, aml)
	}
}

// TestPurgeContinuesAsNewOnALongBacklog: a backlog long enough to grow the
// history past purgeHistoryLimit continues as new with its cut-offs and
// counts, so the next run purges what this one chose.
func TestPurgeContinuesAsNewOnALongBacklog(t *testing.T) {
	env, a := purgeEnv(t)
	pages := 0
	env.OnActivity(a.PurgeSessions, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.PurgeStep) (activities.PurgeCounts, error) {
			// The test environment counts no history: say it grew.
			if pages++; pages == 3 {
				env.SetCurrentHistoryLength(purgeHistoryLimit + 1)
			}
			return activities.PurgeCounts{Records: 2}, nil
		})
	progress := &PurgeProgress{SessionsBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		CasesBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Phase: purgeSessions, Summary: PurgeSummary{Sessions: 10, Pages: 5}}
	env.ExecuteWorkflow("Purge", PurgeInput{Params: purgeParams, Progress: progress})
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("error %v, want continue-as-new after %d pages", err, pages)
	}
	var next PurgeInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	p := next.Progress
	if p == nil || !p.SessionsBefore.Equal(progress.SessionsBefore) || !p.CasesBefore.Equal(progress.CasesBefore) ||
		p.Phase != purgeSessions || p.Summary.Pages != 5+pages || p.Summary.Sessions != 10+2*pages || next.Params != purgeParams {
		t.Fatalf("carried over %+v (params %+v) after %d pages", p, next.Params, pages)
	}
	if pages != 3 {
		t.Fatalf("continued as new after %d pages, want 3", pages)
	}
}
