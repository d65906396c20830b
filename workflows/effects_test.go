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
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
)

// withHits gives an event the AML screenings of the in-review fixture (one
// unreviewed hit) plus hits with the extra IDs.
func withHits(t *testing.T, se contract.SessionEvent, extra ...string) contract.SessionEvent {
	t.Helper()
	screenings := fixtureEvent(t, "status-updated-in-review.json").Event.Decision.AMLScreenings
	for _, id := range extra {
		screenings[0].Hits = append(screenings[0].Hits, didit.AMLHit{ID: id, ReviewStatus: didit.ReviewUnreviewed})
	}
	se.Event.Decision.AMLScreenings = screenings
	return se
}

func (h *harness) resolveAt(at time.Duration, caseID string) {
	h.env.RegisterDelayedCallback(func() {
		err := h.env.SignalWorkflowByID(caseID, contract.ResolveSignal,
			contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "officer@example.com"})
		if err != nil {
			h.t.Errorf("resolve %s: %v", caseID, err)
		}
	}, at)
}

func (h *harness) cases(sessionID string) []store.AMLCase {
	h.t.Helper()
	cs, err := h.store.AMLCases(context.Background(), sessionID)
	if err != nil {
		h.t.Fatal(err)
	}
	return cs
}

// TestApprovedWithHitsOpensTheCaseAlone: an Approved event carrying
// unreviewed hits opens the case although no In Review came first; the
// In Review that arrives late joins it.
func TestApprovedWithHitsOpensTheCaseAlone(t *testing.T) {
	h := newHarness(t, nil)
	approved := withHits(t, fixtureEvent(t, "status-updated-approved.json"))
	h.deliverAt(time.Second, approved)
	// Older, and late: the same hit, so it joins the case.
	h.deliverAt(time.Minute, withHits(t, statusEvent(t, "status-updated-approved.json", didit.StatusInReview, approved.Event.CreatedAt-60)))
	h.resolveAt(10*time.Minute, contract.AMLCaseWorkflowID(s1))
	h.run(s1)

	cs := h.cases(s1)
	if len(cs) != 1 || cs[0].CaseID != contract.AMLCaseWorkflowID(s1) || len(cs[0].Hits) != 1 {
		t.Fatalf("cases = %+v, want one case with the hit", cs)
	}
	if got := h.subjects(); !slices.Contains(got, "AML case opened: session "+s1) || !slices.Contains(got, "Your identity verification is approved") {
		t.Fatalf("mails = %q", got)
	}
	if st := h.state(); !st.AMLCase || len(st.Cases) != 1 || st.Status != didit.StatusApproved {
		t.Fatalf("state = %+v", st)
	}
}

// TestHitsFoundLaterOpenAFollowUpCase: ongoing monitoring. A data.updated
// after approval with a new hit opens aml-case-<id>-2, linked to the first;
// hits already in a case never open another.
func TestHitsFoundLaterOpenAFollowUpCase(t *testing.T) {
	h := newHarness(t, nil)
	approved := withHits(t, fixtureEvent(t, "status-updated-approved.json"))
	h.deliverAt(time.Second, withHits(t, statusEvent(t, "status-updated-approved.json", didit.StatusInReview, approved.Event.CreatedAt-60)))
	h.deliverAt(time.Minute, approved)
	later := withHits(t, fixtureEvent(t, "data-updated.json"), "hit-found-later")
	// Within the idle window: a later event would start a new run.
	h.deliverAt(5*time.Minute, later)
	h.deliverAt(6*time.Minute, later) // a redelivery
	again := withHits(t, fixtureEvent(t, "data-updated.json"), "hit-found-later")
	again.Event.EventID = "data-updated-again" // the same hits in another event
	h.deliverAt(7*time.Minute, again)
	h.resolveAt(30*time.Minute, contract.AMLCaseWorkflowID(s1))
	h.resolveAt(3*time.Hour, contract.FollowUpCaseID(s1, 2))
	h.run(s1)

	cs := h.cases(s1)
	if len(cs) != 2 {
		t.Fatalf("cases = %+v, want the first and one follow-up", cs)
	}
	first, second := cs[0], cs[1]
	if first.CaseID != contract.AMLCaseWorkflowID(s1) || first.State != store.AMLCaseResolved || first.FollowUpOf != "" {
		t.Fatalf("first case = %+v", first)
	}
	if second.CaseID != s1follow(2) || second.FollowUpOf != first.CaseID || len(second.Hits) != 1 || second.Hits[0].ID != "hit-found-later" {
		t.Fatalf("follow-up = %+v", second)
	}
	if st := h.state(); !slices.Equal(st.Cases, []string{first.CaseID, second.CaseID}) {
		t.Fatalf("state cases = %v", st.Cases)
	}
}

