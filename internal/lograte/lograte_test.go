package lograte

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestPastTheBurstLinesAreDroppedAndCounted(t *testing.T) {
	var buf bytes.Buffer
	var metric int
	// A rate so low that no token comes back during the test.
	h := New(slog.NewJSONHandler(&buf, nil), 0.001, 3, func() { metric++ })
	log := slog.New(h)
	for i := range 10 {
		log.Warn("refused", "n", i)
	}
	got := lines(t, &buf)
	if len(got) != 3 {
		t.Fatalf("%d lines written, want the burst of 3", len(got))
	}
	if h.Dropped() != 7 || metric != 7 {
		t.Fatalf("dropped %d, metric %d, want 7", h.Dropped(), metric)
	}
	for _, l := range got {
		if _, ok := l[SuppressedKey]; ok {
			t.Fatalf("a line before any drop says %v", l)
		}
	}
}

func TestTheNextWrittenLineSaysHowManyWereDropped(t *testing.T) {
	var buf bytes.Buffer
	h := New(slog.NewJSONHandler(&buf, nil), 0.001, 1, nil)
	log := slog.New(h)
	log.Warn("refused") // the burst
	log.Warn("refused")
	log.Warn("refused")
	// A token comes back: the state is reached in, as time would.
	h.state.limit.SetBurst(2)
	h.state.limit.SetLimit(1e9)
	log.Warn("refused again")
	got := lines(t, &buf)
	if len(got) != 2 {
		t.Fatalf("%d lines, want 2: %v", len(got), got)
	}
	if got[1][SuppressedKey] != float64(2) {
		t.Fatalf("second line %v, want %s=2", got[1], SuppressedKey)
	}
	log.Warn("and again")
	if got := lines(t, &buf); len(got) != 3 || got[2][SuppressedKey] != nil {
		t.Fatalf("the count is reported once: %v", got)
	}
}

func TestDerivedHandlersShareTheLimit(t *testing.T) {
	var buf bytes.Buffer
	h := New(slog.NewJSONHandler(&buf, nil), 0.001, 2, nil)
	a := slog.New(h).With("component", "a")
	b := slog.New(h).WithGroup("g").With("component", "b")
	a.Warn("x")
	b.Warn("x")
	a.Warn("x")
	b.Warn("x")
	if got := lines(t, &buf); len(got) != 2 || h.Dropped() != 2 {
		t.Fatalf("%d lines, %d dropped; want 2 and 2", len(got), h.Dropped())
	}
}

func TestLevelsAreTheNextHandlers(t *testing.T) {
	h := New(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}), 1, 1, nil)
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelWarn) {
		t.Fatal("Enabled must follow the wrapped handler's level")
	}
	// Checking costs no token.
	for range 100 {
		h.Enabled(context.Background(), slog.LevelWarn)
	}
	if !h.state.limit.Allow() {
		t.Fatal("Enabled spent the token")
	}
}

func TestNoLimitPassesEverything(t *testing.T) {
	var buf bytes.Buffer
	h := New(slog.NewJSONHandler(&buf, nil), 0, 0, nil)
	log := slog.New(h)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				log.Warn("x")
			}
		})
	}
	wg.Wait()
	if got := strings.Count(buf.String(), "\n"); got != 800 || h.Dropped() != 0 {
		t.Fatalf("%d lines, %d dropped; want 800 and 0", got, h.Dropped())
	}
}

// BenchmarkDropped is the cost of a line past the rate: no write, no
// allocation.
func BenchmarkDropped(b *testing.B) {
	h := New(slog.NewJSONHandler(&bytes.Buffer{}, nil), 0.001, 1, nil)
	log := slog.New(h)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(ctx, slog.LevelWarn, "didit delivery", slog.String("outcome", "unauthorized"),
			slog.Int("status_code", 401), slog.Float64("duration_ms", 0.01), slog.String("reason", "no signature matches"))
	}
}
