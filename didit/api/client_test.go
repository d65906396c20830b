package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/diditflow/diditflow/didit"
)

const (
	testKey    = "sk_test_very_secret_key"
	bodySecret = "PLANTED-SECRET-IN-BODY"
)

// newTestClient starts a fake Didit serving h and a client pointed at it.
func newTestClient(t *testing.T, h http.HandlerFunc) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, Key: testKey})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, srv
}

// requireKind fails unless err is an *Error of kind want, whose text holds
// neither the key nor the planted body secret.
func requireKind(t *testing.T, err error, want Kind) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Kind != want {
		t.Fatalf("kind = %s, want %s (%v)", e.Kind, want, err)
	}
	if msg := err.Error(); strings.Contains(msg, testKey) || strings.Contains(msg, bodySecret) {
		t.Fatalf("error text leaks the key or the body: %q", msg)
	}
	return e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	for _, base := range []string{"verification.didit.me", "ftp://x", "://", "/v3"} {
		if _, err := New(Config{BaseURL: base, Key: testKey}); err == nil {
			t.Errorf("New(%q) succeeded", base)
		}
	}
	c, err := New(Config{Key: testKey})
	if err != nil || c.base.String() != DefaultBaseURL {
		t.Fatalf("default base = %v, %v", c.base, err)
	}
}

func TestKeySentOnEveryCall(t *testing.T) {
	var calls, keyed atomic.Int32
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("x-api-key") == testKey && r.Header.Get("Accept") == "application/json" {
			keyed.Add(1)
		}
		switch {
		case r.URL.Path == "/v3/webhook/destinations/" && r.Method == http.MethodGet,
			strings.HasSuffix(r.URL.Path, "/webhooks/"):
			writeJSON(w, 200, []any{})
		case r.Method == http.MethodPatch && strings.Contains(r.URL.Path, "aml-hit"):
			w.WriteHeader(http.StatusNoContent)
		default:
			writeJSON(w, 200, map[string]any{"status": "Approved", "results": []any{}})
		}
	})
	ctx := context.Background()
	endpoints := []func() error{
		func() error { _, err := c.Decision(ctx, "s1"); return err },
		func() error { _, err := c.Sessions(ctx, SessionFilter{}, ""); return err },
		func() error { _, err := c.SessionDeliveries(ctx, "s1"); return err },
		func() error { _, err := c.ResendSessionDelivery(ctx, "s1", "w1"); return err },
		func() error { _, err := c.Destinations(ctx); return err },
		func() error { _, err := c.Destination(ctx, "d1"); return err },
		func() error { _, err := c.CreateDestination(ctx, Destination{Label: "l", URL: "u"}); return err },
		func() error { _, err := c.UpdateDestination(ctx, "d1", DestinationPatch{}); return err },
		func() error { _, err := c.DestinationDeliveries(ctx, "d1", DeliveryFilter{}, ""); return err },
		func() error { _, err := c.DestinationDelivery(ctx, "d1", "x1"); return err },
		func() error { _, err := c.ResendDestinationDelivery(ctx, "d1", "x1"); return err },
		func() error { return c.UpdateAMLHit(ctx, "s1", "", HitReview{HitID: "h"}) },
		func() error { return c.BulkUpdateAMLHits(ctx, "s1", "", nil) },
		func() error { _, err := c.WebhookConfig(ctx); return err },
		func() error { _, err := c.PatchWebhookConfig(ctx, WebhookPatch{}); return err },
	}
	for i, call := range endpoints {
		if err := call(); err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if calls.Load() != int32(len(endpoints)) || keyed.Load() != calls.Load() {
		t.Fatalf("calls = %d, keyed = %d, want %d", calls.Load(), keyed.Load(), len(endpoints))
	}
}

func TestNoKeyMakesNoRequest(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if c.Enabled() {
		t.Fatal("Enabled() with no key")
	}
	ctx := context.Background()
	if _, err := c.Decision(ctx, "s1"); !errors.Is(err, ErrNoKey) {
		t.Errorf("Decision: %v", err)
	}
	if _, err := c.Sessions(ctx, SessionFilter{}, ""); !errors.Is(err, ErrNoKey) {
		t.Errorf("Sessions: %v", err)
	}
	if err := c.UpdateAMLHit(ctx, "", "", HitReview{}); !errors.Is(err, ErrNoKey) {
		t.Errorf("UpdateAMLHit: %v", err)
	}
	if _, err := c.WebhookConfig(ctx); !errors.Is(err, ErrNoKey) {
		t.Errorf("WebhookConfig: %v", err)
	}
	if calls.Load() != 0 {
		t.Fatalf("%d requests made without a key", calls.Load())
	}
}