func s1follow(n int) string { return contract.FollowUpCaseID(s1, n) }

// TestNoticePerStatusChange: a second Resubmitted in one session mails the
// user again; Resubmitted carries no decision, so the address is the one
// the session already holds.
func TestNoticePerStatusChange(t *testing.T) {
	h := newHarness(t, nil)
	const base = "status-updated-approved.json"
	inReview := statusEvent(t, base, didit.StatusInReview, 1000)
	resubmitted := func(id string, at int64) contract.SessionEvent {
		se := statusEvent(t, base, didit.StatusResubmitted, at)
		se.Event.EventID, se.Event.Decision = id, nil // as Didit sends it: no decision
		return se
	}
	h.deliverAt(time.Second, inReview)
	h.deliverAt(time.Minute, resubmitted("resubmit-1", 1010))
	second := statusEvent(t, base, didit.StatusInReview, 1020)
	second.Event.EventID = "in-review-2"
	h.deliverAt(2*time.Minute, second)
	h.deliverAt(3*time.Minute, resubmitted("resubmit-2", 1030))
	h.deliverAt(4*time.Minute, resubmitted("resubmit-2", 1030)) // a redelivery mails no one
	h.run(s1)

	var resubmits int
	for _, m := range h.mails() {
		if strings.Contains(m.Subject, "redo") || strings.Contains(strings.ToLower(m.Subject), "again") || strings.Contains(strings.ToLower(m.Subject), "resubmit") {
			resubmits++
			if !strings.Contains(m.To, userEmail) {
				t.Fatalf("resubmission notice to %q, want the session's address", m.To)
			}
		}
	}
	if resubmits != 2 {
		t.Fatalf("mails = %q, want two resubmission notices", h.subjects())
	}
}

// TestEnvelopeOnlyAndSignedShareOneOrder: an event that only
// X-Signature-Simple verified is ordered by its signed timestamp, so an
// older fully signed event cannot move the record back past it; the signed
// event that confirms its status triggers the effects it withheld.
func TestEnvelopeOnlyAndSignedShareOneOrder(t *testing.T) {
	h := newHarness(t, nil)
	simple := fixtureEvent(t, "status-updated-approved.json")
	simple.Proof = didit.Proof{Scheme: didit.SchemeSimple, Timestamp: simple.Event.Timestamp, EnvelopeOnly: true}
	simple.Event = simple.Event.Authenticated(simple.Proof)
	h.deliverAt(time.Second, simple)
	h.deliverAt(time.Minute, statusEvent(t, "status-updated-approved.json", didit.StatusInProgress, simple.Event.Timestamp-600)) // created before the approval was signed
	var whileUnconfirmed []string
	h.env.RegisterDelayedCallback(func() { whileUnconfirmed = h.subjects() }, 2*time.Minute)
	h.deliverAt(5*time.Minute, fixtureEvent(t, "status-updated-approved.json"))
	var st SessionState
	h.env.RegisterDelayedCallback(func() { st = h.state() }, time.Hour)
	h.signalAt(2*time.Hour, contract.AcknowledgeSignal, contract.OperatorAction{Operator: "ops"})
	h.run(s1)

	if got := outcomes(st); !slices.Equal(got, []string{"Approved:applied", "In Progress:stale", "Approved:stale"}) {
		t.Fatalf("history = %v", got)
	}
	if st.Status != didit.StatusApproved || h.record(s1).Status != "Approved" {
		t.Fatalf("status = %q, record %q: the older signed event moved it back", st.Status, h.record(s1).Status)
	}
	if len(whileUnconfirmed) != 0 {
		t.Fatalf("mails before a trustworthy decision: %q", whileUnconfirmed)
	}
	if got := h.subjects(); len(got) != 1 || got[0] != "Your identity verification is approved" {
		t.Fatalf("mails = %q, want the approval once the signed event confirmed it", got)
	}
	if len(st.Flags) != 1 || st.Flags[0].Kind != FlagUnusableDecision {
		t.Fatalf("flags = %+v", st.Flags)
	}
}

