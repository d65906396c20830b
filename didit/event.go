package didit

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

// Statuses are the documented session statuses, in the order of a session's life.
var Statuses = []Status{StatusNotStarted, StatusInProgress, StatusAwaitingUser, StatusInReview, StatusResubmitted,
	StatusApproved, StatusDeclined, StatusExpired, StatusKycExpired, StatusAbandoned}

// Known reports whether s is one of the documented session statuses.
func (s Status) Known() bool { return slices.Contains(Statuses, s) }

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
	WorkflowVersion int64       `json:"workflow_version,omitempty"`
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
	// Warnings name envelope fields that were present but not of the
	// documented type, and were left empty rather than refuse the event.
	Warnings []string `json:"warnings,omitempty"`
}

// Decision is the part of Didit's decision object (SPEC §2.4) that diditflow
// acts on. It deliberately leaves out names, document numbers, dates of birth,
// addresses, media URLs and reviewers' comments, so they never reach workflow
// histories or logs. The personal data it keeps is the address the user asked
// to be notified at and, in Reviews, who reviewed the session (a member of
// the business's staff, as a resolve signal's reviewer is).
type Decision struct {
	SessionID     string         `json:"session_id,omitempty"`
	SessionKind   string         `json:"session_kind,omitempty"`
	Status        Status         `json:"status"`
	Features      []string       `json:"features,omitempty"`
	VendorData    string         `json:"vendor_data,omitempty"`
	Email         string         `json:"contact_email,omitempty"`
	AMLScreenings []AMLScreening `json:"aml_screenings,omitempty"`
	Reviews       []Review       `json:"reviews,omitempty"`
	CreatedAt     string         `json:"created_at,omitempty"`
	ExpiresAt     string         `json:"expires_at,omitempty"`
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
	ID string `json:"id"`
	// NodeID is the screening's node, which a review written back to Didit
	// names when a session has several AML nodes (SPEC §4.6).
	NodeID       string   `json:"node_id,omitempty"`
	Match        bool     `json:"match"`
	Datasets     []string `json:"datasets,omitempty"`
	MatchScore   *float64 `json:"match_score,omitempty"`
	RiskScore    *float64 `json:"risk_score,omitempty"`
	ReviewStatus string   `json:"review_status,omitempty"`
}

// Review is one manual review of the session: who made it, the status it
// set and when. The reviewer's comment stays in Didit.
type Review struct {
	// User is who reviewed: an address, "API Client" or "Unknown" (SPEC
	// §2.4).
	User      string `json:"user,omitempty"`
	NewStatus Status `json:"new_status,omitempty"`
	CreatedAt string `json:"created_at,omitempty"`
}

// ResubmitInfo lists what the user must redo after a Resubmitted status.
// Didit's exact item shape is unverified, so the items stay raw JSON; the
// reasons, free text about the user, are not kept.
type ResubmitInfo struct {
	NodesToResubmit []json.RawMessage `json:"nodes_to_resubmit,omitempty"`
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

// ScreenedHits returns every hit of every screening, false positives
// included, each with its review status: what a review in Didit's console
// changes.
func (d *Decision) ScreenedHits() []AMLHit {
	if d == nil {
		return nil
	}
	var hits []AMLHit
	for _, s := range d.AMLScreenings {
		hits = append(hits, s.Hits...)
	}
	return hits
}

// Reviewer is the user of the session's latest review (by created_at, the
// later entry on a tie), or "" when there is none. Didit names reviewers
// per session only, never per hit (SPEC §2.4).
func (d *Decision) Reviewer() string {
	if d == nil {
		return ""
	}
	user, at := "", ""
	for _, r := range d.Reviews {
		if r.User != "" && r.CreatedAt >= at {
			user, at = r.User, r.CreatedAt
		}
	}
	return user
}

// ContactEmail is the address to notify the user at, if Didit has one.
func (d *Decision) ContactEmail() string {
	if d == nil {
		return ""
	}
	return d.Email
}

// decisionWire is how a decision arrives; it is reduced to a Decision.
type decisionWire struct {
	Decision
	ContactDetails *struct {
		Email string `json:"email"`
	} `json:"contact_details"`
	EmailVerifications []struct {
		Status string `json:"status"`
		Email  string `json:"email"`
	} `json:"email_verifications"`
}

// ParseDecision reduces a decision object (SPEC §2.4: a webhook's
// "decision", or the body of GET /v3/session/{id}/decision/) to a Decision.
func ParseDecision(raw []byte) (*Decision, error) {
	return parseDecision(raw)
}

func parseDecision(raw json.RawMessage) (*Decision, error) {
	var w decisionWire
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, err
	}
	d := w.Decision
	for i := range d.AMLScreenings {
		for j := range d.AMLScreenings[i].Hits {
			d.AMLScreenings[i].Hits[j].NodeID = d.AMLScreenings[i].NodeID
		}
	}
	// The address from session creation, else one the user verified.
	if w.ContactDetails != nil && w.ContactDetails.Email != "" {
		d.Email = w.ContactDetails.Email
	} else {
		for _, v := range w.EmailVerifications {
			if v.Email != "" && v.Status == string(StatusApproved) {
				d.Email = v.Email
				break
			}
		}
	}
	return &d, nil
}

