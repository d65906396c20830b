package receiver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	code := m.Run()
	launch.StopTemporal()
	os.Exit(code)
}

const (
	fixtureSecret = "test-secret-do-not-use"
	fixtureTime   = 1767225600
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "..", "didit", "testdata", "fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func sign(t testing.TB, body []byte) didit.Headers {
	t.Helper()
	h, err := didit.Signer{Secret: fixtureSecret}.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// withSession returns the approved fixture re-signed for a fresh session, so
// tests sharing one dev server never see each other's workflows.
func withSession(t testing.TB, name, session string) []byte {
	t.Helper()
	var old struct {
		SessionID string `json:"session_id"`
	}
	body := fixture(t, name)
	if err := json.Unmarshal(body, &old); err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(body, []byte(old.SessionID), []byte(session))
}

// countingTemporal passes calls to a real client and counts them, so tests
// can prove that a rejected delivery never reached Temporal.
type countingTemporal struct {
	Temporal
	signals atomic.Int64
}

func (c *countingTemporal) SignalWithStartWorkflow(ctx context.Context, id, signal string, arg any,
	opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	c.signals.Add(1)
	return c.Temporal.SignalWithStartWorkflow(ctx, id, signal, arg, opts, wf, args...)
}

type harness struct {
	url string
	// metricsURL serves the metrics, apart from the webhook's listener.
	metricsURL string
	temporal   *countingTemporal
	receiver   *Receiver
}

func newHarness(t testing.TB, tc Temporal, mutate func(*Config)) *harness {
	t.Helper()
	counting := &countingTemporal{Temporal: tc}
	cfg := Config{
		Verifier:  &didit.Verifier{Secrets: []string{fixtureSecret}, Now: func() time.Time { return time.Unix(fixtureTime, 0) }},
		TaskQueue: "receiver-test",
	}
	if mutate != nil {
		mutate(&cfg)
	}
	rcv := New(counting, cfg)
	srv := httptest.NewServer(rcv.Handler())
	t.Cleanup(srv.Close)
	metrics := httptest.NewServer(rcv.MetricsHandler())
	t.Cleanup(metrics.Close)
	return &harness{url: srv.URL, metricsURL: metrics.URL, temporal: counting, receiver: rcv}
}

type response struct {
	code int
	body map[string]string // its string members
	raw  []byte
}

func (h *harness) post(t testing.TB, body []byte, headers didit.Headers, extra ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+"/webhooks/didit", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "DiditWebhook/2.0 +https://didit.me")
	headers.Set(req.Header)
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	return h.do(t, req)
}

