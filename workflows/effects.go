package workflows

import (
	"cmp"
	"slices"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
)

// PendingEffect is a side effect still to run: a notice to the user, an
// AML case to open, or hit reviews to tell a case. It holds what the effect
// needs, so it can run in a later run than the one that queued it.
type PendingEffect struct {
	// EventKey is the event whose status change, hits or reviews called
	// for it.
	EventKey string                 `json:"event_key"`
	Notice   *activities.UserNotice `json:"notice,omitempty"`
	Case     *activities.AMLCase    `json:"case,omitempty"`
	// Reviews are hit reviews Didit showed, for their case; Late, those a
	// case handed back, which came after its resolution (reviewCase).
	Reviews *contract.HitReviews `json:"reviews,omitempty"`
	Late    bool                 `json:"late,omitempty"`
}

// step names the effect's step, as the state query shows it and operators'
// signals name it.
func (e PendingEffect) step() string {
	switch {
	case e.Notice != nil:
		return "notify user: " + string(e.Notice.Kind) + " (event " + e.EventKey + ")"
	case e.Reviews != nil:
		return "record hit reviews of AML case " + e.Reviews.CaseID + " after its resolution (event " + e.EventKey + ")"
	}
	return "open AML case " + e.Case.ID()
}

// knowCases has a new run (the session's earlier runs completed) learn
// the cases and hits of the earlier ones from the records, and the review
// statuses the records hold of the hits, once: a hit found days later then
// opens a follow-up rather than colliding with the first case's ID, and a
// review in Didit's console reaches its case.
func (s *session) knowCases(sessionID string) {
	if s.state.CasesKnown {
		return
	}
	var known []activities.CaseHits
	if s.steps.runLocal(s.ctx, "load AML cases", acts.SessionCases, sessionID, &known) {
		for _, c := range known {
			if !slices.Contains(s.state.Cases, c.CaseID) {
				s.state.Cases = append(s.state.Cases, c.CaseID)
			}
			for _, id := range c.Hits {
				if !slices.Contains(s.state.CasedHits, id) {
					s.state.CasedHits = append(s.state.CasedHits, id)
				}
			}
			for _, r := range c.Reviews {
				r.ReviewStatus = cmp.Or(r.ReviewStatus, didit.ReviewUnreviewed)
				s.knowReviews(c.CaseID, r)
			}
		}
	}
	s.state.CasesKnown = true
}

// queueCases queues an AML case for the hits no case covers yet, whatever
// the status or order of the event that shows them (at, as orderTime): the
// session's first case, then follow-ups (ongoing monitoring) linked to it.
func (s *session) queueCases(ev didit.Event, hits []didit.AMLHit, at int64) {
	if len(hits) == 0 {
		return
	}
	s.knowCases(ev.SessionID)
	var fresh []didit.AMLHit
	for _, h := range hits {
		if slices.Contains(s.state.CasedHits, h.ID) {
			continue
		}
		s.state.CasedHits = append(s.state.CasedHits, h.ID)
		fresh = append(fresh, h)
	}
	if len(fresh) == 0 {
		return
	}
	// An erased session's hits still open a case: screening against
	// sanctions lists is a legal duty erasure does not lift (GDPR art.
	// 17(3)(b)). The case names the session and the hits, never whose
	// they are.
	vendorData := cmp.Or(ev.VendorData, s.state.VendorData)
	if s.state.Erased {
		vendorData = ""
	}
	c := activities.AMLCase{CaseID: contract.AMLCaseWorkflowID(ev.SessionID), SessionID: ev.SessionID,
		Status: ev.Status, VendorData: vendorData, Hits: fresh, ReviewedAt: at, Reviewer: ev.Decision.Reviewer()}
	if n := len(s.state.Cases) + 1; n > 1 {
		c.CaseID, c.FollowUpOf = contract.FollowUpCaseID(ev.SessionID, n), s.state.Cases[0]
	}
	s.state.Cases = append(s.state.Cases, c.CaseID)
	for _, h := range fresh {
		s.knowReviews(c.CaseID, contract.HitReview{HitID: h.ID, ReviewStatus: reviewStatus(h), At: at})
	}
	s.state.Effects = append(s.state.Effects, PendingEffect{EventKey: ev.Key(), Case: &c})
}

// noticeFor is the user notice a status calls for, if any.
func noticeFor(status didit.Status) activities.Notice {
	switch status {
	case didit.StatusApproved:
		return activities.NoticeApproved
	case didit.StatusDeclined:
		return activities.NoticeDeclined
	case didit.StatusInReview:
		return activities.NoticeInReview
	case didit.StatusResubmitted:
		return activities.NoticeResubmitted
	case didit.StatusKycExpired:
		return activities.NoticeKycExpired
	}
	return ""
}

