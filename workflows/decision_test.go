package workflows

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
)

// stubDidit stands in for Didit's decision API, which cannot run here: it
// answers each call with the next of its answers (the last one repeats).
type stubDidit struct {
	mu      sync.Mutex
	key     bool
	answers []stubAnswer
	calls   int
	bulk    []bulkCall
}

type stubAnswer struct {
	decision didit.Decision
	date     time.Time
	err      error
}

func (s *stubDidit) Enabled() bool { return s.key }

// bulkCall is one bulk AML hit review the stub received.
type bulkCall struct {
	session, node string
	reviews       []api.HitReview
}

func (s *stubDidit) BulkUpdateAMLHits(_ context.Context, sessionID, nodeID string, reviews []api.HitReview) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bulk = append(s.bulk, bulkCall{sessionID, nodeID, slices.Clone(reviews)})
	if len(s.answers) > 0 && s.answers[0].err != nil {
		return s.answers[0].err
	}
	return nil
}

func (s *stubDidit) Decision(_ context.Context, sessionID string) (api.DecisionResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.answers[min(s.calls, len(s.answers)-1)]
	s.calls++
	if a.err != nil {
		return api.DecisionResult{}, a.err
	}
	d := a.decision
	d.SessionID = sessionID
	return api.DecisionResult{Decision: d, Date: a.date}, nil
}

// noDecision is a Didit event of a status Didit sends without a decision.
func noDecision(t *testing.T, status didit.Status, createdAt int64) contract.SessionEvent {
	se := statusEvent(t, "status-updated-in-progress.json", status, createdAt)
	se.Event.Decision = nil
	return se
}

func flagKinds(st SessionState) []string {
	var out []string
	for _, f := range st.Flags {
		out = append(out, f.Kind)
	}
	return out
}

// TestKycExpiredFetchesTheAddress: Kyc Expired comes without a decision; the
// fetched one gives the address, and the user is asked to verify again.
func TestKycExpiredFetchesTheAddress(t *testing.T) {
	h := newHarness(t, nil)
	at := time.Unix(1767300000, 0)
	stub := &stubDidit{key: true, answers: []stubAnswer{{decision: didit.Decision{Status: didit.StatusKycExpired, Email: "fetched@example.com"}, date: at}}}
	h.acts.Didit = stub
	h.deliverAt(time.Second, noDecision(t, didit.StatusKycExpired, at.Unix()-60))
	var st SessionState
	h.env.RegisterDelayedCallback(func() { st = h.state() }, time.Minute)
	h.run(s1)
	if stub.calls != 1 {
		t.Fatalf("%d decision fetches, want 1", stub.calls)
	}
	mails := h.mails()
	if len(mails) != 1 || !strings.Contains(mails[0].To, "fetched@example.com") || !strings.Contains(mails[0].Subject, "verify") {
		t.Fatalf("mails = %+v, want the verify-again notice at the fetched address", mails)
	}
	if len(st.Flags) != 0 || h.record(s1).Status != "Kyc Expired" {
		t.Fatalf("flags %v, record %q", flagKinds(st), h.record(s1).Status)
	}
}

// TestKnownAddressNeedsNoFetch: the run already holds the address from an
// earlier decision, so Kyc Expired costs no API call.
func TestKnownAddressNeedsNoFetch(t *testing.T) {
	h := newHarness(t, nil)
	stub := &stubDidit{key: true, answers: []stubAnswer{{err: &api.Error{Kind: api.KindServer, Op: "decision", Status: 500}}}}
	h.acts.Didit = stub
	approved := fixtureEvent(t, "status-updated-approved.json")
	h.deliverAt(time.Second, approved)
	h.deliverAt(time.Minute, noDecision(t, didit.StatusKycExpired, approved.Event.CreatedAt+86400))
	h.run(s1)
	if stub.calls != 0 {
		t.Fatalf("%d decision fetches, want none", stub.calls)
	}
	if got := h.subjects(); len(got) != 2 {
		t.Fatalf("mails = %q, want approved and verify again", got)
	}
}

