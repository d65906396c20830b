package workflows

import (
	"cmp"
	"slices"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
)

// SessionState is what a session workflow knows; contract.StateQuery returns it and
// continue-as-new carries it to the next run.
type SessionState struct {
	SessionID  string       `json:"session_id"`
	Status     didit.Status `json:"status,omitempty"`
	VendorData string       `json:"vendor_data,omitempty"`
	AMLHit     bool         `json:"aml_hit"`
	AMLCase    bool         `json:"aml_case"`
	// Seen holds the keys of every event handled, to drop redeliveries.
	Seen []string `json:"seen"`
	// History is every event in arrival order, applied or not.
	History   []HandledEvent      `json:"history"`
	Notified  []activities.Notice `json:"notified,omitempty"`
	Attention []string            `json:"attention,omitempty"`
	Parked    []ParkedStep        `json:"parked,omitempty"`
	Decisions []OperatorDecision  `json:"decisions,omitempty"`
	// Runs counts the runs this state has been carried through.
	Runs int `json:"runs"`

	// Since flags were wired (sessionFlagsVersion):

	// Flags are what needs an operator besides parked steps; Attention is
	// their predecessor, carried over into Flags.
	Flags []Flag `json:"flags,omitempty"`
	// Effects are the side effects still to run, in order, the first one
	// possibly under way: continue-as-new carries them over.
	Effects []PendingEffect `json:"effects,omitempty"`
	// ContactEmail is the latest address Didit gave for the user, for the
	// notices of events without a decision (Resubmitted, Kyc Expired).
	ContactEmail string `json:"contact_email,omitempty"`
	// Unconfirmed is set while the record's status comes from an event
	// whose decision cannot be trusted: its side effects wait for an
	// event that confirms the status.
	Unconfirmed bool `json:"unconfirmed,omitempty"`
	// Cases are the session's AML case IDs, the first one first; CasedHits
	// the hit IDs they cover, so a hit never opens a second case.
	Cases     []string `json:"cases,omitempty"`
	CasedHits []string `json:"cased_hits,omitempty"`
	// CasesKnown is set once the run has learnt the cases earlier runs
	// opened (from the records).
	CasesKnown bool `json:"cases_known,omitempty"`
	// Forgotten counts entries dropped from History, and forgotten keys
	// from Seen, to keep the state bounded (maxHistory, maxSeen).
	Forgotten int `json:"forgotten,omitempty"`
	// Erased is set once the records say the session was erased
	// (diditflow-admin erase): its events are recorded without personal
	// data, its user is sent no notice, its decision is never fetched, and
	// the state holds no address or vendor_data.
	Erased bool `json:"erased,omitempty"`
}

// HandledEvent is one entry of a session's history.
type HandledEvent struct {
	Key         string            `json:"key"`
	WebhookType didit.WebhookType `json:"webhook_type"`
	Status      didit.Status      `json:"status"`
	CreatedAt   int64             `json:"created_at"`
	// Outcome is applied (the record moved forward), stale (older than the
	// record), duplicate, or skipped (an operator skipped recording it).
	Outcome string `json:"outcome"`
}

// Workflows are diditflow's workflow implementations, bound to the worker's
// settings.
type Workflows struct {
	Settings Settings
}

// settings returns the worker's settings as recorded in this run's history,
// so that replaying the run sees the values it first ran with.
func (w *Workflows) settings(ctx workflow.Context) Settings {
	var s Settings
	_ = workflow.SideEffect(ctx, func(workflow.Context) any { return w.Settings }).Get(&s)
	return s
}

type session struct {
	ctx      workflow.Context
	settings Settings
	state    *SessionState
	steps    *steps
	// searched is what was last written to the search attributes.
	searched searchAttributes
	// handled counts the events this run has handled.
	handled int
	// effects are status changes whose side effects are still to run, in
	// order; busy is set while one runs. They run apart from recording, so a
	// parked notice never holds up the record of later events. Runs with
	// flags wired keep them in state.Effects instead.
	effects []effect
	busy    bool
	// wired is set for runs since flags were wired (sessionFlagsVersion):
	// one flag wiring, a notice per status change, AML cases per set of
	// hits, batched records, bounded state, effects carried over.
	wired bool
	// lean is set for runs since leanHistoryVersion.
	lean  bool
	flags *flags
	// batch is what the decision fetch decided about the events of the
	// batch being recorded.
	batch batchDecisions
	// seenKeys indexes state.Seen.
	seenKeys map[string]bool
}