func TestRateLimitedRetryAfterSeconds(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, bodySecret, http.StatusTooManyRequests)
	})
	_, err := c.Decision(context.Background(), "s1")
	e := requireKind(t, err, KindRateLimited)
	if e.RetryAfter != 7*time.Second || !e.Retryable() || e.Status != 429 {
		t.Fatalf("RetryAfter = %s, Retryable = %v, Status = %d", e.RetryAfter, e.Retryable(), e.Status)
	}
}

func TestRateLimitedRetryAfterDate(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(30*time.Second).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusTooManyRequests)
	})
	_, err := c.Sessions(context.Background(), SessionFilter{}, "")
	e := requireKind(t, err, KindRateLimited)
	if e.RetryAfter < 25*time.Second || e.RetryAfter > 31*time.Second {
		t.Fatalf("RetryAfter = %s, want about 30s", e.RetryAfter)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"-3":                            0,
		"soon":                          0,
		"120":                           2 * time.Minute,
		"Tue, 01 Dec 2026 10:00:05 GMT": 5 * time.Second,
		"Tue, 01 Dec 2026 09:00:00 GMT": 0,
	}
	for value, want := range cases {
		if got := retryAfter(value, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", value, got, want)
		}
	}
}

func TestCredentialErrors(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		c, _ := newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, status, map[string]string{"detail": bodySecret})
		})
		_, err := c.Decision(context.Background(), "s1")
		e := requireKind(t, err, KindCredentials)
		if e.Retryable() || e.Status != status {
			t.Fatalf("status %d: Retryable = %v, Status = %d", status, e.Retryable(), e.Status)
		}
	}
}

func TestNotFoundWithHTMLBody(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<html><body>Not Found "+bodySecret+"</body></html>")
	})
	_, err := c.Decision(context.Background(), "not-a-uuid")
	requireKind(t, err, KindNotFound)
}

func TestOtherClientErrorIsRequest(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"subscribed_events": bodySecret})
	})
	_, err := c.CreateDestination(context.Background(), Destination{Label: "x", URL: "https://x"})
	e := requireKind(t, err, KindRequest)
	if e.Retryable() {
		t.Fatal("400 is retryable")
	}
}

func TestServerErrorIsRetryable(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, bodySecret, http.StatusInternalServerError)
	})
	_, err := c.Destinations(context.Background())
	if e := requireKind(t, err, KindServer); !e.Retryable() || e.Status != 500 {
		t.Fatalf("Retryable = %v, Status = %d", e.Retryable(), e.Status)
	}
}

func TestMalformedBodies(t *testing.T) {
	bodies := map[string]string{
		"truncated":   `{"status":"Approved","session_id":"` + bodySecret,
		"not json":    bodySecret,
		"wrong shape": `["` + bodySecret + `"]`,
		"null":        `null`,
		"wrong type":  `{"status":{"x":"` + bodySecret + `"}}`,
		"empty":       ``,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			c, _ := newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, body)
			})
			_, err := c.Decision(context.Background(), "s1")
			requireKind(t, err, KindMalformed)
		})
	}
}

func TestHugeBodyIsMalformed(t *testing.T) {
	chunk := []byte(strings.Repeat("x", 64<<10))
	c, _ := newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"`))
		for written := 0; written < 10<<20; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client hung up, as it should
			}
		}
	})
	_, err := c.Decision(context.Background(), "s1")
	requireKind(t, err, KindMalformed)
}

// countingBody is an endless response body that counts what is read.
type countingBody struct{ read atomic.Int64 }

func (b *countingBody) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	b.read.Add(int64(len(p)))
	return len(p), nil
}

