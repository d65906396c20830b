package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.temporal.io/sdk/log"
)

func env(kv ...string) Getenv {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestChooseFollowsTheRule(t *testing.T) {
	for _, tc := range []struct {
		name               string
		env                Getenv
		exporter, protocol string
	}{
		{"nothing set: no exporter, not OpenTelemetry's localhost:4318", env(), "", ""},
		{"an endpoint", env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), "otlp", "http/protobuf"},
		{"a traces endpoint", env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces"), "otlp", "http/protobuf"},
		{"grpc", env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), "otlp", "grpc"},
		{"the traces protocol wins", env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"), "otlp", "grpc"},
		{"exporter named without endpoint", env("OTEL_TRACES_EXPORTER", "otlp"), "otlp", "http/protobuf"},
		{"console", env("OTEL_TRACES_EXPORTER", "console"), "console", ""},
		{"none wins over an endpoint", env("OTEL_TRACES_EXPORTER", "none", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), "", ""},
		{"disabled wins over everything", env("OTEL_SDK_DISABLED", "true", "OTEL_TRACES_EXPORTER", "otlp",
			"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), "", ""},
		{"disabled is case-insensitive", env("OTEL_SDK_DISABLED", "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), "", ""},
		{"disabled=false leaves it on", env("OTEL_SDK_DISABLED", "false", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), "otlp", "http/protobuf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exporter, protocol, err := Choose(tc.env)
			if err != nil || exporter != tc.exporter || protocol != tc.protocol {
				t.Fatalf("Choose = %q, %q, %v; want %q, %q", exporter, protocol, err, tc.exporter, tc.protocol)
			}
		})
	}
}

func TestChooseRefusesWhatItDoesNotKnow(t *testing.T) {
	for _, e := range []Getenv{
		env("OTEL_TRACES_EXPORTER", "zipkin"),
		env("OTEL_TRACES_EXPORTER", "otlp,console"),
		env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
	} {
		if exporter, _, err := Choose(e); err == nil {
			t.Errorf("Choose = %q and no error", exporter)
		}
	}
}

func TestSetupOffInstallsNothing(t *testing.T) {
	tr, err := Setup(context.Background(), "test", env(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Enabled() || tr.TracerProvider() != nil {
		t.Fatal("tracing on with no OTEL_* set")
	}
	if len(tr.Interceptors) != 0 {
		t.Fatalf("interceptors %v with tracing off", tr.Interceptors)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLogLinesCarryTheTrace(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil)))
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "delivery")
	defer span.End()

	logger.InfoContext(ctx, "inside")
	logger.Info("outside")
	// The Temporal SDK's activity logger adds the interceptor's keys.
	log.With(log.NewStructuredLogger(logger), "TraceID", span.SpanContext().TraceID(), "SpanID", span.SpanContext().SpanID()).Info("sdk")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	want := map[string]string{"trace_id": span.SpanContext().TraceID().String(), "span_id": span.SpanContext().SpanID().String()}
	for i, l := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if i == 1 {
				if _, ok := got[k]; ok {
					t.Errorf("line without a span has %s: %s", k, l)
				}
				continue
			}
			if got[k] != v {
				t.Errorf("line %d: %s = %v, want %s: %s", i, k, got[k], v, l)
			}
		}
		if _, ok := got["TraceID"]; ok {
			t.Errorf("the SDK's key was not renamed: %s", l)
		}
	}
}
