package workflows

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
)

// The session workflow's versions (workflow.GetVersion). A run records the
// version it started with; replaying an older run takes the older path.
const (
	sessionFlagsChange = "session-flags-and-effects-per-change"
	// sessionFlagsVersion: one flag wiring (search attribute, record, metric)
	// with an acknowledge signal; a notice per status change; AML cases per
	// set of hits whatever the order, with follow-up cases; one ordering rule
	// for fully signed and envelope-only events; events recorded in batches;
	// bounded state; effects, parked or not, carried over by continue-as-new.
	sessionFlagsVersion workflow.Version = 1

	noticeAddressChange = "session-notice-address-from-records"
	// noticeAddressVersion: a user notice carries no address; the notice
	// activity reads the one the records keep for the session (recorded
	// with each trustworthy decision), so Kyc Expired months after the
	// approval, in a new run, still reaches the user without Didit's API,
	// and no address travels through Temporal with the notice.
	noticeAddressVersion workflow.Version = 1

	searchPrivacyChange = "session-search-attributes-without-vendor-data"
	// searchPrivacyVersion: vendor_data, the business's reference to its
	// user and so personal data, no longer goes into the DiditVendorData
	// search attribute of sessions and AML cases. Search attributes are
	// stored and indexed in clear, outside the payload codec; the records
	// map a vendor_data to its sessions (diditflow-records).
	searchPrivacyVersion workflow.Version = 1

	leanHistoryChange = "session-lean-history"
	// leanHistoryVersion: an approved session in about 20 history events
	// instead of 36. Records and user notices run as local activities (a
	// marker each, inside the workflow task that called for them, instead
	// of three events and one more workflow task), and the search
	// attributes the starter set when it started the run are not written
	// again (see initialSearchAttributes).
	leanHistoryVersion workflow.Version = 1
)

// runStep runs a record or notice step: as a local activity in lean runs
// (leanHistoryVersion), as an activity before.
func (s *session) runStep(ctx workflow.Context, name string, activity, in, out any) bool {
	if s.lean {
		return s.steps.runLocal(ctx, name, activity, in, out)
	}
	return s.steps.run(ctx, name, activity, in, out)
}

// vendorDataSearchable reports whether this run predates searchPrivacyVersion
// and so still sets DiditVendorData.
func vendorDataSearchable(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, searchPrivacyChange, workflow.DefaultVersion, searchPrivacyVersion) < searchPrivacyVersion
}

// caseSearchAttributes are the search attributes an AML case starts with.
func caseSearchAttributes(ctx workflow.Context, status didit.Status, vendorData string) temporal.SearchAttributes {
	updates := []temporal.SearchAttributeUpdate{contract.AMLHitKey.ValueSet(true), contract.StatusKey.ValueSet(string(status))}
	if vendorDataSearchable(ctx) {
		updates = append(updates, contract.VendorDataKey.ValueSet(vendorData))
	}
	return temporal.NewSearchAttributes(updates...)
}

// Bounds on a session's state and history, whatever arrives.
const (
	// maxSeen is how many event keys a run remembers to drop redeliveries
	// without an activity; an older key redelivered is recognised by the
	// records (RecordResult.Duplicate) and changes nothing.
	maxSeen = 2000
	// maxHistory is how many entries of History the state keeps.
	maxHistory = 200
	// maxHistoryLength continues a run as new once its history is this long,
	// whatever the server suggests (it suggests at a few thousand events).
	maxHistoryLength = 2000
	// maxRecordBatch is the most events one record activity takes.
	maxRecordBatch = 100
	// maxCarried is the most unhandled events a run hands to the next one;
	// more are handled before it continues as new.
	maxCarried = 100
)

// PendingEffect is a side effect still to run: a notice to the user or an
// AML case to open. It holds what the effect needs, so it can run in a later
// run than the one that queued it.
type PendingEffect struct {
	// EventKey is the event whose status change or hits called for it.
	EventKey string                 `json:"event_key"`
	Notice   *activities.UserNotice `json:"notice,omitempty"`
	Case     *activities.AMLCase    `json:"case,omitempty"`
}

// step names the effect's step, as the state query shows it and operators'
// signals name it.
func (e PendingEffect) step() string {
	if e.Notice != nil {
		return "notify user: " + string(e.Notice.Kind) + " (event " + e.EventKey + ")"
	}
	return "open AML case " + e.Case.ID()
}

