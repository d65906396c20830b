// Package api is a client for Didit's management and decision APIs (SPEC §4):
// plain net/http, no Temporal and no Gin. It never sleeps to back off: a
// caller's retry policy does that, with the RetryAfter a 429 carries.
package api

import (
	"errors"
	"fmt"
	"time"

	"github.com/diditflow/diditflow/didit"
)

// Kind classifies a failed call so that a caller can decide what to do.
type Kind int

const (
	// KindServer is a 5xx, a timeout or a transport failure: retry.
	KindServer Kind = iota + 1
	// KindCredentials is a 401 or 403: the key is missing, wrong, revoked,
	// expired or lacks the scope. Not retryable: tell ops.
	KindCredentials
	// KindNotFound is a 404: the resource does not exist or is outside the
	// key's scope.
	KindNotFound
	// KindRateLimited is a 429; Error.RetryAfter says when to try again.
	KindRateLimited
	// KindMalformed is an answer that is not the documented JSON, or larger
	// than the client's cap.
	KindMalformed
	// KindRequest is any other 4xx: the call itself is wrong. Not retryable.
	KindRequest
)

func (k Kind) String() string {
	switch k {
	case KindServer:
		return "server"
	case KindCredentials:
		return "credentials"
	case KindNotFound:
		return "not_found"
	case KindRateLimited:
		return "rate_limited"
	case KindMalformed:
		return "malformed"
	case KindRequest:
		return "request"
	}
	return "unknown"
}

// Error is a failed call. Its message names the operation, the HTTP status
// and the kind; never the key, and never body content.
type Error struct {
	Kind Kind
	// Op names the call, e.g. "decision" or "destination deliveries".
	Op string
	// Status is the HTTP status, 0 when none was received.
	Status int
	// RetryAfter is a 429's Retry-After, 0 when absent.
	RetryAfter time.Duration
	// Err is the underlying transport or decoding error, if any. Its text
	// must not quote the body either.
	Err error
	// Detail is why Didit refused a session's creation, as its answer
	// says (CreateSession only; bounded). It is for the caller who made
	// the request, and never part of Error().
	Detail string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("didit api %s: %s", e.Op, e.Kind)
	if e.Status != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(", retry after %s", e.RetryAfter)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether trying the same call again later can succeed.
func (e *Error) Retryable() bool {
	return e.Kind == KindServer || e.Kind == KindRateLimited
}

// KindOf returns the kind of err, 0 when err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// ErrNoKey is returned by every call of a client without an API key.
var ErrNoKey = errors.New("didit api: no API key configured (DIDIT_API_KEY)")

// DecisionResult is a session's decision, reduced, and when Didit answered.
type DecisionResult struct {
	Decision didit.Decision
	// Date is the response's Date header (the time the decision was read),
	// the zero time when the header is absent or unparsable.
	Date time.Time
}

// SessionFilter narrows GET /v3/sessions/. Zero fields are not sent.
type SessionFilter struct {
	Status     []didit.Status
	VendorData string
	WorkflowID string
	// DateFrom and DateTo filter on the session's creation date (sent as
	// YYYY-MM-DD).
	DateFrom, DateTo time.Time
	// Limit is the page size; 0 leaves Didit's default (50).
	Limit int
}

// SessionRow is one row of the session list: only what SPEC §4.8 says a row
// can be relied on for.
type SessionRow struct {
	SessionID string       `json:"session_id"`
	Status    didit.Status `json:"status"`
}

// SessionPage is one page of sessions. Next is the absolute URL of the next
// page ("" on the last), to pass back as the cursor.
type SessionPage struct {
	Count   int
	Next    string
	Results []SessionRow
}

// DeliveryRow is one delivery attempt as a list shows it (no event_id, no
// body).
type DeliveryRow struct {
	UUID           string `json:"uuid"`
	SessionID      string `json:"session_id"`
	WebhookType    string `json:"webhook_type"`
	ResponseStatus int    `json:"response_status"`
	Status         string `json:"status"`
	CreatedAt      string `json:"created_at"`
}

// Delivered reports whether the receiver answered 2xx.
func (r DeliveryRow) Delivered() bool {
	return r.ResponseStatus >= 200 && r.ResponseStatus < 300
}

// Delivery is one delivery attempt in full: the row and what was sent.
// RequestBody holds the webhook body exactly as delivered (personal data:
// parse it, never log or store it).
type Delivery struct {
	DeliveryRow
	RequestHeader map[string]string
	RequestBody   []byte
}

// DeliveryFilter narrows a destination's deliveries; zero fields are not
// sent. Dates are inclusive days (YYYY-MM-DD).
type DeliveryFilter struct {
	DateFrom, DateTo time.Time
	Limit            int
}

// DeliveryPage is one page of a destination's deliveries.
type DeliveryPage struct {
	Count   int
	Next    string
	Results []DeliveryRow
}

// Destination is a webhook destination (SPEC §4.2). Secret is filled only
// by CreateDestination and Destination (one destination), never by the
// list.
type Destination struct {
	UUID             string   `json:"uuid"`
	Label            string   `json:"label"`
	URL              string   `json:"url"`
	Enabled          bool     `json:"enabled"`
	WebhookVersion   string   `json:"webhook_version,omitempty"`
	SubscribedEvents []string `json:"subscribed_events,omitempty"`
	Secret           string   `json:"secret_shared_key,omitempty"`
}

// DestinationPatch is a PATCH of a destination; nil fields are not sent.
type DestinationPatch struct {
	Label            *string  `json:"label,omitempty"`
	URL              *string  `json:"url,omitempty"`
	Enabled          *bool    `json:"enabled,omitempty"`
	WebhookVersion   *string  `json:"webhook_version,omitempty"`
	SubscribedEvents []string `json:"subscribed_events,omitempty"`
}

// WebhookConfig is the legacy single-webhook config (SPEC §4.1).
type WebhookConfig struct {
	URL            *string `json:"webhook_url"`
	WebhookVersion string  `json:"webhook_version"`
	Secret         string  `json:"secret_shared_key"`
}

// WebhookPatch is a PATCH of the legacy config; zero fields are not sent.
type WebhookPatch struct {
	URL          *string `json:"webhook_url,omitempty"`
	RotateSecret bool    `json:"rotate_secret_key,omitempty"`
}

// Review statuses of an AML hit (SPEC §4.6).
const (
	ReviewUnreviewed     = "Unreviewed"
	ReviewConfirmedMatch = "Confirmed Match"
	ReviewFalsePositive  = "False Positive"
	ReviewInconclusive   = "Inconclusive"
)

// HitReview is one hit's review to write back.
type HitReview struct {
	HitID        string `json:"hit_id"`
	ReviewStatus string `json:"review_status"`
}
