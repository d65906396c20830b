package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/kyc"
)

// SessionState is what a session workflow knows; contract.StateQuery returns it and
// continue-as-new carries it to the next run.
type SessionState struct {
	SessionID  string       `json:"session_id"`
	Status     didit.Status `json:"status,omitempty"`
	VendorData string       `json:"vendor_data,omitempty"`
	AMLHit     bool         `json:"aml_hit"`
	// AMLCase is set once one of the session's AML cases has started.
	AMLCase bool `json:"aml_case"`
	// Seen holds the keys of the latest events handled, to drop
	// redeliveries (maxSeen).
	Seen []string `json:"seen"`
	// History is the latest events in arrival order, applied or not
	// (maxHistory).
	History []HandledEvent `json:"history"`
	// Forgotten counts entries dropped from History to keep it bounded.
	Forgotten int `json:"forgotten,omitempty"`
	// Flags are what needs an operator besides parked steps.
	Flags     []Flag             `json:"flags,omitempty"`
	Parked    []ParkedStep       `json:"parked,omitempty"`
	Decisions []OperatorDecision `json:"decisions,omitempty"`
	// Effects are the side effects still to run, in order, the first one
	// possibly under way or parked: continue-as-new carries them over.
	Effects []PendingEffect `json:"effects,omitempty"`
	// ContactEmail is the latest address Didit gave for the user, which
	// tells whether an event without a decision needs one fetched.
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
	// Erased is set once the records say the session was erased
	// (diditflow-admin erase): its events are recorded without personal
	// data, its user is sent no notice, its decision is never fetched, and
	// the state holds no address or vendor_data.
	Erased bool `json:"erased,omitempty"`
	// Runs counts the runs this state has been carried through.
	Runs int `json:"runs"`

	// What the businesses' workflows are told (package kyc).
	//
	// StatusSeq is the number of the status change that set Status in the
	// session's sequence, StatusAt when it happened (Unix seconds); Known
	// is set while they are what the records say (a run started by a
	// subscription, or one that recorded only an older event, learns them
	// from its next announcement).
	StatusSeq int64 `json:"status_seq,omitempty"`
	StatusAt  int64 `json:"status_at,omitempty"`
	Known     bool  `json:"known,omitempty"`
	// Changes are the latest status changes (maxChanges), for subscribers
	// told an earlier one.
	Changes []kyc.Change `json:"changes,omitempty"`
	// Subscribers are the workflows waiting for the session
	// (kyc.MaxSubscribers); Refused, those turned away, until they are
	// told so (maxRefused).
	Subscribers []Subscriber `json:"subscribers,omitempty"`
	Refused     []Subscriber `json:"refused,omitempty"`
	// Hooked are the events whose hooks are still to start, in order.
	Hooked []kyc.Event `json:"hooked,omitempty"`
}

// HandledEvent is one entry of a session's history.
type HandledEvent struct {
	Key         string            `json:"key"`
	WebhookType didit.WebhookType `json:"webhook_type"`
	Status      didit.Status      `json:"status"`
	CreatedAt   int64             `json:"created_at"`
	// Outcome is applied (the record moved forward), stale (older than the
	// record), duplicate, skipped (an operator skipped recording it), or
	// superseded (the decision fetched from Didit is of another status).
	Outcome string `json:"outcome"`
}

// Workflows are diditflow's workflow implementations, bound to the worker's
// settings.
type Workflows struct {
	Settings Settings
	// Callers, if not nil, tells who sent an operator's Update (see
	// Callers); without it the identity recorded is empty.
	Callers Callers
}

// settings returns the worker's settings as recorded in this run's history,
// so that replaying the run sees the values it first ran with.
func (w *Workflows) settings(ctx workflow.Context) Settings {
	var s Settings
	_ = workflow.SideEffect(ctx, func(workflow.Context) any { return w.Settings }).Get(&s)
	return s
}

// session is one run of a VerificationSession. Four coroutines share it:
// the run loop (VerificationSession) records events, takes in
// subscriptions, and queues the effects and announcements their status
// changes call for; runEffects runs those effects one at a time;
// runAnnouncements tells the businesses' workflows (subscribers, hooks);
// the steps' coroutine takes in operators' signals. None of them blocks
// another: a parked notice holds up neither records, nor announcements, nor
// the run's continue-as-new.
type session struct {
	ctx      workflow.Context
	settings Settings
	state    *SessionState
	steps    *steps
	flags    *flags
	// searched is what the search attributes hold; nil while the run cannot
	// tell, so the next upsert writes them all.
	searched *searchAttributes
	// handled counts the events this run has handled; overdue the batches
	// it handled since it must continue as new.
	handled, overdue int
	// batch is what the decision fetch decided about the events of the
	// batch being recorded.
	batch batchDecisions
	// seenKeys indexes state.Seen.
	seenKeys map[string]bool
	// subs are the subscription signals; announcing is set while an
	// announcement runs.
	subs       subscriptions
	announcing bool
}

