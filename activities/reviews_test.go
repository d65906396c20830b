package activities

import (
	"context"
	"strings"
	"testing"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
)

// TestHitReviewsOfACase: a console review of an open case is recorded on
// its record, and a new run learns it from SessionCases; after diditflow's
// resolution, Didit's echo changes nothing while a change is recorded once,
// numbered.
func TestHitReviewsOfACase(t *testing.T) {
	a, _ := newActivities(t, nil)
	ctx := context.Background()
	c := AMLCase{SessionID: "s-1", ReviewedAt: 100, Hits: []didit.AMLHit{{ID: "a", ReviewStatus: "Unreviewed"}, {ID: "b"}}}
	if _, err := a.OpenAMLCase(ctx, c); err != nil {
		t.Fatal(err)
	}
	fp := contract.HitReview{HitID: "a", ReviewStatus: "False Positive", At: 200}
	if err := a.RecordHitReviews(ctx, contract.HitReviews{SessionID: "s-1", CaseID: c.ID(), Hits: []contract.HitReview{fp}}); err != nil {
		t.Fatal(err)
	}
	known, err := a.SessionCases(ctx, "s-1")
	if err != nil || len(known) != 1 || len(known[0].Reviews) != 2 || known[0].Reviews[0] != fp ||
		known[0].Reviews[1] != (contract.HitReview{HitID: "b", At: 100}) {
		t.Fatalf("SessionCases = %+v, %v", known, err)
	}

	res := ResolveInput{SessionID: "s-1", Resolution: contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "officer", Source: contract.FromDiditflow},
		Reviews: []contract.HitReview{fp, {HitID: "b", ReviewStatus: "False Positive", At: 300}}}
	if err := a.ResolveAMLCase(ctx, res); err != nil {
		t.Fatal(err)
	}
	echo := contract.HitReviews{SessionID: "s-1", CaseID: c.ID(), EventKey: "echo",
		Hits: []contract.HitReview{{HitID: "a", ReviewStatus: "False Positive", At: 310}, {HitID: "b", ReviewStatus: "False Positive", At: 310}}}
	if got, err := a.RecordReviewChange(ctx, echo); err != nil || len(got.Hits) != 0 || got.Outcome != contract.FalsePositive || got.Open {
		t.Fatalf("the echo = %+v, %v; want no change", got, err)
	}
	changed := echo
	changed.EventKey, changed.Hits = "later", []contract.HitReview{{HitID: "b", ReviewStatus: "Confirmed Match", At: 400}}
	got, err := a.RecordReviewChange(ctx, changed)
	if err != nil || len(got.Hits) != 1 || got.Hits[0].ReviewStatus != "Confirmed Match" {
		t.Fatalf("a later change = %+v, %v", got, err)
	}
	unknown := changed
	unknown.CaseID = "aml-case-never-recorded"
	if got, err := a.RecordReviewChange(ctx, unknown); err != nil || len(got.Hits) != 0 {
		t.Fatalf("reviews of a case never recorded = %+v, %v; want nothing, not a step to park", got, err)
	}
}

// TestRemindersNameTheUnreviewedHits: a reminder of a case reviewed in part
// names the hits still unreviewed, by ID; one reviewed in no part does not.
func TestRemindersNameTheUnreviewedHits(t *testing.T) {
	c := AMLCase{SessionID: "s-1", Status: didit.StatusApproved,
		Hits: []didit.AMLHit{{ID: "hit-a", ReviewStatus: "False Positive"}, {ID: "hit-b", ReviewStatus: "Unreviewed"}}}
	m := complianceMessage(ComplianceNotice{Case: c, Reminder: 1, Unreviewed: []string{"hit-b"}}, "reminder-1", []string{"c@example.com"})
	if !strings.Contains(m.TextBody, "has reviewed 1 of the 2 hit(s); still unreviewed: hit hit-b.") {
		t.Fatalf("reminder:\n%s", m.TextBody)
	}
	if doc := complianceDocument(ComplianceNotice{Case: c, Reminder: 1, Unreviewed: []string{"hit-b"}}, "reminder-1"); len(doc["unreviewed"].([]string)) != 1 {
		t.Fatalf("webhook document = %v", doc)
	}
	m = complianceMessage(ComplianceNotice{Case: c, Reminder: 1}, "reminder-1", []string{"c@example.com"})
	if strings.Contains(m.TextBody, "still unreviewed") {
		t.Fatalf("a reminder without a partial review names unreviewed hits:\n%s", m.TextBody)
	}
}
