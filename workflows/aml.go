package workflows

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/kyc"
)

// CaseState is what an AMLCase knows; contract.StateQuery returns it.
type CaseState struct {
	Case       activities.AMLCase   `json:"case"`
	Opened     bool                 `json:"opened"`
	Reminders  int                  `json:"reminders"`
	Escalated  bool                 `json:"escalated"`
	Resolution *contract.Resolution `json:"resolution,omitempty"`
	// Rejected lists resolve signals that were ignored, and why.
	Rejected  []string           `json:"rejected,omitempty"`
	Parked    []ParkedStep       `json:"parked,omitempty"`
	Decisions []OperatorDecision `json:"decisions,omitempty"`
	// Flags are what needs an operator besides parked steps.
	Flags []Flag `json:"flags,omitempty"`
	// ReviewsWritten counts the AML nodes whose hit reviews were written
	// back to Didit.
	ReviewsWritten int `json:"reviews_written,omitempty"`
	// Runs counts the runs of the case before this one: a case waiting
	// months for compliance continues as new, carrying this state.
	Runs int `json:"runs,omitempty"`
}

// maxRejected is how many ignored resolve signals a case keeps, the latest:
// a stream of malformed ones must not grow the state a case carries.
const maxRejected = 50

// AMLCase is a compliance case for a session's AML hits: it records the
// case, notifies compliance, then waits for a contract.ResolveSignal or the
// resolve Update (operator.go), re-notifying every reminder interval and
// adding the escalation contact after AMLEscalateAfter reminders. Reviews
// in Didit's console reach it from its session (contract.HitReviewsSignal):
// once every hit has a final review status there, it is resolved from
// Didit's console instead. It returns the resolution. A case that waits
// long enough to grow its history (a reminder a day for months) continues
// as new between two reminders, carrying its state (in.State).
func (w *Workflows) AMLCase(ctx workflow.Context, in AMLCaseInput) (contract.Resolution, error) {
	settings := w.settings(ctx)
	state := &CaseState{Case: in.Case}
	continued := in.State != nil
	if continued {
		state = in.State
		state.Runs++
	}
	fl := &flags{list: &state.Flags, parked: &state.Parked, decisions: &state.Decisions,
		sync: func(ctx workflow.Context, needs bool, reasons []string) { syncCaseFlags(ctx, in.Case, needs, reasons) }}
	st := newSteps(ctx, settings.StepBudget, &state.Parked, &state.Decisions, fl.changed, fl.acknowledge)
	// notified flags what a compliance notice could not reach.
	notified := func(ctx workflow.Context, name string, result activities.NoticeResult) {
		switch result {
		case activities.PartlySent:
			fl.raise(ctx, FlagRecipientRefused, "a compliance recipient refused the "+name+" notice; the others got it (see the notification record)")
		case activities.Undeliverable:
			fl.raise(ctx, FlagUndeliverable, "no compliance recipient accepted the "+name+" notice")
		case activities.InDoubt:
			fl.raise(ctx, FlagInDoubt, "the "+name+" notice was handed to the mail server but its acknowledgement was lost; check it arrived")
		}
	}
	if err := workflow.SetQueryHandler(ctx, contract.StateQuery, func() (CaseState, error) { return *state, nil }); err != nil {
		return contract.Resolution{}, err
	}
	update, err := w.setResolveUpdate(ctx, state)
	if err != nil {
		return contract.Resolution{}, err
	}
	if err := w.setOperatorUpdates(ctx, st, fl); err != nil {
		return contract.Resolution{}, err
	}
	logger := workflow.GetLogger(ctx)

	var result activities.NoticeResult
	if !continued {
		state.Opened = st.run(ctx, "open AML case", acts.OpenAMLCase, in.Case, nil)
		if st.run(ctx, "notify compliance", acts.NotifyCompliance, activities.ComplianceNotice{Case: in.Case}, &result) {
			notified(ctx, "opening", result)
		}
	}

	resolve := workflow.GetSignalChannel(ctx, contract.ResolveSignal)
	reviews := workflow.GetSignalChannel(ctx, contract.HitReviewsSignal)
	nextReminder := workflow.Now(ctx).Add(settings.AMLReminderInterval)
	for {
		takeReviews(ctx, st, state, reviews)
		if reviewedInDidit(state.Case) {
			res := consoleResolution(state.Case)
			update.taken, update.byUpdate = true, false
			resolveCase(ctx, st, settings, state, res)
			finishCase(ctx, st, state, reviews)
			return res, nil
		}
		// Between two waits no step runs; with no signal waiting to be
		// taken in, no flag being written and no Update's handler running,
		// nothing is cut short or lost.
		if historyIsLong(ctx) && resolve.Len() == 0 && reviews.Len() == 0 && !st.answersPending() && !fl.writing() &&
			workflow.AllHandlersFinished(ctx) {
			logger.Info("AML case continues as new", "reminders", state.Reminders, "runs", state.Runs+1)
			return contract.Resolution{}, workflow.NewContinueAsNewError(ctx, contract.AMLCaseWorkflowType,
				AMLCaseInput{Case: in.Case, State: state})
		}
		res, ok := awaitResolution(ctx, resolve, reviews, update, nextReminder.Sub(workflow.Now(ctx)))
		if !ok && reviews.Len() > 0 {
			continue
		}
		if !ok {
			nextReminder = workflow.Now(ctx).Add(settings.AMLReminderInterval)
			state.Reminders++
			state.Escalated = state.Escalated || state.Reminders >= settings.AMLEscalateAfter
			notice := activities.ComplianceNotice{Case: state.Case, Reminder: state.Reminders, Escalate: state.Escalated,
				Unreviewed: unreviewedHits(state.Case)}
			if st.run(ctx, "remind compliance", acts.NotifyCompliance, notice, &result) {
				notified(ctx, "reminder "+strconv.Itoa(state.Reminders), result)
			}
			reminder := activities.ReminderInput{SessionID: in.Case.SessionID, CaseID: in.Case.CaseID,
				Reminder: state.Reminders, Escalated: state.Escalated}
			st.run(ctx, "record reminder", acts.RecordAMLReminder, reminder, nil)
			continue
		}
		if reason := invalidResolution(res, state.Case); reason != "" {
			state.Rejected = append(state.Rejected, reason)
			if over := len(state.Rejected) - maxRejected; over > 0 {
				state.Rejected = slices.Delete(state.Rejected, 0, over)
			}
			logger.Warn("resolve signal ignored", "reason", reason)
			continue
		}
		update.taken = true
		resolveCase(ctx, st, settings, state, res)
		finishCase(ctx, st, state, reviews)
		return res, nil
	}
}

