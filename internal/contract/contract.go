// Package contract is what the receiver, the worker and operators agree on:
// workflow IDs and types, signal and query names, search attributes and the
// payloads the signals carry. These names are recorded in every workflow
// history, so changing one strands running workflows: they only grow.
//
// It imports nothing of diditflow's but didit, so the receiver can depend on
// it without linking the worker's code.
package contract

import (
	"slices"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/didit"
)

// Workflow types.
const (
	// SessionWorkflowType runs one Didit session.
	SessionWorkflowType = "VerificationSession"
	// AMLCaseWorkflowType runs one AML case.
	AMLCaseWorkflowType = "AMLCase"
	// ReconcileWorkflowType asks Didit what diditflow missed and repairs
	// it; ReconcileScheduleID starts it every RECONCILE_INTERVAL.
	ReconcileWorkflowType = "Reconcile"
)

// ReconcileScheduleID is the Temporal Schedule the worker keeps for
// reconciliation; `temporal schedule trigger --schedule-id
// diditflow-reconcile` starts a run by hand.
const ReconcileScheduleID = "diditflow-reconcile"

// ReconcileWorkflowID is the ID of the schedule's runs (the schedule
// appends the time of each).
const ReconcileWorkflowID = "diditflow-reconcile-run"

// Signals and queries.
const (
	// EventSignal carries a SessionEvent into a session workflow.
	EventSignal = "didit-event"
	// RetrySignal releases a parked step to run again (OperatorAction).
	RetrySignal = "retry"
	// SkipSignal releases a parked step by giving it up (OperatorAction).
	SkipSignal = "skip"
	// AcknowledgeSignal clears a flag that needs no retry, such as a notice
	// in doubt (OperatorAction, naming the flag).
	AcknowledgeSignal = "acknowledge"
	// ResolveSignal closes an AML case (Resolution).
	ResolveSignal = "resolve"
	// StateQuery returns a workflow's state.
	StateQuery = "state"
)

// What a session and the business's workflows (package kyc) exchange: the
// signals, and the activities a business's workflow runs on diditflow's
// task queues. kyc re-exports them as its wire contract.
const (
	// SubscribeSignal adds a waiting workflow to a session's subscribers
	// (kyc.Subscription); the KYCSubscribe activity sends it, starting a
	// run if none is open.
	SubscribeSignal = "kyc-subscribe"
	// UnsubscribeSignal removes one (kyc.Subscription).
	UnsubscribeSignal = "kyc-unsubscribe"
	// updateSignalPrefix + the session ID is the signal a session sends
	// its subscribers (kyc.Update): one name per session, so a workflow
	// waiting for several sessions reads each on a channel of its own.
	updateSignalPrefix = "kyc-update-"

	CreateSessionActivity = "KYCCreateSession"
	SubscribeActivity     = "KYCSubscribe"
	UnsubscribeActivity   = "KYCUnsubscribe"
	DecisionActivity      = "KYCDecision"
)

// UpdateSignal is the signal a session sends its subscribers.
func UpdateSignal(sessionID string) string { return updateSignalPrefix + sessionID }

// The task queues of what calls Didit's API, which the server rate-limits
// to Didit's budget across every worker; queue is TEMPORAL_TASK_QUEUE.

// DiditAPIQueue runs the reads of Didit's API (decisions).
func DiditAPIQueue(queue string) string { return queue + "-didit-api" }

// DiditAPIWriteQueue runs the writes (AML hit reviews).
func DiditAPIWriteQueue(queue string) string { return queue + "-didit-api-writes" }

// DiditSessionsQueue runs the creation of sessions, whose budget is Didit's
// own (600 a minute).
func DiditSessionsQueue(queue string) string { return queue + "-didit-api-sessions" }

// HookEventKey is the idempotency key of a session's event numbered seq
// (a status change or a resolution) as the business's hooks receive it.
func HookEventKey(sessionID string, seq int64) string {
	return sessionID + "-" + strconv.FormatInt(seq, 10)
}

// HookWorkflowID is the ID a hook of workflowType is started with for the
// event of key.
func HookWorkflowID(workflowType, key string) string { return workflowType + "-" + key }

const (
	sessionIDPrefix = "didit-session-"
	amlCaseIDPrefix = "aml-case-"
)

// SessionWorkflowID is the ID of the one workflow that runs a session.
func SessionWorkflowID(sessionID string) string { return sessionIDPrefix + sessionID }

// AMLCaseWorkflowID is the ID of a session's first AML case. Its follow-up
// cases (hits found later) are FollowUpCaseID; all of a session's cases
// share the prefix, so `WorkflowId STARTS_WITH "aml-case-<session_id>"`
// lists them.
func AMLCaseWorkflowID(sessionID string) string { return amlCaseIDPrefix + sessionID }

// FollowUpCaseID is the ID of a session's n-th AML case, n ≥ 2.
func FollowUpCaseID(sessionID string, n int) string {
	return AMLCaseWorkflowID(sessionID) + "-" + strconv.Itoa(n)
}

// Search attributes ops filter on in the Temporal UI. They must be registered
// on the namespace (make run and docker-compose do it). They are stored and
// indexed in clear, outside the payload codec, so they hold no personal
// data: vendor_data, which identifies the business's user, is never one.
var (
	StatusKey         = temporal.NewSearchAttributeKeyKeyword("DiditStatus")
	AMLHitKey         = temporal.NewSearchAttributeKeyBool("DiditAMLHit")
	NeedsAttentionKey = temporal.NewSearchAttributeKeyBool("DiditNeedsAttention")
)

// SearchAttributes lists the search attributes to register, with their types.
func SearchAttributes() temporal.SearchAttributes {
	return temporal.NewSearchAttributes(StatusKey.ValueSet(""), AMLHitKey.ValueSet(false), NeedsAttentionKey.ValueSet(false))
}