func (b *countingBody) Close() error { return nil }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestBodyReadIsBounded(t *testing.T) {
	body := &countingBody{}
	transport := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: body,
			ContentLength: -1, Request: r}, nil
	})
	c, err := New(Config{Key: testKey, MaxBody: 1 << 20, HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Destinations(context.Background())
	requireKind(t, err, KindMalformed)
	if limit := int64(1<<20) + 1 + drainLimit + 64<<10; body.read.Load() > limit {
		t.Fatalf("read %d bytes of an endless body, want at most %d", body.read.Load(), limit)
	}
}

func TestTimeoutIsServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Key: testKey,
		HTTPClient: &http.Client{Timeout: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Sessions(context.Background(), SessionFilter{VendorData: "user-42"}, "")
	e := requireKind(t, err, KindServer)
	if !e.Retryable() || strings.Contains(err.Error(), "user-42") || strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("error = %v", err)
	}
	if !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("error %q does not say timeout", err)
	}
}

func TestConnectionRefusedIsServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c, err := New(Config{BaseURL: base, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Decision(context.Background(), "s1")
	requireKind(t, err, KindServer)
	if strings.Contains(err.Error(), base) {
		t.Fatalf("error quotes the URL: %v", err)
	}
}

func TestSessionsPagination(t *testing.T) {
	rows := []string{"a", "b", "c", "d", "e"}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/v3/sessions/" || r.Header.Get("x-api-key") != testKey ||
			q.Get("status") != "Approved,In Review" || q.Get("vendor_data") != "user 1" ||
			q.Get("date_from") != "2026-01-02" || q.Get("limit") != "2" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		offset, _ := strconv.Atoi(q.Get("offset"))
		end := min(offset+2, len(rows))
		var results []map[string]any
		for _, id := range rows[offset:end] {
			results = append(results, map[string]any{"session_id": id, "status": "Approved",
				"vendor_data": "user 1", "features": []string{"ID_VERIFICATION"}})
		}
		var next any
		if end < len(rows) {
			q.Set("offset", strconv.Itoa(end))
			next = srv.URL + "/v3/sessions/?" + q.Encode()
		}
		writeJSON(w, 200, map[string]any{"count": len(rows), "next": next, "previous": nil, "results": results})
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	f := SessionFilter{Status: []didit.Status{didit.StatusApproved, didit.StatusInReview},
		VendorData: "user 1", DateFrom: time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC), Limit: 2}
	var got []string
	cursor, pages := "", 0
	for {
		page, err := c.Sessions(context.Background(), f, cursor)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		for _, row := range page.Results {
			got = append(got, row.SessionID)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if pages != 3 || strings.Join(got, "") != "abcde" {
		t.Fatalf("pages = %d, rows = %v", pages, got)
	}
}

func TestNextLinkToAnotherHostIsRefused(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	c, _ := newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"results": []any{}})
	})
	_, err := c.Sessions(context.Background(), SessionFilter{}, other.URL+"/v3/sessions/?offset=50")
	e := requireKind(t, err, KindRequest)
	if !strings.Contains(e.Error(), "elsewhere") {
		t.Fatalf("error = %v", e)
	}
	_, err = c.DestinationDeliveries(context.Background(), "d1", DeliveryFilter{}, other.URL+"/x")
	requireKind(t, err, KindRequest)
	if elsewhere.Load() != 0 {
		t.Fatalf("the other host received %d requests", elsewhere.Load())
	}
}

func TestCrossHostRedirectIsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	})
	_, err := c.WebhookConfig(context.Background())
	requireKind(t, err, KindRequest)
	if elsewhere.Load() != 0 {
		t.Fatal("redirect to another host was followed")
	}
}

func TestDecisionReducedWithDate(t *testing.T) {
	date := time.Date(2026, 12, 3, 8, 30, 0, 0, time.UTC)
	var path string
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.EscapedPath()
		w.Header().Set("Date", date.Format(http.TimeFormat))
		_, _ = io.WriteString(w, `{
			"session_id": "s/1", "status": "In Review", "vendor_data": "user-1",
			"contact_details": {"email": "ada@example.com", "phone": "+100"},
			"id_verifications": [{"first_name": "Ada", "last_name": "Lovelace"}],
			"aml_screenings": [{"node_id": "feature_aml_1", "status": "In Review", "total_hits": 2,
				"hits": [{"id": "h1", "match": true, "first_name": "Ada"}, {"id": "h2", "review_status": "False Positive"}]}]
		}`)
	})
	res, err := c.Decision(context.Background(), "s/1")
	if err != nil {
		t.Fatal(err)
	}
	if path != "/v3/session/s%2F1/decision/" {
		t.Errorf("path = %q", path)
	}
	if !res.Date.Equal(date) {
		t.Errorf("Date = %v, want %v", res.Date, date)
	}
	d := res.Decision
	if d.Status != didit.StatusInReview || d.ContactEmail() != "ada@example.com" || d.SessionID != "s/1" {
		t.Errorf("decision = %+v", d)
	}
	hits := d.AMLHits()
	if len(hits) != 1 || hits[0].ID != "h1" || hits[0].NodeID != "feature_aml_1" {
		t.Errorf("hits = %+v", hits)
	}
	if d.AMLScreenings[0].Hits[1].NodeID != "feature_aml_1" {
		t.Errorf("node id not propagated to every hit")
	}
	encoded, _ := json.Marshal(res)
	if strings.Contains(string(encoded), "first_name") || strings.Contains(string(encoded), "Lovelace") {
		t.Errorf("reduced decision keeps personal data: %s", encoded)
	}
}

