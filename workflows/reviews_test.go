package workflows

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
	"github.com/diditflow/diditflow/kyc"
)

// The two hits of the cases below: the in-review fixture's, and a namesake.
const (
	hitA = "NK-4fTq8Xw2bLmZpR7cVd3sYe"
	hitB = "NK-namesake"
	// approvedAt is when the user was approved, with both hits unreviewed.
	approvedAt = 1767224700
)

// reviewHarness is a harness whose clock starts at start (Unix seconds, in
// the fixtures' time), so that diditflow's resolutions and Didit's events
// are ordered as they would be, and whose sessions wait four hours for late
// events, as reviews take a while.
func reviewHarness(t *testing.T, mutate func(*Settings), start int64) *harness {
	h := newHarness(t, func(s *Settings) {
		s.IdleWindow = 4 * time.Hour
		if mutate != nil {
			mutate(s)
		}
	})
	h.env.SetStartTime(time.Unix(start, 0))
	return h
}

// approvedWithHits is s2 approved with hits A and B unreviewed: it opens a
// case for compliance.
func approvedWithHits(t *testing.T) contract.SessionEvent {
	se := withHits(t, statusEvent(t, "status-updated-in-review.json", didit.StatusApproved, approvedAt), hitB)
	sc := &se.Event.Decision.AMLScreenings[0]
	for i := range sc.Hits {
		sc.Hits[i].NodeID = sc.NodeID
	}
	return se
}

// reviewed is the data.updated Didit sends when hits of s2 are reviewed in
// its console, at createdAt: statuses maps a hit to its review status (the
// others Unreviewed); reviewer, if set, is the user of the session's latest
// review.
func reviewed(t *testing.T, createdAt int64, reviewer string, statuses map[string]string) contract.SessionEvent {
	t.Helper()
	se := approvedWithHits(t)
	se.Event.EventID = "evt-review-" + strconv.FormatInt(createdAt, 10)
	se.Event.WebhookType = didit.WebhookDataUpdated
	se.Event.CreatedAt, se.Event.Timestamp = createdAt, createdAt
	hits := se.Event.Decision.AMLScreenings[0].Hits
	for i := range hits {
		if st, ok := statuses[hits[i].ID]; ok {
			hits[i].ReviewStatus = st
		}
	}
	if reviewer != "" {
		se.Event.Decision.Reviews = []didit.Review{{User: reviewer, NewStatus: didit.StatusApproved, CreatedAt: "2026-01-01T00:00:00Z"}}
	}
	return se
}

func (h *harness) caseState(at time.Duration, into *CaseState) {
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflowByID(contract.AMLCaseWorkflowID(s2), contract.StateQuery)
		if err != nil {
			h.t.Errorf("query the case: %v", err)
			return
		}
		if err := v.Get(into); err != nil {
			h.t.Error(err)
		}
	}, at)
}

func (h *harness) sessionState(at time.Duration, into *SessionState) {
	h.env.RegisterDelayedCallback(func() { *into = h.state() }, at)
}