// ParseEvent reads a session webhook body. It does not verify it; use
// Verifier.ConstructEvent for deliveries from the network.
//
// Members are matched by their exact names (encoding/json would also take
// "Status" for "status", which a signature over "status" does not cover).
// Only session_id and webhook_type must be well-formed: an authentic event
// with some other odd field is still delivered, with a warning, rather than
// refused with a 400 that Didit would never retry.
func ParseEvent(body []byte) (Event, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrNotDiditEvent, err)
	}
	var ev Event
	p := fieldParser{fields: fields, ev: &ev}
	sessionID, ok := p.string("session_id")
	if !ok || sessionID == "" {
		return Event{}, fmt.Errorf("%w: no session_id string", ErrNotDiditEvent)
	}
	if !ValidSessionID(sessionID) {
		return Event{}, fmt.Errorf("%w: session_id is not one Didit issues (1 to %d of A-Z a-z 0-9 _ -)", ErrNotDiditEvent, MaxSessionIDLen)
	}
	webhookType, ok := p.string("webhook_type")
	if !ok || webhookType == "" {
		return Event{}, fmt.Errorf("%w: no webhook_type string", ErrNotDiditEvent)
	}
	ev.SessionID, ev.WebhookType = sessionID, WebhookType(webhookType)
	status, _ := p.string("status")
	ev.Status = Status(status)
	ev.EventID, _ = p.string("event_id")
	ev.ApplicationID, _ = p.string("application_id")
	ev.Environment, _ = p.string("environment")
	ev.WorkflowID, _ = p.string("workflow_id")
	ev.VendorData, _ = p.string("vendor_data")
	ev.SessionKind, _ = p.string("session_kind")
	ev.BusinessSessionID, _ = p.string("business_session_id")
	ev.VendorBusinessID, _ = p.string("vendor_business_id")
	ev.Timestamp, _ = p.int("timestamp")
	ev.WorkflowVersion, _ = p.int("workflow_version")
	if ev.CreatedAt, ok = p.int("created_at"); !ok {
		// The event's own time is unknown; the signing time is the best
		// bound, and never earlier than the real one.
		ev.CreatedAt = ev.Timestamp
	}
	if raw, ok := fields["metadata"]; ok && string(raw) != "null" {
		ev.Metadata = raw
	}
	if raw, ok := fields["decision"]; ok && string(raw) != "null" {
		d, err := parseDecision(raw)
		if err != nil {
			ev.DecisionError = err.Error()
		} else {
			ev.Decision = d
		}
	}
	if raw, ok := fields["resubmit_info"]; ok && string(raw) != "null" {
		var r ResubmitInfo
		if err := json.Unmarshal(raw, &r); err != nil {
			ev.Warnings = append(ev.Warnings, "resubmit_info: "+err.Error())
		} else {
			ev.ResubmitInfo = &r
		}
	}
	return ev, nil
}