type effect struct {
	event didit.Event
	hits  []didit.AMLHit
}

type searchAttributes struct {
	status         didit.Status
	amlHit         bool
	needsAttention bool
	vendorData     string
}

// VerificationSession runs one Didit verification session, fed by
// contract.EventSignal: it dedupes events, records each one, and follows every status
// change with its side effects (user notices, AML escalation). It completes
// once the session is final and quiet for the idle window.
func (w *Workflows) VerificationSession(ctx workflow.Context, in SessionInput) error {
	s := &session{ctx: ctx, settings: w.settings(ctx), state: in.State}
	if s.state == nil {
		s.state = &SessionState{SessionID: in.SessionID}
	}
	s.wired = workflow.GetVersion(ctx, sessionFlagsChange, workflow.DefaultVersion, sessionFlagsVersion) >= sessionFlagsVersion
	if s.wired {
		s.lean = workflow.GetVersion(ctx, leanHistoryChange, workflow.DefaultVersion, leanHistoryVersion) >= leanHistoryVersion
	}
	if s.lean {
		s.searched = initialSearchAttributes(ctx)
	}
	s.state.Runs++
	if s.wired {
		s.wireFlags()
		s.steps = newSteps(ctx, s.settings.StepBudget, &s.state.Parked, &s.state.Decisions,
			func(ctx workflow.Context) { s.flags.changed(ctx) }, s.flags.acknowledge)
	} else {
		s.steps = newSteps(ctx, s.settings.StepBudget, &s.state.Parked, &s.state.Decisions, s.setAttention, nil)
	}
	if err := workflow.SetQueryHandler(ctx, contract.StateQuery, func() (SessionState, error) { return *s.state, nil }); err != nil {
		return err
	}
	s.upsertSearchAttributes()

	workflow.Go(ctx, s.runEffects)

	events := workflow.GetSignalChannel(ctx, contract.EventSignal)
	pending := in.Pending
	for {
		pending = append(pending, drain(events)...)
		if s.wired && len(pending) > 0 && s.continueAsNew() && s.effectsSettled() {
			// Continue as new in the very task that drained the events, so
			// that a steady stream of them leaves the server no time to
			// reject the continuation for a signal that came meanwhile.
			if carried := s.unseen(pending); len(carried) <= maxCarried {
				next := SessionInput{SessionStart: in.SessionStart, State: s.state, Pending: carried}
				return workflow.NewContinueAsNewError(ctx, contract.SessionWorkflowType, next)
			}
		}
		if len(pending) == 0 {
			if !s.wait(events) {
				// Quiet for the idle window. Drain once more: an event that
				// came with the timer is handled, not completed over.
				if pending = drain(events); len(pending) == 0 {
					workflow.GetLogger(ctx).Info("session complete", "status", s.state.Status)
					return nil
				}
			}
			continue
		}
		if s.wired {
			s.handleBatch(pending)
		} else {
			// Event time order within what has arrived; the record decides
			// across batches.
			slices.SortStableFunc(pending, func(a, b contract.SessionEvent) int {
				return compareEventTime(a.Event, b.Event)
			})
			for _, ev := range pending {
				s.handle(ev)
			}
		}
		s.handled += len(pending)
		pending = nil

		if s.continueAsNew() {
			next := SessionInput{SessionStart: in.SessionStart, State: s.state}
			if s.wired {
				// Effects carry over, so only one under way is waited for; a
				// parked one waits for its operator in the next run.
				s.awaitEffectsSettled()
				next.Pending = s.carry(events)
			} else {
				// Side effects in flight finish in this run; only then is the
				// state complete enough to carry over.
				_ = workflow.Await(ctx, s.effectsIdle)
				next.Pending = drain(events)
			}
			return workflow.NewContinueAsNewError(ctx, contract.SessionWorkflowType, next)
		}
	}
}

