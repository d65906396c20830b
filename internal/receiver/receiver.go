// Package receiver is the HTTP front door: it verifies Didit's webhook
// deliveries and hands each one to its session's Temporal workflow.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/lograte"
	"github.com/diditflow/diditflow/internal/temporalclient"
)

// Temporal is what the receiver needs of a Temporal client.
type Temporal interface {
	SignalWithStartWorkflow(ctx context.Context, workflowID, signalName string, signalArg any,
		options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error)
	CheckHealth(ctx context.Context, request *client.CheckHealthRequest) (*client.CheckHealthResponse, error)
}

// Defaults for the zero values of Config.
const (
	DefaultMaxBodyBytes  = 1 << 20
	DefaultSignalTimeout = 3 * time.Second
	// DefaultRequestTimeout leaves room under Didit's 5 s timeout (SPEC
	// §3.1) for the signal's DefaultSignalTimeout after the body is read
	// and verified.
	DefaultRequestTimeout = 4500 * time.Millisecond
	readyTimeout          = 2 * time.Second
)

// Config configures a Receiver.
type Config struct {
	Verifier      *didit.Verifier
	TaskQueue     string
	MaxBodyBytes  int64         // zero means DefaultMaxBodyBytes
	SignalTimeout time.Duration // zero means DefaultSignalTimeout
	// RequestTimeout bounds the handling of one delivery, from its arrival:
	// reading its body, waiting for a turn to verify it, and the signal
	// (which gets SignalTimeout or what is left, whichever is less). Zero
	// means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Verifications caps the deliveries whose signatures are checked at
	// once when that may take building the body's canonical form
	// (X-Signature-V2 or X-Signature-Simple present): work in proportion to
	// the body that anyone can ask for without a secret. The others wait
	// their turn, within RequestTimeout. Zero means GOMAXPROCS.
	Verifications int
	Logger        *slog.Logger // nil discards
	// Registry receives the receiver's metrics, which MetricsHandler
	// serves; nil means a new one from NewRegistry.
	Registry *prometheus.Registry
	// ReplayCacheSize caps how many accepted deliveries the receiver
	// remembers, to answer their exact replays (the same verified body)
	// 200 without signalling Temporal again; zero turns that off.
	ReplayCacheSize int
	// ReplayCacheTTL is how long an accepted delivery is remembered; zero
	// means DefaultReplayCacheTTL.
	ReplayCacheTTL time.Duration
	// Now is the replay cache's clock; nil means time.Now.
	Now func() time.Time
	// RefusalLogRate caps the log lines of refused deliveries (4xx) per
	// second, with a burst of RefusalLogBurst; past it lines are dropped
	// and counted, and the next one written says how many. Zero or less
	// logs every refusal. The deliveries metric counts each one either way.
	RefusalLogRate  float64
	RefusalLogBurst int
	// TracerProvider, when not nil, traces each delivery (otelgin) as the
	// root of its trace; the span's context reaches the SignalWithStart, so
	// the workflow joins the trace. A caller's traceparent and baggage are
	// ignored: a delivery is unauthenticated when it arrives, and its
	// sender must not decide what is sampled (forcing a span per forged
	// request) nor put baggage into Temporal's headers.
	TracerProvider trace.TracerProvider
}

// Receiver serves POST /webhooks/didit, GET /healthz and GET /readyz.
type Receiver struct {
	temporal Temporal
	cfg      Config
	log      *slog.Logger
	// refusals logs refused deliveries under Config.RefusalLogRate.
	refusals *slog.Logger
	metrics  *metrics
	replays  *replayCache // nil when off
	// verifying holds a token for each verification under way that may
	// build a canonical form (Config.Verifications).
	verifying chan struct{}
}

