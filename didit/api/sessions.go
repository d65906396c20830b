package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/diditflow/diditflow/didit"
)

// dateLayout is how filters send days (YYYY-MM-DD).
const dateLayout = "2006-01-02"

// Decision reads a session's decision (GET /v3/session/{id}/decision/,
// SPEC §4.3), reduced with didit.ParseDecision, and the answer's Date.
func (c *Client) Decision(ctx context.Context, sessionID string) (DecisionResult, error) {
	const op = "decision"
	r, err := c.decision(ctx, op, sessionID)
	if err != nil {
		return DecisionResult{}, err
	}
	d, err := didit.ParseDecision(r.body)
	if err != nil {
		return DecisionResult{}, malformed(op, r.status, jsonReason(err))
	}
	result := DecisionResult{Decision: *d}
	if date, err := http.ParseTime(r.header.Get("Date")); err == nil {
		result.Date = date
	}
	return result, nil
}

// decision reads GET /v3/session/{id}/decision/ as op: a JSON object.
func (c *Client) decision(ctx context.Context, op, sessionID string) (response, error) {
	if err := c.checkIDs(op, sessionID); err != nil {
		return response{}, err
	}
	r, err := c.do(ctx, request{op: op, method: http.MethodGet,
		path: "/v3/session/" + url.PathEscape(sessionID) + "/decision/"})
	if err != nil {
		return response{}, err
	}
	return r, decodeObject(op, r, &struct{}{})
}

// Sessions lists sessions (GET /v3/sessions/). With cursor "" it reads the
// first page built from f; otherwise cursor is a previous page's Next, used
// as is (f is ignored), and only when it points at BaseURL.
func (c *Client) Sessions(ctx context.Context, f SessionFilter, cursor string) (SessionPage, error) {
	const op = "sessions"
	r, err := c.do(ctx, request{op: op, method: http.MethodGet,
		path: "/v3/sessions/", query: f.query(), next: cursor})
	if err != nil {
		return SessionPage{}, err
	}
	var page struct {
		Count   int          `json:"count"`
		Next    string       `json:"next"`
		Results []SessionRow `json:"results"`
	}
	if err := decodeObject(op, r, &page); err != nil {
		return SessionPage{}, err
	}
	return SessionPage{Count: page.Count, Next: page.Next, Results: page.Results}, nil
}

// query encodes the filter's non-zero fields.
func (f SessionFilter) query() url.Values {
	q := url.Values{}
	if len(f.Status) > 0 {
		statuses := make([]string, len(f.Status))
		for i, s := range f.Status {
			statuses[i] = string(s)
		}
		q.Set("status", strings.Join(statuses, ","))
	}
	setIfNotEmpty(q, "vendor_data", f.VendorData)
	setIfNotEmpty(q, "workflow_id", f.WorkflowID)
	setDate(q, "date_from", f.DateFrom)
	setDate(q, "date_to", f.DateTo)
	setLimit(q, f.Limit)
	return q
}

// SessionDeliveries lists every delivery attempt of a session's webhooks,
// newest first (GET /v3/session/{id}/webhooks/, SPEC §4.5).
func (c *Client) SessionDeliveries(ctx context.Context, sessionID string) ([]Delivery, error) {
	const op = "session deliveries"
	if err := c.checkIDs(op, sessionID); err != nil {
		return nil, err
	}
	r, err := c.do(ctx, request{op: op, method: http.MethodGet,
		path: "/v3/session/" + url.PathEscape(sessionID) + "/webhooks/"})
	if err != nil {
		return nil, err
	}
	var wires []deliveryWire
	if err := decodeArray(op, r, &wires); err != nil {
		return nil, err
	}
	deliveries := make([]Delivery, 0, len(wires))
	for _, w := range wires {
		d, err := w.delivery()
		if err != nil {
			return nil, malformed(op, r.status, err)
		}
		deliveries = append(deliveries, d)
	}
	return deliveries, nil
}

// ResendSessionDelivery asks Didit to deliver a session webhook again
// (POST /v3/session/{id}/webhook/{uuid}/resend, SPEC §4.5) and returns the
// new delivery (the zero Delivery on a 204).
func (c *Client) ResendSessionDelivery(ctx context.Context, sessionID, webhookUUID string) (Delivery, error) {
	const op = "resend"
	if err := c.checkIDs(op, sessionID, webhookUUID); err != nil {
		return Delivery{}, err
	}
	r, err := c.do(ctx, request{op: op, method: http.MethodPost,
		path: "/v3/session/" + url.PathEscape(sessionID) + "/webhook/" + url.PathEscape(webhookUUID) + "/resend"})
	if err != nil || r.status == http.StatusNoContent {
		return Delivery{}, err
	}
	return decodeDelivery(op, r)
}

// hitReviewBody is the body of a single AML hit review.
type hitReviewBody struct {
	HitReview
	NodeID string `json:"node_id,omitempty"`
}

// bulkHitReviewBody is the body of a bulk AML hit review.
type bulkHitReviewBody struct {
	NodeID     string      `json:"node_id,omitempty"`
	HitUpdates []HitReview `json:"hit_updates"`
}

// UpdateAMLHit writes one AML hit's review back to Didit (SPEC §4.6).
// nodeID names the AML node when a session has several; "" omits it.
func (c *Client) UpdateAMLHit(ctx context.Context, sessionID, nodeID string, r HitReview) error {
	const op = "aml hit review"
	if err := c.checkIDs(op, sessionID); err != nil {
		return err
	}
	_, err := c.do(ctx, request{op: op, method: http.MethodPatch,
		path: "/v3/session/" + url.PathEscape(sessionID) + "/update-aml-hit-status/",
		body: hitReviewBody{HitReview: r, NodeID: nodeID}})
	return err
}

// BulkUpdateAMLHits writes several AML hit reviews of one node back to
// Didit (SPEC §4.6); "" omits node_id.
func (c *Client) BulkUpdateAMLHits(ctx context.Context, sessionID, nodeID string, rs []HitReview) error {
	const op = "aml hit bulk review"
	if err := c.checkIDs(op, sessionID); err != nil {
		return err
	}
	if rs == nil {
		rs = []HitReview{}
	}
	_, err := c.do(ctx, request{op: op, method: http.MethodPatch,
		path: "/v3/session/" + url.PathEscape(sessionID) + "/bulk-update-aml-hit-status/",
		body: bulkHitReviewBody{NodeID: nodeID, HitUpdates: rs}})
	return err
}

// checkIDs refuses a call with an empty path segment, after the key check
// so that a disabled client still answers ErrNoKey.
func (c *Client) checkIDs(op string, ids ...string) error {
	if !c.Enabled() {
		return ErrNoKey
	}
	for _, id := range ids {
		if id == "" {
			return &Error{Kind: KindRequest, Op: op, Err: errors.New("empty identifier")}
		}
	}
	return nil
}

// setIfNotEmpty sets q[name] when value is not "".
func setIfNotEmpty(q url.Values, name, value string) {
	if value != "" {
		q.Set(name, value)
	}
}

// setDate sets q[name] to t's day when t is not zero.
func setDate(q url.Values, name string, t time.Time) {
	if !t.IsZero() {
		q.Set(name, t.Format(dateLayout))
	}
}

// setLimit sets the page size when it is positive.
func setLimit(q url.Values, limit int) {
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
}
