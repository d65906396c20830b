package workflows

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/kyc"
)

// Reviews in Didit's console. A compliance officer may review an AML case's
// hits in Didit's console rather than in diditflow: each review fires a
// data.updated whose decision carries the hits' review statuses, as does any
// later decision (fetched, or read by reconciliation). The session, which
// orders its events, keeps the latest status it saw of each hit its cases
// cover (SessionState.Reviews) and tells a case what changed
// (contract.HitReviewsSignal). A case whose hits all have a final status is
// resolved from Didit's console, writing nothing back. What changes after a
// case's resolution (the case no longer runs, or took it resolved and hands
// it back) is recorded against the case, flagged on the session for a
// person (FlagReviewChanged) and told to the hooks (kyc.AMLReviewChanged),
// once; Didit's echo of diditflow's own write-back changes nothing.

// KnownReview is the latest review status the session saw of one hit an AML
// case covers.
type KnownReview struct {
	CaseID string `json:"case_id"`
	contract.HitReview
}

// reviewStatus is a hit's review status, a missing one read as Unreviewed.
func reviewStatus(h didit.AMLHit) string {
	return cmp.Or(h.ReviewStatus, didit.ReviewUnreviewed)
}

// knowReviews adds the review statuses of hits a case now covers, as of at,
// to those the session knows; a hit it knows already keeps its entry.
func (s *session) knowReviews(caseID string, reviews ...contract.HitReview) {
	for _, r := range reviews {
		if !slices.ContainsFunc(s.state.Reviews, func(k KnownReview) bool { return k.HitID == r.HitID }) {
			s.state.Reviews = append(s.state.Reviews, KnownReview{CaseID: caseID, HitReview: r})
		}
	}
}

// noteReviews compares the review statuses an event's decision shows with
// those the session knows of its cases' hits, and queues, for each case
// with a hit whose status changed, telling it so. A status from an event
// older than the one the session has it from is not news. Only sessions
// whose decisions hold AML hits pay for this.
func (s *session) noteReviews(se contract.SessionEvent) {
	ev := se.Event
	hits := ev.Decision.ScreenedHits()
	if len(hits) == 0 {
		return
	}
	s.knowCases(ev.SessionID)
	at := orderTime(se)
	changed := map[string][]contract.HitReview{}
	for _, h := range hits {
		i := slices.IndexFunc(s.state.Reviews, func(k KnownReview) bool { return k.HitID == h.ID })
		if i < 0 {
			continue
		}
		k := &s.state.Reviews[i]
		if at < k.At || reviewStatus(h) == k.ReviewStatus {
			continue
		}
		k.ReviewStatus, k.At = reviewStatus(h), at
		changed[k.CaseID] = append(changed[k.CaseID], k.HitReview)
	}
	for _, caseID := range s.state.Cases {
		if len(changed[caseID]) == 0 {
			continue
		}
		r := contract.HitReviews{SessionID: ev.SessionID, CaseID: caseID, EventKey: ev.Key(), Hits: changed[caseID],
			Reviewer: ev.Decision.Reviewer()}
		s.state.Effects = append(s.state.Effects, PendingEffect{EventKey: ev.Key(), Reviews: &r})
	}
}

// takeLateReviews queues the reviews cases hand back, which came after they
// were resolved.
func (s *session) takeLateReviews() {
	for {
		var r contract.HitReviews
		if !s.lateReviews.ReceiveAsync(&r) {
			return
		}
		s.state.Effects = append(s.state.Effects, PendingEffect{EventKey: r.EventKey, Reviews: &r, Late: true})
	}
}

// signalsWaiting reports whether a subscription, or reviews a case handed
// back, wait to be taken in: a run that ended now would lose them.
func (s *session) signalsWaiting() bool { return s.subs.waiting() || s.lateReviews.Len() > 0 }

// reviewCase tells a case the reviews Didit now shows for its hits. One
// that no longer runs, or reviews it handed back, are a change after its
// resolution: recorded once per case and event, and, when they change what
// the records hold, flagged on the session and told to the hooks.
func (s *session) reviewCase(ctx workflow.Context, e PendingEffect) {
	r := *e.Reviews
	if !e.Late {
		err := workflow.SignalExternalWorkflow(ctx, r.CaseID, "", contract.HitReviewsSignal, r).Get(ctx, nil)
		if err == nil {
			return
		}
		workflow.GetLogger(ctx).Info("AML case no longer runs: its hit reviews are a change after its resolution",
			"case", r.CaseID, "error", err)
	}
	var change activities.ReviewChange
	if !s.steps.runLocal(ctx, e.step(), acts.RecordReviewChange, r, &change) || len(change.Hits) == 0 {
		return
	}
	var said []string
	hits := make(map[string]string, len(change.Hits))
	at := int64(0)
	for _, h := range change.Hits {
		said = append(said, "hit "+h.HitID+" is now "+h.ReviewStatus)
		hits[h.HitID] = outcomeName(h.ReviewStatus)
		at = max(at, h.At)
	}
	was := "its resolution (" + string(change.Outcome) + ")"
	if change.Open {
		was = "its workflow ended, unresolved"
	}
	s.flags.raise(ctx, FlagReviewChanged, "AML case "+r.CaseID+": Didit's review changed after "+was+": "+
		strings.Join(said, ", ")+"; check the case with compliance")
	if len(s.settings.Hooks) > 0 && change.Sequence > 0 {
		s.state.Hooked = append(s.state.Hooked, kyc.Event{Kind: kyc.AMLReviewChanged,
			Key: contract.HookEventKey(r.SessionID, change.Sequence), SessionID: r.SessionID, Status: s.state.Status,
			At: time.Unix(at, 0).UTC(), Sequence: change.Sequence,
			Case: &kyc.CaseResolution{CaseID: r.CaseID, Outcome: string(change.Outcome), Hits: hits}})
	}
}

