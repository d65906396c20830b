// Package activities holds diditflow's side effects: verification records,
// user and compliance notifications and AML cases. Workflows call them; each
// is idempotent, so Temporal may retry any of them at any point.
package activities

import (
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
)

// RecordInput is one event to record against its session.
type RecordInput struct {
	SessionID      string            `json:"session_id"`
	EventKey       string            `json:"event_key"`
	WebhookType    didit.WebhookType `json:"webhook_type"`
	Status         didit.Status      `json:"status"`
	EventCreatedAt int64             `json:"event_created_at"`
	VendorData     string            `json:"vendor_data,omitempty"`
	AMLHits        int               `json:"aml_hits"`
	AMLMaxRisk     *float64          `json:"aml_max_risk,omitempty"`
	// EnvelopeOnly: only X-Signature-Simple verified the event, so its time
	// is its signing time, an upper bound; it may only move the record
	// forward (store.EventRecord.ForwardOnly).
	EnvelopeOnly bool `json:"envelope_only,omitempty"`
	// ContactEmail is the address in a trustworthy decision of the event,
	// kept in the records for the notices of events without one.
	ContactEmail string `json:"contact_email,omitempty"`
	// Unannounced: a status change the event makes is to be announced to
	// the business's hooks (store.EventRecord.Unannounced).
	Unannounced bool `json:"unannounced,omitempty"`
}

// RecordResult says what recording an event did to the session's record.
type RecordResult struct {
	// Duplicate: the event key was recorded before and nothing changed now;
	// Applied and PreviousStatus then describe that first recording, so an
	// attempt that committed but was never acknowledged is not lost.
	Duplicate bool `json:"duplicate"`
	// Applied: the event is newer than the record's and defines it.
	Applied bool `json:"applied"`
	// PreviousStatus is the record's status before the event.
	PreviousStatus didit.Status `json:"previous_status,omitempty"`
	// CurrentStatus is the record's status now.
	CurrentStatus didit.Status `json:"current_status,omitempty"`
	// Erased: the session was erased (diditflow-admin erase). The event was
	// recorded without its personal fields; it calls for no user notice and
	// no decision fetch.
	Erased bool `json:"erased,omitempty"`
	// Sequence is the session's number of the status change the event
	// made (0: none); StatusSequence that of the change that set
	// CurrentStatus. They order what businesses' workflows are told.
	Sequence       int64 `json:"sequence,omitempty"`
	StatusSequence int64 `json:"status_sequence,omitempty"`
	// Announced: a Duplicate whose status change was announced already
	// (a redelivery): its hooks are not started again.
	Announced bool `json:"announced,omitempty"`
}

// StatusChanged reports whether the event moved the record to a new status
// that is still current: what user notifications and escalations follow.
func (r RecordResult) StatusChanged(status didit.Status) bool {
	return r.Applied && r.PreviousStatus != status && r.CurrentStatus == status
}

// Notice is a kind of user notification; each is sent at most once per
// session.
type Notice string

// User notices.
const (
	NoticeApproved    Notice = "approved"
	NoticeDeclined    Notice = "declined"
	NoticeInReview    Notice = "in_review"
	NoticeResubmitted Notice = "resubmitted"
	NoticeKycExpired  Notice = "kyc_expired"
)

// UserNotice asks for one notification to the verified user.
type UserNotice struct {
	SessionID string `json:"session_id"`
	Kind      Notice `json:"kind"`
	// Key is the notice's idempotency key within the session: a notice goes
	// out once per key (so once per status change when the key names the
	// event). Empty, as recorded histories send, means the kind: once per
	// session and kind. The notification kind recorded is "user:" + Key.
	Key string `json:"key,omitempty"`
	// Email comes from Didit's decision; empty means none is known, and the
	// notice is recorded as undeliverable, unless FromRecords is set.
	// Workflows since the notice-address change leave it empty, so no
	// address travels through Temporal.
	Email string `json:"email,omitempty"`
	// FromRecords: the address is the one the records hold for the session
	// (store.ContactAddress); none there makes the notice undeliverable.
	FromRecords bool `json:"from_records,omitempty"`
	// WaitForAddress: the event came without a decision (Kyc Expired,
	// Resubmitted), so while the records hold no address the attempt fails
	// and is retried, as a late event may bring one, until the step parks.
	WaitForAddress bool `json:"wait_for_address,omitempty"`
	// NoDecision says why the workflow could not fetch the event's decision
	// (Didit sent none), for the reason a parked notice shows.
	NoDecision string `json:"no_decision,omitempty"`
	// Redo lists, for a resubmission, the steps the user must repeat.
	Redo []string `json:"redo,omitempty"`
}

