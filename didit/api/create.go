package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/diditflow/diditflow/didit"
)

// NewSession is the body of POST /v3/session/ (Didit's "Create Session").
// WorkflowID is required; VendorData makes a retried creation safe: Didit
// returns an unfinished session of the same vendor_data on the workflow's
// latest published version instead of creating another.
type NewSession struct {
	WorkflowID      string           `json:"workflow_id"`
	VendorData      string           `json:"vendor_data,omitempty"`
	Callback        string           `json:"callback,omitempty"`
	Metadata        json.RawMessage  `json:"metadata,omitempty"`
	Language        string           `json:"language,omitempty"`
	ContactDetails  *ContactDetails  `json:"contact_details,omitempty"`
	ExpectedDetails *ExpectedDetails `json:"expected_details,omitempty"`
}

// ContactDetails are the user's contacts Didit may use during the flow.
type ContactDetails struct {
	Email                  string `json:"email,omitempty"`
	EmailLanguage          string `json:"email_lang,omitempty"`
	Phone                  string `json:"phone,omitempty"`
	SendNotificationEmails bool   `json:"send_notification_emails,omitempty"`
}

// ExpectedDetails are what the business expects the document to show;
// Didit cross-checks them.
type ExpectedDetails struct {
	FirstName            string `json:"first_name,omitempty"`
	LastName             string `json:"last_name,omitempty"`
	DateOfBirth          string `json:"date_of_birth,omitempty"`
	Nationality          string `json:"nationality,omitempty"`
	Country              string `json:"country,omitempty"`
	Address              string `json:"address,omitempty"`
	IdentificationNumber string `json:"identification_number,omitempty"`
}

// CreatedSession is Didit's 201 answer, reduced to what a caller acts on.
type CreatedSession struct {
	SessionID  string       `json:"session_id"`
	URL        string       `json:"url"`
	Status     didit.Status `json:"status"`
	VendorData string       `json:"vendor_data"`
	WorkflowID string       `json:"workflow_id"`
}

// maxDetail bounds the reason CreateSession keeps from a refusal's body.
const maxDetail = 300

// CreateSession creates a verification session (POST /v3/session/) and
// returns its ID and hosted URL. Didit answers a request with the
// vendor_data of an unfinished session with that session again. A refusal
// (a 4xx other than 429) is an *Error of kind KindRequest, KindCredentials
// or KindNotFound whose Detail says why, as Didit put it.
func (c *Client) CreateSession(ctx context.Context, s NewSession) (CreatedSession, error) {
	const op = "create session"
	if !c.Enabled() {
		return CreatedSession{}, ErrNoKey
	}
	if s.WorkflowID == "" {
		return CreatedSession{}, &Error{Kind: KindRequest, Op: op, Err: errors.New("no workflow_id"), Detail: "workflow_id is required"}
	}
	r, err := c.doCreate(ctx, op, s)
	if err != nil {
		return CreatedSession{}, err
	}
	var out CreatedSession
	if err := decodeObject(op, r, &out); err != nil {
		return CreatedSession{}, err
	}
	if out.SessionID == "" || out.URL == "" {
		return CreatedSession{}, malformed(op, r.status, errors.New("no session_id or url"))
	}
	return out, nil
}

// doCreate is do for the creation, which keeps the reason of a refusal:
// the caller is told why its request was refused (a bounded summary of
// Didit's answer, never logged by the client).
func (c *Client) doCreate(ctx context.Context, op string, s NewSession) (response, error) {
	var detail string
	resp, err := c.do(ctx, request{op: op, method: http.MethodPost, path: "/v3/session/", body: s,
		refused: func(body io.Reader) { detail = refusalDetail(body) }})
	var e *Error
	if errors.As(err, &e) && !e.Retryable() {
		e.Detail = detail
	}
	return resp, err
}

// refusalDetail summarises a 4xx body as Django REST framework writes it:
// {"detail": "..."} gives its text; {"field": ["message", ...], ...} gives
// "field: message" for each field, in name order.
func refusalDetail(body io.Reader) string {
	raw, err := io.ReadAll(io.LimitReader(body, 16<<10))
	if err != nil {
		return ""
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimSpace(raw), &obj) != nil {
		return ""
	}
	var parts []string
	var d string
	if json.Unmarshal(obj["detail"], &d) == nil && d != "" {
		parts = append(parts, d)
	}
	fields := make([]string, 0, len(obj))
	for k := range obj {
		if k != "detail" {
			fields = append(fields, k)
		}
	}
	slices.Sort(fields)
	for _, f := range fields {
		var msgs []string
		var one string
		switch {
		case json.Unmarshal(obj[f], &msgs) == nil && len(msgs) > 0:
			parts = append(parts, f+": "+strings.Join(msgs, " "))
		case json.Unmarshal(obj[f], &one) == nil && one != "":
			parts = append(parts, f+": "+one)
		default:
			parts = append(parts, f+": invalid")
		}
	}
	out := strings.Join(parts, "; ")
	if r := []rune(out); len(r) > maxDetail {
		out = string(r[:maxDetail]) + "…"
	}
	return out
}