func (h *harness) do(t testing.TB, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{code: resp.StatusCode, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (h *harness) get(t testing.TB, path string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h.do(t, req)
}

func hexHMAC(body []byte) string {
	m := hmac.New(sha256.New, []byte(fixtureSecret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestRejectedDeliveriesNeverReachTemporal(t *testing.T) {
	h := newHarness(t, launch.UnreachableTemporal(t), func(c *Config) { c.MaxBodyBytes = 8 << 10 })
	approved := fixture(t, "status-updated-approved.json")
	good := sign(t, approved)
	forged := good
	forged.Signature = strings.Repeat("0", 64)
	forged.SignatureV2 = strings.Repeat("0", 64)
	large := fixture(t, "status-updated-declined-aml-hit.json") // 9 KiB, over the 8 KiB cap
	notEvent := []byte(`{"timestamp":1767225600,"webhook_type":"status.updated"}`)
	notJSON := []byte(`timestamp=1767225600`)
	notJSONHeaders := didit.Headers{Signature: hexHMAC(notJSON), Timestamp: "1767225600"}
	entity := []byte(`{"session_id":"u-1","status":"FLAGGED","timestamp":1767225600,"webhook_type":"user.status.updated"}`)
	// Console test deliveries, known by their signed bodies (SPEC §2.5):
	// Didit's test vendor_data and no event_id.
	consoleTest := []byte(`{"created_at":1767225600,"metadata":{"test_webhook":true},"session_id":"t-1","status":"Approved",` +
		`"timestamp":1767225600,"vendor_data":"test-vendor-data-123","webhook_type":"status.updated"}`)
	testVendor := []byte(`{"session_id":"t-1","status":"Approved","timestamp":1767225600,"created_at":1767225600,` +
		`"vendor_data":"test-vendor-data-123","webhook_type":"status.updated"}`)

	cases := []struct {
		name    string
		body    []byte
		headers didit.Headers
		extra   []string
		code    int
	}{
		{"forged signatures", approved, forged, nil, http.StatusUnauthorized},
		{"no signature headers", approved, didit.Headers{}, nil, http.StatusUnauthorized},
		{"malformed signature", approved, didit.Headers{Signature: "sha256=abc", Timestamp: good.Timestamp}, nil, http.StatusUnauthorized},
		{"stale timestamp", approved, didit.Headers{Signature: good.Signature, Timestamp: "1767225000"}, nil, http.StatusUnauthorized},
		{"signed body that is not an event", notEvent, sign(t, notEvent), nil, http.StatusBadRequest},
		{"signed body that is not JSON", notJSON, notJSONHeaders, nil, http.StatusBadRequest},
		{"body over the cap", large, sign(t, large), nil, http.StatusRequestEntityTooLarge},
		{"unknown webhook_type", entity, sign(t, entity), nil, http.StatusOK},
		{"console test delivery", consoleTest, sign(t, consoleTest), []string{didit.HeaderTestWebhook, "true"}, http.StatusOK},
		{"console test delivery without the header", testVendor, sign(t, testVendor), nil, http.StatusOK},
		{"forged console test delivery", consoleTest, forged, []string{didit.HeaderTestWebhook, "true"}, http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := h.post(t, c.body, c.headers, c.extra...)
			if got.code != c.code {
				t.Fatalf("status = %d %v, want %d", got.code, got.body, c.code)
			}
			if c.code == http.StatusUnauthorized && (len(got.body) != 1 || got.body["error"] != "unauthorized") {
				t.Fatalf("401 body %v must not say which check failed", got.body)
			}
		})
	}
	if n := h.temporal.signals.Load(); n != 0 {
		t.Fatalf("%d deliveries reached Temporal; none should have", n)
	}

	metrics := h.scrape(t)
	for _, want := range []string{
		`diditflow_webhook_deliveries_total{outcome="unauthorized",reason="signature_mismatch"} 2`,
		`diditflow_webhook_deliveries_total{outcome="unauthorized",reason="timestamp_too_old"} 1`,
		`diditflow_webhook_deliveries_total{outcome="bad_request",reason="not_an_event"} 2`,
		`diditflow_webhook_deliveries_total{outcome="too_large",reason=""} 1`,
		`diditflow_webhook_deliveries_total{outcome="ignored",reason=""} 1`,
		`diditflow_webhook_deliveries_total{outcome="test",reason=""} 2`,
		`diditflow_webhook_requests_in_flight 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, "9b2f4c1e") || strings.Contains(metrics, "user_01") {
		t.Error("/metrics must not name sessions or users")
	}
}

func (h *harness) scrape(t testing.TB) string {
	t.Helper()
	resp, err := http.Get(h.metricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return string(raw)
}

// TestTestHeaderAloneIsNotTrusted: X-Didit-Test-Webhook is outside the
// signature, so a verified real event that carries it is handed to Temporal
// like any other (here Temporal is down, so the answer is 503 and Didit
// retries).
func TestTestHeaderAloneIsNotTrusted(t *testing.T) {
	h := newHarness(t, launch.UnreachableTemporal(t), func(c *Config) { c.SignalTimeout = 300 * time.Millisecond })
	body := fixture(t, "status-updated-approved.json")
	got := h.post(t, body, sign(t, body), didit.HeaderTestWebhook, "true")
	if got.code != http.StatusServiceUnavailable || h.temporal.signals.Load() != 1 {
		t.Fatalf("answer %d after %d signals; want the event handed to Temporal (503 while it is down)",
			got.code, h.temporal.signals.Load())
	}
}

func TestBodyOverCapWithoutContentLength(t *testing.T) {
	h := newHarness(t, launch.UnreachableTemporal(t), func(c *Config) { c.MaxBodyBytes = 1024 })
	body := fixture(t, "status-updated-approved.json")
	req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/didit", io.MultiReader(bytes.NewReader(body)))
	req.ContentLength = -1 // chunked: the cap must hold while reading
	sign(t, body).Set(req.Header)
	if got := h.do(t, req); got.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413", got.code)
	}
}

func TestTemporalUnreachableAnswers503(t *testing.T) {
	h := newHarness(t, launch.UnreachableTemporal(t), func(c *Config) { c.SignalTimeout = 300 * time.Millisecond })
	body := fixture(t, "status-updated-approved.json")
	got := h.post(t, body, sign(t, body))
	if got.code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d %v, want 503 so that Didit retries", got.code, got.body)
	}
	if h.temporal.signals.Load() != 1 {
		t.Fatal("the delivery should have been offered to Temporal")
	}
	if got := h.get(t, "/readyz"); got.code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d, want 503", got.code)
	}
	if got := h.get(t, "/healthz"); got.code != http.StatusOK {
		t.Fatalf("/healthz = %d, want 200: the process is up", got.code)
	}
	metrics := h.scrape(t)
	for _, want := range []string{
		`diditflow_webhook_deliveries_total{outcome="unavailable",reason="temporal"} 1`,
		`diditflow_temporal_signal_with_start_duration_seconds_count{result="error"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	h := newHarness(t, launch.UnreachableTemporal(t), nil)
	if got := h.get(t, "/webhooks/didit"); got.code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /webhooks/didit = %d, want 405", got.code)
	}
}

func TestAcceptedDeliveryIsHeldByItsWorkflow(t *testing.T) {
	tc := launch.Temporal(t)
	h := newHarness(t, tc, nil)
	session := "it-accepted-" + t.Name() + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	body := withSession(t, "status-updated-approved.json", session)

	got := h.post(t, body, sign(t, body))
	if got.code != http.StatusOK || got.body["status"] != "accepted" {
		t.Fatalf("status = %d %v, want 200 accepted", got.code, got.body)
	}
	wantID := "didit-session-" + session
	if got.body["workflow_id"] != wantID {
		t.Fatalf("workflow_id = %q, want %q", got.body["workflow_id"], wantID)
	}
	if got := h.get(t, "/readyz"); got.code != http.StatusOK {
		t.Fatalf("/readyz = %d with Temporal up", got.code)
	}

	ctx := context.Background()
	desc, err := tc.DescribeWorkflow(ctx, wantID, "")
	if err != nil {
		t.Fatal(err)
	}
	if desc.WorkflowType.Name != contract.SessionWorkflowType || desc.TaskQueueName != "receiver-test" {
		t.Fatalf("workflow type %q on %q", desc.WorkflowType.Name, desc.TaskQueueName)
	}
	signals := signalsOf(t, tc, wantID, got.body["run_id"])
	if len(signals) != 1 {
		t.Fatalf("history holds %d signals, want 1", len(signals))
	}
	ev := signals[0].Event
	if ev.SessionID != session || ev.Status != didit.StatusApproved || ev.Decision == nil || signals[0].Proof.Scheme != didit.SchemeRaw {
		t.Fatalf("signal = %+v", signals[0])
	}
	if len(ev.Metadata) != 0 {
		t.Fatal("the business's metadata must not be copied into Temporal's history")
	}
}

func TestSameDeliveryTwiceIsOneWorkflow(t *testing.T) {
	tc := launch.Temporal(t)
	h := newHarness(t, tc, nil)
	session := "it-twice-" + t.Name() + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	body := withSession(t, "status-updated-approved.json", session)
	headers := sign(t, body)

	first := h.post(t, body, headers)
	second := h.post(t, body, headers)
	if first.code != http.StatusOK || second.code != http.StatusOK {
		t.Fatalf("statuses = %d, %d", first.code, second.code)
	}
	if first.body["run_id"] == "" || first.body["run_id"] != second.body["run_id"] {
		t.Fatalf("run ids %q and %q: the second delivery must reach the same run", first.body["run_id"], second.body["run_id"])
	}
	// Both deliveries are held by that run; the workflow drops the duplicate.
	if n := len(signalsOf(t, tc, "didit-session-"+session, first.body["run_id"])); n != 2 {
		t.Fatalf("run holds %d signals, want 2", n)
	}
}

func signalsOf(t testing.TB, tc client.Client, id, runID string) []contract.SessionEvent {
	t.Helper()
	var out []contract.SessionEvent
	it := tc.GetWorkflowHistory(context.Background(), id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		attrs := e.GetWorkflowExecutionSignaledEventAttributes()
		if attrs == nil {
			continue
		}
		if attrs.GetSignalName() != contract.EventSignal {
			t.Fatalf("signal name %q", attrs.GetSignalName())
		}
		// The history holds what the client's codec wrote: encrypted.
		var ev contract.SessionEvent
		if err := launch.Codec().DataConverter().FromPayload(attrs.GetInput().GetPayloads()[0], &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// A flood of forged deliveries writes the refusal log's burst, then lines
// at its rate, each saying how many it left out; the metrics count every
// delivery.
func TestRefusalLogIsRateLimitedAndMetricsCountEveryDelivery(t *testing.T) {
	var logs syncBuffer
	reg := NewRegistry()
	h := newHarness(t, launch.UnreachableTemporal(t), func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		c.Registry = reg
		c.RefusalLogRate, c.RefusalLogBurst = 0.001, 5 // no token comes back during the test
	})
	body := fixture(t, "status-updated-in-progress.json")
	forged := sign(t, body)
	forged.Signature, forged.SignatureV2, forged.SignatureSimple = strings.Repeat("0", 64), strings.Repeat("0", 64), ""
	for range 40 {
		if r := h.post(t, body, forged); r.code != http.StatusUnauthorized {
			t.Fatalf("forged delivery answered %d", r.code)
		}
	}
	if n := strings.Count(logs.String(), `"outcome":"unauthorized"`); n != 5 {
		t.Fatalf("%d refusal lines, want the burst of 5:\n%s", n, logs.String())
	}
	metric := func(name string, labels ...string) float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != name {
				continue
			}
		next:
			for _, m := range f.GetMetric() {
				for i, l := range m.GetLabel() {
					if i*2+1 < len(labels) && (l.GetName() != labels[i*2] || l.GetValue() != labels[i*2+1]) {
						continue next
					}
				}
				return m.GetCounter().GetValue()
			}
		}
		return -1
	}
	if got := metric("diditflow_webhook_deliveries_total", "outcome", "unauthorized", "reason", "signature_mismatch"); got != 40 {
		t.Errorf("deliveries counted %v, want 40", got)
	}
	if got := metric("diditflow_webhook_refusal_log_lines_dropped_total"); got != 35 {
		t.Errorf("dropped lines counted %v, want 35", got)
	}
}

// syncBuffer is a bytes.Buffer safe for the handler's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