// New returns a Receiver that signals workflows through t.
func New(t Temporal, cfg Config) *Receiver {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.SignalTimeout <= 0 {
		cfg.SignalTimeout = DefaultSignalTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Verifications <= 0 {
		cfg.Verifications = runtime.GOMAXPROCS(0)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = NewRegistry()
	}
	r := &Receiver{temporal: t, cfg: cfg, log: log,
		replays:   newReplayCache(cfg.ReplayCacheSize, cfg.ReplayCacheTTL, cfg.Now),
		verifying: make(chan struct{}, cfg.Verifications)}
	r.metrics = newMetrics(cfg.Registry, r.replayEntries)
	r.refusals = slog.New(lograte.New(log.Handler(), cfg.RefusalLogRate, cfg.RefusalLogBurst, r.metrics.refusalLogsDropped.Inc))
	return r
}

// replayEntries is how many accepted deliveries the replay cache holds.
func (r *Receiver) replayEntries() int {
	if r.replays == nil {
		return 0
	}
	return r.replays.entries()
}

// Handler returns the receiver's public routes: the webhook, /healthz and
// /readyz. Metrics are not among them (see MetricsHandler): their refusal
// reasons and volumes are for operators, not for whoever can reach the
// webhook.
func (r *Receiver) Handler() http.Handler {
	engine := gin.New()
	engine.HandleMethodNotAllowed = true
	// Didit follows no redirect, so a URL configured with a trailing slash
	// is served, not redirected (gin would answer 307).
	engine.RedirectTrailingSlash = false
	// Tracing outermost, so that a recovered panic is a 500 in its span
	// and its log line carries the trace.
	if tp := r.cfg.TracerProvider; tp != nil {
		engine.Use(otelgin.Middleware(serviceName, otelgin.WithTracerProvider(tp),
			otelgin.WithPropagators(propagation.NewCompositeTextMapPropagator()),
			// Probes and scrapes come every few seconds and say nothing
			// about a session.
			otelgin.WithGinFilter(func(c *gin.Context) bool { return strings.HasPrefix(c.FullPath(), "/webhooks/") })))
	}
	engine.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, err any) {
		r.log.ErrorContext(c.Request.Context(), "panic while handling request", "path", c.FullPath(), "panic", err)
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "internal error"})
	}))
	engine.POST("/webhooks/didit", r.receive)
	engine.POST("/webhooks/didit/", r.receive)
	engine.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	engine.GET("/readyz", r.ready)
	return engine
}

// MetricsHandler serves the receiver's metrics on /metrics, for a listener
// of its own that only operators reach (STARTER_METRICS_ADDR, loopback by
// default).
func (r *Receiver) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.cfg.Registry, promhttp.HandlerOpts{}))
	return mux
}

// outcome is how one delivery ended: the HTTP answer and what to log.
type outcome struct {
	status int
	body   gin.H
	result string // accepted, replay, test, ignored, unauthorized, bad_request, too_large, timeout, unavailable
	err    error
}

func (r *Receiver) receive(c *gin.Context) {
	start := time.Now()
	r.metrics.inFlight.Inc()
	defer r.metrics.inFlight.Dec()
	ev, proof, out := r.handle(c)
	elapsed := time.Since(start)
	reason := reasonLabel(out)
	r.metrics.delivered(out.result, reason, elapsed)
	r.logDelivery(c.Request.Context(), ev, proof, out, elapsed)
	annotate(trace.SpanFromContext(c.Request.Context()), ev, out.result, reason)
	if out.status == http.StatusUnauthorized {
		// The answer to every forged request, header and body made once.
		c.Writer.Header()["Content-Type"] = jsonContentType
		c.Writer.WriteHeader(out.status)
		_, _ = c.Writer.Write(unauthorizedBody)
		return
	}
	c.JSON(out.status, out.body)
}

// serviceName is the receiver's name in its spans' HTTP attributes.
const serviceName = "diditflow-starter"

// annotate adds to a delivery's span what an operator searches traces by:
// the outcome and, once verified, the session and its event. Nothing from
// the body beyond those identifiers: no person's data.
func annotate(span trace.Span, ev didit.Event, result, reason string) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String("diditflow.outcome", result))
	if ev.SessionID != "" {
		span.SetAttributes(attribute.String("didit.session_id", ev.SessionID),
			attribute.String("didit.webhook_type", string(ev.WebhookType)),
			attribute.String("didit.status", string(ev.Status)))
	}
	if reason != "" {
		span.SetAttributes(attribute.String("diditflow.reason", reason))
	}
}

var (
	unauthorizedBody = []byte(`{"error":"unauthorized"}`)
	// jsonContentType is shared by every 401; nothing appends to it.
	jsonContentType = []string{"application/json; charset=utf-8"}
)