// queueNotice queues the user notice of a status change, once per change:
// its key is the event's, so a second Resubmitted mails the user again. The
// notice carries no address: the activity reads the one the records keep
// for the session (recorded with each trustworthy decision), so Kyc Expired
// months after the approval, in a new run, still reaches the user, and no
// address travels through Temporal with the notice.
func (s *session) queueNotice(ev didit.Event, key string) {
	kind := noticeFor(ev.Status)
	if kind == "" {
		return
	}
	if s.state.Erased {
		// By design, not a failure: no flag, nothing for an operator.
		workflow.GetLogger(s.ctx).Info("user notice withheld: the session was erased", "kind", kind, "event_key", key)
		return
	}
	// Decodes JSON: see "Determinism" in the package comment.
	//workflowcheck:ignore
	redo := ev.ResubmitInfo.Steps()
	n := activities.UserNotice{SessionID: ev.SessionID, Kind: kind, Key: string(kind) + ":" + key, Redo: redo,
		FromRecords: true, NoDecision: s.batch.missing[key], WaitForAddress: ev.Decision == nil}
	s.state.Effects = append(s.state.Effects, PendingEffect{EventKey: key, Notice: &n})
}

// erased notes that the records say the session was erased, and drops the
// personal data the run held from before.
func (s *session) erased() {
	s.state.Erased = true
	s.state.VendorData, s.state.ContactEmail = "", ""
}

// runEffects runs state.Effects one at a time, for the whole run. An effect
// leaves the queue only when done, so one parked when the run continues as
// new runs again in the next (each effect is idempotent).
func (s *session) runEffects(ctx workflow.Context) {
	for {
		_ = workflow.Await(ctx, func() bool { return len(s.state.Effects) > 0 })
		s.runEffect(ctx, s.state.Effects[0])
		s.state.Effects = s.state.Effects[1:]
	}
}

func (s *session) runEffect(ctx workflow.Context, e PendingEffect) {
	switch {
	case e.Case != nil:
		s.openCase(ctx, *e.Case)
		return
	case e.Reviews != nil:
		s.reviewCase(ctx, e)
		return
	}
	n := *e.Notice
	var result activities.NoticeResult
	if !s.steps.runLocal(ctx, e.step(), acts.NotifyUser, n, &result) {
		return
	}
	switch result {
	case activities.InDoubt:
		s.flags.raise(ctx, FlagInDoubt, "the "+string(n.Kind)+" notice of event "+e.EventKey+
			" was handed to the mail server but its acknowledgement was lost; check it arrived")
	case activities.Undeliverable:
		s.flags.raise(ctx, FlagUndeliverable, "the "+string(n.Kind)+" notice of event "+e.EventKey+
			" could not be delivered: no contact address, or the address was refused")
	}
}

// openCase starts an AML case as a child that outlives this run. Its ID is
// fixed and never reused, so a case started before (by an earlier run, or
// an attempt whose answer was lost) is found instead of duplicated.
func (s *session) openCase(ctx workflow.Context, c activities.AMLCase) {
	ctx = workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            c.CaseID,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_ABANDON,
		// vendor_data is never a search attribute: they are stored in
		// clear, outside the codec.
		TypedSearchAttributes: temporal.NewSearchAttributes(contract.AMLHitKey.ValueSet(true), contract.StatusKey.ValueSet(string(c.Status))),
	})
	err := workflow.ExecuteChildWorkflow(ctx, contract.AMLCaseWorkflowType, AMLCaseInput{Case: c}).GetChildWorkflowExecution().Get(ctx, nil)
	switch {
	case err == nil:
		workflow.GetLogger(ctx).Info("AML case opened", "case", c.CaseID, "hits", len(c.Hits))
	case temporal.IsWorkflowExecutionAlreadyStartedError(err):
		workflow.GetLogger(ctx).Info("AML case already exists", "case", c.CaseID)
	default:
		// Starting a child fails only if the server refuses it; nothing an
		// activity retry would fix, so it goes to ops directly. Its hits
		// are offered again by the next event that shows them, as a case
		// of their own (the failed case's number stays used).
		s.flags.raise(ctx, FlagCaseNotOpened, "could not open AML case "+c.CaseID+": "+err.Error())
		s.state.CasedHits = slices.DeleteFunc(s.state.CasedHits, func(id string) bool {
			return slices.ContainsFunc(c.Hits, func(h didit.AMLHit) bool { return h.ID == id })
		})
		s.state.Reviews = slices.DeleteFunc(s.state.Reviews, func(k KnownReview) bool { return k.CaseID == c.CaseID })
		return
	}
	s.state.AMLCase = true
}
