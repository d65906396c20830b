package workerapp

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/harness/pgtest"
	"github.com/diditflow/diditflow/internal/store"
)

// countedGauges counts the reads of the records' gauges.
type countedGauges struct {
	*store.Store
	reads atomic.Int64
}

func (c *countedGauges) Gauges(ctx context.Context) (store.Gauges, error) {
	c.reads.Add(1)
	return c.Store.Gauges(ctx)
}

// Fifty scrapes at once, on the real PostgreSQL, while events are being
// recorded: every scrape answers, every event is recorded, the records'
// gauges are read once per tick however many scrapes come, and the worker
// never holds more connections than DATABASE_MAX_CONNS.
func TestScrapesWhileRecordingStayWithinTheConnectionBound(t *testing.T) {
	const maxConns, scrapes, writers, eventsEach = 3, 50, 4, 25
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	app := u.Query().Get("application_name")
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := t.Context()

	cfg, err := config.ReadWorker()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL, cfg.DatabaseMaxConns = dsn, maxConns
	st, err := OpenStore(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, _ := NewMetrics(log)
	t.Cleanup(func() { m.Close() })
	src := &countedGauges{Store: st}
	ticks := make(chan time.Time)
	stop := m.readGauges(ctx, src, ticks, time.Minute, log)
	t.Cleanup(stop)
	srv := httptest.NewServer(m.handler())
	t.Cleanup(srv.Close)
	waitForMetric(t, srv.URL, "diditflow_aml_cases_open 0") // the first reading

	// What the database sees of the worker: its connections, by the
	// application_name of the test's DSN, sampled from a connection of
	// another name until the scrapes and writes are done.
	q := u.Query()
	q.Set("application_name", app+"_watch")
	u.RawQuery = q.Encode()
	watch, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watch.Close() })
	var peak atomic.Int64
	sampled := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			var n int64
			if err := watch.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err == nil && n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()

	var wg sync.WaitGroup
	writeErrs := make(chan error, writers*eventsEach)
	for w := range writers {
		wg.Go(func() {
			for i := range eventsEach {
				_, err := st.RecordEvent(ctx, store.EventRecord{SessionID: fmt.Sprintf("s-%d-%d", w, i), EventKey: "k",
					WebhookType: "status.updated", Status: string(didit.StatusApproved),
					StatusRank: didit.StatusApproved.Rank(), EventCreatedAt: 1})
				if err != nil {
					writeErrs <- err
				}
			}
		})
	}
	bodies := make(chan string, scrapes)
	for range scrapes {
		wg.Go(func() {
			body, err := scrape(ctx, srv.URL)
			if err != nil {
				t.Errorf("scrape: %v", err)
			}
			bodies <- body
		})
	}
	wg.Wait()
	close(done)
	<-sampled
	close(writeErrs)
	close(bodies)

	for err := range writeErrs {
		t.Errorf("recording an event during the scrapes: %v", err)
	}
	for body := range bodies {
		if !strings.Contains(body, `diditflow_sessions{status="Approved"}`) {
			t.Fatalf("a scrape lacks the records' gauges:\n%.2000s", body)
		}
	}
	if n := src.reads.Load(); n != 1 {
		t.Errorf("%d scrapes read the records' gauges %d times, want once (at start, no tick since)", scrapes, n)
	}
	if p := peak.Load(); p > maxConns || p == 0 {
		t.Errorf("the database saw up to %d connections of the worker, want 1 to DATABASE_MAX_CONNS=%d", p, maxConns)
	}

	// The next tick reads what was recorded meanwhile.
	ticks <- time.Now()
	waitForMetric(t, srv.URL, fmt.Sprintf(`diditflow_sessions{status="Approved"} %d`, writers*eventsEach))
	if n := src.reads.Load(); n != 2 {
		t.Errorf("the records' gauges were read %d times after one tick, want 2", n)
	}
}

// waitForMetric scrapes base until a line of /metrics is want.
func waitForMetric(t *testing.T, base, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, err := scrape(t.Context(), base)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains("\n"+body, "\n"+want+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no line %s:\n%.2000s", want, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func scrape(ctx context.Context, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return string(body), nil
}

// failingGauges answers every read with an error after its first.
type failingGauges struct{ reads atomic.Int64 }

func (f *failingGauges) Gauges(context.Context) (store.Gauges, error) {
	if f.reads.Add(1) == 1 {
		return store.Gauges{OpenAMLCases: 2, Sessions: map[string]int{}}, nil
	}
	return store.Gauges{}, fmt.Errorf("connection refused")
}

// A reading that failed shows as NaN, not as the last numbers, which an
// alert would go on trusting while the records are unreadable.
func TestGaugesAreNaNAfterAFailedReading(t *testing.T) {
	m, _ := NewMetrics(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { m.Close() })
	ticks := make(chan time.Time)
	stop := m.readGauges(t.Context(), &failingGauges{}, ticks, time.Minute, slog.New(slog.DiscardHandler))
	t.Cleanup(stop)
	srv := httptest.NewServer(m.handler())
	t.Cleanup(srv.Close)
	waitForMetric(t, srv.URL, "diditflow_aml_cases_open 2")
	ticks <- time.Now()
	waitForMetric(t, srv.URL, "diditflow_aml_cases_open NaN")
}
