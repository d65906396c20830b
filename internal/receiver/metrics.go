package receiver

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/diditflow/diditflow/didit"
)

// metrics are the receiver's Prometheus metrics. Labels take a few fixed
// values each; no session, event or user ever becomes a label.
type metrics struct {
	deliveries *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	signal     *prometheus.HistogramVec
	inFlight   prometheus.Gauge
	bodyBytes  prometheus.Histogram
	// refusalLogsDropped counts refusal log lines left out past the rate.
	refusalLogsDropped prometheus.Counter

	// series holds the deliveries and duration series by outcome and
	// reason, both fixed sets (see delivered).
	mu     sync.RWMutex
	series map[outcomeReason]deliverySeries
}

// newMetrics registers the receiver's metrics on reg; replayEntries is read
// at each scrape.
func newMetrics(reg prometheus.Registerer, replayEntries func() int) *metrics {
	m := &metrics{
		series: map[outcomeReason]deliverySeries{},
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diditflow_webhook_deliveries_total",
			Help: "Didit deliveries by outcome (accepted, replay, test, ignored, unauthorized, bad_request, too_large, timeout, unavailable) and reason.",
		}, []string{"outcome", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "diditflow_webhook_request_duration_seconds",
			Help:    "Time from a delivery's arrival to its answer, by outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"outcome"}),
		signal: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "diditflow_temporal_signal_with_start_duration_seconds",
			Help:    "Latency of SignalWithStartWorkflow calls, by result (ok, error).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "diditflow_webhook_requests_in_flight",
			Help: "Deliveries being handled now.",
		}),
		bodyBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "diditflow_webhook_body_bytes",
			Help:    "Size of delivery bodies read (capped at the body limit).",
			Buckets: prometheus.ExponentialBuckets(256, 4, 8),
		}),
		refusalLogsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "diditflow_webhook_refusal_log_lines_dropped_total",
			Help: "Log lines of refused deliveries (4xx) not written because they came faster than LOG_REFUSALS_PER_SECOND; diditflow_webhook_deliveries_total counts every delivery.",
		}),
	}
	replayCache := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "diditflow_webhook_replay_cache_entries",
		Help: "Accepted deliveries remembered to answer their exact replays without a signal (at most REPLAY_CACHE_SIZE).",
	}, func() float64 { return float64(replayEntries()) })
	reg.MustRegister(m.deliveries, m.duration, m.signal, m.inFlight, m.bodyBytes, m.refusalLogsDropped, replayCache)
	m.initSeries()
	m.signal.WithLabelValues("ok")
	m.signal.WithLabelValues("error")
	return m
}

// outcomeReason is one (outcome, reason) pair of the deliveries counter.
type outcomeReason struct{ outcome, reason string }

// delivered counts one delivery and observes its duration. The series are
// looked up once and kept: a label lookup per request is a hash and an
// allocation on the path a flood of forged deliveries takes.
func (m *metrics) delivered(outcome, reason string, elapsed time.Duration) {
	s := m.seriesOf(outcomeReason{outcome, reason})
	s.count.Inc()
	s.duration.Observe(elapsed.Seconds())
}

func (m *metrics) seriesOf(key outcomeReason) deliverySeries {
	m.mu.RLock()
	s, ok := m.series[key]
	m.mu.RUnlock()
	if !ok {
		s = deliverySeries{m.deliveries.WithLabelValues(key.outcome, key.reason), m.duration.WithLabelValues(key.outcome)}
		m.mu.Lock()
		m.series[key] = s
		m.mu.Unlock()
	}
	return s
}

// initSeries creates, at zero, the deliveries series that alerts watch
// (refusals by reason, unavailable) and the common outcomes: increase()
// sees the first failure only if its series existed before it.
func (m *metrics) initSeries() {
	for _, o := range []string{"accepted", "replay", "test", "ignored", "too_large"} {
		m.seriesOf(outcomeReason{o, ""})
	}
	m.seriesOf(outcomeReason{"unavailable", "temporal"})
	m.seriesOf(outcomeReason{"unavailable", "busy"})
	m.seriesOf(outcomeReason{"timeout", "slow_body"})
	m.seriesOf(outcomeReason{"bad_request", "unreadable_body"})
	for _, r := range reasons {
		outcome := "unauthorized"
		if r.err == didit.ErrNotDiditEvent {
			outcome = "bad_request"
		}
		m.seriesOf(outcomeReason{outcome, r.label})
	}
}

type deliverySeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// NewRegistry returns a registry with the Go runtime and process collectors,
// for the receiver's metrics to join.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// reasons names every verification failure with a fixed label value.
var reasons = []struct {
	err   error
	label string
}{
	{didit.ErrNoSecret, "no_secret"},
	{didit.ErrMissingTimestamp, "missing_timestamp"},
	{didit.ErrInvalidTimestamp, "invalid_timestamp"},
	{didit.ErrTimestampTooOld, "timestamp_too_old"},
	{didit.ErrTimestampInFuture, "timestamp_in_future"},
	{didit.ErrTimestampMismatch, "timestamp_mismatch"},
	{didit.ErrNoSignature, "no_signature"},
	{didit.ErrMalformedSignature, "malformed_signature"},
	{didit.ErrSignatureMismatch, "signature_mismatch"},
	{didit.ErrNotDiditEvent, "not_an_event"},
}

// reasonLabel maps an outcome's error to its label; "" when there is none.
func reasonLabel(out outcome) string {
	if out.err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(out.err, r.err) {
			return r.label
		}
	}
	switch {
	case out.err == errBusy:
		return "busy"
	case out.err == errSlowBody:
		return "slow_body"
	}
	switch out.result {
	case "unavailable":
		return "temporal"
	case "bad_request":
		return "unreadable_body"
	}
	return "other"
}