func TestDecisionWithoutDate(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Date"] = nil // suppress the server's own Date
		_, _ = io.WriteString(w, `{"status":"Approved"}`)
	})
	res, err := c.Decision(context.Background(), "s1")
	if err != nil || !res.Date.IsZero() {
		t.Fatalf("Date = %v, err = %v", res.Date, err)
	}
}

func TestSessionDeliveriesDecodesEncodedStrings(t *testing.T) {
	sent := `{"session_id":"s1","status":"Approved","webhook_type":"status.updated","event_id":"e1"}`
	header, _ := json.Marshal(map[string]string{"X-Signature-V2": "abc", "X-Timestamp": "1700000000"})
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v3/session/s1/webhooks/" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, 200, []map[string]any{
			{"uuid": "w2", "session_id": "s1", "webhook_type": "status.updated", "response_status": 200,
				"created_at": "2026-12-01T10:00:00Z", "request_header": string(header), "request_body": sent},
			{"uuid": "w1", "session_id": "s1", "webhook_type": "status.updated", "response_status": 500,
				"request_header": map[string]string{"X-Timestamp": "1"},
				"request_body":   map[string]string{"event_id": "e1"}},
		})
	})
	ds, err := c.SessionDeliveries(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 {
		t.Fatalf("deliveries = %d", len(ds))
	}
	if string(ds[0].RequestBody) != sent || ds[0].RequestHeader["X-Signature-V2"] != "abc" || !ds[0].Delivered() {
		t.Errorf("first delivery = %+v", ds[0])
	}
	if ds[1].Delivered() || ds[1].RequestHeader["X-Timestamp"] != "1" {
		t.Errorf("second delivery = %+v", ds[1])
	}
	var body map[string]string
	if err := json.Unmarshal(ds[1].RequestBody, &body); err != nil || body["event_id"] != "e1" {
		t.Errorf("object request_body = %s", ds[1].RequestBody)
	}
}

func TestDestinationDeliveryBadHeaderIsMalformed(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"uuid": "x1", "request_header": "{" + bodySecret})
	})
	_, err := c.DestinationDelivery(context.Background(), "d1", "x1")
	requireKind(t, err, KindMalformed)
}

func TestResendSessionDeliveryPath(t *testing.T) {
	var method, path string
	var bodyLen int
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		method, path = r.Method, r.URL.EscapedPath()
		b, _ := io.ReadAll(r.Body)
		bodyLen = len(b)
		writeJSON(w, 200, map[string]any{"uuid": "w9", "response_status": 200, "request_body": "{}"})
	})
	d, err := c.ResendSessionDelivery(context.Background(), "s1", "w 1")
	if err != nil {
		t.Fatal(err)
	}
	if method != http.MethodPost || path != "/v3/session/s1/webhook/w%201/resend" || bodyLen != 0 {
		t.Errorf("request = %s %s with %d body bytes", method, path, bodyLen)
	}
	if d.UUID != "w9" || string(d.RequestBody) != "{}" {
		t.Errorf("delivery = %+v", d)
	}
}

func TestResendDestinationDeliveryPath(t *testing.T) {
	var path string
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		path = r.Method + " " + r.URL.Path
		w.WriteHeader(http.StatusNoContent)
	})
	if _, err := c.ResendDestinationDelivery(context.Background(), "d1", "x1"); err != nil {
		t.Fatal(err)
	}
	if path != "POST /v3/webhook/destinations/d1/deliveries/x1/resend/" {
		t.Errorf("request = %s", path)
	}
}

