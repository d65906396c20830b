package receiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

// stubSession stands in for the session workflow: it takes every signal, as
// the real one does, so each signal costs what it costs in production (the
// signal and a workflow task to handle it), without the activities.
func stubSession(ctx workflow.Context, _ contract.SessionStart) error {
	ch := workflow.GetSignalChannel(ctx, contract.EventSignal)
	for {
		var ev contract.SessionEvent
		ch.Receive(ctx, &ev)
	}
}

// runStubWorker polls queue with stubSession registered under the session
// workflow's type name, until the test ends.
func runStubWorker(t *testing.T, tc client.Client, queue string) {
	t.Helper()
	w := worker.New(tc, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(stubSession, workflow.RegisterOptions{Name: contract.SessionWorkflowType})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
}

// historyLength counts the events of a workflow's current run, once its
// last workflow task has completed.
func historyLength(t *testing.T, tc client.Client, id string) int {
	t.Helper()
	ctx := context.Background()
	var n int
	waitFor(t, func() bool {
		desc, err := tc.DescribeWorkflow(ctx, id, "")
		if err != nil || desc.RawResponse.GetPendingWorkflowTask() != nil {
			return false
		}
		n = 0
		it := tc.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			if _, err := it.Next(); err != nil {
				t.Fatal(err)
			}
			n++
		}
		return true
	})
	return n
}

// stubTemporal accepts every signal at once, so a benchmark measures the
// receiver's own share of the accepted path.
type stubTemporal struct{ Temporal }

type stubRun struct{ client.WorkflowRun }

func (stubRun) GetID() string    { return "didit-session-stub" }
func (stubRun) GetRunID() string { return "00000000-0000-0000-0000-000000000000" }

func (stubTemporal) SignalWithStartWorkflow(context.Context, string, string, any, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return stubRun{}, nil
}

// BenchmarkAcceptedDeliveryStub is BenchmarkAcceptedDelivery without the
// dev server: distinct deliveries (as an accepted flood is), each signalled.
func BenchmarkAcceptedDeliveryStub(b *testing.B) {
	benchAccepted(b, nil)
}

