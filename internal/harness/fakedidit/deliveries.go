package fakedidit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/internal/httppost"
)

// event is a session webhook body, decoded with its numbers kept literal.
type event map[string]any

func parseEvent(body []byte) (event, error) {
	var ev event
	if err := decodeNumbers(body, &ev); err != nil || ev == nil {
		return nil, fmt.Errorf("fakedidit: webhook body is not a JSON object: %v", err)
	}
	return ev, nil
}

func (ev event) str(name string) string {
	v, _ := ev[name].(string)
	return v
}

// wire stamps the body with ts and renders it the way Didit puts it on the
// wire (sorted keys, no spaces, non-ASCII escaped).
func (ev event) wire(ts time.Time) ([]byte, error) { return simulator.WireAt(ev, ts) }

// signed is one request ready to go: the bytes and their headers.
type signed struct {
	body   []byte
	header http.Header
}

// sign stamps and signs ev for a request sent now.
func (s *Server) sign(ev event, secret string) (signed, error) { return signAt(ev, secret, s.now()) }

// signAt stamps ev with ts and signs it as Didit does.
func signAt(ev event, secret string, ts time.Time) (signed, error) {
	body, err := ev.wire(ts)
	if err != nil {
		return signed{}, err
	}
	hs, err := didit.Signer{Secret: secret}.Sign(body)
	if err != nil {
		return signed{}, err
	}
	header := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"DiditWebhook/2.0 +https://didit.me"}}
	hs.Set(header)
	return signed{body: body, header: header}, nil
}

// Deliver sends a session webhook body to every enabled destination
// subscribed to its webhook_type, the way Didit does: stamped with the
// current time, signed with the destination's secret, retried after
// RetryDelays on 5xx, 404 and transport failures, every attempt logged.
// Destinations are served concurrently; the attempts are returned in
// destination order (the default destination first). A body that is not a
// JSON object yields one attempt with an error and nothing is sent.
//
// Before sending, it records the body's session state as Register does, so
// that the decision API agrees with the webhook, as Didit's does.
func (s *Server) Deliver(ctx context.Context, body []byte) []Attempt {
	ev, err := parseEvent(body)
	if err != nil {
		return []Attempt{{Err: err}}
	}
	s.record(ev.update())
	return s.send(ctx, ev)
}

// send is Deliver for a body built from the fake's own record.
func (s *Server) send(ctx context.Context, ev event) []Attempt {
	targets := s.targets(ev.str("webhook_type"))
	results := make([][]Attempt, len(targets))
	var wg sync.WaitGroup
	for i, uuid := range targets {
		wg.Go(func() { results[i] = s.deliverTo(ctx, uuid, ev) })
	}
	wg.Wait()
	return slices.Concat(results...)
}

// sendAt sends ev once its time at has come: a step of a session the fake
// plays is sent when it happens, not before.
func (s *Server) sendAt(ctx context.Context, ev event, at time.Time) {
	if wait := at.Sub(s.now()); wait > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	s.send(ctx, ev)
}

// targets lists the enabled destinations subscribed to webhookType.
func (s *Server) targets(webhookType string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, d := range s.dests {
		if d.live() && d.enabled && d.url != "" && slices.Contains(d.events, webhookType) {
			out = append(out, d.uuid)
		}
	}
	return out
}

// deliverTo runs one destination's attempts.
func (s *Server) deliverTo(ctx context.Context, destUUID string, ev event) []Attempt {
	var attempts []Attempt
	var req signed
	delays := s.retryDelays()
	for i := 0; ; i++ {
		d, ok := s.destination(destUUID)
		if !ok || !d.enabled {
			return attempts
		}
		if i == 0 || s.opts.RestampRetries {
			var err error
			if req, err = s.sign(ev, d.secret); err != nil {
				return append(attempts, Attempt{Err: err})
			}
		}
		a, _ := s.attempt(ctx, d, ev, req)
		attempts = append(attempts, a)
		if !retryable(a) || i >= len(delays) {
			return attempts
		}
		select {
		case <-ctx.Done():
			return attempts
		case <-time.After(delays[i]):
		}
	}
}

// retryable is Didit's rule: 5xx, 404 and failures to connect or answer.
func retryable(a Attempt) bool {
	return a.Err != nil || a.Status >= 500 || a.Status == http.StatusNotFound
}

// attempt posts req once to d and logs it.
func (s *Server) attempt(ctx context.Context, d destination, ev event, req signed) (Attempt, *LoggedDelivery) {
	start := time.Now()
	status, err := httppost.Do(ctx, s.client, d.url, req.header, req.body)
	rec := &LoggedDelivery{
		UUID:            simulator.NewUUID(),
		DestinationUUID: d.uuid,
		SessionID:       ev.str("session_id"),
		WebhookType:     ev.str("webhook_type"),
		EventID:         ev.str("event_id"),
		RequestURL:      d.url,
		ResponseStatus:  status,
		ResponseTimeMS:  time.Since(start).Milliseconds(),
		Status:          "failed",
		CreatedAt:       s.now(),
		RequestHeader:   flatten(req.header),
		RequestBody:     req.body,
	}
	if err == nil && status >= 200 && status < 300 {
		rec.Status = "delivered"
	}
	s.mu.Lock()
	s.log = append(s.log, rec)
	s.mu.Unlock()
	return Attempt{Status: status, Err: err}, rec
}

func flatten(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k := range h {
		out[k] = h.Get(k)
	}
	return out
}

var errGone = errors.New("fakedidit: delivery or destination not found")