// wireFlags sets up the flag wiring and brings state from an older run up to
// date.
func (s *session) wireFlags() {
	for _, reason := range s.state.Attention {
		s.state.Flags = append(s.state.Flags, Flag{ID: len(s.state.Flags) + 1, Kind: FlagUnusableDecision, Reason: reason})
	}
	s.state.Attention = nil
	s.flags = &flags{list: &s.state.Flags, parked: &s.state.Parked, decisions: &s.state.Decisions, sync: s.syncFlags}
}

// syncFlags writes the flag to the search attribute and, best effort, to the
// record: the search attribute is what ops watch, and the records database
// may be the very thing that is down.
func (s *session) syncFlags(ctx workflow.Context, needsAttention bool, reasons []string) {
	s.upsertSearchAttributes()
	opts := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// The workflow's own queue, even when the step that raised the flag
		// ran on a Didit API queue (workflow.WithTaskQueue), whose workers
		// run only the API activities.
		TaskQueue:           workflow.GetInfo(ctx).TaskQueueName,
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	in := activities.FlagInput{SessionID: s.state.SessionID, NeedsAttention: needsAttention, Reasons: reasons}
	_ = workflow.ExecuteActivity(opts, acts.FlagSession, in).Get(ctx, nil)
}

// orderTime is when an event happened, as far as its signature proves:
// Didit's created_at for a fully signed event; for one that only
// X-Signature-Simple verified, whose created_at is not signed, the signed
// timestamp, which is never before it. One rule for both kinds, so an older
// signed event cannot move the record back past an envelope-only one, nor
// the other way round. Because a resent old event is signed anew, an
// envelope-only event is moreover never applied to an earlier stage
// (RecordInput.EnvelopeOnly).
func orderTime(se contract.SessionEvent) int64 {
	if se.Proof.EnvelopeOnly {
		return se.Event.Timestamp
	}
	return se.Event.CreatedAt
}

func compareOrder(a, b contract.SessionEvent) int {
	if c := cmp.Compare(orderTime(a), orderTime(b)); c != 0 {
		return c
	}
	return cmp.Compare(a.Event.Status.Rank(), b.Event.Status.Rank())
}

// handleBatch handles what arrived in one workflow task: redeliveries are
// dropped, the rest recorded in event-time order, in batches, and followed
// by their side effects.
func (s *session) handleBatch(batch []contract.SessionEvent) {
	slices.SortStableFunc(batch, compareOrder)
	var fresh []contract.SessionEvent
	for _, se := range batch {
		key := se.Event.Key()
		if s.seen(key) {
			s.remember(historyEntry(se, "duplicate"))
			continue
		}
		s.see(key)
		fresh = append(fresh, se)
	}
	fresh = s.fetchDecisions(fresh)
	for len(fresh) > 0 {
		chunk := fresh[:min(len(fresh), maxRecordBatch)]
		fresh = fresh[len(chunk):]
		ins := make([]activities.RecordInput, len(chunk))
		for i, se := range chunk {
			ev := se.Event
			hits := ev.Decision.AMLHits()
			ins[i] = activities.RecordInput{
				SessionID: ev.SessionID, EventKey: ev.Key(), WebhookType: ev.WebhookType, Status: ev.Status,
				EventCreatedAt: orderTime(se), VendorData: ev.VendorData, AMLHits: len(hits), AMLMaxRisk: maxRisk(hits),
				EnvelopeOnly: se.Proof.EnvelopeOnly,
			}
			if !se.Proof.EnvelopeOnly || s.batch.verified[ev.Key()] {
				ins[i].ContactEmail = ev.Decision.ContactEmail()
			}
		}
		name := "record event " + ins[0].EventKey
		if len(ins) > 1 {
			name = "record events " + ins[0].EventKey + " and " + strconv.Itoa(len(ins)-1) + " more"
		}
		var results []activities.RecordResult
		if s.runStep(s.ctx, name, acts.RecordEvents, ins, &results) && len(results) == len(chunk) {
			for i, se := range chunk {
				s.apply(se, results[i])
			}
			continue
		}
		if len(chunk) == 1 {
			s.remember(historyEntry(chunk[0], "skipped"))
			continue
		}
		// The operator gave the batch up, which one bad event can cause:
		// each event is tried on its own, so only the bad one is skipped.
		for i, se := range chunk {
			var res activities.RecordResult
			if !s.runStep(s.ctx, "record event "+ins[i].EventKey, acts.RecordVerification, ins[i], &res) {
				s.remember(historyEntry(se, "skipped"))
				continue
			}
			s.apply(se, res)
		}
	}
	s.upsertSearchAttributes()
}

