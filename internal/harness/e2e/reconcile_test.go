package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/internal/workerapp"
)

// TestTemporalDownIsReconciledEndToEnd: Temporal goes down while sessions
// change; Didit (the fake) tries each delivery three times, as Didit does,
// and gives up. Temporal comes back, and with no delivery replayed by hand
// the reconcile schedule brings every session to its final state: the user
// whose verification expired (an event without a decision) is asked to
// verify again, at the address of the fetched decision, and nobody is
// mailed twice.
func TestTemporalDownIsReconciledEndToEnd(t *testing.T) {
	ctx := context.Background()
	dev, err := launch.StartDevServer(ctx, launch.DevServerConfig{Dir: t.TempDir()})
	if err != nil {
		launch.Unavailable(t, "a Temporal dev server", err)
	}
	t.Cleanup(dev.Close)
	tc, err := client.Dial(launch.WithCodec(client.Options{HostPort: dev.Address(), Logger: launch.SilentLogger()}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)

	// Didit's two retries, a minute and four apart, scaled down; the count
	// is Didit's.
	fake := fakedidit.New(fakedidit.Options{Key: apiKey, Secret: secret,
		RetryDelays: []time.Duration{300 * time.Millisecond, 1200 * time.Millisecond}})
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(fake.Wait)
	didit, err := api.New(api.Config{BaseURL: srv.URL, Key: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, func(s *stack) {
		s.temporal, s.address = tc, dev.Address()
		s.workerEnv = append(s.workerEnv, "DIDIT_API_URL="+srv.URL, "DIDIT_API_KEY="+apiKey,
			"RECONCILE_INTERVAL=3s", "RECONCILE_LOOKBACK=1h",
			"DIDIT_API_READS_PER_SECOND=40", "RECONCILE_READS_PER_SECOND=20")
	})
	receiverURL := s.receiver.URL + "/webhooks/didit"
	if _, err := didit.PatchWebhookConfig(ctx, api.WebhookPatch{URL: &receiverURL}); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the worker to create the reconcile schedule", func() bool {
		_, err := tc.ScheduleClient().GetHandle(ctx, contract.ReconcileScheduleID).Describe(ctx)
		return err == nil
	})

	a, b, c := simulator.NewUUID(), simulator.NewUUID(), simulator.NewUUID()
	email := map[string]string{a: "a@example.com", b: "b@example.com", c: "c@example.com"}
	event := func(fixture, session, status string, decision bool) []byte {
		t.Helper()
		now := time.Now().Unix()
		var body map[string]any
		if err := json.Unmarshal(deliveryOf(t, fixture, session, session+"/"+status, now, now), &body); err != nil {
			t.Fatal(err)
		}
		body["status"] = status
		if d, ok := body["decision"].(map[string]any); ok && decision {
			d["status"] = status
			d["contact_details"] = map[string]any{"email": email[session]}
		} else {
			delete(body, "decision")
		}
		raw, _ := json.Marshal(body)
		return raw
	}
	deliver := func(bodies ...[]byte) []fakedidit.Attempt {
		var all []fakedidit.Attempt
		for _, body := range bodies {
			all = append(all, fake.Deliver(ctx, body)...)
		}
		return all
	}

	// Before the outage: a is in progress, b approved (and told so).
	for _, at := range deliver(event("status-updated-in-progress.json", a, "In Progress", false),
		event("status-updated-approved.json", b, "Approved", true)) {
		if at.Status != 200 {
			t.Fatalf("a delivery before the outage: %+v", at)
		}
	}
	s.waitFor("b's approval mail", func() bool { return s.sent(b, "user:approved") && s.status(a) == "In Progress" })

	dev.Stop()
	// During it: a is approved, b's verification expires (Didit sends Kyc
	// Expired without a decision), c starts and is declined. Each session's
	// events are sent in order, the sessions at once.
	var wg sync.WaitGroup
	attempts := make([][]fakedidit.Attempt, 3)
	wg.Go(func() { attempts[0] = deliver(event("status-updated-approved.json", a, "Approved", true)) })
	wg.Go(func() { attempts[1] = deliver(event("status-updated-in-progress.json", b, "Kyc Expired", false)) })
	wg.Go(func() {
		attempts[2] = deliver(event("status-updated-in-progress.json", c, "In Progress", false),
			event("status-updated-approved.json", c, "Declined", true))
	})
	wg.Wait()
	for i, want := range []int{3, 3, 6} {
		if len(attempts[i]) != want {
			t.Fatalf("session %d: %d attempts, want %d (Didit's first try and two retries per event)", i, len(attempts[i]), want)
		}
		for _, at := range attempts[i] {
			if at.Status >= 200 && at.Status < 300 {
				t.Fatalf("a delivery was accepted with Temporal down: %+v", at)
			}
		}
	}
	fake.Wait()
	logged := len(fake.Deliveries())

	if err := dev.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s.waitFor("every session at its final state", func() bool {
		return s.status(a) == "Approved" && s.status(b) == "Kyc Expired" && s.status(c) == "Declined"
	})
	s.waitFor("the verify-again notice", func() bool { return s.sent(b, "user:kyc_expired") })
	s.waitFor("a's and c's notices", func() bool { return s.sent(a, "user:approved") && s.sent(c, "user:declined") })
	// Another reconcile run or two over the same window change nothing.
	time.Sleep(7 * time.Second)
	s.waitFor("the sessions to complete", func() bool {
		return s.completed(contract.SessionWorkflowID(a)) && s.completed(contract.SessionWorkflowID(b)) &&
			s.completed(contract.SessionWorkflowID(c))
	})

	got := map[string][]string{}
	for _, m := range s.sink.Mails() {
		to := strings.Join(m.To, ",")
		got[to] = append(got[to], m.Subject)
	}
	want := map[string][]string{
		email[a]: {"Your identity verification is approved"},
		email[b]: {"Your identity verification is approved", "Please verify your identity again"},
		email[c]: {"Your identity verification was not approved"},
	}
	for to, subjects := range want {
		if strings.Join(got[to], "|") != strings.Join(subjects, "|") {
			t.Errorf("mails to %s: %q, want %q", to, got[to], subjects)
		}
	}
	if after := len(fake.Deliveries()); after != logged {
		t.Errorf("Didit delivered %d more times: reconciliation must not need a resend", after-logged)
	}
	s.checkReconcileRuns(ctx, "reconcile-after-outage.json")
}

