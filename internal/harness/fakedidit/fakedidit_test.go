package fakedidit

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

const testKey = "test-key"

// receiver is a webhook endpoint that verifies Didit's signatures with the
// project's verifier and answers a chosen status.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	secrets []string
	answer  int
	got     []didit.Event
	refused int
}

func newReceiver(t *testing.T, secret string, answer int) *receiver {
	rc := &receiver{t: t, secrets: []string{secret}, answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	v := didit.Verifier{Secrets: rc.secrets}
	ev, _, err := v.ConstructEvent(body, didit.HeadersFrom(r.Header))
	if err != nil {
		rc.refused++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.got = append(rc.got, ev)
	w.WriteHeader(rc.answer)
}

func (rc *receiver) events() []didit.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]didit.Event(nil), rc.got...)
}

// fixture starts a fake delivering to rc.
func fixture(t *testing.T, rc *receiver, o Options) (*Server, *httptest.Server) {
	o.Key = testKey
	if rc != nil {
		o.ReceiverURL = rc.srv.URL
		o.Secret = rc.secrets[0]
	}
	if o.RetryDelays == nil {
		o.RetryDelays = []time.Duration{time.Millisecond, 2 * time.Millisecond}
	}
	s := New(o)
	api := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		api.Close()
		_ = s.Close()
	})
	return s, api
}

func call(t *testing.T, method, url string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-api-key", testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func webhookBody(sessionID, eventID string) []byte {
	b, _ := json.Marshal(map[string]any{
		"event_id": eventID, "webhook_type": "status.updated", "session_id": sessionID,
		"status": "Approved", "created_at": time.Now().Unix(), "timestamp": 0,
	})
	return b
}

const sessionA = "9b2f4c1e-6d3a-4e8b-a5f0-1c7d2e9b8a64"