// apply follows one recorded event: the state, the flags, and the side
// effects its status change or its AML hits call for.
func (s *session) apply(se contract.SessionEvent, res activities.RecordResult) {
	ev := se.Event
	key := ev.Key()
	outcome := "stale"
	switch {
	case res.Duplicate:
		// Recorded before: by an attempt whose answer was lost, or by an
		// earlier run. What it did then still counts below.
		outcome = "duplicate"
	case res.Applied:
		outcome = "applied"
	}
	s.remember(historyEntry(se, outcome))
	workflow.GetLogger(s.ctx).Info("event recorded", "event_key", key, "webhook_type", ev.WebhookType,
		"status", ev.Status, "outcome", outcome)
	if res.CurrentStatus != "" {
		s.state.Status = res.CurrentStatus
	}
	if res.Erased {
		s.erased()
	}
	current := res.Applied && res.CurrentStatus == ev.Status
	if s.batch.superseded[key] {
		// The fetched decision, of a later status, carries the effects.
		return
	}
	if (se.Proof.EnvelopeOnly || ev.DecisionError != "") && !s.batch.verified[key] {
		// Without a trustworthy decision there is no address to notify and
		// no AML result to act on: the status stands, its effects wait for
		// an event that confirms it.
		reason := "decision of event " + key + " is unusable (" + unusableReason(se) + ")"
		if why, ok := s.batch.missing[key]; ok {
			reason += " and could not be fetched: " + why
		}
		s.flags.raise(s.ctx, FlagUnusableDecision, reason+"; check the session in Didit's console")
		if res.StatusChanged(ev.Status) {
			s.state.Unconfirmed = true
		}
		return
	}
	if current && ev.VendorData != "" && !s.state.Erased {
		s.state.VendorData = ev.VendorData
	}
	if email := ev.Decision.ContactEmail(); email != "" && (current || s.state.ContactEmail == "") && !s.state.Erased {
		s.state.ContactEmail = email
	}
	hits := ev.Decision.AMLHits()
	if len(hits) > 0 {
		s.state.AMLHit = true
	}
	s.openCases(ev, hits)
	confirmed := s.state.Unconfirmed && res.CurrentStatus == ev.Status
	if current {
		s.state.Unconfirmed = false
	}
	if res.StatusChanged(ev.Status) || confirmed {
		s.state.Unconfirmed = false
		s.queueNotice(ev, key)
	}
}

// openCases queues an AML case for the hits no case covers yet, whatever
// the status or order of the event that shows them: the session's first
// case, then follow-ups (ongoing monitoring) linked to it.
func (s *session) openCases(ev didit.Event, hits []didit.AMLHit) {
	if len(hits) == 0 {
		return
	}
	if !s.state.CasesKnown {
		// A new run (the session's earlier runs completed) learns the cases
		// and hits of the earlier ones from the records, so a hit found
		// days later opens a follow-up rather than colliding with the
		// first case's ID.
		var known []activities.CaseHits
		if s.steps.run(s.ctx, "load AML cases", acts.SessionCases, ev.SessionID, &known) {
			for _, c := range known {
				if !slices.Contains(s.state.Cases, c.CaseID) {
					s.state.Cases = append(s.state.Cases, c.CaseID)
				}
				for _, id := range c.Hits {
					if !slices.Contains(s.state.CasedHits, id) {
						s.state.CasedHits = append(s.state.CasedHits, id)
					}
				}
			}
		}
		s.state.CasesKnown = true
	}
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
		Status: ev.Status, VendorData: vendorData, Hits: fresh}
	if n := len(s.state.Cases) + 1; n > 1 {
		c.CaseID, c.FollowUpOf = contract.FollowUpCaseID(ev.SessionID, n), s.state.Cases[0]
	}
	s.state.Cases = append(s.state.Cases, c.CaseID)
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
// its key is the event's, so a second Resubmitted mails the user again.
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
	// workflowcheck flags (*didit.ResubmitInfo).Steps only for
	// encoding/json.Unmarshal; see the note in session.notify.
	//workflowcheck:ignore
	redo := ev.ResubmitInfo.Steps()
	n := activities.UserNotice{SessionID: ev.SessionID, Kind: kind, Key: string(kind) + ":" + key, Redo: redo}
	if workflow.GetVersion(s.ctx, noticeAddressChange, workflow.DefaultVersion, noticeAddressVersion) >= noticeAddressVersion {
		n.FromRecords, n.NoDecision = true, s.batch.missing[key]
		n.WaitForAddress = ev.Decision == nil
		s.state.Effects = append(s.state.Effects, PendingEffect{EventKey: key, Notice: &n})
		return
	}
	n.Email = cmp.Or(ev.Decision.ContactEmail(), s.state.ContactEmail)
	if why, ok := s.batch.missing[key]; ok && n.Email == "" {
		// Without the decision there is no address: say so, rather than
		// have the notice fail as undeliverable.
		s.flags.raise(s.ctx, FlagDecisionUnavailable, "event "+key+" ("+string(ev.Status)+") carries no decision and it could not be fetched: "+
			why+"; the user was not sent the "+string(kind)+" notice")
		return
	}
	s.state.Effects = append(s.state.Effects, PendingEffect{EventKey: key, Notice: &n})
}

