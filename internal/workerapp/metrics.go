package workerapp

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"

	"github.com/diditflow/diditflow/internal/store"
)

// Metrics is the worker's Prometheus registry: the Temporal SDK's own
// metrics (task latencies, activity failures, poller counts...), the
// activities' outcomes, and gauges read from the records.
type Metrics struct {
	Registry *prometheus.Registry
	closer   io.Closer
}

// NewMetrics returns the registry and the handler to give the Temporal
// client, so the SDK reports into the same registry.
func NewMetrics(log *slog.Logger) (*Metrics, client.MetricsHandler) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:       reg,
		DefaultTimerType: tallyprom.HistogramTimerType,
		OnRegisterError:  func(err error) { log.Warn("metrics: register", "error", err) },
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	return &Metrics{Registry: reg, closer: closer}, sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope))
}

// watchStore adds gauges read from the records at each scrape.
func (m *Metrics) watchStore(st *store.Store) {
	gauge := func(name, help string, pick func(store.Gauges) int) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			g, err := st.Gauges(ctx)
			if err != nil {
				return math.NaN()
			}
			return float64(pick(g))
		})
	}
	m.Registry.MustRegister(
		gauge("diditflow_aml_cases_open", "AML cases waiting for compliance's decision.",
			func(g store.Gauges) int { return g.OpenAMLCases }),
		gauge("diditflow_sessions_needing_attention", "Sessions flagged for an operator (a parked step or an untrusted decision).",
			func(g store.Gauges) int { return g.NeedsAttention }),
	)
}

// Serve exposes /metrics on addr until ctx ends.
func (m *Metrics) Serve(ctx context.Context, addr string, log *slog.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
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

// Close flushes the SDK's metrics scope.
func (m *Metrics) Close() error { return m.closer.Close() }