// TestAcknowledgeClearsAFlag: an undeliverable notice flags the session
// (search attribute, record); an operator's acknowledge clears it, with the
// note recorded.
func TestAcknowledgeClearsAFlag(t *testing.T) {
	h := newHarness(t, nil)
	ev := fixtureEvent(t, "status-updated-approved.json")
	ev.Event.Decision.Email = ""
	h.deliverAt(time.Second, ev)
	var flagged SessionState
	var recordFlagged store.SessionRecord
	h.env.RegisterDelayedCallback(func() { flagged, recordFlagged = h.state(), h.record(s1) }, time.Minute)
	h.signalAt(2*time.Minute, contract.AcknowledgeSignal, contract.OperatorAction{Flag: "in_doubt", Operator: "ops"}) // names nothing flagged
	h.signalAt(3*time.Minute, contract.AcknowledgeSignal, contract.OperatorAction{Flag: FlagUndeliverable, Operator: "ops@example.com", Note: "user has no e-mail; called them"})
	h.run(s1)

	if len(flagged.Flags) != 1 || flagged.Flags[0].Kind != FlagUndeliverable {
		t.Fatalf("flags while flagged = %+v", flagged.Flags)
	}
	if !recordFlagged.NeedsAttention || !strings.Contains(recordFlagged.Attention, FlagUndeliverable) {
		t.Fatalf("record while flagged = %+v", recordFlagged)
	}
	st := h.state()
	if len(st.Flags) != 0 || len(st.Decisions) != 1 || st.Decisions[0].Action != contract.AcknowledgeSignal ||
		st.Decisions[0].Note != "user has no e-mail; called them" {
		t.Fatalf("state after acknowledge = flags %+v, decisions %+v", st.Flags, st.Decisions)
	}
	if v, _ := h.searchBool(contract.NeedsAttentionKey); v {
		t.Fatal("DiditNeedsAttention still set after the acknowledgement")
	}
	if rec := h.record(s1); rec.NeedsAttention || rec.Attention != "" {
		t.Fatalf("record after acknowledge = %+v", rec)
	}
}

// TestContinueAsNewDoesNotWaitForAParkedNotice: a run continues as new while
// a notice is parked; the next run carries it, still parked, and the
// operator's retry there sends it once.
func TestContinueAsNewDoesNotWaitForAParkedNotice(t *testing.T) {
	h := newHarness(t, func(s *Settings) { s.ContinueAsNewAfter = 2 })
	permanent := temporal.NewNonRetryableApplicationError("smtp AUTH rejected: 535", "Permanent", nil)
	h.env.OnActivity(h.acts.NotifyUser, mock.Anything, mock.Anything).Return(failing(1, permanent, h.acts.NotifyUser))
	h.deliverAt(time.Second, statusEvent(t, "status-updated-approved.json", didit.StatusInProgress, 1000))
	h.deliverAt(time.Minute, fixtureEvent(t, "status-updated-approved.json"))
	h.deliverAt(time.Hour, fixtureEvent(t, "data-updated.json"))
	next := continuedAsNew(h, contract.SessionWorkflowType, SessionInput{SessionStart: contract.SessionStart{SessionID: s1}})
	if len(next.State.Parked) != 1 || len(next.State.Effects) != 1 || next.State.Effects[0].Notice == nil {
		t.Fatalf("carried: parked %+v, effects %+v", next.State.Parked, next.State.Effects)
	}
	if len(h.mails()) != 0 {
		t.Fatal("the parked notice was sent")
	}

	h2 := newHarness(t, nil)
	h2.store, h2.acts.Store = h.store, h.store
	h2.outbox = h.outbox
	h2.acts.Mailer = h.acts.Mailer
	var parkedThere int
	h2.env.RegisterDelayedCallback(func() { parkedThere = len(h2.state().Parked) }, time.Minute)
	h2.signalAt(2*time.Minute, contract.RetrySignal, contract.OperatorAction{Operator: "ops"})
	h2.env.ExecuteWorkflow(contract.SessionWorkflowType, next)
	if err := h2.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if parkedThere != 1 {
		t.Fatalf("the carried notice was not parked in the next run (%d parked): it ran without the operator", parkedThere)
	}
	if got := h2.subjects(); len(got) != 1 || got[0] != "Your identity verification is approved" {
		t.Fatalf("mails = %q, want the approval once, after the retry", got)
	}
}

