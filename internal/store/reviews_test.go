package store

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/diditflow/diditflow/internal/contract"
)

// TestConsoleReviews runs the tests of reviews made in Didit's console on
// both dialects.
func TestConsoleReviews(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("hit reviews", func(t *testing.T) { testHitReviews(t, b.newDSN(t)) })
			t.Run("review changes", func(t *testing.T) { testReviewChanges(t, b.newDSN(t)) })
			t.Run("stale sessions with an open case", func(t *testing.T) { testStaleSessionsWithAnOpenCase(t, b.newDSN(t)) })
		})
	}
}

func review(hit, status string, at int64) contract.HitReview {
	return contract.HitReview{HitID: hit, ReviewStatus: status, At: at}
}

// testHitReviews: reviews change a case's hits when they are news (another
// status, from an event no older than the one the hit's status came from),
// and only its own hits; a resolution from Didit's console keeps them, one
// from diditflow writes its outcomes.
func testHitReviews(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: "aml-case-s", SessionID: "s",
		Hits: []AMLHit{{ID: "a", ReviewStatus: "Unreviewed", ReviewedAt: 100}, {ID: "b"}}}); err != nil {
		t.Fatal(err)
	}
	changed, err := s.RecordHitReviews(ctx, "aml-case-s", []contract.HitReview{
		review("a", "False Positive", 200), review("b", "Unreviewed", 200), review("zz", "Confirmed Match", 200),
	})
	if err != nil || !slices.Equal(changed, []contract.HitReview{review("a", "False Positive", 200)}) {
		t.Fatalf("first review: changed %+v, %v; want a only (b has that status, zz is not the case's)", changed, err)
	}
	if changed, err := s.RecordHitReviews(ctx, "aml-case-s", []contract.HitReview{review("a", "Unreviewed", 150)}); err != nil || len(changed) != 0 {
		t.Fatalf("an older event changed %+v, %v", changed, err)
	}
	if open, err := s.OpenCaseReviews(ctx, "s"); err != nil || open["a"] != "False Positive" || open["b"] != "Unreviewed" || len(open) != 2 {
		t.Fatalf("open case reviews = %v, %v", open, err)
	}
	if _, err := s.RecordHitReviews(ctx, "aml-case-none", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown case: %v, want ErrNotFound", err)
	}

	// Resolved from Didit's console: the hits stay as Didit showed them.
	if _, err := s.RecordHitReviews(ctx, "aml-case-s", []contract.HitReview{review("b", "Inconclusive", 300)}); err != nil {
		t.Fatal(err)
	}
	res := Resolution{Outcome: contract.Inconclusive, Reviewer: "Didit console", Source: contract.FromDiditConsole}
	if err := s.ResolveAMLCase(ctx, "aml-case-s", res); err != nil {
		t.Fatal(err)
	}
	c, err := s.AMLCase(ctx, "aml-case-s")
	if err != nil || c.Resolution == nil || c.Resolution.Source != contract.FromDiditConsole ||
		c.Hits[0].ReviewStatus != "False Positive" || c.Hits[1].ReviewStatus != "Inconclusive" || c.Hits[1].ReviewedAt != 300 {
		t.Fatalf("case resolved from the console = %+v (%+v), %v", c, c.Resolution, err)
	}
	if open, err := s.OpenCaseReviews(ctx, "s"); err != nil || len(open) != 0 {
		t.Fatalf("a resolved case's reviews listed as open: %v, %v", open, err)
	}

	// Resolved from diditflow: each hit takes its outcome's status.
	if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: "aml-case-t", SessionID: "t", Hits: []AMLHit{{ID: "c"}, {ID: "d"}}}); err != nil {
		t.Fatal(err)
	}
	res = Resolution{Outcome: contract.ConfirmedMatch, Reviewer: "officer", Source: contract.FromDiditflow}
	if err := s.ResolveAMLCase(ctx, "aml-case-t", res, review("c", "Confirmed Match", 400), review("d", "False Positive", 400)); err != nil {
		t.Fatal(err)
	}
	c, err = s.AMLCase(ctx, "aml-case-t")
	if err != nil || c.Resolution.Source != contract.FromDiditflow || c.Hits[0].ReviewStatus != "Confirmed Match" ||
		c.Hits[1].ReviewStatus != "False Positive" || c.Hits[1].ReviewedAt != 400 {
		t.Fatalf("case resolved from diditflow = %+v, %v", c, err)
	}
}

