package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

const apiKey = "e2e-didit-api-key"

// withFakeDidit points the worker at a fake of Didit's API, which creates
// the sessions of its workflow, DIDIT_WORKFLOW_ID.
func withFakeDidit(t *testing.T) (*fakedidit.Server, func(*stack)) {
	fake, _, opt := fakeDidit(t)
	return fake, opt
}

// fakeDidit is withFakeDidit with a client of the fake's API.
func fakeDidit(t *testing.T) (*fakedidit.Server, *api.Client, func(*stack)) {
	fake := fakedidit.New(fakedidit.Options{Key: apiKey, Secret: secret, RetryDelays: []time.Duration{}})
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	client, err := api.New(api.Config{BaseURL: srv.URL, Key: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	return fake, client, func(s *stack) {
		s.workerEnv = append(s.workerEnv, "DIDIT_API_URL="+srv.URL, "DIDIT_API_KEY="+apiKey, "DIDIT_WORKFLOW_ID="+fakedidit.DefaultWorkflowID)
	}
}

// fakeDiditStack is a stack whose Didit is the fake, with the fake's
// webhooks pointed at the stack's receiver.
func fakeDiditStack(t *testing.T, opts ...func(*stack)) (*stack, *fakedidit.Server, *api.Client) {
	fake, client, opt := fakeDidit(t)
	s := newStack(t, append([]func(*stack){opt}, opts...)...)
	receiverURL := s.receiver.URL + "/webhooks/didit"
	if _, err := client.PatchWebhookConfig(context.Background(), api.WebhookPatch{URL: &receiverURL}); err != nil {
		t.Fatal(err)
	}
	return s, fake, client
}

// TestKycExpiredFetchesTheDecisionEndToEnd: Didit sends Kyc Expired without
// a decision, and this run never saw the user's address; the worker fetches
// the decision from (the fake) Didit and asks the user to verify again.
func TestKycExpiredFetchesTheDecisionEndToEnd(t *testing.T) {
	fake, opt := withFakeDidit(t)
	s := newStack(t, opt)
	session := simulator.NewUUID()
	putKycExpired(fake, session)

	var body map[string]any
	if err := json.Unmarshal(delivery(t, "status-updated-in-progress.json", session), &body); err != nil {
		t.Fatal(err)
	}
	body["status"] = "Kyc Expired"
	delete(body, "decision")
	raw, _ := json.Marshal(body)
	s.deliver(raw)

	id := contract.SessionWorkflowID(session)
	s.waitFor("the verify-again notice", func() bool { return s.sent(session, "user:kyc_expired") })
	s.waitFor("the session to complete", func() bool { return s.completed(id) })
	mails := s.sink.Mails()
	if len(mails) != 1 || !strings.Contains(strings.Join(mails[0].To, ","), "fetched@example.com") {
		t.Fatalf("mails = %+v, want one to the fetched address", mails)
	}
	if got := s.status(session); got != "Kyc Expired" {
		t.Fatalf("record = %q", got)
	}
	s.saveHistory(id, "decision-fetch.json")
}

// putKycExpired gives (the fake) Didit a session in Kyc Expired whose
// decision holds the address fetched@example.com.
func putKycExpired(fake *fakedidit.Server, session string) {
	decision, _ := json.Marshal(map[string]any{
		"session_id": session, "status": "Kyc Expired", "vendor_data": "user-e2e",
		"contact_details": map[string]any{"email": "fetched@example.com"},
	})
	fake.PutSession(session, "Kyc Expired", decision, "user-e2e", time.Now().Add(-48*time.Hour))
}

// TestKycExpiredWithoutAKeyMailsTheRecordedAddress: no API key; the
// approval's run completes, and Kyc Expired, without a decision, starts a
// new run that never saw the address: the notice takes the recorded one.
func TestKycExpiredWithoutAKeyMailsTheRecordedAddress(t *testing.T) {
	s := newStack(t)
	session := simulator.NewUUID()
	id := contract.SessionWorkflowID(session)
	s.deliver(delivery(t, "status-updated-approved.json", session))
	s.waitFor("the approval's run to complete", func() bool { return s.completed(id) })

	var body map[string]any
	if err := json.Unmarshal(delivery(t, "status-updated-in-progress.json", session), &body); err != nil {
		t.Fatal(err)
	}
	body["status"] = "Kyc Expired"
	body["created_at"] = time.Now().Unix()
	delete(body, "decision")
	raw, _ := json.Marshal(body)
	s.deliver(raw)

	s.waitFor("the verify-again notice", func() bool { return s.sent(session, "user:kyc_expired") })
	s.waitFor("the new run to complete", func() bool { return s.completed(id) })
	mails := s.sink.Mails()
	if len(mails) != 2 || strings.Join(mails[1].To, ",") != userEmail {
		t.Fatalf("mails = %+v, want the approval and the verify-again notice at the recorded address", mails)
	}
	if got := s.status(session); got != "Kyc Expired" {
		t.Fatalf("record = %q", got)
	}
	s.saveHistory(id, "notice-address-new-run.json")
}

// TestResolvedCaseReviewsReachDiditEndToEnd: compliance resolves a case with
// one hit confirmed and its namesake a false positive; each hit's review
// reaches (the fake) Didit, whose data.updated webhook back (the echo, with
// exactly those statuses) opens no new case, mails nobody again, resolves
// nothing twice and raises no flag: the session completes.
func TestResolvedCaseReviewsReachDiditEndToEnd(t *testing.T) {
	s, fake, _ := fakeDiditStack(t)
	ctx := context.Background()
	session := simulator.NewUUID()
	var body map[string]any
	if err := json.Unmarshal(delivery(t, "status-updated-declined-aml-hit.json", session), &body); err != nil {
		t.Fatal(err)
	}
	decision := body["decision"].(map[string]any)
	node := decision["aml_screenings"].([]any)[0].(map[string]any)
	confirmed := node["hits"].([]any)[0].(map[string]any)["id"].(string)
	const namesake = "NK-namesake-of-the-first"
	node["hits"] = append(node["hits"].([]any), map[string]any{"id": namesake, "match": true, "review_status": "Unreviewed",
		"datasets": []any{"PEP"}, "match_score": 0.61, "risk_score": 0.4})
	rawDecision, _ := json.Marshal(decision)
	fake.PutSession(session, "Declined", rawDecision, "user-e2e", time.Now().Add(-time.Hour))
	raw, _ := json.Marshal(body)
	s.deliver(raw)

	caseID := contract.AMLCaseWorkflowID(session)
	s.waitFor("the AML case", func() bool { return s.workflowStatus(caseID) == enums.WORKFLOW_EXECUTION_STATUS_RUNNING })
	res := contract.Resolution{Outcome: contract.ConfirmedMatch, Reviewer: "officer@example.com",
		Hits: map[string]contract.Outcome{namesake: contract.FalsePositive}}
	if err := s.temporal.SignalWorkflow(ctx, caseID, "", contract.ResolveSignal, res); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the case workflow to complete", func() bool { return s.completed(caseID) })
	s.waitFor("the reviews at Didit", func() bool { return len(fake.HitReviewCalls()) == 2 })
	want := map[string]string{confirmed: "Confirmed Match", namesake: "False Positive"}
	for _, c := range fake.HitReviewCalls() {
		if c.SessionID != session || c.NodeID != node["node_id"] || !c.Bulk || want[c.HitID] != c.ReviewStatus {
			t.Errorf("review at Didit: %+v, want %q", c, want[c.HitID])
		}
	}
	fake.Wait()
	s.waitFor("Didit's data.updated to be accepted", func() bool {
		for _, d := range fake.Deliveries() {
			if d.WebhookType == "data.updated" && d.ResponseStatus == 200 {
				return true
			}
		}
		return false
	})
	s.waitFor("the session to complete", func() bool { return s.completed(contract.SessionWorkflowID(session)) })
	c, err := s.store.AMLCase(ctx, caseID)
	if err != nil || c.Resolution == nil || c.Resolution.Source != contract.FromDiditflow || c.Resolution.Reviewer != "officer@example.com" {
		t.Fatalf("case = %+v, %v; want diditflow's resolution, once", c, err)
	}
	for _, h := range c.Hits {
		if h.ReviewStatus != want[h.ID] {
			t.Errorf("hit %s recorded %q after the echo, want %q", h.ID, h.ReviewStatus, want[h.ID])
		}
	}
	if st := s.workflowStatus(contract.FollowUpCaseID(session, 2)); st != enums.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED {
		t.Fatalf("a second case after Didit's data.updated: %v", st)
	}
	for _, m := range []string{"AML case opened", "was not approved"} {
		if n := s.sink.Count(m); n != 1 {
			t.Errorf("%d mails about %q, want 1", n, m)
		}
	}
	s.saveHistory(caseID, "aml-case-reviews-written-back.json")
}

// TestParkedDecisionFetchFlagsTheRecord: Didit's API answers 500 past the
// step budget; the fetch parks, and the flag reaches the search attribute
// and the record although the fetch ran on the API's own task queue.
func TestParkedDecisionFetchFlagsTheRecord(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream unavailable", http.StatusBadGateway)
	}))
	t.Cleanup(down.Close)
	s := newStack(t, func(s *stack) {
		s.stepBudget = "3s"
		s.workerEnv = append(s.workerEnv, "DIDIT_API_URL="+down.URL, "DIDIT_API_KEY="+apiKey)
	})
	session := simulator.NewUUID()
	var body map[string]any
	if err := json.Unmarshal(delivery(t, "status-updated-in-progress.json", session), &body); err != nil {
		t.Fatal(err)
	}
	body["status"] = "Kyc Expired"
	raw, _ := json.Marshal(body)
	s.deliver(raw)
	id := contract.SessionWorkflowID(session)
	// The flag's activity completed on the workflow's own queue (an API
	// queue's workers would not run it).
	s.waitFor("the flag written", func() bool {
		it := s.temporal.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		scheduled := map[int64]bool{}
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return false
			}
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "FlagSession" {
				if a.GetTaskQueue().GetName() != taskQueue {
					t.Fatalf("FlagSession scheduled on %q", a.GetTaskQueue().GetName())
				}
				scheduled[ev.GetEventId()] = true
			}
			if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && scheduled[a.GetScheduledEventId()] {
				return true
			}
		}
		return false
	})
}
