package didit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// ErrNotDiditEvent is returned for an authentic body that is not a Didit
// session event: not a JSON object, or without session_id or webhook_type.
// Retrying cannot fix it, so the receiver answers 400.
var ErrNotDiditEvent = errors.New("didit: body is not a Didit event")

// WebhookType is the envelope's webhook_type (SPEC §2.1).
type WebhookType string

// The webhook types a KYC service subscribes to; others are acknowledged and
// ignored.
const (
	WebhookStatusUpdated WebhookType = "status.updated"
	WebhookDataUpdated   WebhookType = "data.updated"
)

// Known reports whether diditflow handles this webhook type.
func (t WebhookType) Known() bool {
	return t == WebhookStatusUpdated || t == WebhookDataUpdated
}

// Status is a session status, spelled exactly as Didit sends it (SPEC §2.2).
type Status string

// Session statuses.
const (
	StatusNotStarted   Status = "Not Started"
	StatusInProgress   Status = "In Progress"
	StatusAwaitingUser Status = "Awaiting User"
	StatusInReview     Status = "In Review"
	StatusApproved     Status = "Approved"
	StatusDeclined     Status = "Declined"
	StatusResubmitted  Status = "Resubmitted"
	StatusExpired      Status = "Expired"
	StatusKycExpired   Status = "Kyc Expired"
	StatusAbandoned    Status = "Abandoned"
)

// Known reports whether s is one of the documented session statuses.
func (s Status) Known() bool {
	switch s {
	case StatusNotStarted, StatusInProgress, StatusAwaitingUser, StatusInReview, StatusApproved,
		StatusDeclined, StatusResubmitted, StatusExpired, StatusKycExpired, StatusAbandoned:
		return true
	}
	return false
}

// Rank orders statuses along a session's life, to break ties between events
// Didit created in the same second: a later stage wins. Unknown statuses
// rank lowest, so they never displace a known one in a tie.
func (s Status) Rank() int {
	switch s {
	case StatusNotStarted:
		return 1
	case StatusInProgress, StatusAwaitingUser:
		return 2
	case StatusInReview, StatusResubmitted:
		return 3
	case StatusApproved, StatusDeclined, StatusExpired, StatusAbandoned:
		return 4
	case StatusKycExpired:
		return 5
	}
	return 0
}

// Final reports whether the session has reached an outcome. Final statuses
// can still change (manual review, KYC expiry), so this only means that no
// further event is expected soon.
func (s Status) Final() bool {
	switch s {
	case StatusApproved, StatusDeclined, StatusExpired, StatusKycExpired, StatusAbandoned:
		return true
	}
	return false
}

// AML hit review statuses.
const (
	ReviewUnreviewed     = "Unreviewed"
	ReviewConfirmedMatch = "Confirmed Match"
	ReviewFalsePositive  = "False Positive"
	ReviewInconclusive   = "Inconclusive"
)

// Event is a session webhook's envelope (SPEC §2.3, webhook_version v3).
// Unknown fields are ignored; optional ones may be empty.
type Event struct {
	EventID         string      `json:"event_id,omitempty"`
	WebhookType     WebhookType `json:"webhook_type"`
	Timestamp       int64       `json:"timestamp"`
	CreatedAt       int64       `json:"created_at"`
	ApplicationID   string      `json:"application_id,omitempty"`
	Environment     string      `json:"environment,omitempty"`
	SessionID       string      `json:"session_id"`
	Status          Status      `json:"status"`
	WorkflowID      string      `json:"workflow_id,omitempty"`
	WorkflowVersion int         `json:"workflow_version,omitempty"`
	VendorData      string      `json:"vendor_data,omitempty"`
	// Metadata is the business's own JSON from session creation. It may hold
	// personal data, so nothing downstream should copy it around.
	Metadata          json.RawMessage `json:"metadata,omitempty"`
	Decision          *Decision       `json:"decision,omitempty"`
	SessionKind       string          `json:"session_kind,omitempty"`
	BusinessSessionID string          `json:"business_session_id,omitempty"`
	VendorBusinessID  string          `json:"vendor_business_id,omitempty"`
	ResubmitInfo      *ResubmitInfo   `json:"resubmit_info,omitempty"`

	// DecisionError says why a present decision could not be read (a field
	// of an unexpected type). The event is still delivered so nothing is
	// lost; the decision should then be fetched from Didit's API.
	DecisionError string `json:"decision_error,omitempty"`
}

// Decision is the part of Didit's decision object (SPEC §2.4) that diditflow
// acts on. It deliberately leaves out names, document numbers, dates of birth,
// addresses and media URLs, so they never reach workflow histories or logs.
type Decision struct {
	SessionID          string              `json:"session_id,omitempty"`
	SessionKind        string              `json:"session_kind,omitempty"`
	Status             Status              `json:"status"`
	Features           []string            `json:"features,omitempty"`
	VendorData         string              `json:"vendor_data,omitempty"`
	ContactDetails     *ContactDetails     `json:"contact_details,omitempty"`
	EmailVerifications []EmailVerification `json:"email_verifications,omitempty"`
	AMLScreenings      []AMLScreening      `json:"aml_screenings,omitempty"`
	Reviews            []Review            `json:"reviews,omitempty"`
	CreatedAt          string              `json:"created_at,omitempty"`
	ExpiresAt          string              `json:"expires_at,omitempty"`
}

// ContactDetails is how the user asked to be contacted.
type ContactDetails struct {
	Email                  string `json:"email,omitempty"`
	EmailLang              string `json:"email_lang,omitempty"`
	SendNotificationEmails *bool  `json:"send_notification_emails,omitempty"`
}

// EmailVerification is the result of the email-verification feature.
type EmailVerification struct {
	Status string `json:"status,omitempty"`
	Email  string `json:"email,omitempty"`
}