func (r *Receiver) logDelivery(ctx context.Context, ev didit.Event, proof didit.Proof, out outcome, elapsed time.Duration) {
	level, log := slog.LevelInfo, r.log
	switch {
	case out.status >= 500:
		level = slog.LevelError
	case out.status >= 400:
		// A flood of forged deliveries must not cost a write each.
		level, log = slog.LevelWarn, r.refusals
	}
	// Attributes, not key-value pairs: nothing is boxed, so a line the
	// level or the rate drops costs no allocation.
	var buf [10]slog.Attr
	attrs := append(buf[:0],
		slog.String("outcome", out.result),
		slog.Int("status_code", out.status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000))
	if ev.SessionID != "" {
		// Didit's identifiers only: vendor_data and the decision may be
		// personal data and are never logged.
		attrs = append(attrs, slog.String("session_id", ev.SessionID), slog.String("event_id", ev.EventID),
			slog.String("webhook_type", string(ev.WebhookType)), slog.String("didit_status", string(ev.Status)),
			slog.String("scheme", proof.Scheme.String()))
	}
	if out.err != nil {
		attrs = append(attrs, slog.String("reason", out.err.Error()))
	}
	log.LogAttrs(ctx, level, "didit delivery", attrs...)
}

func (r *Receiver) handle(c *gin.Context) (didit.Event, didit.Proof, outcome) {
	// The delivery's own deadline, whatever the server's timeouts: a sender
	// that trickles its body, or a queue of verifications, cannot hold it
	// past the point where Didit has given up on the answer anyway.
	// It is a time, not a context: a context and its timer for every
	// request would be a flood's allocations, and only a wait for a turn
	// and the signal need one.
	deadline := time.Now().Add(r.cfg.RequestTimeout)
	buf := bodies.Get().(*[]byte)
	// Everything kept from the body is copied out of it (the parsed event
	// holds its own strings), so its buffer is reused once handled.
	defer putBody(buf)
	body, out, ok := r.readBody(c, buf, deadline)
	if !ok {
		return didit.Event{}, didit.Proof{}, out
	}
	ev, proof, err := r.verify(c.Request.Context(), deadline, body, didit.HeadersFrom(c.Request.Header))
	switch {
	case errors.Is(err, errBusy):
		// Too busy to tell a forgery from Didit in time: Didit retries a
		// 503, a forger gains nothing.
		return ev, proof, outcome{http.StatusServiceUnavailable, gin.H{"error": "temporarily unavailable, retry later"}, "unavailable", err}
	case errors.Is(err, didit.ErrNotDiditEvent):
		return ev, proof, outcome{http.StatusBadRequest, gin.H{"error": "not a Didit session event"}, "bad_request", err}
	case err != nil:
		// The reason is logged, never told: it would help a forger. The
		// answer is unauthorizedBody, rendered once.
		return ev, proof, outcome{http.StatusUnauthorized, nil, "unauthorized", err}
	}
	ev = ev.Authenticated(proof)
	if ev.ConsoleTest() {
		// Console test deliveries name sessions that do not exist. The test
		// header alone proves nothing: it is not signed.
		return ev, proof, outcome{http.StatusOK, gin.H{"status": "test delivery acknowledged"}, "test", nil}
	}
	if !ev.WebhookType.Known() {
		return ev, proof, outcome{http.StatusOK, gin.H{"status": "ignored", "reason": "unhandled webhook_type"}, "ignored", nil}
	}
	// A replay of a delivery Temporal already accepted is answered as that
	// delivery was, without a signal: Temporal holds it. The key is what the
	// signature authenticated, so nothing unverified can match one, and
	// every encoding of one delivery matches the same.
	var key replayKey
	if r.replays != nil {
		key = replayKey{digest: proof.Digest, envelopeOnly: proof.EnvelopeOnly}
		if runID, ok := r.replays.lookup(key); ok {
			return ev, proof, outcome{http.StatusOK, gin.H{"status": "accepted", "replay": true,
				"workflow_id": contract.SessionWorkflowID(ev.SessionID), "run_id": runID}, "replay", nil}
		}
	}
	run, err := r.signal(c.Request.Context(), deadline, ev, proof)
	if err != nil {
		return ev, proof, outcome{http.StatusServiceUnavailable, gin.H{"error": "temporarily unavailable, retry later"}, "unavailable", err}
	}
	if r.replays != nil {
		// Only now, with Temporal holding the event (invariant 1).
		r.replays.add(key, run.GetRunID())
	}
	return ev, proof, outcome{http.StatusOK, gin.H{"status": "accepted", "workflow_id": run.GetID(), "run_id": run.GetRunID()}, "accepted", nil}
}

