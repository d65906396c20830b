package e2e

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/internal/store"
	"github.com/diditflow/diditflow/kyc"
	"github.com/diditflow/diditflow/workflows"
)

// consoleReviewer is the compliance officer Didit's reviews of the sessions
// below name.
const consoleReviewer = "officer@didit.example"

// bulkReviews is the route of the bulk review write-back, which diditflow
// uses and the tests' console reviews (one hit at a time) do not.
const bulkReviews = "/v3/session/{id}/bulk-update-aml-hit-status/"

// reviewedSession is a session approved with two unreviewed AML hits, as
// the fake Didit holds it and as its Approved webhook reached diditflow,
// which opened a case.
type reviewedSession struct {
	id, node string
	hits     [2]string
}

// approveWithHits registers with the fake Didit a session approved with two
// unreviewed hits, whose reviews name consoleReviewer, delivers its Approved
// webhook and waits for the case to be opened.
func (s *stack) approveWithHits(fake *fakedidit.Server) reviewedSession {
	s.t.Helper()
	t := s.t.(*testing.T)
	rs := reviewedSession{id: simulator.NewUUID(), hits: [2]string{"NK-first-" + strconv.FormatInt(time.Now().UnixNano(), 36), "NK-namesake"}}
	body := rewire(t, delivery(t, "status-updated-in-review.json", rs.id), func(body map[string]any) {
		body["status"] = "Approved"
		d := body["decision"].(map[string]any)
		d["status"] = "Approved"
		d["reviews"] = []any{map[string]any{"user": consoleReviewer, "new_status": "Approved",
			"comment": "approved pending the AML review", "created_at": time.Now().UTC().Format(time.RFC3339)}}
		node := d["aml_screenings"].([]any)[0].(map[string]any)
		rs.node = node["node_id"].(string)
		first := node["hits"].([]any)[0].(map[string]any)
		first["id"] = rs.hits[0]
		node["hits"] = append(node["hits"].([]any), map[string]any{"id": rs.hits[1], "match": true, "review_status": "Unreviewed",
			"datasets": []any{"PEP"}, "match_score": json.Number("61"), "risk_score": json.Number("40")})
		node["total_hits"] = json.Number("2")
	})
	var parsed map[string]any
	if err := json.Unmarshal(body, &parsed); err != nil {
		t.Fatal(err)
	}
	decision, _ := json.Marshal(parsed["decision"])
	fake.PutSession(rs.id, "Approved", decision, "user-e2e", time.Now().Add(-time.Hour))
	s.deliver(body)
	s.waitFor("the AML case to be opened", func() bool { return s.sent(rs.id, "compliance:opened:email") })
	return rs
}

// review reviews one hit in Didit's (fake's) console, which sends its
// data.updated.
func review(t *testing.T, c *api.Client, rs reviewedSession, hit int, status string) {
	t.Helper()
	if err := c.UpdateAMLHit(context.Background(), rs.id, rs.node, api.HitReview{HitID: rs.hits[hit], ReviewStatus: status}); err != nil {
		t.Fatal(err)
	}
}