// checkReconcileRuns checks that reconcile runs repaired the lost
// deliveries from Didit's delivery log, and saves the history of the run
// that did for the replay test.
func (s *stack) checkReconcileRuns(ctx context.Context, historyName string) {
	s.t.Helper()
	resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: "WorkflowType = '" + contract.ReconcileWorkflowType + "' AND ExecutionStatus = 'Completed'"})
	if err != nil {
		s.t.Fatal(err)
	}
	repaired := 0
	for _, ex := range resp.GetExecutions() {
		var sum activities.ReconcileSummary
		if err := s.temporal.GetWorkflow(ctx, ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId()).Get(ctx, &sum); err != nil {
			s.t.Fatal(err)
		}
		if sum.Result != "ok" {
			s.t.Errorf("reconcile run %s: %+v", ex.GetExecution().GetWorkflowId(), sum)
		}
		if sum.Repaired["deliveries"] > 0 && repaired == 0 {
			s.saveHistory(ex.GetExecution().GetWorkflowId(), historyName)
		}
		repaired += sum.Repaired["deliveries"]
	}
	// a's Approved, b's Kyc Expired, c's In Progress and Declined; once
	// more at most for an event whose attempts straddled two runs.
	if repaired < 4 {
		s.t.Fatalf("reconcile runs repaired %d deliveries, want the 4 lost events", repaired)
	}
}

// TestReconcileScheduleIsKeptByTheWorker: the worker creates the schedule,
// a restart with other settings updates it in place (keeping an operator's
// pause), and without a key it is left alone.
func TestReconcileScheduleIsKeptByTheWorker(t *testing.T) {
	ctx := context.Background()
	tc := launch.Temporal(t)
	handle := tc.ScheduleClient().GetHandle(ctx, contract.ReconcileScheduleID)
	_ = handle.Delete(ctx)
	t.Cleanup(func() { _ = handle.Delete(context.Background()) })
	cfg, err := config.ReadWorker()
	if err != nil {
		t.Fatal(err)
	}
	cfg.TaskQueue, cfg.DiditAPIKey, cfg.ReconcileInterval = "schedule-test", "k", time.Hour
	log := slog.New(slog.DiscardHandler)
	if err := workerapp.EnsureReconcileSchedule(ctx, tc, cfg, log); err != nil {
		t.Fatal(err)
	}
	if err := handle.Pause(ctx, client.SchedulePauseOptions{Note: "an operator"}); err != nil {
		t.Fatal(err)
	}
	cfg.ReconcileInterval = 2 * time.Hour
	for range 2 {
		if err := workerapp.EnsureReconcileSchedule(ctx, tc, cfg, log); err != nil {
			t.Fatal(err)
		}
	}
	desc, err := handle.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spec, action := desc.Schedule.Spec, desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	if len(spec.Intervals) != 1 || spec.Intervals[0].Every != 2*time.Hour || action.TaskQueue != "schedule-test" ||
		desc.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || !desc.Schedule.State.Paused {
		t.Fatalf("schedule after the update: %+v, %+v, %+v", spec, desc.Schedule.Policy, desc.Schedule.State)
	}

	cfg.DiditAPIKey, cfg.ReconcileInterval = "", 3*time.Hour
	if err := workerapp.EnsureReconcileSchedule(ctx, tc, cfg, log); err != nil {
		t.Fatal(err)
	}
	if desc, err = handle.Describe(ctx); err != nil || desc.Schedule.Spec.Intervals[0].Every != 2*time.Hour {
		t.Fatalf("a worker without a key changed the schedule: %v", err)
	}
}