// TestAddressInTheSameBatchNeedsNoFetch: Approved (with its decision) and
// Kyc Expired arrive at once (one batch, or the approval's first); its
// address serves both, without a fetch.
func TestAddressInTheSameBatchNeedsNoFetch(t *testing.T) {
	h := newHarness(t, nil)
	stub := &stubDidit{key: true, answers: []stubAnswer{{err: &api.Error{Kind: api.KindServer, Op: "decision", Status: 500}}}}
	h.acts.Didit = stub
	approved := fixtureEvent(t, "status-updated-approved.json")
	h.deliverAt(time.Second, approved, noDecision(t, didit.StatusKycExpired, approved.Event.CreatedAt+86400))
	h.run(s1)
	if stub.calls != 0 {
		t.Fatalf("%d decision fetches, want none", stub.calls)
	}
	if got := h.subjects(); len(got) != 2 {
		t.Fatalf("mails = %q, want approved and verify again", got)
	}
}

// TestNoAPIKeyFlagsTheSession: a Kyc Expired session the records hold no
// address for, whose decision cannot be fetched, is never left to a silent
// "undeliverable" notice: the notice waits for an address and parks with
// the reason (no key), and a 404 or a refused key is flagged besides.
func TestNoAPIKeyFlagsTheSession(t *testing.T) {
	for _, c := range []struct {
		name string
		api  *stubDidit
		want string
		flag bool
	}{
		{"no key", &stubDidit{}, "DIDIT_API_KEY", false},
		{"not found", &stubDidit{key: true, answers: []stubAnswer{{err: &api.Error{Kind: api.KindNotFound, Op: "decision", Status: 404}}}}, "404", true},
		{"refused", &stubDidit{key: true, answers: []stubAnswer{{err: &api.Error{Kind: api.KindCredentials, Op: "decision", Status: 403}}}}, "refused", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.acts.Didit = c.api
			h.deliverAt(time.Second, noDecision(t, didit.StatusKycExpired, 1767300000))
			var st SessionState
			h.env.RegisterDelayedCallback(func() { st = h.state() }, time.Hour)
			h.signalAt(2*time.Hour, contract.SkipSignal, contract.OperatorAction{Operator: "ops"})
			h.signalAt(3*time.Hour, contract.AcknowledgeSignal, contract.OperatorAction{Operator: "ops"})
			h.run(s1)
			if len(h.mails()) != 0 {
				t.Fatal("a mail without an address")
			}
			if len(st.Parked) != 1 || !strings.HasPrefix(st.Parked[0].Step, "notify user: kyc_expired") ||
				!strings.Contains(st.Parked[0].Error, c.want) || !strings.Contains(st.Parked[0].Error, "no contact address") {
				t.Fatalf("parked = %+v, want the kyc_expired notice parked naming %q", st.Parked, c.want)
			}
			kinds := slices.Compact(flagKinds(st))
			named := slices.ContainsFunc(st.Flags, func(f Flag) bool { return strings.Contains(f.Reason, c.want) })
			if c.flag && (!slices.Equal(kinds, []string{FlagDecisionUnavailable}) || !named) {
				t.Fatalf("flags = %+v, want %s naming %q", st.Flags, FlagDecisionUnavailable, c.want)
			}
			if !c.flag && len(kinds) != 0 {
				t.Fatalf("flags = %+v, want only the parked notice", st.Flags)
			}
		})
	}
}

// TestKycExpiredInANewRunMailsTheRecordedAddress: the approval's run has
// completed; Kyc Expired, months later and without a key, starts a new run
// that holds no address, and the notice takes the one the records kept.
func TestKycExpiredInANewRunMailsTheRecordedAddress(t *testing.T) {
	h := newHarness(t, nil)
	h.acts.Didit = &stubDidit{}
	approved := fixtureEvent(t, "status-updated-approved.json")
	h.deliverAt(time.Second, approved)
	h.run(s1)

	next := newHarness(t, nil)
	next.store, next.acts.Store = h.store, h.store
	next.outbox, next.acts.Mailer = h.outbox, h.acts.Mailer
	next.acts.Didit = &stubDidit{}
	next.deliverAt(time.Second, noDecision(t, didit.StatusKycExpired, approved.Event.CreatedAt+90*86400))
	next.run(s1)
	mails := next.mails()
	again := slices.IndexFunc(mails, func(m sentMail) bool { return strings.Contains(m.Subject, "verify") })
	if len(mails) != 2 || again < 0 || !strings.Contains(mails[again].To, approved.Event.Decision.ContactEmail()) {
		t.Fatalf("mails = %+v, want the approval and the verify-again notice at the recorded address", mails)
	}
	if st := next.state(); len(st.Parked) != 0 || len(st.Flags) != 0 || next.record(s1).Status != "Kyc Expired" {
		t.Fatalf("parked %+v, flags %v, record %q", st.Parked, flagKinds(st), next.record(s1).Status)
	}
}