// TestAuthRequired: Didit answers 403 when no key was sent and 401 for a
// wrong one (SPEC §4.4).
func TestAuthRequired(t *testing.T) {
	_, api := fixture(t, nil, Options{})
	for key, want := range map[string]int{"": http.StatusForbidden, "wrong": http.StatusUnauthorized} {
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/v3/sessions/", nil)
		if key != "" {
			req.Header.Set("x-api-key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || !strings.Contains(string(b), `"detail"`) {
			t.Fatalf("key %q: %d %s; want %d JSON", key, resp.StatusCode, b, want)
		}
	}
}

func TestDecisionNotFound(t *testing.T) {
	s, api := fixture(t, nil, Options{})
	s.PutSession(sessionA, "In Progress", nil, "user-1", time.Now())

	resp, b := call(t, http.MethodGet, api.URL+"/v3/session/"+sessionA+"/decision/", nil)
	d := decode[map[string]any](t, b)
	if resp.StatusCode != 200 || d["status"] != "In Progress" || d["session_id"] != sessionA {
		t.Fatalf("minimal decision: %d %s", resp.StatusCode, b)
	}

	resp, b = call(t, http.MethodGet, api.URL+"/v3/session/"+simulator.NewUUID()+"/decision/", nil)
	if resp.StatusCode != 404 || string(b) != `{"detail":"Not found."}` {
		t.Fatalf("unknown uuid: %d %s", resp.StatusCode, b)
	}
	resp, b = call(t, http.MethodGet, api.URL+"/v3/session/not-a-uuid/decision/", nil)
	if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(b), "<html") {
		t.Fatalf("malformed id: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	// The two that reached the route are counted, the malformed id not.
	if n := s.Calls(http.MethodGet, "/v3/session/{id}/decision/"); n != 2 {
		t.Fatalf("Calls = %d, want 2", n)
	}
}

func TestSessionsPagination(t *testing.T) {
	s, api := fixture(t, nil, Options{})
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 7 {
		status := "Approved"
		if i%3 == 2 {
			status = "Declined"
		}
		s.PutSession(simulator.NewUUID(), status, nil, "v"+strconv.Itoa(i), base.Add(time.Duration(i)*time.Hour))
	}
	// 5 Approved, limit 2: three pages.
	type pageBody struct {
		Count    int               `json:"count"`
		Next     *string           `json:"next"`
		Previous *string           `json:"previous"`
		Results  []json.RawMessage `json:"results"`
	}
	next := api.URL + "/v3/sessions/?status=Approved&limit=2"
	var seen []string
	var pages int
	for next != "" {
		pages++
		resp, b := call(t, http.MethodGet, next, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", next, resp.StatusCode, b)
		}
		p := decode[pageBody](t, b)
		if p.Count != 5 {
			t.Fatalf("count %d, want 5", p.Count)
		}
		for _, r := range p.Results {
			row := decode[map[string]any](t, r)
			if row["status"] != "Approved" {
				t.Fatalf("filter leaked %v", row)
			}
			seen = append(seen, row["created_at"].(string))
		}
		next = ""
		if p.Next != nil {
			next = *p.Next
			if !strings.HasPrefix(next, api.URL+"/v3/sessions/?") || !strings.Contains(next, "status=Approved") {
				t.Fatalf("next %q is not absolute with the filter", next)
			}
		}
	}
	if pages != 3 || len(seen) != 5 {
		t.Fatalf("pages %d rows %d", pages, len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Fatalf("not newest first: %v", seen)
		}
	}
}

func TestDeliverGivesUpAfterRetries(t *testing.T) {
	rc := newReceiver(t, "secret-1", http.StatusInternalServerError)
	s, api := fixture(t, rc, Options{})
	eventID := simulator.NewUUID()
	attempts := s.Deliver(context.Background(), webhookBody(sessionA, eventID))
	if len(attempts) != 3 {
		t.Fatalf("%d attempts, want 3: %+v", len(attempts), attempts)
	}
	log := s.Deliveries()
	if len(log) != 3 {
		t.Fatalf("%d logged", len(log))
	}
	for _, d := range log {
		if d.ResponseStatus != 500 || d.Status != "failed" || d.EventID != eventID {
			t.Fatalf("logged %+v", d)
		}
	}
	if n := len(rc.events()); n != 3 {
		t.Fatalf("receiver verified %d deliveries, want 3", n)
	}
	resp, b := call(t, http.MethodGet, api.URL+"/v3/session/"+sessionA+"/webhooks/", nil)
	rows := decode[[]map[string]any](t, b)
	if resp.StatusCode != 200 || len(rows) != 3 {
		t.Fatalf("session webhooks: %d %s", resp.StatusCode, b)
	}
	if body, ok := rows[0]["request_body"].(string); !ok || !strings.Contains(body, eventID) {
		t.Fatalf("request_body not a string holding the event: %v", rows[0]["request_body"])
	}
}

func TestResendAfterRotation(t *testing.T) {
	rc := newReceiver(t, "secret-1", http.StatusOK)
	now := time.Now().Add(-time.Minute)
	var clock sync.Mutex
	s, api := fixture(t, rc, Options{Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now }})
	eventID := simulator.NewUUID()
	if a := s.Deliver(context.Background(), webhookBody(sessionA, eventID)); len(a) != 1 || a[0].Status != 200 {
		t.Fatalf("first delivery %+v", a)
	}

	resp, b := call(t, http.MethodPatch, api.URL+"/v3/webhook/", map[string]any{"rotate_secret_key": true})
	cfg := decode[map[string]any](t, b)
	secret, _ := cfg["secret_shared_key"].(string)
	if resp.StatusCode != 200 || secret == "" || secret == "secret-1" || len(secret) != 43 {
		t.Fatalf("rotate: %d %s", resp.StatusCode, b)
	}
	rc.mu.Lock()
	rc.secrets = []string{secret} // the old secret is dead at once
	rc.mu.Unlock()
	clock.Lock()
	now = now.Add(30 * time.Second)
	clock.Unlock()

	first := s.Deliveries()[0]
	resp, b = call(t, http.MethodPost, api.URL+"/v3/session/"+sessionA+"/webhook/"+first.UUID+"/resend", nil)
	got := decode[map[string]any](t, b)
	if resp.StatusCode != 200 || got["response_status"] != float64(200) || got["uuid"] == first.UUID {
		t.Fatalf("resend: %d %s", resp.StatusCode, b)
	}
	evs := rc.events()
	if len(evs) != 2 || evs[1].EventID != eventID || evs[1].Timestamp <= evs[0].Timestamp {
		t.Fatalf("receiver got %+v", evs)
	}
	if log := s.Deliveries(); len(log) != 2 || log[1].EventID != eventID {
		t.Fatalf("log %+v", log)
	}
	// The old secret no longer signs anything.
	rc.mu.Lock()
	rc.secrets = []string{"secret-1"}
	rc.mu.Unlock()
	s.Deliver(context.Background(), webhookBody(sessionA, simulator.NewUUID()))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.refused == 0 {
		t.Fatal("delivery after rotation verified with the old secret")
	}
}

func TestBulkAMLUpdateFiresDataUpdated(t *testing.T) {
	rc := newReceiver(t, "secret-1", http.StatusOK)
	s, api := fixture(t, rc, Options{})
	s.PutSession(sessionA, "Declined", amlDecision(t), "user-1", time.Now())
	const hit = "NK-4fTq8Xw2bLmZpR7cVd3sYe"

	resp, b := call(t, http.MethodPatch, api.URL+"/v3/session/"+sessionA+"/bulk-update-aml-hit-status/",
		map[string]any{"node_id": "feature_aml_1", "hit_updates": []any{map[string]any{"hit_id": hit, "review_status": "Bogus"}}})
	if resp.StatusCode != 400 {
		t.Fatalf("bad status: %d %s", resp.StatusCode, b)
	}
	resp, b = call(t, http.MethodPatch, api.URL+"/v3/session/"+sessionA+"/bulk-update-aml-hit-status/",
		map[string]any{"node_id": "feature_aml_1", "hit_updates": []any{map[string]any{"hit_id": hit, "review_status": "False Positive"}}})
	if resp.StatusCode != 200 {
		t.Fatalf("bulk: %d %s", resp.StatusCode, b)
	}
	s.Wait()

	if got := s.HitReviews(sessionA)[hit]; got != "False Positive" {
		t.Fatalf("HitReviews = %q", got)
	}
	if c := s.HitReviewCalls(); len(c) != 1 || !c[0].Bulk || c[0].NodeID != "feature_aml_1" {
		t.Fatalf("calls %+v", c)
	}
	_, b = call(t, http.MethodGet, api.URL+"/v3/session/"+sessionA+"/decision/", nil)
	d, err := didit.ParseDecision(b)
	if err != nil || len(d.AMLScreenings) != 1 || d.AMLScreenings[0].Hits[0].ReviewStatus != "False Positive" {
		t.Fatalf("decision after review: %v %+v", err, d)
	}
	evs := rc.events()
	if len(evs) != 1 || evs[0].WebhookType != "data.updated" || evs[0].Status != "Declined" ||
		evs[0].Decision == nil || evs[0].Decision.AMLScreenings[0].Hits[0].ReviewStatus != "False Positive" {
		t.Fatalf("webhooks %+v", evs)
	}
}

func TestRateLimit(t *testing.T) {
	_, api := fixture(t, nil, Options{RateLimitEvery: 2})
	for i := 1; i <= 6; i++ {
		resp, _ := call(t, http.MethodGet, api.URL+"/v3/sessions/", nil)
		want := http.StatusOK
		if i%2 == 0 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("call %d: %d, want %d", i, resp.StatusCode, want)
		}
		if want == http.StatusTooManyRequests && (resp.Header.Get("Retry-After") != "1" || resp.Header.Get("X-RateLimit-Limit") == "") {
			t.Fatalf("call %d headers %v", i, resp.Header)
		}
	}
}

