package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

// floats1e308 is a body of n bytes of 1e308, each a whole float that Python
// prints as 309 digits: the body that made an unauthenticated request cost
// 870 times its size before the canonical form had a limit.
func floats1e308(n int) []byte { return repeated("1e308", n) }

// repeated is a JSON array of item, as many as n bytes hold.
func repeated(item string, n int) []byte {
	b := append(make([]byte, 0, n), '[')
	for len(b)+len(item)+2 < n {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, item...)
	}
	return append(b, ']')
}

// slowTemporal is the real Temporal, answering each signal after a delay.
type slowTemporal struct {
	Temporal
	delay time.Duration
}

func (s slowTemporal) SignalWithStartWorkflow(ctx context.Context, id, signal string, arg any,
	opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	time.Sleep(s.delay)
	return s.Temporal.SignalWithStartWorkflow(ctx, id, signal, arg, opts, wf, args...)
}

// spaced is body re-encoded as a proxy might, with room to spare: the same
// canonical form, so X-Signature-V2 still verifies it, but not X-Signature,
// and over ungatedBytes, so it takes a turn to verify.
func spaced(body []byte) []byte {
	out := append([]byte{}, body[:len(body)-1]...)
	out = append(out, bytes.Repeat([]byte(" "), ungatedBytes)...)
	return append(out, '}')
}

// TestSlowTemporalHoldsNoVerificationTurn: a delivery gives its turn to
// verify back once verified, not after the signal, so deliveries that need
// one are not queued one at a time behind a slow Temporal: twelve at once,
// with one turn, all get through within a deadline that fits two signals,
// not twelve.
func TestSlowTemporalHoldsNoVerificationTurn(t *testing.T) {
	h := newHarness(t, slowTemporal{launch.Temporal(t), 500 * time.Millisecond}, func(c *Config) {
		c.Verifications = 1
		c.RequestTimeout = 2 * time.Second
		c.SignalTimeout = 1500 * time.Millisecond
	})
	var wg sync.WaitGroup
	codes := make(chan int, 12)
	for i := range 12 {
		body := withSession(t, "status-updated-approved.json", uniqueSession(t, fmt.Sprintf("slow-%d", i)))
		headers := sign(t, body)
		wg.Go(func() { codes <- h.post(t, spaced(body), headers).code })
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Fatalf("an honest delivery was answered %d behind a slow Temporal, want 200", code)
		}
	}
}

// TestAuthenticDeliveriesSkipTheVerificationQueue: a delivery X-Signature
// authenticates never waits for a turn to check X-Signature-V2, so forged
// bodies that hold every turn cannot delay Didit's deliveries; a large one
// that X-Signature does not authenticate (re-encoded on its way) waits its
// turn.
func TestAuthenticDeliveriesSkipTheVerificationQueue(t *testing.T) {
	tc := launch.Temporal(t)
	h := newHarness(t, tc, func(c *Config) { c.Verifications = 1 })
	// Every turn taken, as by forged bodies being canonicalised.
	h.receiver.verifying <- struct{}{}
	body := withSession(t, "status-updated-approved.json", uniqueSession(t, "skip-queue"))
	if got := h.post(t, body, sign(t, body)); got.code != http.StatusOK {
		t.Fatalf("an authentic delivery with every turn taken: %d %s, want 200", got.code, got.raw)
	}
	reencoded := spaced(body)
	v2 := sign(t, body)
	done := make(chan response, 1)
	go func() { done <- h.post(t, reencoded, v2) }()
	select {
	case got := <-done:
		t.Fatalf("a delivery only X-Signature-V2 can authenticate did not wait for a turn: %d", got.code)
	case <-time.After(200 * time.Millisecond):
	}
	<-h.receiver.verifying
	if got := <-done; got.code != http.StatusOK {
		t.Fatalf("once a turn was free: %d %s, want 200", got.code, got.raw)
	}
}

// TestHostileBodiesCostBoundedMemory: eight forged 1 MB bodies at once,
// each of which would make the verifier print 54 MB of digits, and eight
// more of the floats that cost it the most CPU, keep the receiver's heap
// growth under 100 MB and are each answered 401, never 503 and never a
// reset, while honest deliveries sent alongside are all accepted. (How long
// they take is for the benchmarks: the deadline here is long enough for
// the race detector.)
func TestHostileBodiesCostBoundedMemory(t *testing.T) {
	tc := launch.Temporal(t)
	h := newHarness(t, tc, func(c *Config) {
		c.TaskQueue = "receiver-hostile"
		c.RequestTimeout = time.Minute
	})
	hostile := [][]byte{floats1e308(1 << 20), repeated("9007199254740993.0", 1<<20)}
	forged := didit.Headers{Signature: strings.Repeat("0", 64), SignatureV2: strings.Repeat("0", 64), Timestamp: "1767225600"}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			for range 3 {
				req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/didit", bytes.NewReader(hostile[i%2]))
				forged.Set(req.Header)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- fmt.Errorf("hostile request %d: %w (a reset?)", i, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					errs <- fmt.Errorf("hostile request %d answered %d, want 401", i, resp.StatusCode)
				}
			}
		})
	}
	honest := 0
	wg.Go(func() {
		for i := range 10 {
			body := withSession(t, "status-updated-approved.json", uniqueSession(t, fmt.Sprintf("hostile-%d", i)))
			req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/didit", bytes.NewReader(body))
			sign(t, body).Set(req.Header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- fmt.Errorf("honest delivery %d: %w", i, err)
				return
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("honest delivery %d answered %d %s alongside the hostile ones, want 200", i, resp.StatusCode, raw)
				continue
			}
			honest++
		}
	})
	wg.Wait()
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	growth := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("heap growth at most %.1f MB over 48 hostile requests, 16 at a time; %d honest deliveries accepted", float64(growth)/(1<<20), honest)
	if growth > 100<<20 {
		t.Errorf("heap grew by %d MB, want under 100 MB", growth>>20)
	}
}