// TestRateLimitedFetchRetriesAfterDiditsDelay: a 429 fails the attempt with
// Retry-After as the next delay; the next attempt succeeds.
func TestRateLimitedFetchRetriesAfterDiditsDelay(t *testing.T) {
	h := newHarness(t, nil)
	at := time.Unix(1767300000, 0)
	stub := &stubDidit{key: true, answers: []stubAnswer{
		{err: &api.Error{Kind: api.KindRateLimited, Op: "decision", Status: 429, RetryAfter: 30 * time.Second}},
		{decision: didit.Decision{Status: didit.StatusKycExpired, Email: "fetched@example.com"}, date: at},
	}}
	h.acts.Didit = stub
	h.deliverAt(time.Second, noDecision(t, didit.StatusKycExpired, at.Unix()-60))
	h.run(s1)
	if stub.calls != 2 || len(h.mails()) != 1 {
		t.Fatalf("%d fetches, %d mails; want 2 and 1", stub.calls, len(h.mails()))
	}
}

// TestEnvelopeOnlyEventTakesTheFetchedDecision: an event only
// X-Signature-Simple vouches for has its decision fetched: of the same
// status, its effects run with it and nothing is flagged; of a later
// status, the fetched decision moves the record on, and notifies once.
func TestEnvelopeOnlyEventTakesTheFetchedDecision(t *testing.T) {
	simple := func(t *testing.T, status didit.Status) contract.SessionEvent {
		se := statusEvent(t, "status-updated-approved.json", status, 1767225000)
		se.Proof = didit.Proof{Scheme: didit.SchemeSimple, Timestamp: se.Event.Timestamp, EnvelopeOnly: true}
		se.Event = se.Event.Authenticated(se.Proof)
		return se
	}
	t.Run("same status", func(t *testing.T) {
		h := newHarness(t, nil)
		h.acts.Didit = &stubDidit{key: true, answers: []stubAnswer{{decision: didit.Decision{Status: didit.StatusApproved, Email: userEmail}, date: time.Unix(1767300000, 0)}}}
		h.deliverAt(time.Second, simple(t, didit.StatusApproved))
		var st SessionState
		h.env.RegisterDelayedCallback(func() { st = h.state() }, time.Minute)
		h.run(s1)
		if got := h.subjects(); len(got) != 1 || got[0] != "Your identity verification is approved" {
			t.Fatalf("mails = %q", got)
		}
		if len(st.Flags) != 0 {
			t.Fatalf("flags = %+v", st.Flags)
		}
	})
	t.Run("later status", func(t *testing.T) {
		h := newHarness(t, nil)
		h.acts.Didit = &stubDidit{key: true, answers: []stubAnswer{{decision: didit.Decision{Status: didit.StatusApproved, Email: userEmail}, date: time.Unix(1767300000, 0)}}}
		h.deliverAt(time.Second, simple(t, didit.StatusInReview))
		var st SessionState
		h.env.RegisterDelayedCallback(func() { st = h.state() }, time.Minute)
		// The In Review webhook, fully signed, arrives late: it moves nothing.
		late := statusEvent(t, "status-updated-approved.json", didit.StatusInReview, 1767225000)
		h.deliverAt(2*time.Minute, late)
		h.run(s1)
		if h.record(s1).Status != "Approved" {
			t.Fatalf("record = %q, want Approved from the fetched decision", h.record(s1).Status)
		}
		if got := h.subjects(); len(got) != 1 || got[0] != "Your identity verification is approved" {
			t.Fatalf("mails = %q, want the approval only", got)
		}
		if len(st.Flags) != 0 {
			t.Fatalf("flags = %+v", st.Flags)
		}
	})
}