// outcomeName is a review status as the hooks name it: the outcome of a
// final one, else "unreviewed".
func outcomeName(reviewStatus string) string {
	if o, ok := contract.OutcomeOf(reviewStatus); ok {
		return string(o)
	}
	return kyc.Unreviewed
}

// takeReviews takes in the reviews the session told an open case, records
// on the case's record those that change a hit, and keeps the reviewer
// Didit names. A partial review leaves the case open; its reminders name the
// hits still unreviewed.
func takeReviews(ctx workflow.Context, st *steps, state *CaseState, reviews workflow.ReceiveChannel) {
	for {
		var r contract.HitReviews
		if !reviews.ReceiveAsync(&r) {
			return
		}
		var changed []contract.HitReview
		for _, h := range r.Hits {
			i := slices.IndexFunc(state.Case.Hits, func(c didit.AMLHit) bool { return c.ID == h.HitID })
			if i >= 0 && reviewStatus(state.Case.Hits[i]) != h.ReviewStatus {
				state.Case.Hits[i].ReviewStatus = h.ReviewStatus
				changed = append(changed, h)
			}
		}
		if len(changed) == 0 {
			continue
		}
		if r.Reviewer != "" {
			state.Case.Reviewer = r.Reviewer
		}
		r.Hits = changed
		st.run(ctx, "record hit reviews (event "+r.EventKey+")", acts.RecordHitReviews, r, nil)
		workflow.GetLogger(ctx).Info("AML case reviewed in Didit's console", "case", r.CaseID, "hits", len(changed),
			"unreviewed", len(unreviewedHits(state.Case)))
	}
}

// reviewedInDidit reports whether every hit of a case has a final review
// status in Didit: the case was decided in Didit's console.
func reviewedInDidit(c activities.AMLCase) bool {
	return len(c.Hits) > 0 && !slices.ContainsFunc(c.Hits, func(h didit.AMLHit) bool { return !contract.Final(h.ReviewStatus) })
}

// unreviewedHits names the hits of a case Didit's console has not reviewed,
// when it has reviewed others; none otherwise.
func unreviewedHits(c activities.AMLCase) []string {
	var ids []string
	for _, h := range c.Hits {
		if !contract.Final(h.ReviewStatus) {
			ids = append(ids, h.ID)
		}
	}
	if len(ids) == len(c.Hits) {
		return nil
	}
	return ids
}

// consoleResolution is the resolution of a case every hit of which Didit's
// console reviewed: each hit's outcome, the worst of them for the case
// (contract.Worst), by the reviewer Didit's reviews name last, else "Didit
// console".
func consoleResolution(c activities.AMLCase) contract.Resolution {
	hits := make(map[string]contract.Outcome, len(c.Hits))
	outcomes := make([]contract.Outcome, 0, len(c.Hits))
	for _, h := range c.Hits {
		o, _ := contract.OutcomeOf(h.ReviewStatus)
		hits[h.ID] = o
		outcomes = append(outcomes, o)
	}
	return contract.Resolution{Outcome: contract.Worst(outcomes...), Reviewer: cmp.Or(c.Reviewer, contract.ConsoleReviewer),
		Note: "every hit reviewed in Didit's console", Hits: hits, Source: contract.FromDiditConsole}
}

// reportLateReviews hands back to the session the reviews a case took after
// it was resolved that differ from its resolution: its session records them
// and flags the change. Those that agree (Didit's echo of diditflow's
// write-back) are dropped.
func reportLateReviews(ctx workflow.Context, st *steps, state *CaseState, reviews workflow.ReceiveChannel) {
	res := state.Resolution
	for {
		var r contract.HitReviews
		if !reviews.ReceiveAsync(&r) {
			return
		}
		var late []contract.HitReview
		for _, h := range r.Hits {
			if h.ReviewStatus != res.HitOutcome(h.HitID).ReviewStatus() {
				late = append(late, h)
			}
		}
		if len(late) == 0 {
			continue
		}
		r.Hits = late
		st.run(ctx, "report hit reviews after the resolution (event "+r.EventKey+")", kycActs.ReportReviews, r, nil)
	}
}