// resolveCase records a case's resolution, from diditflow or from Didit's
// console (res.Source), and starts the hooks on it. A resolution from
// diditflow gives each hit its outcome's review status, in the records and,
// written back, in Didit; one from Didit's console writes nothing back.
func resolveCase(ctx workflow.Context, st *steps, settings Settings, state *CaseState, res contract.Resolution) {
	c := state.Case
	in := activities.ResolveInput{SessionID: c.SessionID, CaseID: c.CaseID, Resolution: res}
	if res.Source != contract.FromDiditConsole {
		for _, h := range c.Hits {
			in.Reviews = append(in.Reviews, contract.HitReview{HitID: h.ID, ReviewStatus: res.HitOutcome(h.ID).ReviewStatus(), At: workflow.Now(ctx).Unix()})
		}
	}
	st.run(ctx, "record resolution", acts.ResolveAMLCase, in, nil)
	state.Resolution = &res
	workflow.GetLogger(ctx).Info("AML case resolved", "outcome", res.Outcome, "source", res.Source)
	if len(settings.Hooks) > 0 {
		hooks := activities.CaseHooks{Hooks: settings.Hooks, SessionID: c.SessionID, Case: caseResolution(c, res), At: workflow.Now(ctx)}
		st.run(ctx, "start hooks", kycActs.StartCaseHooks, hooks, nil)
	}
	if res.Source != contract.FromDiditConsole {
		state.ReviewsWritten = writeReviews(ctx, st, settings, c, res)
	}
}

// caseResolution is a resolution as the business's hooks are told it: each
// hit's outcome by its ID, never whom it names.
func caseResolution(c activities.AMLCase, res contract.Resolution) kyc.CaseResolution {
	hits := make(map[string]string, len(c.Hits))
	for _, h := range c.Hits {
		hits[h.ID] = string(res.HitOutcome(h.ID))
	}
	return kyc.CaseResolution{CaseID: c.ID(), Outcome: string(res.Outcome), Hits: hits}
}

// syncCaseFlags writes a case's flag to its search attribute and, best
// effort, to its record.
func syncCaseFlags(ctx workflow.Context, c activities.AMLCase, needs bool, reasons []string) {
	_ = workflow.UpsertTypedSearchAttributes(ctx, contract.NeedsAttentionKey.ValueSet(needs))
	in := activities.FlagInput{SessionID: c.SessionID, CaseID: c.ID(), NeedsAttention: needs, Reasons: reasons}
	_ = workflow.ExecuteActivity(flagActivityOptions(ctx), acts.FlagAMLCase, in).Get(ctx, nil)
}

