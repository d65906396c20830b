package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
)

// testCallers names each Update's caller after the Update's ID, as the
// worker's note of the request would.
type testCallers struct{}

func (testCallers) Identity(updateID string) string { return "temporal-cli:" + updateID }

// answer is what an Update's caller was told.
type answer struct {
	accepted, completed bool
	rejected, err       error
	result              any
}

// updateAt sends the Update name with id and arg (none if nil) at the given
// time, and returns what its caller is told.
func (h *harness) updateAt(at time.Duration, name, id string, arg any) *answer {
	a := &answer{}
	h.env.RegisterDelayedCallback(func() { h.update(a, name, id, arg) }, at)
	return a
}

func (h *harness) update(a *answer, name, id string, arg any) {
	cb := &testsuite.TestUpdateCallback{
		OnAccept:   func() { a.accepted = true },
		OnReject:   func(err error) { a.rejected = err },
		OnComplete: func(v any, err error) { a.result, a.err, a.completed = v, err, true },
	}
	if arg == nil {
		h.env.UpdateWorkflow(name, id, cb)
		return
	}
	h.env.UpdateWorkflow(name, id, cb, arg)
}

// refusedWith fails the test unless the Update was refused, before being
// accepted, with a message holding want.
func (a *answer) refusedWith(t *testing.T, what, want string) {
	t.Helper()
	var app *temporal.ApplicationError
	switch {
	case a.accepted || a.rejected == nil:
		t.Errorf("%s: accepted %v, refusal %v; want refused", what, a.accepted, a.rejected)
	case !strings.Contains(a.rejected.Error(), want):
		t.Errorf("%s: refused with %q, want it to say %q", what, a.rejected, want)
	case !errors.As(a.rejected, &app) || app.Type() != contract.RefusedErrorType:
		t.Errorf("%s: refusal %v is not of type %s", what, a.rejected, contract.RefusedErrorType)
	}
}

// actionResult is the ActionResult an accepted Update answered with.
func (a *answer) actionResult(t *testing.T, what string) contract.ActionResult {
	t.Helper()
	if !a.accepted || !a.completed || a.err != nil {
		t.Fatalf("%s: accepted %v, completed %v, refused %v, error %v; want an answer", what, a.accepted, a.completed, a.rejected, a.err)
	}
	r, ok := a.result.(contract.ActionResult)
	if !ok {
		t.Fatalf("%s answered %T %+v", what, a.result, a.result)
	}
	return r
}

// A retry Update, like the signal, releases the parked notice, which is
// sent once; unlike the signal it answers with the step it released, and
// the decision keeps the caller's identity beside the operator's name. A
// skip Update, while nothing is parked any more, is refused.
func TestRetryUpdateReleasesTheParkedStepAndAnswers(t *testing.T) {
	h := newHarness(t, nil)
	permanent := temporal.NewNonRetryableApplicationError("send notification user:approved: 550 mailbox unavailable", "Permanent", nil)
	h.env.OnActivity(h.acts.NotifyUser, mock.Anything, mock.Anything).Return(failing(1, permanent, h.acts.NotifyUser))
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-approved.json"))
	retry := h.updateAt(time.Minute, contract.RetrySignal, "u-retry", contract.OperatorAction{Operator: "ops@example.com", Note: "mailbox fixed"})
	late := h.updateAt(2*time.Minute, contract.SkipSignal, "u-skip", contract.OperatorAction{Operator: "ops@example.com"})
	h.run(s1)

	r := retry.actionResult(t, "retry")
	if r.Action != contract.RetrySignal || len(r.Steps) != 1 || !strings.HasPrefix(r.Steps[0], "notify user: approved (event ") ||
		r.Operator != "ops@example.com" || r.Identity != "temporal-cli:u-retry" {
		t.Fatalf("retry answered %+v", r)
	}
	late.refusedWith(t, "skip with nothing parked", "nothing to skip: no step is parked")
	if got := h.subjects(); len(got) != 1 {
		t.Fatalf("mails = %q, want the approval once, after the retry", got)
	}
	st := h.state()
	if len(st.Decisions) != 1 || st.Decisions[0].Action != contract.RetrySignal || st.Decisions[0].Operator != "ops@example.com" ||
		st.Decisions[0].Identity != "temporal-cli:u-retry" || st.Decisions[0].Note != "mailbox fixed" {
		t.Fatalf("decisions = %+v", st.Decisions)
	}
}

