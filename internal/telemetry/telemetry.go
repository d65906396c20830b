// Package telemetry sets up a process's OpenTelemetry tracing from the
// standard OTEL_* variables, and the log handler that stamps each line with
// the trace it was written in.
//
// The rule: tracing is on when an OTLP endpoint is set
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or
// OTEL_TRACES_EXPORTER names an exporter (otlp or console); otherwise no
// exporter runs, where OpenTelemetry's own default would send to
// localhost:4318. OTEL_SDK_DISABLED=true turns it off whatever else is set;
// the Go SDK does not read that variable, so this package does.
//
// When tracing is off nothing is installed: the receiver takes no tracing
// middleware and the Temporal client no interceptor, so an untraced process
// pays nothing for it.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"

	"github.com/diditflow/diditflow/internal/lograte"
)

// Instrumentation is the name diditflow's own tracers go by.
const Instrumentation = "github.com/diditflow/diditflow"

// ExportTimeout bounds one export to the collector. Exports run off the
// request path (spans are batched), so a collector that does not answer
// costs a goroutine's wait, never a delivery's.
const ExportTimeout = 10 * time.Second

// Tracing is one process's tracing: off (the zero value) or an SDK
// tracer provider exporting to a collector.
type Tracing struct {
	provider *sdktrace.TracerProvider
	// Exporter says what runs: "otlp (http/protobuf)", "otlp (grpc)",
	// "console" or "" when off.
	Exporter string
	// Interceptors are the Temporal client's: the SDK's OpenTelemetry
	// interceptor, which carries the trace through SignalWithStart into
	// the workflow and each activity. None when off.
	Interceptors []interceptor.ClientInterceptor
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t != nil && t.provider != nil }

// TracerProvider is the provider to trace with; nil when tracing is off.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if !t.Enabled() {
		return nil
	}
	return t.provider
}

// Shutdown exports what is still buffered and stops the exporter, within
// ctx's deadline: a collector that does not answer delays the exit by at
// most that long.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush spans: %w", err)
	}
	return nil
}

// Close flushes the spans still buffered, giving the collector
// ExportTimeout to take them, and logs what it could not: the mains call it
// on their way out (SIGTERM included).
func (t *Tracing) Close(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), ExportTimeout)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("tracing: spans lost at shutdown", "error", err)
	}
}

// Getenv is how Setup reads the environment; tests pass a map's lookup.
type Getenv func(string) string

// Setup reads the OTEL_* variables and, when they turn tracing on, installs
// a tracer provider as OpenTelemetry's global one (the Didit API client and
// the mailer trace through it) with W3C trace context and baggage
// propagation. service names the process unless OTEL_SERVICE_NAME does.
// Export failures are logged at most once a minute.
func Setup(ctx context.Context, service string, getenv Getenv, log *slog.Logger) (*Tracing, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	exporter, protocol, err := Choose(getenv)
	if err != nil || exporter == "" {
		return &Tracing{}, err
	}
	var exp sdktrace.SpanExporter
	name := exporter
	switch exporter {
	case "console":
		exp, err = stdouttrace.New()
	case "otlp":
		name = "otlp (" + protocol + ")"
		if protocol == "grpc" {
			exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithTimeout(ExportTimeout))
		} else {
			exp, err = otlptracehttp.New(ctx, otlptracehttp.WithTimeout(ExportTimeout))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("trace exporter %s: %w", name, err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default.
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER(_ARG), parent-based
	// always-on by default.
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithExportTimeout(ExportTimeout)),
		sdktrace.WithResource(res),
	)
	i, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer: tp.Tracer(Instrumentation),
		// Queries are how the UI and operators read a session's state;
		// a span per look would bury the sessions' own traces.
		DisableQueryTracing: true,
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("temporal tracing interceptor: %w", err), tp.Shutdown(ctx))
	}
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	errLog := slog.New(lograte.New(log.Handler(), 1.0/60, 1, nil))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		errLog.Warn("tracing: spans not exported", "error", err)
	}))
	log.Info("tracing on", "exporter", name, "service", serviceName(res, service))
	return &Tracing{provider: tp, Exporter: name, Interceptors: []interceptor.ClientInterceptor{i}}, nil
}

// Choose applies the rule of the package comment to the environment: the
// exporter to run ("otlp", "console" or "" for none) and, for otlp, the
// protocol ("http/protobuf" or "grpc"). An exporter or protocol it does not
// know is an error, so that a typo does not silently turn tracing off.
func Choose(getenv Getenv) (exporter, protocol string, err error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return "", "", nil
	}
	switch names := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); names {
	case "":
		if getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
			return "", "", nil
		}
		exporter = "otlp"
	default:
		for _, n := range strings.Split(names, ",") {
			switch n = strings.TrimSpace(n); n {
			case "none":
			case "otlp", "console":
				if exporter != "" && exporter != n {
					return "", "", fmt.Errorf("OTEL_TRACES_EXPORTER=%q: name one exporter, otlp or console", names)
				}
				exporter = n
			default:
				return "", "", fmt.Errorf("OTEL_TRACES_EXPORTER=%q: %q is not otlp, console or none", names, n)
			}
		}
		if exporter != "otlp" {
			return exporter, "", nil
		}
	}
	protocol = getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol {
	case "":
		protocol = "http/protobuf"
	case "http/protobuf", "grpc":
	default:
		return "", "", fmt.Errorf("OTLP protocol %q: diditflow exports http/protobuf or grpc", protocol)
	}
	return exporter, protocol, nil
}

func serviceName(res *resource.Resource, fallback string) string {
	if v, ok := res.Set().Value("service.name"); ok {
		return v.AsString()
	}
	return fallback
}

// Variables are the OTEL_* variables that configure a process's tracing:
// the ones Setup reads and the ones the SDK and its exporters read.
var Variables = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_CERTIFICATE",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
	"OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_EXPORT_TIMEOUT",
}