func benchAccepted(b *testing.B, mutate func(*Config)) {
	cfg := Config{
		Verifier:  &didit.Verifier{Secrets: []string{fixtureSecret}, Now: func() time.Time { return time.Unix(fixtureTime, 0) }},
		TaskQueue: "bench-stub",
	}
	if mutate != nil {
		mutate(&cfg)
	}
	handler := New(stubTemporal{}, cfg).Handler()
	// Bodies and signatures are made beforehand: the benchmark is the
	// receiver, not the signer.
	const n = 4096
	bodies := make([][]byte, n)
	headers := make([]didit.Headers, n)
	for i := range n {
		bodies[i] = withSession(b, "status-updated-approved.json", fmt.Sprintf("bench-stub-%06d", i))
		headers[i] = sign(b, bodies[i])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i % n
		i++
		req := httptest.NewRequest(http.MethodPost, "/webhooks/didit", strings.NewReader(string(bodies[k])))
		headers[k].Set(req.Header)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkAcceptedDeliveryStubReplayCache is the same with the replay
// cache on: every delivery is new, so each one pays a hash, a miss and an
// add, and with fewer entries than the 4096 bodies the cache is full and
// evicts at every add, as in a flood.
func BenchmarkAcceptedDeliveryStubReplayCache(b *testing.B) {
	benchAccepted(b, func(c *Config) { c.ReplayCacheSize = 1000 })
}

// BenchmarkReplayedDeliveryStub is an exact replay answered from the cache.
func BenchmarkReplayedDeliveryStub(b *testing.B) {
	handler := New(stubTemporal{}, Config{
		Verifier:        &didit.Verifier{Secrets: []string{fixtureSecret}, Now: func() time.Time { return time.Unix(fixtureTime, 0) }},
		TaskQueue:       "bench-stub",
		ReplayCacheSize: 10000,
	}).Handler()
	body := withSession(b, "status-updated-approved.json", "bench-replayed")
	headers := sign(b, body)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/didit", strings.NewReader(string(body)))
		headers.Set(req.Header)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// answer is the JSON of a 200 to a session event.
type answer struct {
	Status     string `json:"status"`
	Replay     bool   `json:"replay"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

func (r response) answer(t testing.TB) answer {
	t.Helper()
	var a answer
	if err := json.Unmarshal(r.raw, &a); err != nil {
		t.Fatalf("answer %d %q: %v", r.code, r.raw, err)
	}
	return a
}

// uniqueSession names a session no other test (of this run or an earlier
// one on the same dev server) uses, as Didit could name one (at most 64 of
// A-Z a-z 0-9 _ -).
func uniqueSession(t testing.TB, prefix string) string {
	test := sha256.Sum256([]byte(t.Name()))
	return prefix + "-" + hex.EncodeToString(test[:4]) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// replays sends one signed delivery 300 times, one after the other as a
// replaying sender would, to a receiver configured by mutate, with a worker
// taking the signals; it returns the answers, the signals that reached
// Temporal and the session workflow's history length.
func replays(t *testing.T, mutate func(*Config)) (answers []answer, signals int64, events int) {
	t.Helper()
	tc := launch.Temporal(t)
	queue := "receiver-replay-" + t.Name()
	runStubWorker(t, tc, queue)
	h := newHarness(t, tc, func(c *Config) {
		c.TaskQueue = queue
		mutate(c)
	})
	session := uniqueSession(t, "it-replay")
	body := withSession(t, "status-updated-approved.json", session)
	headers := sign(t, body)
	id := contract.SessionWorkflowID(session)
	t.Cleanup(func() { _ = tc.TerminateWorkflow(context.Background(), id, "", "test over") })
	for i := range 300 {
		got := h.post(t, body, headers)
		a := got.answer(t)
		if got.code != http.StatusOK || a.Status != "accepted" || a.WorkflowID != id || a.RunID == "" {
			t.Fatalf("delivery %d: %d %s, want 200 accepted by %s", i, got.code, got.raw, id)
		}
		answers = append(answers, a)
	}
	return answers, h.temporal.signals.Load(), historyLength(t, tc, id)
}

// TestExactReplaysAreNotSignalledAgain: 300 replays of one signed delivery
// are one signal, and the session workflow's history stays at the handful
// of events of one signal instead of four events per replay.
func TestExactReplaysAreNotSignalledAgain(t *testing.T) {
	var off, on int
	t.Run("cache off", func(t *testing.T) {
		_, signals, events := replays(t, func(c *Config) { c.ReplayCacheSize = 0 })
		t.Logf("cache off: 300 deliveries, %d signals, %d history events", signals, events)
		if signals != 300 {
			t.Fatalf("%d signals, want 300 with the cache off", signals)
		}
		off = events
	})
	t.Run("cache on", func(t *testing.T) {
		answers, signals, events := replays(t, func(c *Config) { c.ReplayCacheSize = 100 })
		t.Logf("cache on: 300 deliveries, %d signals, %d history events", signals, events)
		if signals != 1 {
			t.Fatalf("%d signals reached Temporal, want 1", signals)
		}
		if answers[0].Replay {
			t.Fatal("the first delivery was answered as a replay")
		}
		for i, a := range answers[1:] {
			if !a.Replay || a.RunID != answers[0].RunID {
				t.Fatalf("replay %d answered %+v, want a replay held by run %s", i+1, a, answers[0].RunID)
			}
		}
		// Started, signalled, one workflow task (scheduled, started, completed).
		if events > 8 {
			t.Fatalf("history holds %d events after one signal", events)
		}
		on = events
	})
	t.Logf("history of 300 replays: %d events without the cache, %d with it", off, on)
}

func TestReplayMetrics(t *testing.T) {
	h := newHarness(t, launch.Temporal(t), func(c *Config) { c.ReplayCacheSize = 10 })
	body := withSession(t, "status-updated-approved.json", uniqueSession(t, "it-replay-metrics"))
	headers := sign(t, body)
	for range 3 {
		if got := h.post(t, body, headers); got.code != http.StatusOK {
			t.Fatalf("status %d %s", got.code, got.raw)
		}
	}
	metrics := h.scrape(t)
	for _, want := range []string{
		`diditflow_webhook_deliveries_total{outcome="accepted",reason=""} 1`,
		`diditflow_webhook_deliveries_total{outcome="replay",reason=""} 2`,
		`diditflow_webhook_request_duration_seconds_count{outcome="replay"} 2`,
		`diditflow_temporal_signal_with_start_duration_seconds_count{result="ok"} 1`,
		`diditflow_webhook_replay_cache_entries 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// fakeClock is an injectable clock for the replay cache.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Unix(fixtureTime, 0).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestReplayAfterTTLIsSignalledAgain(t *testing.T) {
	clock := newFakeClock()
	const ttl = time.Minute
	h := newHarness(t, launch.Temporal(t), func(c *Config) {
		c.ReplayCacheSize, c.ReplayCacheTTL, c.Now = 10, ttl, clock.now
	})
	body := withSession(t, "status-updated-approved.json", uniqueSession(t, "it-replay-ttl"))
	headers := sign(t, body)
	step := func(advance time.Duration, wantReplay bool, wantSignals int64) {
		t.Helper()
		clock.advance(advance)
		got := h.post(t, body, headers)
		if a := got.answer(t); got.code != http.StatusOK || a.Status != "accepted" || a.Replay != wantReplay {
			t.Fatalf("answer %d %s, want accepted with replay=%v", got.code, got.raw, wantReplay)
		}
		if n := h.temporal.signals.Load(); n != wantSignals {
			t.Fatalf("%d signals, want %d", n, wantSignals)
		}
	}
	step(0, false, 1)
	step(ttl-time.Nanosecond, true, 1) // still remembered
	step(time.Nanosecond, false, 2)    // aged out: signalled again...
	step(0, true, 2)                   // ...and remembered again from then on
	step(ttl/2, true, 2)
}

func TestReplayCacheEvictsTheOldest(t *testing.T) {
	h := newHarness(t, launch.Temporal(t), func(c *Config) { c.ReplayCacheSize = 3 })
	type delivery struct {
		body    []byte
		headers didit.Headers
	}
	var ds []delivery
	for i := range 5 {
		body := withSession(t, "status-updated-approved.json", uniqueSession(t, fmt.Sprintf("it-evict-%d", i)))
		ds = append(ds, delivery{body, sign(t, body)})
	}
	post := func(d delivery, wantReplay bool) {
		t.Helper()
		got := h.post(t, d.body, d.headers)
		if a := got.answer(t); got.code != http.StatusOK || a.Replay != wantReplay {
			t.Fatalf("answer %d %s, want replay=%v", got.code, got.raw, wantReplay)
		}
		if m := h.scrape(t); !strings.Contains(m, "diditflow_webhook_replay_cache_entries ") ||
			strings.Contains(m, "diditflow_webhook_replay_cache_entries 4") || strings.Contains(m, "diditflow_webhook_replay_cache_entries 5") {
			t.Fatal("the cache holds more entries than its size")
		}
	}
	for _, d := range ds[:4] { // the 4th evicts the 1st
		post(d, false)
	}
	for _, d := range ds[1:4] {
		post(d, true)
	}
	before := h.temporal.signals.Load()
	post(ds[0], false) // evicted: signalled again, and now it evicts ds[1]
	if n := h.temporal.signals.Load(); n != before+1 {
		t.Fatalf("%d signals after the evicted delivery, want %d", n, before+1)
	}
	post(ds[1], false)
	post(ds[0], true)
	if !strings.Contains(h.scrape(t), "diditflow_webhook_replay_cache_entries 3") {
		t.Fatal("a full cache of size 3 should report 3 entries")
	}
}

// TestReplayCacheStaysBounded: a flood of distinct deliveries never holds
// more than size entries, in the map or in the ring, and keeps the newest.
func TestReplayCacheStaysBounded(t *testing.T) {
	clock := newFakeClock()
	const size = 1000
	c := newReplayCache(size, time.Hour, clock.now)
	key := func(i int) replayKey { return replayKey{digest: sha256.Sum256([]byte(strconv.Itoa(i)))} }
	for i := range 50 * size {
		c.add(key(i), "run")
		clock.advance(time.Millisecond)
		if len(c.index) > size || len(c.ring) > size || c.entries() > size {
			t.Fatalf("after %d deliveries: %d keys, ring of %d, %d entries; cap %d", i+1, len(c.index), len(c.ring), c.entries(), size)
		}
	}
	if c.entries() != size {
		t.Fatalf("%d entries, want a full cache of %d", c.entries(), size)
	}
	for i := range 50 * size {
		_, ok := c.lookup(key(i))
		if want := i >= 49*size; ok != want {
			t.Fatalf("delivery %d remembered = %v, want %v: only the newest %d stay", i, ok, want, size)
		}
	}
	// Expiry empties it without any goroutine: the next use drops what aged.
	clock.advance(time.Hour)
	if n := c.entries(); n != 0 || len(c.index) != 0 {
		t.Fatalf("%d entries, %d keys after every entry's TTL", n, len(c.index))
	}
}

// switchTemporal sends signals to down until up is set, then to up.
type switchTemporal struct {
	down, up Temporal
	isUp     atomic.Bool
}

func (s *switchTemporal) pick() Temporal {
	if s.isUp.Load() {
		return s.up
	}
	return s.down
}

func (s *switchTemporal) SignalWithStartWorkflow(ctx context.Context, id, signal string, arg any,
	opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	return s.pick().SignalWithStartWorkflow(ctx, id, signal, arg, opts, wf, args...)
}

func (s *switchTemporal) CheckHealth(ctx context.Context, req *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return s.pick().CheckHealth(ctx, req)
}

// TestUnavailableDeliveryIsNotRemembered: a delivery answered 503 was not
// accepted, so its retry is signalled again, however often it is retried.
func TestUnavailableDeliveryIsNotRemembered(t *testing.T) {
	sw := &switchTemporal{down: launch.UnreachableTemporal(t), up: launch.Temporal(t)}
	// Long enough for a real signal on a busy machine; the unreachable
	// Temporal spends it all on each attempt.
	h := newHarness(t, sw, func(c *Config) {
		c.ReplayCacheSize, c.SignalTimeout = 10, 2*time.Second
	})
	body := withSession(t, "status-updated-approved.json", uniqueSession(t, "it-replay-503"))
	headers := sign(t, body)
	for i := range 2 {
		if got := h.post(t, body, headers); got.code != http.StatusServiceUnavailable {
			t.Fatalf("attempt %d: %d %s with Temporal down, want 503", i, got.code, got.raw)
		}
	}
	if n := h.temporal.signals.Load(); n != 2 {
		t.Fatalf("%d signals, want each attempt offered to Temporal", n)
	}
	if !strings.Contains(h.scrape(t), "diditflow_webhook_replay_cache_entries 0") {
		t.Fatal("a delivery answered 503 was remembered")
	}
	sw.isUp.Store(true)
	if got := h.post(t, body, headers); got.code != http.StatusOK || got.answer(t).Replay {
		t.Fatalf("retry with Temporal up: %d %s, want accepted, not a replay", got.code, got.raw)
	}
	if got := h.post(t, body, headers); got.code != http.StatusOK || !got.answer(t).Replay {
		t.Fatalf("replay after acceptance: %d %s, want a replay", got.code, got.raw)
	}
	if n := h.temporal.signals.Load(); n != 3 {
		t.Fatalf("%d signals, want 3", n)
	}
}

// TestForgedCopyOfRememberedDeliveryIsRefused: the cache is asked only after
// verification, so the body of a remembered delivery under a forged or
// stale signature is still 401, never a replay.
func TestForgedCopyOfRememberedDeliveryIsRefused(t *testing.T) {
	h := newHarness(t, launch.Temporal(t), func(c *Config) { c.ReplayCacheSize = 10 })
	body := withSession(t, "status-updated-approved.json", uniqueSession(t, "it-replay-forged"))
	good := sign(t, body)
	if got := h.post(t, body, good); got.code != http.StatusOK {
		t.Fatalf("status %d %s", got.code, got.raw)
	}
	forged := good
	forged.Signature, forged.SignatureV2, forged.SignatureSimple = strings.Repeat("0", 64), strings.Repeat("0", 64), strings.Repeat("0", 64)
	stale := good
	stale.Timestamp = strconv.Itoa(fixtureTime - 301)
	for name, headers := range map[string]didit.Headers{"forged": forged, "stale": stale, "unsigned": {}} {
		if got := h.post(t, body, headers); got.code != http.StatusUnauthorized || string(got.raw) != `{"error":"unauthorized"}` {
			t.Fatalf("%s copy: %d %s, want 401", name, got.code, got.raw)
		}
	}
	if n := h.temporal.signals.Load(); n != 1 {
		t.Fatalf("%d signals, want 1", n)
	}
	if m := h.scrape(t); !strings.Contains(m, noReplays) {
		t.Fatal("a refused delivery was counted as a replay")
	}
}

// TestReplayKeyIncludesTheScheme: the same bytes verified only by
// X-Signature-Simple prove the envelope alone, so they neither stand for a
// remembered fully signed delivery nor let a later fully signed one pass as
// their replay.
func TestReplayKeyIncludesTheScheme(t *testing.T) {
	h := newHarness(t, launch.Temporal(t), func(c *Config) {
		c.ReplayCacheSize = 10
		c.Verifier.AllowSimple = true
	})
	post := func(body []byte, headers didit.Headers, wantReplay bool, wantSignals int64) {
		t.Helper()
		got := h.post(t, body, headers)
		if a := got.answer(t); got.code != http.StatusOK || a.Replay != wantReplay {
			t.Fatalf("answer %d %s, want replay=%v", got.code, got.raw, wantReplay)
		}
		if n := h.temporal.signals.Load(); n != wantSignals {
			t.Fatalf("%d signals, want %d", n, wantSignals)
		}
	}
	simpleOnly := func(h didit.Headers) didit.Headers {
		return didit.Headers{SignatureSimple: h.SignatureSimple, Timestamp: h.Timestamp}
	}

	full := withSession(t, "status-updated-approved.json", uniqueSession(t, "it-scheme-full"))
	post(full, sign(t, full), false, 1)
	post(full, simpleOnly(sign(t, full)), false, 2) // not the remembered one's replay
	post(full, simpleOnly(sign(t, full)), true, 2)  // but its own

	simple := withSession(t, "status-updated-approved.json", uniqueSession(t, "it-scheme-simple"))
	post(simple, simpleOnly(sign(t, simple)), false, 3)
	post(simple, sign(t, simple), false, 4) // the fully signed delivery is signalled
	post(simple, sign(t, simple), true, 4)
}

func TestReplayCacheOff(t *testing.T) {
	h := newHarness(t, launch.Temporal(t), func(c *Config) { c.ReplayCacheSize = 0 })
	body := withSession(t, "status-updated-approved.json", uniqueSession(t, "it-replay-off"))
	headers := sign(t, body)
	for range 3 {
		if got := h.post(t, body, headers); got.code != http.StatusOK || got.answer(t).Replay {
			t.Fatalf("answer %d %s, want accepted, never a replay", got.code, got.raw)
		}
	}
	if n := h.temporal.signals.Load(); n != 3 {
		t.Fatalf("%d signals, want every delivery signalled with the cache off", n)
	}
	m := h.scrape(t)
	if !strings.Contains(m, "diditflow_webhook_replay_cache_entries 0") || !strings.Contains(m, noReplays) {
		t.Fatal("with the cache off nothing is remembered or answered from it")
	}
}

// acceptingTemporal counts the signals Temporal accepted.
type acceptingTemporal struct {
	Temporal
	accepted atomic.Int64
}

func (a *acceptingTemporal) SignalWithStartWorkflow(ctx context.Context, id, signal string, arg any,
	opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	run, err := a.Temporal.SignalWithStartWorkflow(ctx, id, signal, arg, opts, wf, args...)
	if err == nil {
		a.accepted.Add(1)
	}
	return run, err
}

// TestConcurrentIdenticalDeliveries: copies of one delivery arriving at
// once may each be signalled, but a 200 is only ever an acceptance by
// Temporal or a replay of one; with Temporal down, none is a 200.
func TestConcurrentIdenticalDeliveries(t *testing.T) {
	const copies = 20
	// timeout bounds each signal: the default with Temporal up (20 at once
	// on a busy machine take their time), short with it down.
	fire := func(t *testing.T, tc Temporal, timeout time.Duration) (*acceptingTemporal, []response) {
		t.Helper()
		at := &acceptingTemporal{Temporal: tc}
		h := newHarness(t, at, func(c *Config) { c.ReplayCacheSize, c.SignalTimeout = 10, timeout })
		body := withSession(t, "status-updated-approved.json", uniqueSession(t, "it-concurrent"))
		headers := sign(t, body)
		out := make([]response, copies)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range copies {
			wg.Go(func() {
				<-start
				out[i] = h.post(t, body, headers)
			})
		}
		close(start)
		wg.Wait()
		return at, out
	}
	t.Run("temporal up", func(t *testing.T) {
		at, out := fire(t, launch.Temporal(t), DefaultSignalTimeout)
		var fresh, replayed int64
		for _, got := range out {
			if got.code != http.StatusOK {
				t.Fatalf("answer %d %s, want 200", got.code, got.raw)
			}
			if got.answer(t).Replay {
				replayed++
			} else {
				fresh++
			}
		}
		t.Logf("%d copies at once: %d signalled, %d answered as replays", copies, fresh, replayed)
		if fresh < 1 || fresh != at.accepted.Load() {
			t.Fatalf("%d accepted answers but Temporal accepted %d signals", fresh, at.accepted.Load())
		}
	})
	t.Run("temporal down", func(t *testing.T) {
		at, out := fire(t, launch.UnreachableTemporal(t), 300*time.Millisecond)
		for _, got := range out {
			if got.code != http.StatusServiceUnavailable {
				t.Fatalf("answer %d %s with Temporal down, want 503", got.code, got.raw)
			}
		}
		if at.accepted.Load() != 0 {
			t.Fatal("an unreachable Temporal accepted a signal")
		}
	})
}

// BenchmarkReplayCacheMiss is what the cache adds to an accepted delivery:
// the key (a SHA-256 of the body), a miss and an add into a full cache.
func BenchmarkReplayCacheMiss(b *testing.B) {
	body := fixture(b, "status-updated-approved.json")
	c := newReplayCache(10000, time.Hour, nil)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		body[len(body)-2] = byte(i) // a new delivery each time
		body[len(body)-3] = byte(i >> 8)
		k := replayKey{digest: sha256.Sum256(body)}
		if _, ok := c.lookup(k); !ok {
			c.add(k, "0198a3c1-5e4f-7abc-9def-0123456789ab")
		}
	}
}

// noReplays is the deliveries series of replays at zero, as it starts.
const noReplays = `diditflow_webhook_deliveries_total{outcome="replay",reason=""} 0`