// A skip Update gives the parked step up, as the signal does, and says
// which.
func TestSkipUpdateGivesTheStepUp(t *testing.T) {
	h := newHarness(t, nil)
	permanent := temporal.NewNonRetryableApplicationError("invalid address", "Permanent", nil)
	h.env.OnActivity(h.acts.NotifyUser, mock.Anything, mock.Anything).Return(failing(-1, permanent, h.acts.NotifyUser))
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-approved.json"))
	var step string
	h.env.RegisterDelayedCallback(func() { step = h.state().Parked[0].Step }, time.Minute)
	skip := &answer{}
	h.env.RegisterDelayedCallback(func() {
		h.update(skip, contract.SkipSignal, "u-skip", contract.OperatorAction{Step: step, Operator: "ops@example.com", Note: "user deleted"})
	}, 2*time.Minute)
	h.run(s1)

	if r := skip.actionResult(t, "skip"); r.Action != contract.SkipSignal || !slices.Equal(r.Steps, []string{step}) {
		t.Fatalf("skip answered %+v, want the step %q", r, step)
	}
	if st := h.state(); len(st.Parked) != 0 || len(h.mails()) != 0 || len(st.Decisions) != 1 || st.Decisions[0].Action != contract.SkipSignal {
		t.Fatalf("after the skip: parked %+v, %d mails, decisions %+v", st.Parked, len(h.mails()), st.Decisions)
	}
}

// Every operator Update refuses, with a message saying why, an input the
// signal would have ignored or taken blindly, and one with nothing to act
// on; none of them changes anything, and the step parked meanwhile still
// waits for a valid one.
func TestOperatorUpdatesRefuseWhatTheyCannotDo(t *testing.T) {
	h := newHarness(t, nil)
	permanent := temporal.NewNonRetryableApplicationError("smtp AUTH rejected: 535", "Permanent", nil)
	h.env.OnActivity(h.acts.NotifyUser, mock.Anything, mock.Anything).Return(failing(1, permanent, h.acts.NotifyUser))
	ops := contract.OperatorAction{Operator: "ops@example.com"}
	before := map[string]*answer{
		"retry with nothing parked":       h.updateAt(time.Second/2, contract.RetrySignal, "", ops),
		"acknowledge with no flag raised": h.updateAt(time.Second/2, contract.AcknowledgeSignal, "", ops),
	}
	h.deliverAt(time.Second, fixtureEvent(t, "status-updated-approved.json"))
	cases := []struct {
		name, update string
		arg          any
		want         string
	}{
		{"retry without input", contract.RetrySignal, nil, "input required"},
		{"skip without operator", contract.SkipSignal, contract.OperatorAction{Note: "who knows"}, `"operator" is required`},
		{"retry not an object", contract.RetrySignal, "retry it", "input is not"},
		{"retry with a misspelt field", contract.RetrySignal, map[string]string{"stpe": "notify user", "operator": "ops"}, `unknown field "stpe"`},
		{"retry naming another step", contract.RetrySignal, contract.OperatorAction{Step: "record event nope", Operator: "ops"},
			`no step named "record event nope" is parked`},
		{"retry naming a flag", contract.RetrySignal, contract.OperatorAction{Flag: FlagInDoubt, Operator: "ops"}, `"flag" names what an acknowledge clears`},
		{"acknowledge naming a step", contract.AcknowledgeSignal, contract.OperatorAction{Step: "x", Operator: "ops"}, `acknowledge takes "flag"`},
		{"acknowledge naming no raised flag", contract.AcknowledgeSignal, contract.OperatorAction{Flag: FlagInDoubt, Operator: "ops"},
			`no flag is of kind or id "in_doubt"`},
	}
	got := make([]*answer, len(cases))
	for i, c := range cases {
		got[i] = h.updateAt(time.Minute, c.update, "", c.arg)
	}
	var parked SessionState
	h.env.RegisterDelayedCallback(func() { parked = h.state() }, 2*time.Minute)
	retry := h.updateAt(3*time.Minute, contract.RetrySignal, "", ops)
	h.run(s1)

	before["retry with nothing parked"].refusedWith(t, "retry with nothing parked", "nothing to retry: no step is parked")
	before["acknowledge with no flag raised"].refusedWith(t, "acknowledge with no flag raised", "nothing to acknowledge: no flag is raised")
	for i, c := range cases {
		got[i].refusedWith(t, c.name, c.want)
	}
	if len(parked.Parked) != 1 || len(parked.Decisions) != 0 {
		t.Fatalf("after the refusals: parked %+v, decisions %+v; want the notice still parked, nothing decided", parked.Parked, parked.Decisions)
	}
	retry.actionResult(t, "the valid retry")
	if got := h.subjects(); len(got) != 1 {
		t.Fatalf("mails = %q, want the approval once", got)
	}
}