// fieldParser reads typed members of a JSON object, noting the ones of an
// unexpected type as warnings.
type fieldParser struct {
	fields map[string]json.RawMessage
	ev     *Event
}

func (p fieldParser) string(name string) (string, bool) {
	raw, ok := p.fields[name]
	if !ok || string(raw) == "null" {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.ev.Warnings = append(p.ev.Warnings, name+": not a string")
		return "", false
	}
	return s, true
}

func (p fieldParser) int(name string) (int64, bool) {
	raw, ok := p.fields[name]
	if !ok || string(raw) == "null" {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		p.ev.Warnings = append(p.ev.Warnings, name+": not an integer")
		return 0, false
	}
	return n, true
}

// ConstructEvent verifies a delivery and parses its body. Verification
// failures wrap the Err* values of Verify; an authentic body that is not a
// session event wraps ErrNotDiditEvent.
//
// The event is read from what the signature authenticated, the body's
// canonical form, never from the body's own bytes: under X-Signature-V2 a
// re-encoded body verifies ("timestamp":1767225600.0 for 1767225600, a
// member given twice, other spacing and order), and read as it stands it
// could say what Didit did not sign.
func (v *Verifier) ConstructEvent(body []byte, h Headers) (Event, Proof, error) {
	c := newCanonicalizer()
	defer c.release()
	proof, signed, err := v.verify(c, body, h)
	if err != nil {
		return Event{}, Proof{}, err
	}
	ev, err := ParseEvent(signed)
	if err != nil {
		return Event{}, Proof{}, err
	}
	return ev, proof, nil
}

// Authenticated returns the event reduced to what ver proves. After a
// full-body scheme that is everything; after X-Signature-Simple alone only
// timestamp, session_id, status and webhook_type are signed, so the rest is
// dropped rather than left for someone downstream to trust by mistake.
// created_at is not signed either, and the signing time cannot stand in for
// it (a resent old event is signed anew), so it is zero: such an event never
// outranks a signed one.
func (e Event) Authenticated(p Proof) Event {
	if !p.EnvelopeOnly {
		return e
	}
	return Event{
		WebhookType: e.WebhookType,
		Timestamp:   e.Timestamp,
		SessionID:   e.SessionID,
		Status:      e.Status,
	}
}

// TestVendorData is the vendor_data of the deliveries that the console's
// "Test Webhook" tool sends (SPEC §2.5).
const TestVendorData = "test-vendor-data-123"

// ConsoleTest reports whether the event is a delivery of the console's "Test
// Webhook" tool, judged by the signed body alone (SPEC §2.5): vendor_data is
// Didit's test value and there is no event_id, which every real event has.
// Nothing else counts. metadata.test_webhook is on test deliveries too, but
// metadata is the business's own, set when a session is created and
// possibly from what a user typed, so it must not be able to silence a real
// session's records and AML cases. The X-Didit-Test-Webhook header is
// outside the signature, so it proves nothing; and an event that only
// X-Signature-Simple verified has no authentic vendor_data or event_id to
// judge by: call it on an event from Authenticated.
func (e Event) ConsoleTest() bool {
	return e.VendorData == TestVendorData && e.EventID == ""
}

// MaxSessionIDLen is the longest session ID ValidSessionID accepts.
const MaxSessionIDLen = 64

// ValidSessionID reports whether id can be a Didit session ID: 1 to
// MaxSessionIDLen characters of A-Z, a-z, 0-9, '_' and '-'. Didit's are
// UUIDs. A session ID names workflows, records and URL paths, so anything
// else (quotes, spaces, slashes, control characters, megabytes) is refused
// where it comes in, before any of those is built from it.
func ValidSessionID(id string) bool {
	if id == "" || len(id) > MaxSessionIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
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
