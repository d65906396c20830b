package workerapp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
	"github.com/diditflow/diditflow/workflows"
)

// Metrics is the worker's Prometheus registry: the Temporal SDK's own
// metrics (task latencies, activity failures, poller counts...), the
// activities' outcomes, and gauges read from the records.
type Metrics struct {
	Registry *prometheus.Registry
	closer   io.Closer
	// sdk is the handler the Temporal client reports into, and through it
	// the workflows' own counters.
	sdk client.MetricsHandler
}

// NewMetrics returns the registry and the handler to give the Temporal
// client, so the SDK reports into the same registry.
func NewMetrics(log *slog.Logger) (*Metrics, client.MetricsHandler) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:       reg,
		DefaultTimerType: tallyprom.HistogramTimerType,
		// tally's default buckets end at 10 s, where histogram_quantile
		// stops: a schedule-to-start latency of minutes (a Didit API
		// backlog, workers down) must be measurable.
		DefaultHistogramBuckets: sdkLatencyBuckets,
		OnRegisterError:         func(err error) { log.Warn("metrics: register", "error", err) },
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	sdk := sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope))
	return &Metrics{Registry: reg, closer: closer, sdk: sdk}, sdk
}

// startWorkflowCounters creates, at zero, every series of the counters the
// workflows keep through workflow.GetMetricsHandler: an alert on increase()
// sees the first parked step only if its series existed before, and a
// dashboard panel shows 0 rather than no data. A series is the one a
// workflow counts into only if its labels are the very ones the SDK gives
// every workflow metric (its RootTags, TaskQueueTags and WorkflowTags),
// which the e2e suite checks (TestShippedQueriesNameExportedMetrics).
func (m *Metrics) startWorkflowCounters(namespace, taskQueue string) {
	kinds := []string{workflows.FlagInDoubt, workflows.FlagUndeliverable, workflows.FlagRecipientRefused,
		workflows.FlagUnusableDecision, workflows.FlagDecisionUnavailable, workflows.FlagCaseNotOpened, workflows.FlagNotAnnounced}
	for _, wt := range []string{contract.SessionWorkflowType, contract.AMLCaseWorkflowType} {
		h := m.sdk.WithTags(map[string]string{
			"namespace": namespace, "client_name": "temporal_go", "worker_type": "none", "activity_type": "none",
			"task_queue": taskQueue, "workflow_type": wt,
		})
		h.Counter("diditflow_steps_parked")
		for _, action := range []string{contract.RetrySignal, contract.SkipSignal} {
			h.WithTags(map[string]string{"action": action}).Counter("diditflow_steps_released")
		}
		for _, kind := range kinds {
			k := h.WithTags(map[string]string{"kind": kind})
			k.Counter("diditflow_flags_raised")
			k.Counter("diditflow_flags_cleared")
		}
	}
}

// sdkLatencyBuckets are the SDK's histograms' buckets, in seconds: from a
// local activity's milliseconds to the hour a parked step or a paced queue
// can wait.
var sdkLatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// gaugeSource is what the records' gauges are read from: the store.
type gaugeSource interface {
	Gauges(ctx context.Context) (store.Gauges, error)
}

// watchStore adds the gauges read from the records, read now and then
// every interval (METRICS_GAUGE_INTERVAL) until ctx ends or stop is called.
func (m *Metrics) watchStore(ctx context.Context, src gaugeSource, every time.Duration, log *slog.Logger) (stop func()) {
	t := time.NewTicker(every)
	// A read may take the interval, never more: the next one is due.
	stopReads := m.readGauges(ctx, src, t.C, every, log)
	return func() {
		stopReads()
		t.Stop()
	}
}

// readGauges registers the records' gauges and reads them once now, then at
// each tick, until ctx ends or stop is called. A scrape serves the last
// reading: however many scrapes come, the records see one read per tick.
// stop returns once no read is running.
func (m *Metrics) readGauges(ctx context.Context, src gaugeSource, ticks <-chan time.Time, timeout time.Duration, log *slog.Logger) (stop func()) {
	g := &storeGauges{}
	g.last.Store(&gaugeReading{err: errNotReadYet})
	m.Registry.MustRegister(g)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			g.read(ctx, src, timeout, log)
			select {
			case <-ctx.Done():
				return
			case <-ticks:
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

var errNotReadYet = errors.New("the records have not been read yet")

// storeGauges serves the last reading of the records' gauges. The records
// are shared by every worker, so each reports the same values: dashboards
// and alerts take max(), not sum(). Before the first reading, and after a
// failed one, the gauges are NaN rather than stale numbers.
type storeGauges struct {
	last atomic.Pointer[gaugeReading]
}

type gaugeReading struct {
	v   store.Gauges
	err error
}

func (g *storeGauges) read(ctx context.Context, src gaugeSource, timeout time.Duration, log *slog.Logger) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := src.Gauges(rctx)
	if err != nil && ctx.Err() != nil {
		return // stopping: keep what was read last
	}
	if err != nil {
		log.Warn("metrics: reading the records' gauges failed; they report NaN until the next reading", "error", err)
	}
	g.last.Store(&gaugeReading{v: v, err: err})
}

var (
	amlOpenDesc = prometheus.NewDesc("diditflow_aml_cases_open",
		"AML cases waiting for compliance's decision.", nil, nil)
	amlOverdueDesc = prometheus.NewDesc("diditflow_aml_cases_overdue",
		"Open AML cases past escalation: AML_ESCALATE_AFTER reminders sent and no decision.", nil, nil)
	attentionDesc = prometheus.NewDesc("diditflow_sessions_needing_attention",
		"Sessions flagged for an operator (a parked step or an untrusted decision).", nil, nil)
	sessionsDesc = prometheus.NewDesc("diditflow_sessions",
		"Verification records by their current Didit status.", []string{"status"}, nil)
)

func (g *storeGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{amlOpenDesc, amlOverdueDesc, attentionDesc, sessionsDesc} {
		ch <- d
	}
}

func (g *storeGauges) Collect(ch chan<- prometheus.Metric) {
	r := g.last.Load()
	value := func(n int) float64 {
		if r.err != nil {
			return math.NaN()
		}
		return float64(n)
	}
	ch <- prometheus.MustNewConstMetric(amlOpenDesc, prometheus.GaugeValue, value(r.v.OpenAMLCases))
	ch <- prometheus.MustNewConstMetric(amlOverdueDesc, prometheus.GaugeValue, value(r.v.OverdueAMLCases))
	ch <- prometheus.MustNewConstMetric(attentionDesc, prometheus.GaugeValue, value(r.v.NeedsAttention))
	// Every known status, at zero when no record has it, so a panel's
	// series do not come and go.
	seen := map[string]bool{}
	for _, s := range didit.Statuses {
		seen[string(s)] = true
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, value(r.v.Sessions[string(s)]), string(s))
	}
	for s, n := range r.v.Sessions {
		if !seen[s] {
			ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(n), s)
		}
	}
}

// Serve exposes /metrics on addr until ctx ends.
func (m *Metrics) Serve(ctx context.Context, addr string, log *slog.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: m.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("worker metrics listening", "addr", l.Addr().String())
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}

func (m *Metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	return mux
}

// Close flushes the SDK's metrics scope.
func (m *Metrics) Close() error { return m.closer.Close() }
