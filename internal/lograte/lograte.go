// Package lograte caps how many lines a slog.Handler writes per second, so
// a flood of requests that each deserve a line (forged webhook deliveries)
// costs its metrics, not a log write each. Exact counts belong in metrics;
// the log keeps a sample and says how many lines it left out.
package lograte

import (
	"context"
	"log/slog"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// SuppressedKey is the attribute a written line carries when lines were
// dropped since the one before it: how many.
const SuppressedKey = "suppressed_lines"

// Handler passes at most its rate of records (with a burst) to the next
// handler and drops the rest, counting them. Handlers derived with
// WithAttrs and WithGroup share the limit and the count.
type Handler struct {
	next  slog.Handler
	state *state
}

type state struct {
	limit *rate.Limiter
	// pending counts the records dropped since the last one written.
	pending atomic.Uint64
	dropped atomic.Uint64
	onDrop  func()
}

// New wraps next. perSecond <= 0 disables the limit (every record is
// passed); burst < 1 is taken as 1. onDrop, if not nil, is called for each
// dropped record (to count it in a metric) and must be cheap.
func New(next slog.Handler, perSecond float64, burst int, onDrop func()) *Handler {
	limit := rate.NewLimiter(rate.Inf, 0)
	if perSecond > 0 {
		limit = rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
	}
	return &Handler{next: next, state: &state{limit: limit, onDrop: onDrop}}
}

// Enabled reports the next handler's level check; the rate is applied in
// Handle, so a caller that checks Enabled spends no token.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle writes r if the rate allows, with the number of records dropped
// since the last written one, and otherwise drops it.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if !h.state.limit.Allow() {
		h.state.pending.Add(1)
		h.state.dropped.Add(1)
		if h.state.onDrop != nil {
			h.state.onDrop()
		}
		return nil
	}
	if n := h.state.pending.Swap(0); n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Uint64(SuppressedKey, n))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a handler with attrs under the same limit.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs), state: h.state}
}

// WithGroup returns a handler with a group under the same limit.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), state: h.state}
}

// Dropped is how many records the handler (and those derived from it) has
// dropped since it was made.
func (h *Handler) Dropped() uint64 { return h.state.dropped.Load() }