// SearchAttributeTypes lists the search attributes as Name=Type, sorted by
// name, with the type names the temporal CLI takes (Keyword, Bool, ...):
// for registering them on a namespace.
func SearchAttributeTypes() []string {
	var out []string
	for key := range SearchAttributes().GetUntypedValues() {
		out = append(out, key.GetName()+"="+key.GetValueType().String())
	}
	slices.Sort(out)
	return out
}

// SessionStart is what starts a session workflow: the receiver's half of
// the workflow's input (a run that continues as new adds its state).
type SessionStart struct {
	SessionID string `json:"session_id"`
}

// SessionEvent is the payload of an EventSignal: one Didit event as the
// receiver verified it.
type SessionEvent struct {
	Event didit.Event `json:"event"`
	// Proof is what the signature check established about the event.
	Proof didit.Proof `json:"verification"`
	// ReceivedAt is when the receiver accepted the delivery.
	ReceivedAt time.Time `json:"received_at"`
}

// DecisionEventID is the event ID of the event a decision read from
// Didit's API stands for: one per session and second of Didit's answer, so a
// fetch by the session and one by reconciliation in the same second are one
// event.
func DecisionEventID(sessionID string, at int64) string {
	return "decision:" + sessionID + "@" + strconv.FormatInt(at, 10)
}

// DecisionEvent is the event a decision read from Didit's API stands for:
// of the decision's status, created when Didit answered (at, Unix seconds),
// authenticated by the API key rather than a signature.
func DecisionEvent(sessionID string, d *didit.Decision, at int64, receivedAt time.Time) SessionEvent {
	ev := didit.Event{
		EventID:     DecisionEventID(sessionID, at),
		SessionID:   sessionID,
		WebhookType: didit.WebhookStatusUpdated,
		Status:      d.Status,
		VendorData:  d.VendorData,
		CreatedAt:   at,
		Timestamp:   at,
		Decision:    d,
	}
	return SessionEvent{Event: ev, Proof: didit.Proof{Source: didit.SourceAPI, Timestamp: at}, ReceivedAt: receivedAt}
}

// OperatorAction is the optional payload of RetrySignal, SkipSignal and
// AcknowledgeSignal. Step names the parked step to release (as the state
// query shows it); empty releases every parked step. Flag names the flags an
// acknowledgement clears, by kind (in_doubt, undeliverable, ...) or by ID;
// empty clears every flag. Operator and Note are only recorded.
type OperatorAction struct {
	Step     string `json:"step,omitempty"`
	Flag     string `json:"flag,omitempty"`
	Operator string `json:"operator,omitempty"`
	Note     string `json:"note,omitempty"`
}

// Outcome is compliance's verdict on an AML case.
type Outcome string

// Outcomes an operator may give in a resolve signal.
const (
	ConfirmedMatch Outcome = "confirmed_match"
	FalsePositive  Outcome = "false_positive"
	Inconclusive   Outcome = "inconclusive"
)

// Valid reports whether o is one of the three outcomes.
func (o Outcome) Valid() bool {
	return o == ConfirmedMatch || o == FalsePositive || o == Inconclusive
}

// Resolution is the payload of ResolveSignal (and of the resolve Update)
// and the result of an AML case.
type Resolution struct {
	Outcome  Outcome `json:"outcome"`
	Reviewer string  `json:"reviewer"`
	Note     string  `json:"note,omitempty"`
	// Hits gives some hits an outcome of their own, by hit ID (one true
	// match among namesakes); hits not listed take Outcome. Each hit's
	// outcome is written back to Didit as its review status.
	Hits map[string]Outcome `json:"hits,omitempty"`
	// Source is where the case was decided; the case sets it, whatever
	// the caller sent.
	Source Source `json:"source,omitempty"`
	// Identity is the Temporal identity of the client that sent the
	// resolve Update (empty for a signal or a review in Didit's console);
	// the case sets it, whatever the caller sent.
	Identity string `json:"identity,omitempty"`
}

// Source is where an AML case was decided.
type Source string

const (
	// FromDiditflow: a resolve signal or Update; the outcomes are written
	// back to Didit.
	FromDiditflow Source = "diditflow"
	// FromDiditConsole: every hit reviewed in Didit's console; nothing is
	// written back.
	FromDiditConsole Source = "didit_console"
)

// ResolveResult is what the resolve Update returns: what the case recorded.
type ResolveResult struct {
	CaseID string `json:"case_id"`
	// Hits is every hit's outcome, by hit ID.
	Hits     map[string]Outcome `json:"hits"`
	Outcome  Outcome            `json:"outcome"`
	Reviewer string             `json:"reviewer"`
	Identity string             `json:"identity,omitempty"`
}

// RefusedErrorType is the type of the application error with which an
// Update's validator refuses it (an invalid input, nothing to act on); the
// refusal reaches the caller, never the history.
const RefusedErrorType = "Refused"

// ActionResult is what the retry, skip and acknowledge Updates return.
type ActionResult struct {
	// Action is the Update's name.
	Action string `json:"action"`
	// Steps are the parked steps released (retry, skip), by name.
	Steps []string `json:"steps,omitempty"`
	// Flags are the flags cleared (acknowledge), by kind.
	Flags    []string `json:"flags,omitempty"`
	Operator string   `json:"operator,omitempty"`
	Identity string   `json:"identity,omitempty"`
}

// HitOutcome is the outcome of one hit: its own, else the case's.
func (r Resolution) HitOutcome(hitID string) Outcome {
	if o, ok := r.Hits[hitID]; ok {
		return o
	}
	return r.Outcome
}
