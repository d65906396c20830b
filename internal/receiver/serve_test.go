package receiver

import (
	"bytes"
	"context"
	"fmt"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

// gatedTemporal holds each signal until released, so a test can shut the
// server down while a delivery is in flight.
type gatedTemporal struct {
	Temporal
	entered chan struct{}
	release chan struct{}
}

func (g *gatedTemporal) SignalWithStartWorkflow(ctx context.Context, id, signal string, arg any,
	opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Temporal.SignalWithStartWorkflow(ctx, id, signal, arg, opts, wf, args...)
}

func TestServeFinishesInFlightDeliveriesOnShutdown(t *testing.T) {
	gate := &gatedTemporal{Temporal: launch.Temporal(t), entered: make(chan struct{}), release: make(chan struct{})}
	rcv := New(gate, Config{
		Verifier:  &didit.Verifier{Secrets: []string{fixtureSecret}, Now: func() time.Time { return time.Unix(fixtureTime, 0) }},
		TaskQueue: "receiver-test",
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, &http.Server{Handler: rcv.Handler()}, l, time.Minute) }()

	body := withSession(t, "status-updated-approved.json", "it-shutdown")
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+l.Addr().String()+"/webhooks/didit", strings.NewReader(string(body)))
		sign(t, body).Set(req.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		answered <- resp.StatusCode
	}()

	<-gate.entered // the delivery is inside the handler
	cancel()       // SIGTERM
	// New connections are refused once shutdown has begun.
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", l.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(gate.release)
	if code := <-answered; code != http.StatusOK {
		t.Fatalf("in-flight delivery answered %d, want 200", code)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

// panicTemporal fails the benchmark if a forged delivery reaches Temporal.
type panicTemporal struct{ Temporal }

func (panicTemporal) SignalWithStartWorkflow(context.Context, string, string, any, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	panic("a forged delivery reached Temporal")
}

// BenchmarkForgedDelivery is the whole 401 path through the router: a fresh
// timestamp and three well-formed wrong signatures, so every scheme runs.
func BenchmarkForgedDelivery(b *testing.B) {
	body := fixture(b, "status-updated-declined-aml-hit.json")
	h := sign(b, body)
	zero := strings.Repeat("0", 64)
	h.Signature, h.SignatureV2, h.SignatureSimple = zero, zero, zero
	handler := New(panicTemporal{}, Config{
		Verifier:  &didit.Verifier{Secrets: []string{fixtureSecret}, AllowSimple: true, Now: func() time.Time { return time.Unix(fixtureTime, 0) }},
		TaskQueue: "bench",
	}).Handler()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/didit", strings.NewReader(string(body)))
		h.Set(req.Header)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkAcceptedDelivery is the whole 200 path through the router against
// the real dev server: verification, parsing, the replay cache (on, at
// REPLAY_CACHE_SIZE's default; every delivery is new, so each is a miss and
// an add) and SignalWithStart. Profile it with -cpuprofile to see the
// receiver's own share next to Temporal's.
func BenchmarkAcceptedDelivery(b *testing.B) {
	tc := launch.Temporal(b)
	handler := New(tc, Config{
		Verifier:        &didit.Verifier{Secrets: []string{fixtureSecret}, Now: func() time.Time { return time.Unix(fixtureTime, 0) }},
		TaskQueue:       "bench-accepted",
		ReplayCacheSize: 10000,
	}).Handler()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		body := withSession(b, "status-updated-approved.json", fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i))
		req := httptest.NewRequest(http.MethodPost, "/webhooks/didit", strings.NewReader(string(body)))
		sign(b, body).Set(req.Header)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkForgedFlood is one delivery of make bench's forged flood through
// the router, as the starter runs by default: the small In Progress body, a
// fresh timestamp, wrong X-Signature and X-Signature-V2, two secrets (a
// rotation), JSON logs at info under the refusal log rate. The request is
// reused, so the allocations counted are the receiver's own.
func BenchmarkForgedFlood(b *testing.B) { benchmarkForgedFlood(b, nil) }

// BenchmarkForgedFloodTraced is the flood with tracing on: every refusal
// is a sampled span, batched to an exporter that drops them.
func BenchmarkForgedFloodTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	benchmarkForgedFlood(b, tp)
}

// BenchmarkForgedFloodTracedOneInTen samples one trace in ten, as
// OTEL_TRACES_SAMPLER=parentbased_traceidratio with _ARG=0.1 does.
func BenchmarkForgedFloodTracedOneInTen(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	benchmarkForgedFlood(b, tp)
}

func benchmarkForgedFlood(b *testing.B, tp trace.TracerProvider) {
	body := fixture(b, "status-updated-in-progress.json")
	zero := strings.Repeat("0", 64)
	h := didit.Headers{Signature: zero, SignatureV2: zero, Timestamp: strconv.Itoa(fixtureTime)}
	handler := New(panicTemporal{}, Config{
		Verifier:       &didit.Verifier{Secrets: []string{fixtureSecret, "previous-secret"}, Now: func() time.Time { return time.Unix(fixtureTime, 0) }},
		TaskQueue:      "bench",
		Logger:         slog.New(slog.NewJSONHandler(io.Discard, nil)),
		RefusalLogRate: 10, RefusalLogBurst: 50,
		TracerProvider: tp,
	}).Handler()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/didit", nil)
	h.Set(req.Header)
	reader := bytes.NewReader(body)
	req.Body = io.NopCloser(reader)
	req.ContentLength = int64(len(body))
	rec := &discardWriter{header: http.Header{}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		reader.Reset(body)
		clear(rec.header)
		handler.ServeHTTP(rec, req)
		if rec.status != http.StatusUnauthorized {
			b.Fatalf("status %d", rec.status)
		}
	}
}

// discardWriter is an http.ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// A delivery's span is the root of its trace: a traceparent the caller
// sends (here forcing the sampled flag on a forged delivery) is ignored.
func TestDeliverySpanIgnoresCallersTraceContext(t *testing.T) {
	// As telemetry.Setup installs it in the starter.
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	handler := New(panicTemporal{}, Config{Verifier: &didit.Verifier{Secrets: []string{fixtureSecret}}, TracerProvider: tp}).Handler()
	const callers = "4bf92f3577b34da6a3ce929d0e0e4736"
	req := httptest.NewRequest(http.MethodPost, "/webhooks/didit", strings.NewReader(`{}`))
	req.Header.Set("traceparent", "00-"+callers+"-00f067aa0ba902b7-01")
	req.Header.Set("baggage", "user=someone@example.com")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d", rec.Code)
	}
	// Under ParentBased(NeverSample), a span exists only if the caller's
	// sampled flag was taken as its parent's.
	if got := spans.GetSpans(); len(got) != 0 {
		t.Fatalf("the caller's traceparent decided the sampling: %d spans, trace %s", len(got), got[0].SpanContext.TraceID())
	}
}