// TestContinueAsNewCarriesTheEffectsQueue: the In Review notice parks, the
// Declined notice queues behind it, and the run continues as new; the next
// run carries both, the first still parked, and once the operator retries
// it sends each, once.
func TestContinueAsNewCarriesTheEffectsQueue(t *testing.T) {
	h := newHarness(t, func(s *Settings) { s.ContinueAsNewAfter = 2 })
	permanent := temporal.NewNonRetryableApplicationError("smtp AUTH rejected: 535", "Permanent", nil)
	h.env.OnActivity(h.acts.NotifyUser, mock.Anything, mock.Anything).Return(failing(1, permanent, h.acts.NotifyUser))
	const base = "status-updated-approved.json"
	h.deliverAt(time.Second, statusEvent(t, base, didit.StatusInReview, 1000))
	h.deliverAt(time.Minute, statusEvent(t, base, didit.StatusDeclined, 1010))
	next := continuedAsNew(h, contract.SessionWorkflowType, SessionInput{SessionStart: contract.SessionStart{SessionID: s1}})
	effects := next.State.Effects
	if len(effects) != 2 || effects[0].Notice == nil || effects[0].Notice.Kind != activities.NoticeInReview ||
		effects[1].Notice == nil || effects[1].Notice.Kind != activities.NoticeDeclined {
		t.Fatalf("carried effects = %+v, want the in-review notice, then the declined one", effects)
	}
	if len(next.State.Parked) != 1 || next.State.Parked[0].Step != effects[0].step() {
		t.Fatalf("carried parked steps = %+v, want the first effect's", next.State.Parked)
	}

	h2 := newHarness(t, nil)
	h2.store, h2.acts.Store = h.store, h.store
	h2.outbox, h2.acts.Mailer = h.outbox, h.acts.Mailer
	h2.signalAt(time.Minute, contract.RetrySignal, contract.OperatorAction{Operator: "ops"})
	h2.env.ExecuteWorkflow(contract.SessionWorkflowType, next)
	if err := h2.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	want := []string{"Your identity verification is under review", "Your identity verification was not approved"}
	if got := h2.subjects(); !slices.Equal(got, want) {
		t.Fatalf("mails = %q, want %q", got, want)
	}
}

var floodSize = 3 * maxSeen

// TestStateStaysBounded: floods of redeliveries and of distinct events leave
// the state within its caps.
func TestStateStaysBounded(t *testing.T) {
	h := newHarness(t, func(s *Settings) { s.IdleWindow = 24 * time.Hour })
	base := fixtureEvent(t, "data-updated.json")
	// A few hundred signals per callback: the test environment's queue of
	// callbacks holds about a thousand.
	const perCallback = 200
	for from := 0; from < floodSize; from += perCallback {
		h.env.RegisterDelayedCallback(func() {
			for i := from; i < min(from+perCallback, floodSize); i++ {
				se := base
				se.Event.EventID = "flood-" + strconv.Itoa(i)
				h.env.SignalWorkflow(contract.EventSignal, se)   // a distinct event
				h.env.SignalWorkflow(contract.EventSignal, base) // and a redelivery
			}
		}, time.Second+time.Duration(from)*time.Second) // one burst a few minutes apart, within the idle window
	}
	h.run(s1)
	st := h.state()
	if len(st.Seen) > maxSeen || len(st.History) > maxHistory || st.Forgotten == 0 {
		t.Fatalf("seen %d (cap %d), history %d (cap %d), forgotten %d", len(st.Seen), maxSeen, len(st.History), maxHistory, st.Forgotten)
	}
	evs, err := h.store.Events(context.Background(), s1)
	if err != nil || len(evs) != floodSize+1 {
		t.Fatalf("%d events recorded (%v), want every distinct one once", len(evs), err)
	}
	if got := h.subjects(); len(got) != 1 {
		t.Fatalf("mails = %q, want the one approval: the flood changes no status", got)
	}
}

// TestResentOldEnvelopeOnlyEventCannotMoveTheRecordBack: Didit signs a
// resent event anew, so an old In Review that only X-Signature-Simple
// verified carries a fresh timestamp; it must not move an Approved record
// back, and a later envelope-only Approved (no change) must not mail twice.
func TestResentOldEnvelopeOnlyEventCannotMoveTheRecordBack(t *testing.T) {
	h := newHarness(t, nil)
	approved := fixtureEvent(t, "status-updated-approved.json")
	h.deliverAt(time.Second, approved)
	envelopeOnly := func(se contract.SessionEvent, signedAt int64) contract.SessionEvent {
		se.Event.Timestamp = signedAt
		se.Proof = didit.Proof{Scheme: didit.SchemeSimple, Timestamp: signedAt, EnvelopeOnly: true}
		se.Event = se.Event.Authenticated(se.Proof)
		return se
	}
	old := statusEvent(t, "status-updated-approved.json", didit.StatusInReview, approved.Event.CreatedAt-600)
	h.deliverAt(time.Minute, envelopeOnly(old, approved.Event.Timestamp+3600))
	h.deliverAt(2*time.Minute, envelopeOnly(fixtureEvent(t, "status-updated-approved.json"), approved.Event.Timestamp+3700))
	edit := fixtureEvent(t, "data-updated.json")
	h.deliverAt(3*time.Minute, edit)
	h.signalAt(4*time.Minute, contract.AcknowledgeSignal, contract.OperatorAction{Operator: "ops"})
	h.run(s1)

	if st := h.state(); st.Status != didit.StatusApproved || h.record(s1).Status != "Approved" {
		t.Fatalf("status %q, record %q: a resent old event moved the record back (history %v)", st.Status, h.record(s1).Status, outcomes(st))
	}
	if got := h.subjects(); len(got) != 1 {
		t.Fatalf("mails = %q, want the approval once", got)
	}
}

