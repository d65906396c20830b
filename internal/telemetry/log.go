package telemetry

import (
	"context"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/trace"
)

// LogHandler wraps h so that a line written with a context that carries a
// recorded span has trace_id and span_id, the keys a log backend joins to
// the trace. The Temporal SDK names them TraceID and SpanID in its workflow
// and activity loggers; they are renamed so that one query finds both.
func LogHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ next slog.Handler }

func (t traceHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.next.Enabled(ctx, l)
}

func (t traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return t.next.Handle(ctx, r)
}

func (t traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var renamed []slog.Attr
	for i, a := range attrs {
		if key, ok := sdkKeys[a.Key]; ok {
			if renamed == nil {
				renamed = slices.Clone(attrs)
			}
			renamed[i] = slog.String(key, a.Value.String())
		}
	}
	if renamed != nil {
		attrs = renamed
	}
	return traceHandler{t.next.WithAttrs(attrs)}
}

func (t traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{t.next.WithGroup(name)}
}

// sdkKeys maps the Temporal tracing interceptor's log keys to ours.
var sdkKeys = map[string]string{"TraceID": "trace_id", "SpanID": "span_id"}