// testReviewChanges: a review that came after the case's resolution is
// recorded once per event, with the next number of the session's
// sequence; Didit's echo of what diditflow wrote changes nothing.
func testReviewChanges(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	if _, err := s.RecordEvent(ctx, event("s", "s/in-review", 100, "In Review")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: "aml-case-s", SessionID: "s", Hits: []AMLHit{{ID: "a"}, {ID: "b"}}}); err != nil {
		t.Fatal(err)
	}
	res := Resolution{Outcome: contract.FalsePositive, Reviewer: "officer", Source: contract.FromDiditflow}
	if err := s.ResolveAMLCase(ctx, "aml-case-s", res, review("a", "False Positive", 500), review("b", "False Positive", 500)); err != nil {
		t.Fatal(err)
	}
	at := testNow
	echo, err := s.RecordReviewChange(ctx, "s", "aml-case-s", "echo", []contract.HitReview{
		review("a", "False Positive", 510), review("b", "False Positive", 510)}, at)
	if err != nil || len(echo.Hits) != 0 || echo.Sequence != 0 || echo.State != AMLCaseResolved || echo.Outcome != contract.FalsePositive {
		t.Fatalf("the echo = %+v, %v; want no change", echo, err)
	}
	if old, err := s.RecordReviewChange(ctx, "s", "aml-case-s", "old", []contract.HitReview{review("a", "Unreviewed", 400)}, at); err != nil || len(old.Hits) != 0 {
		t.Fatalf("an event older than the resolution = %+v, %v; want no change", old, err)
	}
	changed, err := s.RecordReviewChange(ctx, "s", "aml-case-s", "later", []contract.HitReview{
		review("a", "Confirmed Match", 600), review("b", "False Positive", 600)}, at)
	want := []contract.HitReview{review("a", "Confirmed Match", 600)}
	if err != nil || !slices.Equal(changed.Hits, want) || changed.Sequence != 2 {
		t.Fatalf("a later review = %+v, %v; want a changed, numbered 2 (after In Review's 1)", changed, err)
	}
	again, err := s.RecordReviewChange(ctx, "s", "aml-case-s", "later", []contract.HitReview{review("a", "Confirmed Match", 600)}, at.Add(time.Hour))
	if err != nil || !slices.Equal(again.Hits, want) || again.Sequence != changed.Sequence {
		t.Fatalf("the same event again = %+v, %v; want what it recorded first", again, err)
	}
	c, err := s.AMLCase(ctx, "aml-case-s")
	if err != nil || c.Hits[0].ReviewStatus != "Confirmed Match" || c.Resolution.Outcome != contract.FalsePositive {
		t.Fatalf("case = %+v, %v; want hit a's new review beside the resolution", c, err)
	}
	if _, err := s.RecordReviewChange(ctx, "s", "aml-case-none", "x", nil, at); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown case: %v, want ErrNotFound", err)
	}
}

// testStaleSessionsWithAnOpenCase: a session in a final status is stale
// while it has an open AML case (a review whose webhook was lost), and no
// longer once the case is resolved.
func testStaleSessionsWithAnOpenCase(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	ago := func(d time.Duration) time.Time { return testNow.Add(-d) }
	recordAt(t, s, ago(5*time.Hour), "a-approved-open-case", "Approved")
	recordAt(t, s, ago(4*time.Hour), "b-declined-resolved-case", "Declined")
	recordAt(t, s, ago(3*time.Hour), "c-in-review", "In Review")
	recordAt(t, s, ago(2*time.Hour), "d-approved", "Approved")
	for _, c := range []string{"a-approved-open-case", "b-declined-resolved-case"} {
		if _, err := s.OpenAMLCase(ctx, AMLCase{CaseID: "aml-case-" + c, SessionID: c, Hits: []AMLHit{{ID: "h"}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ResolveAMLCase(ctx, "aml-case-b-declined-resolved-case", Resolution{Outcome: contract.FalsePositive, Reviewer: "o"}); err != nil {
		t.Fatal(err)
	}
	assertStale(t, s, ago(time.Hour), testNow, 10, "a-approved-open-case Approved 0 10:09", "c-in-review In Review 0 12:09")
	assertStale(t, s, ago(time.Hour), testNow, 1, "a-approved-open-case Approved 0 10:09")
	if err := s.MarkStaleChecked(ctx, "a-approved-open-case", 1, testNow.Add(time.Hour), time.Time{}); err != nil {
		t.Fatal(err)
	}
	assertStale(t, s, ago(time.Hour), testNow, 10, "c-in-review In Review 0 12:09")
	assertStale(t, s, ago(time.Hour), testNow.Add(time.Hour), 10, "c-in-review In Review 0 12:09", "a-approved-open-case Approved 1 10:09")
}