func (h *harness) theCase() store.AMLCase {
	h.t.Helper()
	c, err := h.store.AMLCase(context.Background(), contract.AMLCaseWorkflowID(s2))
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func reminders(h *harness) []sentMail {
	var out []sentMail
	for _, m := range h.mails() {
		if strings.Contains(m.Subject, "reminder") {
			out = append(out, m)
		}
	}
	return out
}

// TestConsoleReviewResolvesTheCase: an officer marks both hits of an open
// case False Positive in Didit's console. The data.updated resolves the
// case: a false positive decided in Didit's console, by the officer Didit's
// reviews name; its workflow completes, its reminders stop, and nothing is
// written back to Didit.
func TestConsoleReviewResolvesTheCase(t *testing.T) {
	h := reviewHarness(t, nil, approvedAt-1) // reminders hourly
	api := &stubDidit{key: true}
	h.acts.Didit = api
	h.deliverAt(time.Second, approvedWithHits(t))
	both := map[string]string{hitA: didit.ReviewFalsePositive, hitB: didit.ReviewFalsePositive}
	h.deliverAt(90*time.Minute, reviewed(t, approvedAt+5400, "officer@didit.example", both))
	var st SessionState
	h.sessionState(95*time.Minute, &st)
	h.run(s2)

	c := h.theCase()
	if c.State != store.AMLCaseResolved || c.Resolution.Outcome != contract.FalsePositive ||
		c.Resolution.Source != contract.FromDiditConsole || c.Resolution.Reviewer != "officer@didit.example" {
		t.Fatalf("case = %+v, resolution %+v; want a false positive from Didit's console by its officer", c, c.Resolution)
	}
	for _, hit := range c.Hits {
		if hit.ReviewStatus != didit.ReviewFalsePositive {
			t.Errorf("hit %s recorded %q", hit.ID, hit.ReviewStatus)
		}
	}
	if !h.env.IsWorkflowCompleted() || len(api.bulk) != 0 {
		t.Fatalf("write-backs to Didit: %+v; want none", api.bulk)
	}
	if n := len(reminders(h)); n != 1 {
		t.Fatalf("%d reminders, want the one before the review and none after", n)
	}
	if len(st.Flags) != 0 || len(st.Reviews) != 2 || st.Reviews[1].ReviewStatus != didit.ReviewFalsePositive {
		t.Fatalf("session state: flags %v, reviews %+v", flagKinds(st), st.Reviews)
	}
}

// TestPartialConsoleReviewKeepsTheCaseOpen: one hit of two reviewed in
// Didit's console is recorded, the case stays open and its reminders name
// the other hit; an older event showing the reviewed hit unreviewed undoes
// nothing; the second review resolves the case with each hit's outcome,
// the case's the worst of them.
func TestPartialConsoleReviewKeepsTheCaseOpen(t *testing.T) {
	h := reviewHarness(t, nil, approvedAt-1) // reminders hourly, escalation from the 2nd
	h.deliverAt(time.Second, approvedWithHits(t))
	h.deliverAt(30*time.Minute, reviewed(t, approvedAt+1800, "", map[string]string{hitA: didit.ReviewFalsePositive}))
	// Created before that review, delivered after it.
	h.deliverAt(100*time.Minute, reviewed(t, approvedAt+900, "", nil))
	var mid CaseState
	h.caseState(110*time.Minute, &mid)
	var midRecord store.AMLCase
	h.env.RegisterDelayedCallback(func() { midRecord = h.theCase() }, 110*time.Minute)
	h.deliverAt(130*time.Minute, reviewed(t, approvedAt+7800, "", map[string]string{hitA: didit.ReviewFalsePositive, hitB: didit.ReviewInconclusive}))
	h.run(s2)

	if mid.Resolution != nil || mid.Case.Hits[0].ReviewStatus != didit.ReviewFalsePositive || mid.Case.Hits[1].ReviewStatus != didit.ReviewUnreviewed {
		t.Fatalf("case after the partial review and the older event: %+v", mid.Case.Hits)
	}
	if midRecord.State != store.AMLCaseOpen || midRecord.Hits[0].ReviewStatus != didit.ReviewFalsePositive {
		t.Fatalf("case record after the partial review = %+v", midRecord)
	}
	rs := reminders(h)
	if len(rs) != 2 {
		t.Fatalf("%d reminders, want two (1h, 2h) before the case was resolved", len(rs))
	}
	for _, m := range rs {
		if !strings.Contains(m.Body, "has reviewed 1 of the 2 hit(s); still unreviewed: hit "+hitB+".") {
			t.Errorf("reminder %q does not name the unreviewed hit:\n%s", m.Subject, m.Body)
		}
	}
	c := h.theCase()
	if c.Resolution == nil || c.Resolution.Outcome != contract.Inconclusive || c.Resolution.Reviewer != contract.ConsoleReviewer ||
		c.Resolution.Source != contract.FromDiditConsole {
		t.Fatalf("resolution = %+v, want inconclusive (the worst), from Didit's console, no reviewer named", c.Resolution)
	}
}

// TestReviewChangedAfterResolutionFlagsTheSession: after a case was
// resolved in Didit's console, one of its hits is reviewed again there. The
// change is recorded on the case's record and in the session's state,
// flags the session for a person, and starts the hooks once; the session
// completes once the flag is acknowledged.
func TestReviewChangedAfterResolutionFlagsTheSession(t *testing.T) {
	h := reviewHarness(t, hookSettings, approvedAt-1)
	h.deliverAt(time.Second, approvedWithHits(t))
	both := map[string]string{hitA: didit.ReviewFalsePositive, hitB: didit.ReviewFalsePositive}
	h.deliverAt(10*time.Minute, reviewed(t, approvedAt+600, "officer@didit.example", both))
	changed := reviewed(t, approvedAt+1200, "officer@didit.example", map[string]string{hitA: didit.ReviewConfirmedMatch, hitB: didit.ReviewFalsePositive})
	h.deliverAt(20*time.Minute, changed)
	changed.Event.EventID += "-resent" // Didit's resend, of the same content
	h.deliverAt(22*time.Minute, changed)
	var flagged SessionState
	h.sessionState(30*time.Minute, &flagged)
	h.signalAt(40*time.Minute, contract.AcknowledgeSignal, contract.OperatorAction{Flag: FlagReviewChanged, Operator: "ops@example.com"})
	h.run(s2)

	if kinds := flagKinds(flagged); !slices.Equal(kinds, []string{FlagReviewChanged}) ||
		!strings.Contains(flagged.Flags[0].Reason, "hit "+hitA+" is now Confirmed Match") || strings.Contains(flagged.Flags[0].Reason, hitB) {
		t.Fatalf("flags = %+v, want the change of hit A", flagged.Flags)
	}
	if i := slices.IndexFunc(flagged.Reviews, func(k KnownReview) bool { return k.HitID == hitA }); i < 0 ||
		flagged.Reviews[i].ReviewStatus != didit.ReviewConfirmedMatch {
		t.Fatalf("session's reviews = %+v", flagged.Reviews)
	}
	c := h.theCase()
	if c.Resolution.Outcome != contract.FalsePositive || c.Hits[0].ReviewStatus != didit.ReviewConfirmedMatch {
		t.Fatalf("case record = %+v (%+v); want the resolution kept and hit A's new review", c, c.Resolution)
	}
	var changes []kyc.Event
	kinds := map[kyc.EventKind]int{}
	for _, e := range h.temporal.hooks() {
		kinds[e.Kind]++
		if e.Kind == kyc.AMLReviewChanged {
			changes = append(changes, e)
		}
	}
	if kinds[kyc.AMLCaseResolved] != 1 || len(changes) != 1 {
		t.Fatalf("hooks by kind %v, want one resolution and one review change", kinds)
	}
	e := changes[0]
	if e.Sequence == 0 || e.Key != s2+"-"+itoa64(e.Sequence) || e.Case == nil || e.Case.CaseID != contract.AMLCaseWorkflowID(s2) ||
		e.Case.Outcome != "false_positive" || len(e.Case.Hits) != 1 || e.Case.Hits[hitA] != "confirmed_match" ||
		!e.At.Equal(time.Unix(approvedAt+1200, 0)) {
		t.Fatalf("review change hook = %+v (case %+v)", e, e.Case)
	}
	if st := h.state(); len(st.Flags) != 0 {
		t.Fatalf("flags after the acknowledgement = %v", flagKinds(st))
	}
}

// TestEchoOfAResolutionChangesNothing: compliance resolves a case in
// diditflow, which writes each outcome back to Didit; the data.updated
// Didit sends back carries exactly those statuses. It resolves nothing
// twice, raises no flag and starts no hook.
func TestEchoOfAResolutionChangesNothing(t *testing.T) {
	h := reviewHarness(t, hookSettings, approvedAt-1)
	api := &stubDidit{key: true}
	h.acts.Didit = api
	h.deliverAt(time.Second, approvedWithHits(t))
	h.resolveAt(10*time.Minute, contract.AMLCaseWorkflowID(s2))
	h.deliverAt(15*time.Minute, reviewed(t, approvedAt+900, "API Client", map[string]string{hitA: didit.ReviewFalsePositive, hitB: didit.ReviewFalsePositive}))
	var after SessionState
	h.sessionState(16*time.Minute, &after)
	h.run(s2)

	if len(api.bulk) != 1 || len(api.bulk[0].reviews) != 2 {
		t.Fatalf("write-backs = %+v, want one bulk call of both hits", api.bulk)
	}
	c := h.theCase()
	if c.Resolution.Source != contract.FromDiditflow || c.Resolution.Reviewer != "officer@example.com" {
		t.Fatalf("resolution = %+v, want diditflow's", c.Resolution)
	}
	if len(after.Flags) != 0 {
		t.Fatalf("flags after the echo = %+v", after.Flags)
	}
	for _, e := range h.temporal.hooks() {
		if e.Kind == kyc.AMLReviewChanged {
			t.Fatalf("a review change hook for the echo: %+v", e)
		}
	}
}

// TestReviewsTakenAfterTheResolutionAreHandedBack: reviews that reach a
// case in the moment it is resolved in diditflow are compared with its
// resolution: one that differs is handed back to the session, which flags
// it; Didit's echo of the resolution is not.
func TestReviewsTakenAfterTheResolutionAreHandedBack(t *testing.T) {
	h := newHarness(t, nil)
	in := amlCase(t)
	in.Case.CaseID = contract.AMLCaseWorkflowID(in.Case.SessionID)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(contract.ResolveSignal, contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "officer@example.com"})
		for i, status := range []string{didit.ReviewFalsePositive, didit.ReviewConfirmedMatch} {
			h.env.SignalWorkflow(contract.HitReviewsSignal, contract.HitReviews{SessionID: s2, CaseID: in.Case.CaseID,
				EventKey: "evt-" + strconv.Itoa(i), Hits: []contract.HitReview{{HitID: hitA, ReviewStatus: status, At: approvedAt}}})
		}
	}, 5*time.Minute)
	h.env.ExecuteWorkflow(contract.AMLCaseWorkflowType, in)
	var res contract.Resolution
	if err := h.env.GetWorkflowResult(&res); err != nil || res.Source != contract.FromDiditflow {
		t.Fatalf("result = %+v, %v; want diditflow's resolution", res, err)
	}
	got := h.temporal.reported
	if len(got) != 1 || got[0].EventKey != "evt-1" || len(got[0].Hits) != 1 || got[0].Hits[0].ReviewStatus != didit.ReviewConfirmedMatch {
		t.Fatalf("handed back %+v, want the Confirmed Match only", got)
	}
}