// ungatedBytes is the largest body whose canonical form is built without
// waiting for a turn: its memory (at most 4x the body) is small beside what
// its connection holds, and its CPU (tens of microseconds) less than the
// request's own, so a turn would cost a flood of small forged deliveries
// more than it saves. Didit's deliveries are a few tens of KB at most; the
// bodies that cost the most are the largest.
const ungatedBytes = 64 << 10

// verify authenticates a delivery and reads its event. X-Signature, a keyed
// hash of the body, is checked first and alone: Didit signs every delivery
// with it, so an authentic one passes at that cost. Only a delivery it does
// not authenticate goes on to X-Signature-V2 (and -Simple, if allowed),
// which take the body's canonical form before any MAC can match: work
// anyone can ask for without a secret, so for a body over ungatedBytes at
// most Config.Verifications run at once, each holding its turn only while
// it verifies.
func (r *Receiver) verify(ctx context.Context, deadline time.Time, body []byte, h didit.Headers) (didit.Event, didit.Proof, error) {
	v := r.cfg.Verifier
	if len(body) <= ungatedBytes || (h.SignatureV2 == "" && (h.SignatureSimple == "" || !v.AllowSimple)) {
		return v.ConstructEvent(body, h)
	}
	if h.Signature != "" {
		ev, proof, err := v.ConstructEvent(body, didit.Headers{Signature: h.Signature, Timestamp: h.Timestamp})
		if !errors.Is(err, didit.ErrSignatureMismatch) {
			return ev, proof, err
		}
		h.Signature = "" // known not to match: not hashed again
	}
	if !r.takeTurn(ctx, deadline) {
		return didit.Event{}, didit.Proof{}, errBusy
	}
	defer func() { <-r.verifying }()
	return v.ConstructEvent(body, h)
}

// takeTurn takes a turn to verify, waiting until the deadline (or the
// sender hangs up) if none is free.
func (r *Receiver) takeTurn(ctx context.Context, deadline time.Time) bool {
	select {
	case r.verifying <- struct{}{}:
		return true
	default:
	}
	wait := time.NewTimer(time.Until(deadline))
	defer wait.Stop()
	select {
	case r.verifying <- struct{}{}:
		return true
	case <-wait.C:
	case <-ctx.Done():
	}
	return false
}

// readBody reads at most MaxBodyBytes into buf by the deadline; ok is false
// when out is the answer.
func (r *Receiver) readBody(c *gin.Context, buf *[]byte, deadline time.Time) (body []byte, out outcome, ok bool) {
	limit := r.cfg.MaxBodyBytes
	tooLarge := func() outcome {
		return outcome{http.StatusRequestEntityTooLarge, gin.H{"error": "body larger than " + strconv.FormatInt(limit, 10) + " bytes"}, "too_large", nil}
	}
	raw := c.Request.Body
	if c.Request.ContentLength > limit {
		// Refused before reading a byte of it.
		drainOversized(c, raw, limit)
		return nil, tooLarge(), false
	}
	_ = setReadDeadline(c.Writer, deadline)
	body, err := readAll(raw, (*buf)[:0], limit)
	*buf = body
	if err == nil {
		// Nothing more of this request is read; the server sets the next
		// request's own deadlines.
		_ = setReadDeadline(c.Writer, time.Time{})
	}
	switch {
	case errors.Is(err, errTooLarge):
		drainOversized(c, raw, limit)
		return nil, tooLarge(), false
	case err != nil && isTimeout(err):
		// 503, not 408: Didit retries a 5xx and no other 4xx, and a body
		// slow to arrive may be Didit's on a bad connection. The answer
		// comes before Didit's own 5 s timeout, and the connection, with
		// the rest of the body, is dropped.
		c.Header("Connection", "close")
		return nil, outcome{http.StatusServiceUnavailable, gin.H{"error": "body not received in time, retry later"}, "timeout", errSlowBody}, false
	case err != nil:
		return nil, outcome{http.StatusBadRequest, gin.H{"error": "could not read body"}, "bad_request", err}, false
	}
	r.metrics.bodyBytes.Observe(float64(len(body)))
	return body, outcome{}, true
}

func isTimeout(err error) bool {
	var timeout net.Error
	return errors.As(err, &timeout) && timeout.Timeout()
}

// setReadDeadline is http.ResponseController's SetReadDeadline without the
// controller, which every request would allocate: the writers gin wraps
// around the server's are unwrapped to the one that can.
func setReadDeadline(w http.ResponseWriter, t time.Time) error {
	for {
		switch rw := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			return rw.SetReadDeadline(t)
		case interface{ Unwrap() http.ResponseWriter }:
			w = rw.Unwrap()
		default:
			return http.ErrNotSupported
		}
	}
}