// captureJSON returns a handler that records the method, path and JSON
// body of a request, then answers 204.
func captureJSON(method, path *string, body *map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		*method, *path = r.Method, r.URL.Path
		if r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "no JSON content type", http.StatusUnsupportedMediaType)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func TestBulkUpdateAMLHitsBody(t *testing.T) {
	var method, path string
	var body map[string]any
	c, _ := newTestClient(t, captureJSON(&method, &path, &body))
	err := c.BulkUpdateAMLHits(context.Background(), "s1", "feature_aml_1", []HitReview{
		{HitID: "h1", ReviewStatus: ReviewFalsePositive},
		{HitID: "h2", ReviewStatus: ReviewConfirmedMatch},
	})
	if err != nil {
		t.Fatal(err)
	}
	if method != http.MethodPatch || path != "/v3/session/s1/bulk-update-aml-hit-status/" {
		t.Errorf("request = %s %s", method, path)
	}
	want := `{"hit_updates":[{"hit_id":"h1","review_status":"False Positive"},` +
		`{"hit_id":"h2","review_status":"Confirmed Match"}],"node_id":"feature_aml_1"}`
	if got, _ := json.Marshal(body); string(got) != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	body = nil
	if err := c.BulkUpdateAMLHits(context.Background(), "s1", "", []HitReview{{HitID: "h1"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := body["node_id"]; ok {
		t.Errorf("empty node_id sent: %v", body)
	}
}

func TestUpdateAMLHitBody(t *testing.T) {
	var method, path string
	var body map[string]any
	c, _ := newTestClient(t, captureJSON(&method, &path, &body))
	if err := c.UpdateAMLHit(context.Background(), "s1", "", HitReview{HitID: "h1", ReviewStatus: ReviewInconclusive}); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(body)
	if path != "/v3/session/s1/update-aml-hit-status/" || string(got) != `{"hit_id":"h1","review_status":"Inconclusive"}` {
		t.Errorf("request = %s %s %s", method, path, got)
	}
}

func TestCreateDestination(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		_ = json.NewDecoder(r.Body).Decode(&in)
		if r.Method != http.MethodPost || r.URL.Path != "/v3/webhook/destinations/" || in["enabled"] != true ||
			fmt.Sprint(in["subscribed_events"]) != "[status.updated]" || in["secret_shared_key"] != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		in["uuid"], in["secret_shared_key"], in["summary"] = "d1", "whsec", map[string]any{}
		writeJSON(w, http.StatusCreated, in)
	})
	d, err := c.CreateDestination(context.Background(), Destination{Label: "main", URL: "https://x.example/hook",
		Enabled: true, SubscribedEvents: []string{"status.updated"}, Secret: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	if d.UUID != "d1" || d.Secret != "whsec" || d.Label != "main" {
		t.Errorf("destination = %+v", d)
	}
}

func TestDestinationDeliveriesQuery(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/v3/webhook/destinations/d1/deliveries/" || q.Get("date_to") != "2026-12-31" || q.Get("limit") != "10" {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		writeJSON(w, 200, map[string]any{"count": 1, "next": nil, "results": []map[string]any{
			{"uuid": "x1", "session_id": "s1", "response_status": 502, "response_time_ms": 12, "status": "failed"}}})
	})
	page, err := c.DestinationDeliveries(context.Background(), "d1",
		DeliveryFilter{DateTo: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), Limit: 10}, "")
	if err != nil {
		t.Fatal(err)
	}
	if page.Count != 1 || page.Next != "" || len(page.Results) != 1 || page.Results[0].Delivered() {
		t.Errorf("page = %+v", page)
	}
}

func TestWebhookConfigPatch(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		_ = json.NewDecoder(r.Body).Decode(&in)
		if r.Method != http.MethodPatch || in["rotate_secret_key"] != true || len(in) != 1 {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		writeJSON(w, 200, map[string]any{"webhook_url": nil, "webhook_version": "v3", "secret_shared_key": "new"})
	})
	cfg, err := c.PatchWebhookConfig(context.Background(), WebhookPatch{RotateSecret: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URL != nil || cfg.Secret != "new" || cfg.WebhookVersion != "v3" {
		t.Errorf("config = %+v", cfg)
	}
}

func TestEmptyIDIsRequestError(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
		t.Error("request made for an empty id")
	})
	_, err := c.Decision(context.Background(), "")
	requireKind(t, err, KindRequest)
}