// TestResolvedCaseWritesReviewsBack: each hit's outcome (its own, else the
// case's) goes back to Didit as its review status, one bulk call per node.
func TestResolvedCaseWritesReviewsBack(t *testing.T) {
	h := newHarness(t, nil)
	stub := &stubDidit{key: true}
	h.acts.Didit = stub
	in := amlCase(t)
	if len(in.Case.Hits) == 0 {
		t.Fatal("fixture has no hits")
	}
	// A second node, as a session with two AML screenings has.
	extra := in.Case.Hits[0]
	extra.ID, extra.NodeID = "hit-on-node-2", "aml-node-2"
	in.Case.Hits = append(in.Case.Hits, extra)
	first := in.Case.Hits[0].ID
	h.signalAt(30*time.Minute, contract.ResolveSignal, contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "officer@example.com",
		Hits: map[string]contract.Outcome{first: contract.ConfirmedMatch}})
	h.env.ExecuteWorkflow(contract.AMLCaseWorkflowType, in)
	if err := h.env.GetWorkflowResult(new(contract.Resolution)); err != nil {
		t.Fatal(err)
	}
	if len(stub.bulk) != 2 {
		t.Fatalf("bulk calls = %+v, want one per node", stub.bulk)
	}
	for _, c := range stub.bulk {
		for _, r := range c.reviews {
			want := api.ReviewFalsePositive
			if r.HitID == first {
				want = api.ReviewConfirmedMatch
			}
			if r.ReviewStatus != want || c.session != in.Case.SessionID {
				t.Errorf("node %q hit %s: %q, want %q", c.node, r.HitID, r.ReviewStatus, want)
			}
		}
	}
	if stub.bulk[1].node != "aml-node-2" || len(stub.bulk[1].reviews) != 1 {
		t.Fatalf("second node call = %+v", stub.bulk[1])
	}
}

// TestResolutionNamingAnUnknownHitIsRejected: a per-hit outcome for a hit
// the case does not hold is refused, and the case waits for a valid one.
func TestResolutionNamingAnUnknownHitIsRejected(t *testing.T) {
	h := newHarness(t, nil)
	in := amlCase(t)
	h.signalAt(time.Minute, contract.ResolveSignal, contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "officer@example.com",
		Hits: map[string]contract.Outcome{"no-such-hit": contract.ConfirmedMatch}})
	h.signalAt(2*time.Minute, contract.ResolveSignal, contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "officer@example.com"})
	var st CaseState
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(contract.StateQuery)
		if err == nil {
			_ = v.Get(&st)
		}
	}, 90*time.Second)
	h.env.ExecuteWorkflow(contract.AMLCaseWorkflowType, in)
	if err := h.env.GetWorkflowResult(new(contract.Resolution)); err != nil {
		t.Fatal(err)
	}
	if len(st.Rejected) != 1 || !strings.Contains(st.Rejected[0], "no-such-hit") {
		t.Fatalf("rejected = %q", st.Rejected)
	}
}

// TestSupersededEventNeverMovesTheRecord: the record is Declined and the
// user told; an old Approved is resent, vouched for by X-Signature-Simple
// only. Didit's decision still says Declined: the Approved is kept in the
// run's history only, the record stays Declined, nobody is mailed again.
func TestSupersededEventNeverMovesTheRecord(t *testing.T) {
	h := newHarness(t, nil)
	h.acts.Didit = &stubDidit{key: true, answers: []stubAnswer{{decision: didit.Decision{Status: didit.StatusDeclined, Email: userEmail}, date: time.Unix(1767400000, 0)}}}
	declined := statusEvent(t, "status-updated-approved.json", didit.StatusDeclined, 1767226000)
	h.deliverAt(time.Second, declined)
	resent := statusEvent(t, "status-updated-approved.json", didit.StatusApproved, 1767225000)
	resent.Event.Timestamp = 1767300000
	resent.Proof = didit.Proof{Scheme: didit.SchemeSimple, Timestamp: resent.Event.Timestamp, EnvelopeOnly: true}
	resent.Event = resent.Event.Authenticated(resent.Proof)
	h.deliverAt(time.Minute, resent)
	var st SessionState
	h.env.RegisterDelayedCallback(func() { st = h.state() }, 2*time.Minute)
	h.run(s1)
	if h.record(s1).Status != "Declined" {
		t.Fatalf("record = %q, want Declined", h.record(s1).Status)
	}
	if got := h.subjects(); len(got) != 1 {
		t.Fatalf("mails = %q, want the one decline notice", got)
	}
	if !slices.Contains(outcomes(st), "Approved:superseded") {
		t.Fatalf("history = %v", outcomes(st))
	}
}