func TestDestinations(t *testing.T) {
	_, api := fixture(t, nil, Options{ReceiverURL: "http://127.0.0.1:1/hook", Secret: "secret-1"})
	resp, b := call(t, http.MethodPost, api.URL+"/v3/webhook/destinations/",
		map[string]any{"label": "second", "url": "https://example.com/hook", "subscribed_events": []string{"status.updated"}})
	created := decode[map[string]any](t, b)
	if resp.StatusCode != 201 || created["secret_shared_key"] == nil {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	resp, _ = call(t, http.MethodPost, api.URL+"/v3/webhook/destinations/",
		map[string]any{"label": "dup", "url": "https://example.com/hook", "subscribed_events": []string{"status.updated"}})
	if resp.StatusCode != 400 {
		t.Fatalf("duplicate url: %d", resp.StatusCode)
	}
	resp, _ = call(t, http.MethodPost, api.URL+"/v3/webhook/destinations/",
		map[string]any{"label": "none", "url": "https://example.com/other", "subscribed_events": []string{}})
	if resp.StatusCode != 400 {
		t.Fatalf("empty events: %d", resp.StatusCode)
	}

	_, b = call(t, http.MethodGet, api.URL+"/v3/webhook/destinations/", nil)
	rows := decode[[]map[string]any](t, b)
	if len(rows) != 2 || rows[0]["uuid"] != DefaultDestinationUUID {
		t.Fatalf("list %s", b)
	}
	for _, r := range rows {
		if _, ok := r["secret_shared_key"]; ok {
			t.Fatalf("list row has a secret: %v", r)
		}
	}
	_, b = call(t, http.MethodGet, api.URL+"/v3/webhook/destinations/"+DefaultDestinationUUID+"/", nil)
	if one := decode[map[string]any](t, b); one["secret_shared_key"] != "secret-1" {
		t.Fatalf("get one %s", b)
	}

	id := created["uuid"].(string)
	if resp, _ = call(t, http.MethodDelete, api.URL+"/v3/webhook/destinations/"+id+"/", nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp, _ = call(t, http.MethodGet, api.URL+"/v3/webhook/destinations/"+id+"/", nil); resp.StatusCode != 404 {
		t.Fatalf("deleted still there: %d", resp.StatusCode)
	}
}

func TestDeliverFansOutWithEachSecret(t *testing.T) {
	rc := newReceiver(t, "secret-1", http.StatusOK)
	s, api := fixture(t, rc, Options{})
	resp, b := call(t, http.MethodPost, api.URL+"/v3/webhook/destinations/",
		map[string]any{"label": "second", "url": rc.srv.URL + "/second", "subscribed_events": []string{"status.updated"}})
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	rc.mu.Lock()
	rc.secrets = append(rc.secrets, decode[map[string]any](t, b)["secret_shared_key"].(string))
	rc.mu.Unlock()
	if a := s.Deliver(context.Background(), webhookBody(sessionA, simulator.NewUUID())); len(a) != 2 || a[0].Status != 200 || a[1].Status != 200 {
		t.Fatalf("attempts %+v", a)
	}
	id := decode[map[string]any](t, b)["uuid"].(string)
	_, b = call(t, http.MethodGet, api.URL+"/v3/webhook/destinations/"+id+"/deliveries/", nil)
	if p := decode[map[string]any](t, b); p["count"] != float64(1) {
		t.Fatalf("deliveries %s", b)
	}
}

func TestMissingSlashRedirects(t *testing.T) {
	_, api := fixture(t, nil, Options{})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(api.URL + "/v3/sessions?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 301 || resp.Header.Get("Location") != api.URL+"/v3/sessions/?limit=1" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// decisionOf is the decision API's answer for a session.
func decisionOf(t *testing.T, api *httptest.Server, session string) map[string]any {
	t.Helper()
	resp, b := call(t, http.MethodGet, api.URL+"/v3/session/"+session+"/decision/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("decision of %s: %d %s", session, resp.StatusCode, b)
	}
	return decode[map[string]any](t, b)
}

// listed is the session's row in GET /v3/sessions/.
func listed(t *testing.T, api *httptest.Server, session string) map[string]any {
	t.Helper()
	_, b := call(t, http.MethodGet, api.URL+"/v3/sessions/", nil)
	for _, row := range decode[struct {
		Results []map[string]any `json:"results"`
	}](t, b).Results {
		if row["session_id"] == session {
			return row
		}
	}
	t.Fatalf("session %s not listed: %s", session, b)
	return nil
}

func TestDeliverKeepsDiditsRecordOfTheSession(t *testing.T) {
	rc := newReceiver(t, "secret-1", http.StatusOK)
	// Close to the real time: the receiver checks the signing time.
	now := time.Now().Truncate(time.Second)
	s, api := fixture(t, rc, Options{Now: func() time.Time { return now }})
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	approved, _ := json.Marshal(map[string]any{
		"event_id": simulator.NewUUID(), "webhook_type": "status.updated", "session_id": sessionA,
		"status": "Approved", "created_at": created.Unix(), "vendor_data": "user-1",
		"decision": map[string]any{"session_id": sessionA, "status": "Approved", "vendor_data": "user-1",
			"contact_details": map[string]any{"email": "user@example.com"}},
	})
	s.Deliver(context.Background(), approved)
	if d := decisionOf(t, api, sessionA); d["status"] != "Approved" || d["contact_details"] == nil {
		t.Fatalf("decision after Approved: %v", d)
	}

	// Kyc Expired comes without a decision: Didit keeps the one it has, at
	// the session's new status, and the session's creation time.
	expired, _ := json.Marshal(map[string]any{
		"event_id": simulator.NewUUID(), "webhook_type": "status.updated", "session_id": sessionA,
		"status": "Kyc Expired", "created_at": created.Add(24 * time.Hour).Unix(),
	})
	s.Deliver(context.Background(), expired)
	d := decisionOf(t, api, sessionA)
	if d["status"] != "Kyc Expired" || d["contact_details"].(map[string]any)["email"] != "user@example.com" {
		t.Fatalf("decision after Kyc Expired: %v", d)
	}
	row := listed(t, api, sessionA)
	if row["status"] != "Kyc Expired" || row["vendor_data"] != "user-1" || row["created_at"] != isoTime(created) {
		t.Fatalf("listed as %v", row)
	}

	// A session first seen without created_at starts now; with no decision
	// ever, the decision API answers the minimal one at its status.
	other := simulator.NewUUID()
	s.Deliver(context.Background(), []byte(`{"webhook_type":"status.updated","session_id":"`+other+`","status":"In Progress"}`))
	if d := decisionOf(t, api, other); d["status"] != "In Progress" || d["created_at"] != isoTime(now) {
		t.Fatalf("minimal decision: %v", d)
	}
	if n := len(rc.events()); n != 3 {
		t.Fatalf("receiver got %d webhooks, want 3", n)
	}
}

func TestHarnessRegistersSessions(t *testing.T) {
	s, api := fixture(t, nil, Options{RateLimitEvery: 1})
	url := api.URL + "/_harness/sessions/"
	post := func(body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("x-api-key", testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	for _, bad := range []string{
		`{"session_id":`,
		`{"session_id":"not-a-uuid","status":"Approved"}`,
		`{"session_id":"` + sessionA + `","status":"KYC Expired"}`,
		`{"session_id":"` + sessionA + `","status":"Approved","decision":"Approved"}`,
		`{"session_id":"` + sessionA + `","status":"Approved","created_at":"yesterday"}`,
	} {
		if code, m := post(bad); code != http.StatusBadRequest || len(m) != 1 {
			t.Errorf("%s: %d %v, want 400 with a reason", bad, code, m)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("without the key: %v %v", resp, err)
	}

	code, row := post(`{"session_id":"` + sessionA + `","status":"Approved","vendor_data":"user-1","created_at":"2026-03-01T12:00:00Z",` +
		`"decision":{"session_id":"` + sessionA + `","status":"Approved","contact_details":{"email":"user@example.com"}}}`)
	if code != http.StatusOK || row["status"] != "Approved" || row["created_at"] != "2026-03-01T12:00:00.000000Z" {
		t.Fatalf("register: %d %v", code, row)
	}
	code, row = post(`{"session_id":"` + sessionA + `","status":"Kyc Expired","created_at":"2026-03-02T12:00:00Z"}`)
	if code != http.StatusOK || row["vendor_data"] != "user-1" || row["created_at"] != "2026-03-01T12:00:00.000000Z" {
		t.Fatalf("update: %d %v", code, row)
	}
	// The API itself is throttled at every request; read the record directly.
	s.mu.Lock()
	ss := s.sessions[sessionA]
	d := decode[map[string]any](t, ss.decisionJSON())
	s.mu.Unlock()
	if d["status"] != "Kyc Expired" || d["contact_details"] == nil {
		t.Fatalf("decision kept at the new status: %v", d)
	}
}

func TestHitReviewsAreNotUndoneByTheirWebhooks(t *testing.T) {
	rc := newReceiver(t, "secret-1", http.StatusOK)
	s, api := fixture(t, rc, Options{})
	s.PutSession(sessionA, "Declined", amlDecision(t), "user-1", time.Now())
	const hit = "NK-4fTq8Xw2bLmZpR7cVd3sYe"
	for _, review := range []string{"False Positive", "Confirmed Match", "Inconclusive"} {
		resp, b := call(t, http.MethodPatch, api.URL+"/v3/session/"+sessionA+"/update-aml-hit-status/",
			map[string]any{"hit_id": hit, "review_status": review})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", review, resp.StatusCode, b)
		}
	}
	s.Wait()
	_, b := call(t, http.MethodGet, api.URL+"/v3/session/"+sessionA+"/decision/", nil)
	d, err := didit.ParseDecision(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.AMLScreenings[0].Hits[0].ReviewStatus; got != "Inconclusive" {
		t.Fatalf("hit review after three reviews: %q, want the last one", got)
	}
}

// amlDecision is the decision of the simulator's declined AML-hit template.
func amlDecision(t *testing.T) json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile("../simulator/templates/status-updated-declined-aml-hit.json")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Decision json.RawMessage `json:"decision"`
	}
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	return tmpl.Decision
}