// resend re-sends a logged delivery once, re-stamped and re-signed with its
// destination's current secret, keeping event_id (SPEC §4.5).
func (s *Server) resend(ctx context.Context, deliveryUUID string, ok func(*LoggedDelivery) bool) (*LoggedDelivery, error) {
	s.mu.Lock()
	var orig *LoggedDelivery
	for _, rec := range s.log {
		if rec.UUID == deliveryUUID && ok(rec) {
			orig = rec
		}
	}
	s.mu.Unlock()
	if orig == nil {
		return nil, errGone
	}
	d, found := s.destination(orig.DestinationUUID)
	if !found {
		return nil, errGone
	}
	ev, err := parseEvent(orig.RequestBody)
	if err != nil {
		return nil, err
	}
	req, err := s.sign(ev, d.secret)
	if err != nil {
		return nil, err
	}
	_, rec := s.attempt(ctx, d, ev, req)
	return rec, nil
}

// summary is a delivery as list endpoints show it.
func (rec *LoggedDelivery) summary() map[string]any {
	return map[string]any{
		"uuid":             rec.UUID,
		"session_id":       rec.SessionID,
		"request_url":      rec.RequestURL,
		"response_status":  rec.ResponseStatus,
		"response_time_ms": rec.ResponseTimeMS,
		"status":           rec.Status,
		"webhook_type":     rec.WebhookType,
		"created_at":       rec.CreatedAt.UTC().Format(time.RFC3339),
	}
}

// full adds the request, each part a JSON-encoded string as Didit has it.
func (rec *LoggedDelivery) full() map[string]any {
	m := rec.summary()
	hdr, _ := json.Marshal(rec.RequestHeader)
	m["request_header"] = string(hdr)
	m["request_body"] = string(rec.RequestBody)
	return m
}

// sessionWebhook is a delivery as GET /v3/session/{id}/webhooks/ shows it.
func (rec *LoggedDelivery) sessionWebhook() map[string]any {
	m := rec.full()
	for _, k := range []string{"session_id", "request_url", "response_time_ms", "status"} {
		delete(m, k)
	}
	return m
}

// newestFirst returns the logged deliveries that keep, newest first.
func (s *Server) newestFirst(keep func(*LoggedDelivery) bool) []*LoggedDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*LoggedDelivery
	for i := len(s.log) - 1; i >= 0; i-- {
		if keep(s.log[i]) {
			out = append(out, s.log[i])
		}
	}
	return out
}

// listSessionWebhooks serves GET /v3/session/{id}/webhooks/: every attempt
// to every destination, newest first, unpaginated.
func (s *Server) listSessionWebhooks(w http.ResponseWriter, _ *http.Request, ids []string) {
	recs := s.newestFirst(func(rec *LoggedDelivery) bool { return rec.SessionID == ids[0] })
	s.mu.Lock()
	_, known := s.sessions[ids[0]]
	s.mu.Unlock()
	if !known && len(recs) == 0 {
		notFoundJSON(w)
		return
	}
	rows := make([]map[string]any, 0, len(recs))
	for _, rec := range recs {
		rows = append(rows, rec.sessionWebhook())
	}
	writeJSON(w, http.StatusOK, rows)
}

// resendSessionWebhook serves POST /v3/session/{id}/webhook/{uuid}/resend.
func (s *Server) resendSessionWebhook(w http.ResponseWriter, r *http.Request, ids []string) {
	rec, err := s.resend(r.Context(), ids[1], func(rec *LoggedDelivery) bool { return rec.SessionID == ids[0] })
	s.answerResend(w, rec, err)
}

func (s *Server) answerResend(w http.ResponseWriter, rec *LoggedDelivery, err error) {
	switch {
	case errors.Is(err, errGone):
		notFoundJSON(w)
	case err != nil:
		writeJSON(w, http.StatusBadRequest, detail(err.Error()))
	default:
		writeJSON(w, http.StatusOK, rec.full())
	}
}

// listDestinationDeliveries serves GET /v3/webhook/destinations/{uuid}/deliveries/.
func (s *Server) listDestinationDeliveries(w http.ResponseWriter, r *http.Request, ids []string) {
	if _, ok := s.destination(ids[0]); !ok {
		notFoundJSON(w)
		return
	}
	dates, ok := parseDates(w, r)
	if !ok {
		return
	}
	recs := s.newestFirst(func(rec *LoggedDelivery) bool {
		return rec.DestinationUUID == ids[0] && dates.contains(rec.CreatedAt)
	})
	p := paginate(r, len(recs))
	lo, hi := p.window(len(recs))
	rows := make([]map[string]any, 0, hi-lo)
	for _, rec := range recs[lo:hi] {
		rows = append(rows, rec.summary())
	}
	writeJSON(w, http.StatusOK, p.body(len(recs), rows))
}

// getDestinationDelivery serves GET …/deliveries/{delivery_uuid}/.
func (s *Server) getDestinationDelivery(w http.ResponseWriter, _ *http.Request, ids []string) {
	recs := s.newestFirst(func(rec *LoggedDelivery) bool { return rec.DestinationUUID == ids[0] && rec.UUID == ids[1] })
	if _, ok := s.destination(ids[0]); !ok || len(recs) == 0 {
		notFoundJSON(w)
		return
	}
	writeJSON(w, http.StatusOK, recs[0].full())
}

// resendDestinationDelivery serves POST …/deliveries/{delivery_uuid}/resend/.
func (s *Server) resendDestinationDelivery(w http.ResponseWriter, r *http.Request, ids []string) {
	rec, err := s.resend(r.Context(), ids[1], func(rec *LoggedDelivery) bool { return rec.DestinationUUID == ids[0] })
	s.answerResend(w, rec, err)
}