// TestLaterRunTellsTheOpenCase: a session whose run completed long ago
// learns its open case from the records when a review arrives in a new
// run, and tells the case (which runs on, outside this run).
func TestLaterRunTellsTheOpenCase(t *testing.T) {
	h := reviewHarness(t, nil, approvedAt+86399)
	_, err := h.store.OpenAMLCase(context.Background(), store.AMLCase{CaseID: contract.AMLCaseWorkflowID(s2), SessionID: s2,
		Hits: []store.AMLHit{{ID: hitA, ReviewStatus: didit.ReviewUnreviewed, ReviewedAt: approvedAt}, {ID: hitB, ReviewedAt: approvedAt}}})
	if err != nil {
		t.Fatal(err)
	}
	var told []contract.HitReviews
	h.env.OnSignalExternalWorkflow(mock.Anything, contract.AMLCaseWorkflowID(s2), "", contract.HitReviewsSignal, mock.Anything).
		Return(func(_, _, _, _ string, arg any) error {
			told = append(told, arg.(contract.HitReviews))
			return nil
		})
	h.deliverAt(time.Second, reviewed(t, approvedAt+86400, "", map[string]string{hitB: didit.ReviewConfirmedMatch}))
	h.run(s2)
	if len(told) != 1 || told[0].CaseID != contract.AMLCaseWorkflowID(s2) || len(told[0].Hits) != 1 ||
		told[0].Hits[0].HitID != hitB || told[0].Hits[0].ReviewStatus != didit.ReviewConfirmedMatch {
		t.Fatalf("the case was told %+v, want hit B's review", told)
	}
}