func (s *stack) amlCase(session string) store.AMLCase {
	s.t.Helper()
	c, err := s.store.AMLCase(context.Background(), contract.AMLCaseWorkflowID(session))
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// reminderNaming reports whether a reminder came whose text names hit as
// the one still unreviewed.
func (s *stack) reminderNaming(hit string) bool {
	for _, m := range s.sink.Mails() {
		text, err := m.Text()
		if err == nil && strings.Contains(m.Subject, "reminder") && strings.Contains(text, "still unreviewed: hit "+hit+".") {
			return true
		}
	}
	return false
}

// TestConsoleReviewsResolveTheCaseEndToEnd: a compliance officer reviews
// the two hits of a case in Didit's (fake's) console, one at a time, as
// False Positive. The first review is recorded and the case stays open, its
// next reminder naming the other hit; the second resolves it, as decided in
// Didit's console by the officer Didit names: its workflow completes,
// nothing is written back, and the business's hook is told. The officer
// then confirms the first hit after all: the change is recorded, flags the
// session for a person and starts the hook once more, once.
func TestConsoleReviewsResolveTheCaseEndToEnd(t *testing.T) {
	queue := businessQueue()
	s, fake, didit := fakeDiditStack(t, withHooks(queue), func(s *stack) { s.workerEnv = append(s.workerEnv, "AML_REMINDER_INTERVAL=2s") })
	c := s.business(queue)
	ctx := context.Background()
	rs := s.approveWithHits(fake)
	caseID := contract.AMLCaseWorkflowID(rs.id)

	review(t, didit, rs, 0, "False Positive")
	s.waitFor("the partial review to be recorded", func() bool { return s.amlCase(rs.id).Hits[0].ReviewStatus == "False Positive" })
	s.waitFor("a reminder naming the unreviewed hit", func() bool { return s.reminderNaming(rs.hits[1]) })
	if c := s.amlCase(rs.id); c.State != store.AMLCaseOpen || s.completed(caseID) {
		t.Fatalf("case after one review of two = %+v; want it open", c)
	}

	review(t, didit, rs, 1, "False Positive")
	s.waitFor("the case workflow to complete", func() bool { return s.completed(caseID) })
	got := s.amlCase(rs.id)
	if r := got.Resolution; got.State != store.AMLCaseResolved || r.Source != contract.FromDiditConsole ||
		r.Outcome != contract.FalsePositive || r.Reviewer != consoleReviewer {
		t.Fatalf("case = %+v, resolution %+v; want a false positive from Didit's console by %s", got, r, consoleReviewer)
	}
	if n := fake.Calls("PATCH", bulkReviews); n != 0 || len(fake.HitReviewCalls()) != 2 {
		t.Fatalf("%d write-backs to Didit, %d reviews at Didit; want none written back, the officer's two", n, len(fake.HitReviewCalls()))
	}
	s.waitFor("the resolution's hook", func() bool { return len(s.hooks(c, rs.id)) == 2 })
	if e := s.hooks(c, rs.id)[2]; e.Kind != kyc.AMLCaseResolved || e.Case == nil || e.Case.Outcome != "false_positive" {
		t.Fatalf("hook 2 = %+v, want the resolution", e)
	}
	s.saveHistory(caseID, "aml-case-console.json")

	review(t, didit, rs, 0, "Confirmed Match")
	id := contract.SessionWorkflowID(rs.id)
	var state workflows.SessionState
	s.waitFor("the session to be flagged", func() bool {
		v, err := s.temporal.QueryWorkflow(ctx, id, "", contract.StateQuery)
		return err == nil && v.Get(&state) == nil && len(state.Flags) > 0
	})
	if f := state.Flags; len(f) != 1 || f[0].Kind != workflows.FlagReviewChanged || !strings.Contains(f[0].Reason, rs.hits[0]) {
		t.Fatalf("flags = %+v, want the review changed", f)
	}
	if c := s.amlCase(rs.id); c.Hits[0].ReviewStatus != "Confirmed Match" || c.Resolution.Outcome != contract.FalsePositive {
		t.Fatalf("case = %+v; want the new review beside the resolution", c)
	}
	s.waitFor("the review change's hook", func() bool { return len(s.hooks(c, rs.id)) == 3 })
	e := s.hooks(c, rs.id)[3]
	if e.Kind != kyc.AMLReviewChanged || e.Case == nil || len(e.Case.Hits) != 1 || e.Case.Hits[rs.hits[0]] != "confirmed_match" {
		t.Fatalf("hook 3 = %+v (%+v), want the review change of the first hit", e, e.Case)
	}
	if err := s.temporal.SignalWorkflow(ctx, id, "", contract.AcknowledgeSignal,
		contract.OperatorAction{Flag: workflows.FlagReviewChanged, Operator: "ops@example.com"}); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the session to complete", func() bool { return s.completed(id) })
	if n := len(s.hooks(c, rs.id)); n != 3 {
		t.Fatalf("%d hooks, want each event's once", n)
	}
	s.saveHistory(id, "review-changed.json")
}

// TestLostReviewFoundByReconcileEndToEnd: the officer reviews both hits in
// Didit's console while the webhook destination is not subscribed to
// data.updated, so diditflow never hears of it. A reconcile run checks the
// approved session, whose case is open, against its decision, and the case
// is resolved from Didit's console.
func TestLostReviewFoundByReconcileEndToEnd(t *testing.T) {
	s, fake, didit := fakeDiditStack(t)
	ctx := context.Background()
	rs := s.approveWithHits(fake)
	subscribe := func(events ...string) {
		if _, err := didit.UpdateDestination(ctx, fakedidit.DefaultDestinationUUID, api.DestinationPatch{SubscribedEvents: events}); err != nil {
			t.Fatal(err)
		}
	}
	subscribe("status.updated")
	review(t, didit, rs, 0, "False Positive")
	review(t, didit, rs, 1, "Inconclusive")
	fake.Wait()
	subscribe("status.updated", "data.updated")
	for _, d := range fake.Deliveries() {
		if d.WebhookType == "data.updated" {
			t.Fatalf("Didit delivered the review: %+v", d)
		}
	}
	s.waitFor("the session to complete", func() bool { return s.completed(contract.SessionWorkflowID(rs.id)) })
	if c := s.amlCase(rs.id); c.State != store.AMLCaseOpen {
		t.Fatalf("case = %+v, want it open: diditflow never heard of the review", c)
	}

	// What the schedule's run does, started by hand with a stale-after a
	// test can wait out.
	time.Sleep(2 * time.Second)
	params := workflows.ReconcileParams{Lookback: time.Hour, StaleAfter: time.Second, PageSize: 100, MaxCalls: 100,
		Queue: taskQueue + "-reconcile"}
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "e2e-reconcile-review-" + strconv.FormatInt(time.Now().UnixNano(), 36), TaskQueue: taskQueue,
	}, contract.ReconcileWorkflowType, workflows.ReconcileInput{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	var sum activities.ReconcileSummary
	if err := run.Get(ctx, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Result != "ok" || sum.Repaired["stale"] != 1 {
		t.Fatalf("reconcile run = %+v, want the stale path to repair the session", sum)
	}
	s.waitFor("the case workflow to complete", func() bool { return s.completed(contract.AMLCaseWorkflowID(rs.id)) })
	c := s.amlCase(rs.id)
	if r := c.Resolution; r.Source != contract.FromDiditConsole || r.Outcome != contract.Inconclusive || r.Reviewer != consoleReviewer {
		t.Fatalf("resolution = %+v, want Didit's console's, inconclusive", r)
	}
	if n := fake.Calls("PATCH", bulkReviews); n != 0 {
		t.Fatalf("%d write-backs to Didit", n)
	}
}