// AMLScreening is one AML (sanctions, PEP, adverse media) screening.
type AMLScreening struct {
	NodeID     string   `json:"node_id,omitempty"`
	Status     string   `json:"status,omitempty"`
	EntityType string   `json:"entity_type,omitempty"`
	TotalHits  int      `json:"total_hits"`
	Score      *float64 `json:"score,omitempty"`
	Hits       []AMLHit `json:"hits,omitempty"`
}

// AMLHit is one screening hit, reduced to what compliance triage needs: the
// hit's id in Didit's console, its datasets, scores and review status.
type AMLHit struct {
	ID           string   `json:"id"`
	Match        bool     `json:"match"`
	Datasets     []string `json:"datasets,omitempty"`
	MatchScore   *float64 `json:"match_score,omitempty"`
	RiskScore    *float64 `json:"risk_score,omitempty"`
	ReviewStatus string   `json:"review_status,omitempty"`
}

// Review is one manual review of the session.
type Review struct {
	User      string `json:"user,omitempty"`
	NewStatus Status `json:"new_status,omitempty"`
	Comment   string `json:"comment,omitempty"`
	CreatedAt string `json:"created_at,omitempty"`
}

// ResubmitInfo lists what the user must redo after a Resubmitted status.
// Didit's exact item shape is unverified, so the reasons stay raw JSON.
type ResubmitInfo struct {
	NodesToResubmit []json.RawMessage `json:"nodes_to_resubmit,omitempty"`
	Reasons         json.RawMessage   `json:"reasons,omitempty"`
}

// AMLHits returns every hit that is not a false positive, across screenings.
func (d *Decision) AMLHits() []AMLHit {
	if d == nil {
		return nil
	}
	var hits []AMLHit
	for _, s := range d.AMLScreenings {
		for _, h := range s.Hits {
			if h.ReviewStatus != ReviewFalsePositive {
				hits = append(hits, h)
			}
		}
	}
	return hits
}

// ContactEmail is the address to notify the user at, if Didit has one.
func (d *Decision) ContactEmail() string {
	if d == nil {
		return ""
	}
	if d.ContactDetails != nil && d.ContactDetails.Email != "" {
		return d.ContactDetails.Email
	}
	for _, v := range d.EmailVerifications {
		if v.Email != "" && v.Status == string(StatusApproved) {
			return v.Email
		}
	}
	return ""
}

// envelope is Event with the decision left raw, so a decision that does not
// fit the model never makes the whole event unreadable.
type envelope struct {
	Event
	Decision json.RawMessage `json:"decision,omitempty"`
}

// ParseEvent reads a session webhook body. It does not verify it; use
// Verifier.ConstructEvent for deliveries from the network.
func ParseEvent(body []byte) (Event, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrNotDiditEvent, err)
	}
	ev := env.Event
	switch {
	case ev.SessionID == "":
		return Event{}, fmt.Errorf("%w: no session_id", ErrNotDiditEvent)
	case ev.WebhookType == "":
		return Event{}, fmt.Errorf("%w: no webhook_type", ErrNotDiditEvent)
	}
	if len(env.Decision) > 0 && string(env.Decision) != "null" {
		var d Decision
		if err := json.Unmarshal(env.Decision, &d); err != nil {
			ev.DecisionError = err.Error()
		} else {
			ev.Decision = &d
		}
	}
	return ev, nil
}

// ConstructEvent verifies a delivery and parses its body. Verification
// failures wrap the Err* values of Verify; an authentic body that is not a
// session event wraps ErrNotDiditEvent.
func (v *Verifier) ConstructEvent(body []byte, h Headers) (Event, Verification, error) {
	ver, err := v.Verify(body, h)
	if err != nil {
		return Event{}, Verification{}, err
	}
	ev, err := ParseEvent(body)
	if err != nil {
		return Event{}, Verification{}, err
	}
	return ev, ver, nil
}

// Authenticated returns the event reduced to what ver proves. After a
// full-body scheme that is everything; after X-Signature-Simple alone only
// timestamp, session_id, status and webhook_type are signed, so the rest is
// dropped rather than left for someone downstream to trust by mistake.
// created_at is not signed either; the signed timestamp, which is never
// earlier, stands in for it.
func (e Event) Authenticated(ver Verification) Event {
	if !ver.EnvelopeOnly {
		return e
	}
	return Event{
		WebhookType: e.WebhookType,
		Timestamp:   e.Timestamp,
		CreatedAt:   e.Timestamp,
		SessionID:   e.SessionID,
		Status:      e.Status,
	}
}

// Key identifies the event across redeliveries: its event_id, or, when Didit
// sent none (console tests, some retries), the session, type, status and
// signing time, as SPEC §3.3 suggests.
func (e Event) Key() string {
	if e.EventID != "" {
		return e.EventID
	}
	return e.SessionID + "|" + string(e.WebhookType) + "|" + string(e.Status) + "|" + strconv.FormatInt(e.Timestamp, 10)
}

// Steps names the parts of the verification the user must redo. Didit's
// item shape is unverified: a string is taken as it is, an object by its
// node_id or feature.
func (r *ResubmitInfo) Steps() []string {
	if r == nil {
		return nil
	}
	var steps []string
	for _, raw := range r.NodesToResubmit {
		var s string
		if json.Unmarshal(raw, &s) == nil && s != "" {
			steps = append(steps, s)
			continue
		}
		var node struct {
			NodeID  string `json:"node_id"`
			Feature string `json:"feature"`
		}
		if json.Unmarshal(raw, &node) == nil {
			if node.Feature != "" {
				steps = append(steps, node.Feature)
			} else if node.NodeID != "" {
				steps = append(steps, node.NodeID)
			}
		}
	}
	return steps
}