// TestClosedCaseInALaterRun: in a new run, a review of a case whose
// workflow is gone is a change after its resolution.
func TestClosedCaseInALaterRun(t *testing.T) {
	first := reviewHarness(t, nil, approvedAt-1)
	first.deliverAt(time.Second, approvedWithHits(t))
	first.resolveAt(5*time.Minute, contract.AMLCaseWorkflowID(s2))
	first.run(s2)

	h := reviewHarness(t, nil, approvedAt+86399)
	h.store, h.acts.Store, h.kyc.Store = first.store, first.store, first.store
	h.env.OnSignalExternalWorkflow(mock.Anything, contract.AMLCaseWorkflowID(s2), "", contract.HitReviewsSignal, mock.Anything).
		Return(&temporal.UnknownExternalWorkflowExecutionError{})
	// The echo of the resolution first, then a change.
	h.deliverAt(time.Second, reviewed(t, approvedAt+86400, "", map[string]string{hitA: didit.ReviewFalsePositive, hitB: didit.ReviewFalsePositive}))
	h.deliverAt(time.Minute, reviewed(t, approvedAt+86460, "", map[string]string{hitA: didit.ReviewFalsePositive, hitB: didit.ReviewInconclusive}))
	var st SessionState
	h.sessionState(2*time.Minute, &st)
	h.signalAt(5*time.Minute, contract.AcknowledgeSignal, nil)
	h.run(s2)
	if len(st.Flags) != 1 || st.Flags[0].Kind != FlagReviewChanged || !strings.Contains(st.Flags[0].Reason, "hit "+hitB+" is now Inconclusive") {
		t.Fatalf("flags = %+v, want hit B's change only", st.Flags)
	}
	if c := h.theCase(); c.Hits[1].ReviewStatus != didit.ReviewInconclusive || c.Hits[0].ReviewStatus != didit.ReviewFalsePositive {
		t.Fatalf("case record hits = %+v", c.Hits)
	}
}