// TestHitsFoundAfterTheRunEndedOpenAFollowUp: the session's first case was
// opened by an earlier run that has completed; a new run, started by a
// data.updated with a new hit, opens aml-case-<id>-2 for that hit alone.
func TestHitsFoundAfterTheRunEndedOpenAFollowUp(t *testing.T) {
	h := newHarness(t, nil)
	first := withHits(t, fixtureEvent(t, "status-updated-approved.json"))
	old := first.Event.Decision.AMLHits()[0]
	if _, err := h.store.OpenAMLCase(context.Background(), store.AMLCase{CaseID: contract.AMLCaseWorkflowID(s1), SessionID: s1,
		Hits: []store.AMLHit{{ID: old.ID}}}); err != nil {
		t.Fatal(err)
	}
	h.deliverAt(time.Second, withHits(t, fixtureEvent(t, "data-updated.json"), "hit-found-later"))
	h.resolveAt(time.Hour, s1follow(2))
	h.run(s1)

	cs := h.cases(s1)
	if len(cs) != 2 || cs[1].CaseID != s1follow(2) || len(cs[1].Hits) != 1 || cs[1].Hits[0].ID != "hit-found-later" {
		t.Fatalf("cases = %+v, want a follow-up for the new hit alone", cs)
	}
}

// TestSkippedBatchIsRetriedEventByEvent: a batch that fails for good is
// skipped by the operator; its events are then recorded one by one, so only
// a bad one would be given up.
func TestSkippedBatchIsRetriedEventByEvent(t *testing.T) {
	h := newHarness(t, nil)
	bad := temporal.NewNonRetryableApplicationError("record events: invalid byte sequence", "Permanent", nil)
	h.env.OnActivity(h.acts.RecordEvents, mock.Anything, mock.Anything).Return(
		func(context.Context, []activities.RecordInput) ([]activities.RecordResult, error) { return nil, bad })
	h.env.RegisterDelayedCallback(func() { // one workflow task, one batch
		h.env.SignalWorkflowSkippingWorkflowTask(contract.EventSignal, statusEvent(t, "status-updated-approved.json", didit.StatusInProgress, 1000))
		h.env.SignalWorkflow(contract.EventSignal, fixtureEvent(t, "status-updated-approved.json"))
	}, time.Second)
	h.signalAt(time.Minute, contract.SkipSignal, contract.OperatorAction{Operator: "ops"})
	h.run(s1)
	if rec := h.record(s1); rec.Status != "Approved" {
		t.Fatalf("record = %+v, want both events recorded one by one", rec)
	}
	if got := outcomes(h.state()); !slices.Equal(got, []string{"In Progress:applied", "Approved:applied"}) {
		t.Fatalf("history = %v", got)
	}
}

// TestFlagsStayBounded: past the cap, untrusted-decision flags make room
// first, so an earlier notice in doubt stays flagged.
func TestFlagsStayBounded(t *testing.T) {
	var list []Flag
	var parked []ParkedStep
	var decisions []OperatorDecision
	f := &flags{list: &list, parked: &parked, decisions: &decisions, sync: func(workflow.Context, bool, []string) {}}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.ExecuteWorkflow(func(ctx workflow.Context) error {
		f.raise(ctx, FlagInDoubt, "the approved notice")
		for i := range 2 * maxFlags {
			f.raise(ctx, FlagUnusableDecision, "event "+strconv.Itoa(i))
		}
		return nil
	})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(list) != maxFlags || list[0].Kind != FlagInDoubt {
		t.Fatalf("%d flags, first %+v: want %d with the in-doubt notice kept", len(list), list[0], maxFlags)
	}
}