// VerificationSession runs one Didit verification session, fed by
// contract.EventSignal: it dedupes events, records them, and follows every
// status change with its side effects (user notices, AML cases) and its
// announcements (the businesses' subscribers and hooks). It completes once
// the session is final (or never had an event), its effects and
// announcements done, no flag raised, no subscriber waiting, and no event
// came for the idle window; it continues as new when its history grows
// long, carrying its state and the events not yet handled.
func (w *Workflows) VerificationSession(ctx workflow.Context, in SessionInput) error {
	s := newSession(ctx, w.settings(ctx), in.SessionID, in.State)
	if err := workflow.SetQueryHandler(ctx, contract.StateQuery, func() (SessionState, error) { return *s.state, nil }); err != nil {
		return err
	}
	if err := w.setOperatorUpdates(ctx, s.steps, s.flags); err != nil {
		return err
	}
	s.upsertSearchAttributes()
	workflow.Go(ctx, s.runEffects)
	workflow.Go(ctx, s.runAnnouncements)

	events := workflow.GetSignalChannel(ctx, contract.EventSignal)
	pending := in.Pending
	for {
		// Drain and, when it is time, continue as new in one workflow task:
		// a steady stream of events then leaves the server no moment in
		// which to reject the continuation for a signal that came meanwhile.
		pending = append(pending, drain(events)...)
		s.takeSubscriptions()
		switch {
		case s.mustContinueAsNew() && s.canContinueAsNew() && s.canCarry(pending):
			next := SessionInput{SessionStart: in.SessionStart, State: s.state, Pending: s.unseen(pending)}
			return workflow.NewContinueAsNewError(ctx, contract.SessionWorkflowType, next)
		case len(pending) > 0:
			s.handle(pending)
			pending = nil
		case s.canComplete():
			if s.quietForIdleWindow(events) {
				workflow.GetLogger(ctx).Info("session complete", "status", s.state.Status)
				return nil
			}
		default:
			s.awaitEventOrEnd(events)
		}
	}
}

// newSession sets up a run: its state (carried over, or new), the flag
// wiring and the operators' coroutine.
func newSession(ctx workflow.Context, settings Settings, sessionID string, carried *SessionState) *session {
	s := &session{ctx: ctx, settings: settings, state: carried, searched: startingSearchAttributes(ctx), subs: newSubscriptions(ctx)}
	if s.state == nil {
		s.state = &SessionState{SessionID: sessionID}
	}
	s.state.Runs++
	s.flags = &flags{list: &s.state.Flags, parked: &s.state.Parked, decisions: &s.state.Decisions, sync: s.syncFlags}
	s.steps = newSteps(ctx, settings.StepBudget, &s.state.Parked, &s.state.Decisions, s.flags.changed, s.flags.acknowledge)
	return s
}

// mustContinueAsNew reports whether the run has grown enough to continue as
// new: its history is long, or it handled Settings.ContinueAsNewAfter events.
func (s *session) mustContinueAsNew() bool {
	if historyIsLong(s.ctx) {
		return true
	}
	return s.settings.ContinueAsNewAfter > 0 && s.handled >= s.settings.ContinueAsNewAfter
}

// historyIsLong reports whether a run's history calls for continue-as-new:
// Temporal suggests it, or it reached maxHistoryLength.
func historyIsLong(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= maxHistoryLength
}

// canContinueAsNew reports whether continuing as new now would cut nothing
// short: no effect is running an activity (the queue is empty, or its first
// effect is parked for an operator, and carries over parked), no flag is
// being written to the record, no operator's signal or answer, nor a
// subscription, waits, and no Update's handler runs (its caller would get
// no answer). Only the effects' coroutine parks while the run loop
// waits, so a parked step is the first effect's. An announcement under way
// is cut short, and made again by the next run: a subscriber drops what it
// was told twice, and Temporal refuses a hook's second start.
func (s *session) canContinueAsNew() bool {
	effectsSettled := len(s.state.Effects) == 0 || len(s.state.Parked) > 0
	return effectsSettled && !s.flags.writing() && !s.steps.answersPending() && !s.subs.waiting() &&
		workflow.AllHandlersFinished(s.ctx)
}

// canCarry reports whether the events not handled yet are few enough to
// hand to the next run (maxCarried). Past that they are handled first, for
// a few batches at most (maxOverdueBatches), so a flood cannot keep the run
// from continuing as new.
func (s *session) canCarry(pending []contract.SessionEvent) bool {
	return s.overdue >= maxOverdueBatches || len(s.unseen(pending)) <= maxCarried
}

// canComplete reports whether the run may end once the idle window passes
// without an event: no subscriber waits for it, it is settled, and no
// Update's handler runs.
func (s *session) canComplete() bool {
	return s.settled() && !s.waitedFor() && workflow.AllHandlersFinished(s.ctx)
}

