package kyctest_test

import (
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/kyc"
	"github.com/diditflow/diditflow/kyctest"
)

// result is what onboarding makes of the wait: errors are told apart
// inside the workflow, where errors.Is and errors.As see kyc's own.
type result struct {
	Outcome  kyc.Outcome
	TimedOut bool
	Refused  *kyc.RequestError
}

// onboarding is a business's workflow: it starts a verification, waits
// (after pause, the time it takes to mail the user the link) and returns
// the outcome.
func onboarding(ctx workflow.Context, userID string, pause, timeout time.Duration) (result, error) {
	v, err := kyc.StartVerification(ctx, kyc.Request{VendorData: userID})
	var refused *kyc.RequestError
	if errors.As(err, &refused) {
		return result{Refused: refused}, nil
	}
	if err != nil {
		return result{}, err
	}
	if pause > 0 {
		if err := workflow.Sleep(ctx, pause); err != nil {
			return result{}, err
		}
	}
	out, err := kyc.AwaitOutcome(ctx, v.SessionID, timeout)
	if errors.Is(err, kyc.ErrTimeout) {
		return result{TimedOut: true}, nil
	}
	return result{Outcome: out}, err
}

func newEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *kyctest.Diditflow) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetTestTimeout(30 * time.Second)
	env.RegisterWorkflow(onboarding)
	return env, kyctest.New(env)
}

func run(t *testing.T, env *testsuite.TestWorkflowEnvironment, pause, timeout time.Duration) result {
	t.Helper()
	env.ExecuteWorkflow(onboarding, "user-1", pause, timeout)
	if !env.IsWorkflowCompleted() {
		t.Fatal("the workflow did not complete")
	}
	var r result
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestOutcomeBeforeTheWaitIsNotMissed is the race: Didit's webhooks come
// at creation, and the user is approved an hour before the workflow waits.
// The wait returns the approval at once.
func TestOutcomeBeforeTheWaitIsNotMissed(t *testing.T) {
	env, didit := newEnv(t)
	didit.OnCreate(func(s *kyctest.Session) {
		s.Set(kyc.InProgress)
		s.Set(kyc.Approved)
	})
	start := env.Now()
	out := run(t, env, 2*time.Hour, 7*24*time.Hour).Outcome
	if out.Status != kyc.Approved || out.Sequence != 3 || out.SessionID != didit.Created()[0].ID {
		t.Fatalf("outcome = %+v, want the approval, change 3 of the created session", out)
	}
	if waited := env.Now().Sub(start); waited > 2*time.Hour+time.Minute {
		t.Fatalf("the workflow waited %s after the pause for an outcome it had", waited-2*time.Hour)
	}
	if n := didit.Created()[0].Subscribers(); n != 0 {
		t.Fatalf("%d subscribers left, want none: told a decided status, a subscriber is done", n)
	}
}

// TestOutcomeAfterTheWait: the user takes days; the wait returns the first
// decided status, not the In Review before it.
func TestOutcomeAfterTheWait(t *testing.T) {
	env, didit := newEnv(t)
	didit.OnCreate(func(s *kyctest.Session) {
		s.After(time.Hour, kyc.InProgress)
		s.After(2*time.Hour, kyc.InReview)
		s.After(50*time.Hour, kyc.Declined)
		s.After(60*time.Hour, kyc.Approved)
	})
	out := run(t, env, 0, 7*24*time.Hour).Outcome
	if out.Status != kyc.Declined || out.Sequence != 4 {
		t.Fatalf("outcome = %+v, want Declined, change 4", out)
	}
}

// TestDuplicatedUpdatesAreTakenOnce: every update comes twice, as a retried
// announcement sends it.
func TestDuplicatedUpdatesAreTakenOnce(t *testing.T) {
	env, didit := newEnv(t)
	didit.Duplicates = true
	didit.OnCreate(func(s *kyctest.Session) {
		s.After(time.Hour, kyc.InReview)
		s.After(2*time.Hour, kyc.Abandoned)
	})
	if out := run(t, env, 0, 7*24*time.Hour).Outcome; out.Status != kyc.Abandoned || out.Sequence != 3 {
		t.Fatalf("outcome = %+v; want Abandoned, change 3", out)
	}
}

// TestTimeout: a session never decided ends the wait with ErrTimeout, at
// the timeout, and the wait unsubscribes.
func TestTimeout(t *testing.T) {
	env, didit := newEnv(t)
	didit.OnCreate(func(s *kyctest.Session) { s.After(time.Hour, kyc.InReview) })
	start := env.Now()
	if r := run(t, env, 0, 24*time.Hour); !r.TimedOut {
		t.Fatalf("result = %+v, want the timeout", r)
	}
	if waited := env.Now().Sub(start); waited < 24*time.Hour {
		t.Fatalf("timed out after %s, want 24h", waited)
	}
	if n := didit.Created()[0].Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after the timeout, want 0: the wait unsubscribes", n)
	}
}

