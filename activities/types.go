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
	// Email comes from Didit's decision; empty means none is known, and the
	// notice is recorded as undeliverable.
	Email string `json:"email,omitempty"`
	// Redo lists, for a resubmission, the steps the user must repeat.
	Redo []string `json:"redo,omitempty"`
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
)

// AMLCase describes an AML escalation: the session and the hits that are
// not false positives. It carries hit identifiers and scores, never names.
type AMLCase struct {
	SessionID  string         `json:"session_id"`
	Status     didit.Status   `json:"status"`
	VendorData string         `json:"vendor_data,omitempty"`
	Hits       []didit.AMLHit `json:"hits"`
}

// ComplianceNotice asks for one message to compliance about an AML case.
type ComplianceNotice struct {
	Case AMLCase `json:"case"`
	// Reminder is 0 for the opening notice, then 1, 2, ...
	Reminder int `json:"reminder"`
	// Escalate also notifies the escalation contact.
	Escalate bool `json:"escalate"`
}

// ResolveInput records a case's resolution.
type ResolveInput struct {
	SessionID  string              `json:"session_id"`
	Resolution contract.Resolution `json:"resolution"`
}

// ReminderInput records a sent reminder.
type ReminderInput struct {
	SessionID string `json:"session_id"`
	Reminder  int    `json:"reminder"`
	Escalated bool   `json:"escalated"`
}

// AttentionInput flags or clears a session for an operator.
type AttentionInput struct {
	SessionID      string `json:"session_id"`
	NeedsAttention bool   `json:"needs_attention"`
}