// awaitResolution waits for a resolve signal, or a resolve Update's
// resolution, until the next reminder is due; ok is false when it is due
// first, or hit reviews arrived (left in their channel for takeReviews).
func awaitResolution(ctx workflow.Context, resolve, reviews workflow.ReceiveChannel, update *resolveUpdate,
	untilReminder time.Duration) (contract.Resolution, bool) {
	timerCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	var raw json.RawMessage
	var res contract.Resolution
	got := false
	// byUpdate says where the resolution returned now came from.
	update.byUpdate = false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(resolve, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &raw); got = true })
	sel.AddReceive(update.accepted, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &res); got, update.byUpdate = true, true })
	sel.AddReceive(reviews, func(workflow.ReceiveChannel, bool) {})
	sel.AddFuture(workflow.NewTimer(timerCtx, max(untilReminder, 0)), func(workflow.Future) {})
	sel.Select(ctx)
	if !got || update.byUpdate {
		return res, got
	}
	// Decoded here rather than by the SDK, which would drop a malformed
	// signal with only a log line; this way it lands in Rejected.
	if err := decodeJSON(raw, &res); err != nil {
		res = contract.Resolution{Outcome: contract.Outcome("malformed input: " + err.Error())}
	}
	// Where it was decided is the case's to say, never the sender's.
	res.Source, res.Identity = contract.FromDiditflow, ""
	return res, true
}

// finishCase hands back to the session what reviews came after the
// resolution, until no Update's handler runs (an acknowledge still writing
// its flag answers before the case ends) and no review waits, in the same
// workflow task: nothing that reached the case is lost when it completes.
func finishCase(ctx workflow.Context, st *steps, state *CaseState, reviews workflow.ReceiveChannel) {
	for {
		reportLateReviews(ctx, st, state, reviews)
		_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
		if reviews.Len() == 0 {
			return
		}
	}
}

// invalidResolution says why a resolution from diditflow cannot close c, or
// "". One that would silently contradict a verdict Didit's console already
// gave a hit is refused: the hit must be named in hits to overrule it, since
// its outcome is written back to Didit over the console's.
func invalidResolution(r contract.Resolution, c activities.AMLCase) string {
	switch {
	case !r.Outcome.Valid():
		return "outcome must be confirmed_match, false_positive or inconclusive, got " + string(r.Outcome)
	case r.Reviewer == "":
		return "reviewer is required"
	}
	ids := make([]string, 0, len(r.Hits))
	// The keys are sorted before use, so the map's order never shows.
	//workflowcheck:ignore
	for id := range r.Hits {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if !r.Hits[id].Valid() {
			return "hit " + id + ": outcome must be confirmed_match, false_positive or inconclusive, got " + string(r.Hits[id])
		}
		if !slices.ContainsFunc(c.Hits, func(h didit.AMLHit) bool { return h.ID == id }) {
			return "hit " + id + " is not a hit of this case"
		}
	}
	for _, h := range c.Hits {
		if _, named := r.Hits[h.ID]; named {
			continue
		}
		if o, final := contract.OutcomeOf(h.ReviewStatus); final && o != r.Outcome {
			return "hit " + h.ID + " is " + h.ReviewStatus + " in Didit's console: give it an outcome in hits to overrule that review"
		}
	}
	return ""
}

// writeReviews writes each hit's outcome back to Didit, one bulk call per
// AML node, in the order the case lists them, and returns how many nodes
// were written. A step parks like any other: a refused key waits for an
// operator's retry once the key is fixed.
func writeReviews(ctx workflow.Context, st *steps, settings Settings, c activities.AMLCase, res contract.Resolution) int {
	var nodes []activities.NodeReviews
	for _, h := range c.Hits {
		i := slices.IndexFunc(nodes, func(n activities.NodeReviews) bool { return n.NodeID == h.NodeID })
		if i < 0 {
			nodes = append(nodes, activities.NodeReviews{SessionID: c.SessionID, NodeID: h.NodeID})
			i = len(nodes) - 1
		}
		nodes[i].Reviews = append(nodes[i].Reviews, api.HitReview{HitID: h.ID, ReviewStatus: activities.ReviewStatus(res.HitOutcome(h.ID))})
	}
	if q := settings.DiditAPIWriteQueue; q != "" {
		ctx = workflow.WithTaskQueue(ctx, q)
	}
	written := 0
	for _, n := range nodes {
		var ok bool
		name := "write AML hit reviews to Didit"
		if n.NodeID != "" {
			name += " (node " + n.NodeID + ")"
		}
		if st.run(ctx, name, acts.WriteHitReviews, n, &ok) && ok {
			written++
		}
	}
	return written
}

// Register registers the workflows under their contract names.
func (w *Workflows) Register(r interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
}) {
	r.RegisterWorkflowWithOptions(w.VerificationSession, workflow.RegisterOptions{Name: contract.SessionWorkflowType})
	r.RegisterWorkflowWithOptions(w.AMLCase, workflow.RegisterOptions{Name: contract.AMLCaseWorkflowType})
	r.RegisterWorkflowWithOptions(w.Reconcile, workflow.RegisterOptions{Name: contract.ReconcileWorkflowType})
	r.RegisterWorkflowWithOptions(w.Purge, workflow.RegisterOptions{Name: contract.PurgeWorkflowType})
}