// TestOutcomeBeforeTheDeadline: a decision that comes a second before the
// timeout is the answer.
func TestOutcomeBeforeTheDeadline(t *testing.T) {
	env, didit := newEnv(t)
	didit.OnCreate(func(s *kyctest.Session) { s.After(24*time.Hour-time.Second, kyc.Approved) })
	if r := run(t, env, 0, 24*time.Hour); r.TimedOut || r.Outcome.Status != kyc.Approved {
		t.Fatalf("result = %+v, want the approval", r)
	}
}

// TestRefusedRequest: what Didit refuses is a *kyc.RequestError.
func TestRefusedRequest(t *testing.T) {
	env, didit := newEnv(t)
	didit.Refuse(400, "workflow_id: Workflow not found.")
	r := run(t, env, 0, time.Hour)
	if r.Refused == nil || r.Refused.StatusCode != 400 || r.Refused.Message != "workflow_id: Workflow not found." {
		t.Fatalf("result = %+v, want the RequestError", r)
	}
}

// TestRetriedStartReusesTheSession: Didit returns the unfinished session of
// the same vendor_data.
func TestRetriedStartReusesTheSession(t *testing.T) {
	env, didit := newEnv(t)
	twice := func(ctx workflow.Context) ([]string, error) {
		var ids []string
		for range 2 {
			v, err := kyc.StartVerification(ctx, kyc.Request{VendorData: "user-1"})
			if err != nil {
				return nil, err
			}
			ids = append(ids, v.SessionID)
		}
		return ids, nil
	}
	env.RegisterWorkflow(twice)
	env.ExecuteWorkflow(twice)
	var ids []string
	if err := env.GetWorkflowResult(&ids); err != nil || len(ids) != 2 || ids[0] != ids[1] || len(didit.Created()) != 1 {
		t.Fatalf("sessions %v (%v), created %d; want one session twice", ids, err, len(didit.Created()))
	}
}

// TestCancelledWaitUnsubscribes: a wait whose context is cancelled (to
// continue as new, say) ends with the cancellation and unsubscribes.
func TestCancelledWaitUnsubscribes(t *testing.T) {
	env, didit := newEnv(t)
	s := didit.Session("session-cancel")
	wait := func(ctx workflow.Context) error {
		ctx, cancel := workflow.WithCancel(ctx)
		workflow.Go(ctx, func(ctx workflow.Context) {
			_ = workflow.Sleep(ctx, time.Hour)
			cancel()
		})
		_, err := kyc.AwaitOutcome(ctx, s.ID, 24*time.Hour)
		return err
	}
	env.RegisterWorkflow(wait)
	env.ExecuteWorkflow(wait)
	if err := env.GetWorkflowError(); err == nil {
		t.Fatal("no error, want the cancellation")
	}
	if n := s.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers, want 0", n)
	}
}

// TestDecision: the reduced decision, as the test set it.
func TestDecision(t *testing.T) {
	env, didit := newEnv(t)
	s := didit.Session("session-aml")
	s.Set(kyc.InReview)
	score := 0.92
	s.SetDecision(kyc.SessionDecision{ContactEmail: "user@example.com",
		AMLHits: []kyc.AMLHit{{ID: "hit-1", MatchScore: &score, ReviewStatus: "Unreviewed"}}})
	decide := func(ctx workflow.Context) (kyc.SessionDecision, error) { return kyc.Decision(ctx, s.ID) }
	env.RegisterWorkflow(decide)
	env.ExecuteWorkflow(decide)
	var d kyc.SessionDecision
	if err := env.GetWorkflowResult(&d); err != nil || d.Status != kyc.InReview || len(d.AMLHits) != 1 || *d.AMLHits[0].MatchScore != score {
		t.Fatalf("decision = %+v, %v", d, err)
	}
}

// TestEventsForHooks: the events a hook would get, numbered in order.
func TestEventsForHooks(t *testing.T) {
	_, didit := newEnv(t)
	s := didit.Session("session-hooks")
	s.Set(kyc.Approved)
	s.Set(kyc.Declined)
	events := s.Events()
	if len(events) != 3 || events[2].PreviousStatus != kyc.Approved || events[2].Sequence != 3 ||
		kyc.HookWorkflowID("OnKYCEvent", events[2]) != "OnKYCEvent-session-hooks-3" {
		t.Fatalf("events = %+v", events)
	}
}