// drainTimeout bounds how long an oversized delivery is read and discarded.
const drainTimeout = 5 * time.Second

// drainOversized reads and discards the rest of an oversized body, at most
// four times the cap and for drainTimeout, then marks the connection to be
// closed after the 413. A client that sends its whole body before reading
// (most do) would otherwise meet a connection reset instead of the answer:
// closing a socket with unread data makes the kernel send RST, which
// destroys the answer in the client's buffers. Past the bound the receiver
// stops reading, so a hostile sender costs a bounded amount.
func drainOversized(c *gin.Context, body io.Reader, limit int64) {
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(drainTimeout))
	_, _ = io.CopyN(io.Discard, body, 4*limit)
	c.Header("Connection", "close")
}

// bodies recycles request buffers. Buffers that grew past 64 KiB (rare,
// hostile or huge) are dropped rather than kept.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// putBody returns a request buffer to the pool.
func putBody(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		bodies.Put(b)
	}
}

var (
	// errTooLarge: the body is longer than the limit.
	errTooLarge = errors.New("body larger than the limit")
	// errSlowBody: the body did not arrive within RequestTimeout.
	errSlowBody = errors.New("body not received within the request timeout")
	// errBusy: no turn to verify came within RequestTimeout.
	errBusy = errors.New("no turn to verify within the request timeout")
)

// readAll is io.ReadAll into b, failing with errTooLarge once more than
// limit bytes have come (http.MaxBytesReader's job, without allocating it
// for every request; drainOversized marks the connection to close, as
// MaxBytesReader would).
func readAll(r io.Reader, b []byte, limit int64) ([]byte, error) {
	for {
		if int64(len(b)) > limit {
			return b, errTooLarge
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		// At most one byte past the limit is read: enough to know.
		room := int64(cap(b) - len(b))
		if left := limit + 1 - int64(len(b)); left > 0 && left < room {
			room = left
		}
		n, err := r.Read(b[len(b) : len(b)+int(room)])
		b = b[:len(b)+n]
		if err == io.EOF {
			if int64(len(b)) > limit {
				return b, errTooLarge
			}
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// signal hands the event to its session workflow, starting the workflow if
// no run is open. Only its success lets the receiver answer 2xx.
func (r *Receiver) signal(ctx context.Context, deadline time.Time, ev didit.Event, proof didit.Proof) (client.WorkflowRun, error) {
	// Finish the call even if Didit hangs up: it will retry on its own, and
	// a half-made call is harder to reason about than a finished one. It
	// gets SignalTimeout, or what is left of the delivery's deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(r.cfg.SignalTimeout, time.Until(deadline)))
	defer cancel()

	// The business's metadata may hold personal data and the workflow never
	// needs it, so it stays out of Temporal's history.
	ev.Metadata = nil
	id := contract.SessionWorkflowID(ev.SessionID)
	start := time.Now()
	run, err := r.temporal.SignalWithStartWorkflow(ctx, id, contract.EventSignal,
		contract.SessionEvent{Event: ev, Proof: proof, ReceivedAt: time.Now().UTC()},
		temporalclient.SessionStartOptions(ev.SessionID, ev.Status, r.cfg.TaskQueue),
		contract.SessionWorkflowType, contract.SessionStart{SessionID: ev.SessionID})
	result := "ok"
	if err != nil {
		result = "error"
	}
	r.metrics.signal.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return run, err
}

func (r *Receiver) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	if _, err := r.temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		r.log.Warn("not ready: temporal unreachable", "reason", err.Error())
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "temporal unreachable"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// Probe asks a receiver listening on addr (":8080", "host:port") whether it
// is up, for container health checks.
func Probe(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz answered %d", resp.StatusCode)
	}
	return nil
}

// ServeMetrics serves h (MetricsHandler) on addr until ctx ends. It returns
// at once if addr cannot be listened on: the caller logs it and goes on, as
// deliveries do not need metrics.
func ServeMetrics(ctx context.Context, addr string, h http.Handler) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}
	return Serve(ctx, srv, l, time.Second)
}

// Serve runs srv until ctx ends, then stops accepting connections and lets
// in-flight requests finish for up to shutdownTimeout, so no delivery that
// Temporal accepted goes unanswered.
func Serve(ctx context.Context, srv *http.Server, l net.Listener, shutdownTimeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