func (s *session) effectsIdle() bool {
	return len(s.effects) == 0 && len(s.state.Effects) == 0 && !s.busy
}

// wait blocks until an event arrives (true) or, once the session is final
// and its side effects are done, until the idle window passes without one
// (false).
func (s *session) wait(events workflow.ReceiveChannel) bool {
	// A raised flag keeps the run open: a closed run could not take the
	// operator's acknowledge, and its flag would stay on the record.
	closable := func() bool { return s.state.Status.Final() && s.effectsIdle() && len(s.state.Flags) == 0 }
	_ = workflow.Await(s.ctx, func() bool { return events.Len() > 0 || closable() })
	if events.Len() > 0 {
		return true
	}
	got, _ := workflow.AwaitWithTimeout(s.ctx, s.settings.IdleWindow, func() bool { return events.Len() > 0 })
	return got
}

// runEffects runs queued side effects one at a time, for the whole run.
func (s *session) runEffects(ctx workflow.Context) {
	if s.wired {
		s.runPendingEffects(ctx)
		return
	}
	for {
		_ = workflow.Await(ctx, func() bool { return len(s.effects) > 0 })
		job := s.effects[0]
		s.busy = true
		s.runEffect(ctx, job)
		s.effects = s.effects[1:]
		s.busy = false
	}
}

func drain(events workflow.ReceiveChannel) []contract.SessionEvent {
	var out []contract.SessionEvent
	for {
		var ev contract.SessionEvent
		if !events.ReceiveAsync(&ev) {
			return out
		}
		out = append(out, ev)
	}
}

func compareEventTime(a, b didit.Event) int {
	if c := cmp.Compare(a.CreatedAt, b.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.Status.Rank(), b.Status.Rank())
}

func (s *session) continueAsNew() bool {
	info := workflow.GetInfo(s.ctx)
	if info.GetContinueAsNewSuggested() {
		return true
	}
	if s.wired && info.GetCurrentHistoryLength() >= maxHistoryLength {
		return true
	}
	return s.settings.ContinueAsNewAfter > 0 && s.handled >= s.settings.ContinueAsNewAfter
}

func (s *session) handle(se contract.SessionEvent) {
	ev := se.Event
	key := ev.Key()
	logger := workflow.GetLogger(s.ctx)
	entry := HandledEvent{Key: key, WebhookType: ev.WebhookType, Status: ev.Status, CreatedAt: ev.CreatedAt}
	if slices.Contains(s.state.Seen, key) {
		entry.Outcome = "duplicate"
		s.state.History = append(s.state.History, entry)
		logger.Info("duplicate event dropped", "event_key", key)
		return
	}
	s.state.Seen = append(s.state.Seen, key)

	hits := ev.Decision.AMLHits()
	in := activities.RecordInput{
		SessionID: ev.SessionID, EventKey: key, WebhookType: ev.WebhookType, Status: ev.Status,
		EventCreatedAt: ev.CreatedAt, VendorData: ev.VendorData, AMLHits: len(hits), AMLMaxRisk: maxRisk(hits),
	}
	var res activities.RecordResult
	if !s.steps.run(s.ctx, "record event "+key, acts.RecordVerification, in, &res) {
		entry.Outcome = "skipped"
		s.state.History = append(s.state.History, entry)
		return
	}
	switch {
	case res.Duplicate:
		// Recorded before: by an attempt whose answer was lost, or by an
		// earlier run. What it did then still counts below.
		entry.Outcome = "duplicate"
	case res.Applied:
		entry.Outcome = "applied"
	default:
		entry.Outcome = "stale"
	}
	s.state.History = append(s.state.History, entry)
	if res.CurrentStatus != "" {
		s.state.Status = res.CurrentStatus
	}
	if res.Applied && res.CurrentStatus == ev.Status {
		if ev.VendorData != "" {
			s.state.VendorData = ev.VendorData
		}
		if len(hits) > 0 {
			s.state.AMLHit = true
		}
	}
	logger.Info("event recorded", "event_key", key, "webhook_type", ev.WebhookType,
		"status", ev.Status, "outcome", entry.Outcome)
	if se.Proof.EnvelopeOnly || ev.DecisionError != "" {
		// Without a trustworthy decision there is no address to notify and
		// no AML result to act on: ops re-check the session in Didit.
		s.flag("decision of event " + key + " is unusable (" + unusableReason(se) + "); check the session in Didit's console")
		return
	}
	s.upsertSearchAttributes()
	if res.StatusChanged(ev.Status) {
		s.effects = append(s.effects, effect{event: ev, hits: hits})
	}
}