// settled reports whether nothing but subscribers keeps the run open: the
// session is final, or this run and those it continues never had an event
// (a subscription started it: it must not stay open for ever); no effect or
// announcement waits or runs; and no flag is raised (a closed run could not
// take the operator's acknowledge, and the flag would stay on the record).
func (s *session) settled() bool {
	quiet := len(s.state.Effects) == 0 && len(s.state.Flags) == 0 && !s.flags.writing() && !s.announcing && !s.announcementDue()
	return quiet && (s.state.Status.Final() || len(s.state.Seen) == 0)
}

// awaitEventOrEnd waits until an event or a subscription arrives, the run
// can continue as new when it must, or it can complete. Settled but for its
// subscribers, it waits no longer than the first of them; once it becomes
// so, it returns to wait that way.
func (s *session) awaitEventOrEnd(events workflow.ReceiveChannel) {
	ready := func() bool {
		return events.Len() > 0 || s.subs.waiting() || (s.mustContinueAsNew() && s.canContinueAsNew()) || s.canComplete()
	}
	if next, ok := s.nextExpiry(); ok && s.settled() {
		_, _ = workflow.AwaitWithTimeout(s.ctx, next.Sub(workflow.Now(s.ctx)), ready)
		return
	}
	_ = workflow.Await(s.ctx, func() bool { return ready() || (s.settled() && len(s.state.Subscribers) > 0) })
}

// quietForIdleWindow waits for the idle window and reports whether it
// passed without an event or a subscription. One that came with the timer
// counts: it is taken in, not completed over.
func (s *session) quietForIdleWindow(events workflow.ReceiveChannel) bool {
	arrived := func() bool { return events.Len() > 0 || s.subs.waiting() }
	got, _ := workflow.AwaitWithTimeout(s.ctx, s.settings.IdleWindow, arrived)
	return !got && !arrived()
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

// searchAttributes are the values of the session's search attributes.
type searchAttributes struct {
	status         didit.Status
	amlHit         bool
	needsAttention bool
}

// startingSearchAttributes are the search attributes the run started with:
// those the receiver sets for a new session (its first event's status, no
// AML hit, no attention) or, when continued as new, those carried over. The
// run writes only what differs from them, so a session's first event costs
// no upsert. Nil if any is missing.
func startingSearchAttributes(ctx workflow.Context) *searchAttributes {
	sa := workflow.GetTypedSearchAttributes(ctx)
	status, hasStatus := sa.GetKeyword(contract.StatusKey)
	amlHit, hasAMLHit := sa.GetBool(contract.AMLHitKey)
	attention, hasAttention := sa.GetBool(contract.NeedsAttentionKey)
	if !hasStatus || !hasAMLHit || !hasAttention {
		return nil
	}
	return &searchAttributes{status: didit.Status(status), amlHit: amlHit, needsAttention: attention}
}

// upsertSearchAttributes writes the search attributes that changed. vendor_data
// is never one: search attributes are stored in clear, outside the codec.
func (s *session) upsertSearchAttributes() {
	now := searchAttributes{status: s.state.Status, amlHit: s.state.AMLHit, needsAttention: s.flags.needsAttention()}
	if now.status == "" && s.searched != nil {
		// Nothing recorded yet: the status the run started with stands.
		now.status = s.searched.status
	}
	if s.searched != nil && now == *s.searched {
		return
	}
	var updates []temporal.SearchAttributeUpdate
	if now.status != "" {
		updates = append(updates, contract.StatusKey.ValueSet(string(now.status)))
	}
	updates = append(updates, contract.AMLHitKey.ValueSet(now.amlHit), contract.NeedsAttentionKey.ValueSet(now.needsAttention))
	if err := workflow.UpsertTypedSearchAttributes(s.ctx, updates...); err != nil {
		workflow.GetLogger(s.ctx).Error("upsert search attributes", "error", err)
		return
	}
	s.searched = &now
}

// syncFlags writes the flag to the search attribute and, best effort, to the
// record: the search attribute is what ops watch, and the records database
// may be the very thing that is down.
func (s *session) syncFlags(ctx workflow.Context, needsAttention bool, reasons []string) {
	s.upsertSearchAttributes()
	in := activities.FlagInput{SessionID: s.state.SessionID, NeedsAttention: needsAttention, Reasons: reasons}
	_ = workflow.ExecuteActivity(flagActivityOptions(ctx), acts.FlagSession, in).Get(ctx, nil)
}

// flagActivityOptions are the options of the best-effort activity that
// writes a flag to the record: a few tries on the workflow's own queue,
// even when the step that raised the flag ran on a Didit API queue
// (workflow.WithTaskQueue), whose workers run only the API activities.
func flagActivityOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           workflow.GetInfo(ctx).TaskQueueName,
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
}