// An acknowledge Update clears the flag it names, writes the change to the
// search attribute and the record before it answers, and says which kinds
// it cleared.
func TestAcknowledgeUpdateClearsAFlagAndAnswers(t *testing.T) {
	h := newHarness(t, nil)
	ev := fixtureEvent(t, "status-updated-approved.json")
	ev.Event.Decision.Email = "" // undeliverable: a flag
	h.deliverAt(time.Second, ev)
	ack := h.updateAt(time.Minute, contract.AcknowledgeSignal, "u-ack",
		contract.OperatorAction{Flag: FlagUndeliverable, Operator: "ops@example.com", Note: "called the user"})
	h.run(s1)

	r := ack.actionResult(t, "acknowledge")
	if r.Action != contract.AcknowledgeSignal || !slices.Equal(r.Flags, []string{FlagUndeliverable}) || r.Identity != "temporal-cli:u-ack" {
		t.Fatalf("acknowledge answered %+v", r)
	}
	st := h.state()
	if len(st.Flags) != 0 || len(st.Decisions) != 1 || st.Decisions[0].Identity != "temporal-cli:u-ack" || st.Decisions[0].Note != "called the user" {
		t.Fatalf("state after acknowledge = flags %+v, decisions %+v", st.Flags, st.Decisions)
	}
	if rec := h.record(s1); rec.NeedsAttention {
		t.Fatalf("record after acknowledge = %+v", rec)
	}
}

// The resolve Update resolves the case as the signal does (recorded,
// reviews, the case's result) and answers with every hit's outcome; the
// resolution keeps the caller's identity and says it was decided in
// diditflow. A second resolve, sent while the first is recorded, is
// refused.
func TestResolveUpdateResolvesTheCaseAndAnswers(t *testing.T) {
	h := newHarness(t, nil)
	in := amlCase(t)
	first := in.Case.Hits[0].ID
	extra := in.Case.Hits[0]
	extra.ID = "hit-2"
	in.Case.Hits = append(in.Case.Hits, extra)
	res := contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "officer@example.com", Note: "namesakes",
		Hits:   map[string]contract.Outcome{first: contract.ConfirmedMatch},
		Source: contract.FromDiditConsole, Identity: "forged"} // the case sets these itself
	var resolve, again answer
	h.env.RegisterDelayedCallback(func() {
		h.update(&resolve, contract.ResolveSignal, "u-resolve", res)
		h.update(&again, contract.ResolveSignal, "u-again", contract.Resolution{Outcome: contract.Inconclusive, Reviewer: "other@example.com"})
	}, 30*time.Minute)
	h.env.ExecuteWorkflow(contract.AMLCaseWorkflowType, in)
	var out contract.Resolution
	if err := h.env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}

	if !resolve.accepted || !resolve.completed || resolve.err != nil {
		t.Fatalf("resolve: accepted %v, completed %v, refused %v, error %v", resolve.accepted, resolve.completed, resolve.rejected, resolve.err)
	}
	r, ok := resolve.result.(contract.ResolveResult)
	wantHits := map[string]contract.Outcome{first: contract.ConfirmedMatch, "hit-2": contract.FalsePositive}
	if !ok || r.CaseID != in.Case.ID() || r.Outcome != contract.FalsePositive || r.Reviewer != "officer@example.com" ||
		r.Identity != "temporal-cli:u-resolve" || len(r.Hits) != 2 || r.Hits[first] != wantHits[first] || r.Hits["hit-2"] != wantHits["hit-2"] {
		t.Fatalf("resolve answered %+v", resolve.result)
	}
	again.refusedWith(t, "a second resolve", "the case is already resolved")
	if out.Reviewer != "officer@example.com" || out.Source != contract.FromDiditflow || out.Identity != "temporal-cli:u-resolve" {
		t.Fatalf("the case's result = %+v", out)
	}
	c, err := h.store.AMLCase(context.Background(), in.Case.ID())
	if err != nil || c.State != store.AMLCaseResolved || c.Resolution.Reviewer != "officer@example.com" ||
		c.Resolution.Identity != "temporal-cli:u-resolve" {
		t.Fatalf("case = %+v, %v", c, err)
	}
}