func unusableReason(se contract.SessionEvent) string {
	if se.Proof.EnvelopeOnly {
		return "only X-Signature-Simple verified"
	}
	return "unreadable decision"
}

// runEffect does what a status change calls for. Effects follow the
// record's status, whichever event revealed it, so a data.updated that
// arrives before a late status.updated still triggers the status's notice,
// once.
func (s *session) runEffect(ctx workflow.Context, job effect) {
	ev := job.event
	switch ev.Status {
	case didit.StatusApproved:
		s.notify(ctx, activities.NoticeApproved, ev)
	case didit.StatusDeclined:
		s.escalate(ctx, ev, job.hits)
		s.notify(ctx, activities.NoticeDeclined, ev)
	case didit.StatusInReview:
		s.escalate(ctx, ev, job.hits)
		s.notify(ctx, activities.NoticeInReview, ev)
	case didit.StatusResubmitted:
		s.notify(ctx, activities.NoticeResubmitted, ev)
	case didit.StatusKycExpired:
		s.notify(ctx, activities.NoticeKycExpired, ev)
	}
}

func (s *session) notify(ctx workflow.Context, kind activities.Notice, ev didit.Event) {
	if slices.Contains(s.state.Notified, kind) {
		return
	}
	// workflowcheck flags (*didit.ResubmitInfo).Steps, for its calls to
	// encoding/json.Unmarshal, only because, deep in reflect and the runtime,
	// an allocation may start the garbage collector's worker goroutines (its
	// sole reasons are runtime.gcBgMarkStartWorkers and gcBgMarkWorker);
	// decoding the nodes is deterministic.
	//workflowcheck:ignore
	redo := ev.ResubmitInfo.Steps()
	in := activities.UserNotice{SessionID: ev.SessionID, Kind: kind, Email: ev.Decision.ContactEmail(), Redo: redo}
	var result activities.NoticeResult
	if s.steps.run(ctx, "notify user: "+string(kind), acts.NotifyUser, in, &result) {
		s.state.Notified = append(s.state.Notified, kind)
	}
	if result == activities.InDoubt {
		s.flag("the " + string(kind) + " notice was handed to the mail server but its acknowledgement was lost; check it arrived")
	}
}

// escalate opens the session's AML case, once: the child workflow's ID is
// fixed per session and never reused, so a case opened by an earlier run
// (or a retry) is found instead of duplicated. The case outlives this run.
func (s *session) escalate(ctx workflow.Context, ev didit.Event, hits []didit.AMLHit) {
	if len(hits) == 0 || s.state.AMLCase {
		return
	}
	ctx = workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            contract.AMLCaseWorkflowID(ev.SessionID),
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: caseSearchAttributes(ctx, ev.Status, ev.VendorData),
	})
	in := AMLCaseInput{Case: activities.AMLCase{SessionID: ev.SessionID, Status: ev.Status, VendorData: ev.VendorData, Hits: hits}}
	err := workflow.ExecuteChildWorkflow(ctx, contract.AMLCaseWorkflowType, in).GetChildWorkflowExecution().Get(ctx, nil)
	switch {
	case err == nil:
		workflow.GetLogger(s.ctx).Info("AML case opened", "case", contract.AMLCaseWorkflowID(ev.SessionID), "hits", len(hits))
	case temporal.IsWorkflowExecutionAlreadyStartedError(err):
		workflow.GetLogger(s.ctx).Info("AML case already exists", "case", contract.AMLCaseWorkflowID(ev.SessionID))
	default:
		// Starting a child fails only if the server refuses it; nothing an
		// activity retry would fix, so it goes to ops directly.
		s.flag("could not open AML case: " + err.Error())
		return
	}
	s.state.AMLCase = true
}