// reencoded returns variants of a signed body that X-Signature-V2 verifies,
// as anyone who captured the delivery could send them.
func reencoded(t *testing.T, body []byte) [][]byte {
	t.Helper()
	var indented bytes.Buffer
	if err := json.Indent(&indented, body, "", "\t"); err != nil {
		t.Fatal(err)
	}
	floats := regexp.MustCompile(`"(timestamp|created_at)":(\d+)`).ReplaceAll(body, []byte(`"$1":$2.0`))
	var variants [][]byte
	for _, b := range [][]byte{
		indented.Bytes(),
		floats,
		bytes.ReplaceAll(body, []byte(`":`), []byte(`" : `)),
		bytes.Replace(body, []byte(`{`), []byte("{\n  "), 1),
		bytes.Replace(body, []byte(`"decision":{`), []byte(`"decision":{"contact_details":{"email":"mallory@example.com"},`), 1),
		bytes.Replace(body, []byte(`"status":`), []byte(`"status":"Declined","status":`), 1),
	} {
		if bytes.Equal(b, body) {
			t.Fatal("a re-encoding changed nothing")
		}
		variants = append(variants, b)
	}
	return variants
}

// TestReencodingsOfOneDeliveryAreOneSignal: the replay cache is keyed on
// what the signature authenticated, so a delivery and its re-encodings (each
// verified by X-Signature-V2) are one signal, and what Temporal holds is the
// genuine event.
func TestReencodingsOfOneDeliveryAreOneSignal(t *testing.T) {
	tc := launch.Temporal(t)
	h := newHarness(t, tc, func(c *Config) { c.ReplayCacheSize = 100 })
	session := uniqueSession(t, "it-reencoded")
	body := withSession(t, "status-updated-approved.json", session)
	headers := sign(t, body)
	first := h.post(t, body, headers)
	if first.code != http.StatusOK {
		t.Fatalf("genuine delivery: %d %s", first.code, first.raw)
	}
	for i, variant := range reencoded(t, body) {
		got := h.post(t, variant, headers)
		if got.code != http.StatusOK || !got.answer(t).Replay {
			t.Errorf("re-encoding %d: %d %s, want a replay of the genuine delivery", i, got.code, got.raw)
		}
	}
	if n := h.temporal.signals.Load(); n != 1 {
		t.Fatalf("%d signals for one delivery and its re-encodings, want 1", n)
	}
	signals := signalsOf(t, tc, contract.SessionWorkflowID(session), first.answer(t).RunID)
	if len(signals) != 1 || signals[0].Event.Timestamp != fixtureTime || signals[0].Event.Status != didit.StatusApproved {
		t.Fatalf("Temporal holds %+v", signals)
	}
}

// TestSlowBodyIsCutOff: a body that does not arrive within RequestTimeout
// is answered 503 (which Didit retries: it may be Didit's, on a bad
// connection) and the connection closed, whatever the server's own
// timeouts (the test server has none).
func TestSlowBodyIsCutOff(t *testing.T) {
	h := newHarness(t, launch.UnreachableTemporal(t), func(c *Config) { c.RequestTimeout = 300 * time.Millisecond })
	body := fixture(t, "status-updated-approved.json")
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write(body[:100]) }() // and then nothing
	req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/didit", pr)
	req.ContentLength = int64(len(body))
	sign(t, body).Set(req.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !resp.Close {
		t.Fatalf("answer %d (close %v), want 503 and the connection closed", resp.StatusCode, resp.Close)
	}
	if h.temporal.signals.Load() != 0 {
		t.Fatal("a body never received reached Temporal")
	}
	if m := h.scrape(t); !strings.Contains(m, `diditflow_webhook_deliveries_total{outcome="timeout",reason="slow_body"} 1`) {
		t.Error("the cut-off delivery is not counted")
	}
}

// TestMetricsAreNotOnTheWebhookListener: the public handler serves no
// metrics; MetricsHandler does.
func TestMetricsAreNotOnTheWebhookListener(t *testing.T) {
	h := newHarness(t, launch.UnreachableTemporal(t), nil)
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics on the webhook's listener: %d, want 404", resp.StatusCode)
	}
	if !strings.Contains(h.scrape(t), "diditflow_webhook_deliveries_total") {
		t.Fatal("MetricsHandler serves no delivery metrics")
	}
}

// TestServeMetricsThatCannotListen returns the error at once, for the
// caller to log: a taken port never stops the starter.
func TestServeMetricsThatCannotListen(t *testing.T) {
	h := newHarness(t, launch.UnreachableTemporal(t), nil)
	taken := strings.TrimPrefix(h.url, "http://")
	done := make(chan error, 1)
	go func() { done <- ServeMetrics(t.Context(), taken, http.NotFoundHandler()) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("ServeMetrics on a taken port: %v, want an error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeMetrics on a taken port did not return")
	}
}