// The resolve Update refuses what the signal would list under rejected,
// naming why, and leaves the case open and its rejected list empty; the
// signal still behaves as before, and still resolves the case, with no
// identity and decided in diditflow.
func TestResolveUpdateRefusesAnInvalidResolution(t *testing.T) {
	h := newHarness(t, nil)
	in := amlCase(t)
	cases := []struct {
		name string
		arg  any
		want string
	}{
		{"no input", nil, "input required"},
		{"an unknown outcome", contract.Resolution{Outcome: "looks fine", Reviewer: "x@example.com"}, "outcome must be confirmed_match"},
		{"no reviewer", contract.Resolution{Outcome: contract.Inconclusive}, "reviewer is required"},
		{"a hit the case does not hold", contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "x@example.com",
			Hits: map[string]contract.Outcome{"not-a-hit": contract.ConfirmedMatch}}, "hit not-a-hit is not a hit of this case"},
		{"malformed", map[string]any{"outcome": 7}, "input is not"},
		{"a misspelt field", map[string]any{"outcome": "inconclusive", "reviwer": "x"}, `unknown field "reviwer"`},
	}
	got := make([]*answer, len(cases))
	for i, c := range cases {
		got[i] = h.updateAt(time.Minute, contract.ResolveSignal, "", c.arg)
	}
	var mid CaseState
	h.env.RegisterDelayedCallback(func() {
		if v, err := h.env.QueryWorkflow(contract.StateQuery); err == nil {
			_ = v.Get(&mid)
		}
	}, 2*time.Minute)
	h.signalAt(3*time.Minute, contract.ResolveSignal, contract.Resolution{Outcome: contract.Inconclusive, Reviewer: "x@example.com", Identity: "forged"})
	h.env.ExecuteWorkflow(contract.AMLCaseWorkflowType, in)
	var res contract.Resolution
	if err := h.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		got[i].refusedWith(t, c.name, c.want)
	}
	if mid.Resolution != nil || len(mid.Rejected) != 0 || !mid.Opened {
		t.Fatalf("state after the refused Updates = %+v; want open, nothing rejected", mid)
	}
	if res.Outcome != contract.Inconclusive || res.Source != contract.FromDiditflow || res.Identity != "" {
		t.Fatalf("the signal's resolution = %+v", res)
	}
}