// flag marks the session for an operator's attention without parking.
func (s *session) flag(reason string) {
	s.state.Attention = append(s.state.Attention, reason)
	workflow.GetLogger(s.ctx).Warn("session needs attention", "reason", reason)
	s.upsertSearchAttributes()
}

// setAttention is called when a step parks or is released.
func (s *session) setAttention(ctx workflow.Context) {
	s.upsertSearchAttributes()
	// Mirror the flag onto the record, best effort: the search attribute is
	// what ops watch, and the store may be the very thing that is down.
	opts := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	in := activities.AttentionInput{SessionID: s.state.SessionID, NeedsAttention: s.needsAttention()}
	_ = workflow.ExecuteActivity(opts, acts.SetNeedsAttention, in).Get(ctx, nil)
}

func (s *session) needsAttention() bool {
	return len(s.state.Parked) > 0 || len(s.state.Attention) > 0 || len(s.state.Flags) > 0
}

// initialSearchAttributes are the search attributes the run started with:
// those the starter sets for a new session (its first event's status, no
// AML hit, no attention) or, when continued as new, those carried over. A
// lean run writes only what differs from them, so a session's first event
// costs no upsert. An attribute missing reads as a value no state has, so
// it is written.
func initialSearchAttributes(ctx workflow.Context) searchAttributes {
	sa := workflow.GetTypedSearchAttributes(ctx)
	status, hasStatus := sa.GetKeyword(contract.StatusKey)
	amlHit, hasAMLHit := sa.GetBool(contract.AMLHitKey)
	attention, hasAttention := sa.GetBool(contract.NeedsAttentionKey)
	if !hasStatus || !hasAMLHit || !hasAttention {
		return searchAttributes{status: unsetStatus}
	}
	return searchAttributes{status: didit.Status(status), amlHit: amlHit, needsAttention: attention}
}

// unsetStatus is no status Didit sends: search attributes compared with it
// are always written.
const unsetStatus didit.Status = "\x00unset"

func (s *session) upsertSearchAttributes() {
	now := searchAttributes{
		status:         s.state.Status,
		amlHit:         s.state.AMLHit,
		needsAttention: s.needsAttention(),
		vendorData:     s.state.VendorData,
	}
	if s.lean {
		// Lean runs postdate searchPrivacyVersion: vendor_data is never
		// searchable, so it never calls for an upsert.
		now.vendorData = ""
		if now.status == "" {
			// No event yet: nothing the start did not say.
			return
		}
	}
	if now == s.searched {
		return
	}
	var updates []temporal.SearchAttributeUpdate
	if now.status != "" {
		updates = append(updates, contract.StatusKey.ValueSet(string(now.status)))
	}
	if now.vendorData != "" && vendorDataSearchable(s.ctx) {
		updates = append(updates, contract.VendorDataKey.ValueSet(now.vendorData))
	}
	updates = append(updates, contract.AMLHitKey.ValueSet(now.amlHit), contract.NeedsAttentionKey.ValueSet(now.needsAttention))
	if err := workflow.UpsertTypedSearchAttributes(s.ctx, updates...); err != nil {
		workflow.GetLogger(s.ctx).Error("upsert search attributes", "error", err)
		return
	}
	s.searched = now
}

func maxRisk(hits []didit.AMLHit) *float64 {
	var max *float64
	for _, h := range hits {
		if h.RiskScore != nil && (max == nil || *h.RiskScore > *max) {
			v := *h.RiskScore
			max = &v
		}
	}
	return max
}