// erased notes that the records say the session was erased, and drops the
// personal data the run held from before.
func (s *session) erased() {
	s.state.Erased = true
	s.state.VendorData, s.state.ContactEmail = "", ""
}

// runPendingEffects runs state.Effects one at a time, for the whole run. An
// effect leaves the queue only when done, so one under way when the run
// continues as new runs again in the next (each effect is idempotent).
func (s *session) runPendingEffects(ctx workflow.Context) {
	for {
		_ = workflow.Await(ctx, func() bool { return len(s.state.Effects) > 0 })
		s.busy = true
		s.runPending(ctx, s.state.Effects[0])
		s.state.Effects = s.state.Effects[1:]
		s.busy = false
	}
}

func (s *session) runPending(ctx workflow.Context, e PendingEffect) {
	if e.Case != nil {
		s.startCase(ctx, *e.Case)
		return
	}
	n := *e.Notice
	var result activities.NoticeResult
	if !s.runStep(ctx, e.step(), acts.NotifyUser, n, &result) {
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

// startCase starts an AML case as a child that outlives this run. Its ID is
// fixed and never reused, so a case started before (by an earlier run, or
// an attempt whose answer was lost) is found instead of duplicated.
func (s *session) startCase(ctx workflow.Context, c activities.AMLCase) {
	ctx = workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            c.CaseID,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: caseSearchAttributes(ctx, c.Status, c.VendorData),
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
		return
	}
	s.state.AMLCase = true
}

// effectsSettled reports whether the run can continue as new without
// cutting anything short: no effect is running an activity (the queue is
// empty, or its first effect is parked for an operator) and no operator's
// signal or answer waits.
func (s *session) effectsSettled() bool {
	return (s.effectsIdle() || len(s.state.Parked) > 0) && s.steps.quiet()
}

// awaitEffectsSettled waits until effectsSettled.
func (s *session) awaitEffectsSettled() { _ = workflow.Await(s.ctx, s.effectsSettled) }

// unseen drops the events the run has handled, and repeats among them.
func (s *session) unseen(events []contract.SessionEvent) []contract.SessionEvent {
	var out []contract.SessionEvent
	keys := map[string]bool{}
	for _, se := range events {
		key := se.Event.Key()
		if s.seen(key) || keys[key] {
			continue
		}
		keys[key] = true
		out = append(out, se)
	}
	return out
}

// carry drains the events that arrived but were not handled, for the next
// run: redeliveries are dropped, and beyond maxCarried the rest are handled
// here first, so the next run's input stays small.
func (s *session) carry(events workflow.ReceiveChannel) []contract.SessionEvent {
	for round := 0; ; round++ {
		pending := s.unseen(drain(events))
		if len(pending) <= maxCarried || round == 3 {
			return pending
		}
		s.handleBatch(pending)
		s.awaitEffectsSettled()
	}
}

// seen reports whether the run remembers handling the event key.
func (s *session) seen(key string) bool {
	if s.seenKeys == nil {
		s.seenKeys = make(map[string]bool, len(s.state.Seen))
		for _, k := range s.state.Seen {
			s.seenKeys[k] = true
		}
	}
	return s.seenKeys[key]
}

// see remembers an event key, forgetting the oldest past maxSeen.
func (s *session) see(key string) {
	s.seen(key) // builds the index
	s.seenKeys[key] = true
	s.state.Seen = append(s.state.Seen, key)
	if over := len(s.state.Seen) - maxSeen; over > 0 {
		for _, k := range s.state.Seen[:over] {
			delete(s.seenKeys, k)
		}
		s.state.Seen = slices.Delete(s.state.Seen, 0, over)
	}
}

// remember appends to History, forgetting the oldest past maxHistory.
func (s *session) remember(e HandledEvent) {
	s.state.History = append(s.state.History, e)
	if over := len(s.state.History) - maxHistory; over > 0 {
		s.state.History = slices.Delete(s.state.History, 0, over)
		s.state.Forgotten += over
	}
}

func historyEntry(se contract.SessionEvent, outcome string) HandledEvent {
	ev := se.Event
	return HandledEvent{Key: ev.Key(), WebhookType: ev.WebhookType, Status: ev.Status, CreatedAt: orderTime(se), Outcome: outcome}
}