// A case whose history calls for continue-as-new while a resolve Update's
// handler waits for the case to take its resolution does not continue as
// new (the resolution, and its caller's answer, would be lost): it takes
// the resolution and completes.
func TestAMLCaseDoesNotContinueAsNewWhileAnUpdateRuns(t *testing.T) {
	h := newHarness(t, nil) // reminders hourly
	in := amlCase(t)
	// The first reminder takes ten minutes; the Update comes meanwhile.
	reminder := func(n activities.ComplianceNotice) bool { return n.Reminder > 0 }
	h.env.OnActivity(h.acts.NotifyCompliance, mock.Anything, mock.MatchedBy(reminder)).After(10*time.Minute).Return(activities.Sent, nil)
	h.env.OnActivity(h.acts.NotifyCompliance, mock.Anything, mock.MatchedBy(func(n activities.ComplianceNotice) bool { return !reminder(n) })).
		Return(h.acts.NotifyCompliance)
	var resolve answer
	h.env.RegisterDelayedCallback(func() {
		h.env.SetContinueAsNewSuggested(true)
		h.update(&resolve, contract.ResolveSignal, "u-resolve", contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "officer@example.com"})
	}, time.Hour+time.Minute)
	h.env.ExecuteWorkflow(contract.AMLCaseWorkflowType, in)
	var res contract.Resolution
	if err := h.env.GetWorkflowResult(&res); err != nil {
		t.Fatalf("the case ended with %v, want the Update's resolution", err)
	}
	if res.Reviewer != "officer@example.com" || !resolve.completed || resolve.err != nil {
		t.Fatalf("result %+v; the Update completed %v with %v", res, resolve.completed, resolve.err)
	}
}

// An acknowledge Update that arrives in the task in which the session must
// continue as new is answered, its flag cleared and written, before the
// state is carried.
func TestContinueAsNewAnswersAnAcknowledgeUpdateFirst(t *testing.T) {
	h := newHarness(t, nil)
	ev := fixtureEvent(t, "status-updated-approved.json")
	ev.Event.Decision.Email = "" // undeliverable: a flag
	h.deliverAt(time.Second, ev)
	var ack answer
	continueAsNewWith(h, 2*time.Hour, func() {
		h.update(&ack, contract.AcknowledgeSignal, "u-ack", contract.OperatorAction{Operator: "ops"})
	})
	next := continuedAsNew(h, contract.SessionWorkflowType, SessionInput{SessionStart: contract.SessionStart{SessionID: s1}})
	if r := ack.actionResult(t, "acknowledge"); !slices.Equal(r.Flags, []string{FlagUndeliverable}) {
		t.Fatalf("acknowledge answered %+v", r)
	}
	if len(next.State.Flags) != 0 || len(next.State.Decisions) != 1 || next.State.Decisions[0].Identity != "temporal-cli:u-ack" {
		t.Fatalf("carried flags %+v, decisions %+v", next.State.Flags, next.State.Decisions)
	}
}

// TestResolutionMayNotSilentlyOverruleTheConsole: a resolution from
// diditflow whose outcome contradicts a verdict Didit's console already gave
// a hit is refused (by the Update's validator, and listed under rejected for
// a signal), since writing it back would overwrite the console's review; one
// that names the hit in hits overrules it knowingly.
func TestResolutionMayNotSilentlyOverruleTheConsole(t *testing.T) {
	c := activities.AMLCase{CaseID: "aml-case-s", SessionID: "s", Hits: []didit.AMLHit{
		{ID: "h-confirmed", ReviewStatus: didit.ReviewConfirmedMatch}, {ID: "h-open", ReviewStatus: didit.ReviewUnreviewed}}}
	for _, tc := range []struct {
		res    contract.Resolution
		refuse bool
	}{
		{contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "o"}, true},
		{contract.Resolution{Outcome: contract.Inconclusive, Reviewer: "o"}, true},
		{contract.Resolution{Outcome: contract.ConfirmedMatch, Reviewer: "o"}, false},
		{contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "o",
			Hits: map[string]contract.Outcome{"h-confirmed": contract.ConfirmedMatch}}, false},
		{contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "o",
			Hits: map[string]contract.Outcome{"h-confirmed": contract.FalsePositive}}, false},
	} {
		reason := invalidResolution(tc.res, c)
		if (reason != "") != tc.refuse {
			t.Errorf("%+v: reason %q, want refused %v", tc.res, reason, tc.refuse)
		}
		if tc.refuse && !strings.Contains(reason, "hit h-confirmed is Confirmed Match in Didit's console") {
			t.Errorf("%+v: reason %q does not name the hit and its review", tc.res, reason)
		}
	}
}