// notificationKind is the notification kind recorded for the notice:
// "user:" + Key, or "user:" + Kind without a Key.
func (n UserNotice) notificationKind() string {
	if n.Key != "" {
		return "user:" + n.Key
	}
	return "user:" + string(n.Kind)
}

// NoticeResult is how a notification ended.
type NoticeResult string

// Notice results.
const (
	Sent          NoticeResult = "sent"
	AlreadySent   NoticeResult = "already_sent"
	Undeliverable NoticeResult = "undeliverable"
	// InDoubt: an earlier attempt handed the message to the mail server and
	// stopped before the acknowledgement was recorded; it is not sent again.
	InDoubt       NoticeResult = "in_doubt"
	NotConfigured NoticeResult = "not_configured"
	// Withheld: the session was erased, so its user is told nothing; no
	// notification is recorded.
	Withheld NoticeResult = "withheld"
	// Disabled: user notices are off (USER_NOTICES=off), the business
	// mails its users; nothing is sent and no notification is recorded.
	Disabled NoticeResult = "disabled"
	// PartlySent: the notice reached some recipients while the mail server
	// refused others for good (5xx to RCPT), or reached compliance's webhook
	// but no address; the refusals are recorded on the notification, by
	// address hash. Later notices still try every recipient.
	PartlySent NoticeResult = "partly_sent"
)

// AMLCase describes an AML escalation: the session and the hits that are
// not false positives. It carries hit identifiers and scores, never names.
type AMLCase struct {
	// CaseID is the case workflow's ID; empty (recorded before follow-up
	// cases existed) means the session's first case.
	CaseID string `json:"case_id,omitempty"`
	// FollowUpOf is the session's first case, for a follow-up case.
	FollowUpOf string         `json:"follow_up_of,omitempty"`
	SessionID  string         `json:"session_id"`
	Status     didit.Status   `json:"status"`
	VendorData string         `json:"vendor_data,omitempty"`
	Hits       []didit.AMLHit `json:"hits"`
	// ReviewedAt is when the event that showed the hits' review statuses
	// happened (Unix seconds); Reviewer who Didit's reviews of the session
	// named then. A case whose hits all have a final status when it opens
	// was decided in Didit's console.
	ReviewedAt int64  `json:"reviewed_at,omitempty"`
	Reviewer   string `json:"reviewer,omitempty"`
}

// ID is the case's workflow ID, which also keys its record.
func (c AMLCase) ID() string {
	if c.CaseID != "" {
		return c.CaseID
	}
	return contract.AMLCaseWorkflowID(c.SessionID)
}

// ComplianceNotice asks for one message to compliance about an AML case.
type ComplianceNotice struct {
	Case AMLCase `json:"case"`
	// Reminder is 0 for the opening notice, then 1, 2, ...
	Reminder int `json:"reminder"`
	// Escalate also notifies the escalation contact.
	Escalate bool `json:"escalate"`
	// Unreviewed names the hits Didit's console has not reviewed yet, by
	// ID, when it has reviewed the others (a partial review).
	Unreviewed []string `json:"unreviewed,omitempty"`
}

// ResolveInput records a case's resolution.
type ResolveInput struct {
	SessionID string `json:"session_id"`
	// CaseID names the case; empty means the session's first.
	CaseID     string              `json:"case_id,omitempty"`
	Resolution contract.Resolution `json:"resolution"`
	// Reviews become the hits' review statuses (a resolution from
	// diditflow: each hit's outcome, as it writes it to Didit).
	Reviews []contract.HitReview `json:"reviews,omitempty"`
}

// ReminderInput records a sent reminder.
type ReminderInput struct {
	SessionID string `json:"session_id"`
	// CaseID names the case; empty means the session's first.
	CaseID    string `json:"case_id,omitempty"`
	Reminder  int    `json:"reminder"`
	Escalated bool   `json:"escalated"`
}
