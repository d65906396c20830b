// Package bench measures diditflow's webhook path side by side with the
// limit it cannot beat: the raw Temporal SignalWithStart round trip, against
// the same dev server in the same run.
package bench

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/chaos"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

// Options size a run.
type Options struct {
	Repo        string
	Concurrency []int
	Step        time.Duration // how long each load level runs
	E2ESessions int
	// IdleWindow is the worker's SESSION_IDLE_WINDOW, which the lean no-op
	// waits too.
	IdleWindow time.Duration
	Log        io.Writer
}

// fixture is the approved delivery, the shape most deliveries have.
type fixture struct {
	body      []byte
	session   string
	timestamp string
}

func loadFixture(repo string) (fixture, error) {
	body, err := os.ReadFile(filepath.Join(repo, "didit", "testdata", "fixtures", "status-updated-approved.json"))
	if err != nil {
		return fixture{}, err
	}
	ev, err := didit.ParseEvent(body)
	if err != nil {
		return fixture{}, err
	}
	return fixture{body: body, session: ev.SessionID, timestamp: strconv.FormatInt(ev.Timestamp, 10)}, nil
}

// delivery is the fixture for a fresh session, signed now (X-Signature only,
// as cheap for the load generator as possible; the receiver does the same
// work whichever full-body scheme matches first).
func (f fixture) delivery(secret string, n int64) ([]byte, didit.Headers) {
	session := fmt.Sprintf("%s-%012d", f.session[:23], n) // same length as a UUID
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	body := bytes.Replace(bytes.ReplaceAll(f.body, []byte(f.session), []byte(session)),
		[]byte(`"timestamp":`+f.timestamp), []byte(`"timestamp":`+ts), 1)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return body, didit.Headers{Signature: hex.EncodeToString(m.Sum(nil)), Timestamp: ts}
}

// Level is one load level's figures.
type Level struct {
	Concurrency int
	PerSecond   float64
	P50, P99    time.Duration
	Errors      int
}

// sample is one load run's raw measurements.
type sample struct {
	latencies []time.Duration
	errors    int
	elapsed   time.Duration
}

// load runs op from c goroutines for d.
func load(c int, d time.Duration, op func(n int64) error) sample {
	var (
		mu      sync.Mutex
		out     sample
		counter atomic.Int64
	)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			bad := 0
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := op(counter.Add(1)); err != nil {
					bad++
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			out.latencies = append(out.latencies, local...)
			out.errors += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}

// level merges samples into one level's figures.
func level(c int, samples ...sample) Level {
	var all []time.Duration
	var elapsed time.Duration
	l := Level{Concurrency: c}
	for _, s := range samples {
		all = append(all, s.latencies...)
		elapsed += s.elapsed
		l.Errors += s.errors
	}
	slices.Sort(all)
	l.PerSecond = float64(len(all)) / elapsed.Seconds()
	if len(all) > 0 {
		l.P50 = all[len(all)*50/100]
		l.P99 = all[min(len(all)*99/100, len(all)-1)]
	}
	return l
}

// Result is a whole run.
type Result struct {
	Schemes     []SchemeResult
	Raw, Ingest []Level
	Forged      ForgedResult
	E2E         struct {
		Sessions  int
		Elapsed   time.Duration
		PerSecond float64
		// LeanPerSecond is the lean no-op's rate over the same sessions.
		LeanPerSecond float64
	}
}

// SchemeResult is one verification benchmark.
type SchemeResult struct {
	Name               string
	NsPerOp            int64
	BytesPerOp, Allocs int64
}

// Run measures everything against a stack started for the purpose.
func Run(ctx context.Context, s *chaos.Stack, secret string, opts Options) (Result, error) {
	var res Result
	f, err := loadFixture(opts.Repo)
	if err != nil {
		return res, err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(opts.Log, "bench: "+format+"\n", args...) }

	logf("verification benchmarks")
	res.Schemes = verifyBenchmarks(opts.Repo, secret)

	// The webhook path is measured against a task queue no worker polls, so
	// workflow processing does not compete for the two cores; the worker
	// comes back for the end-to-end part.
	s.StarterQueue = "bench-ingest"
	if err := s.RestartStarter(ctx, secret); err != nil {
		return res, err
	}
	template, err := didit.ParseEvent(f.body)
	if err != nil {
		return res, err
	}
	template.Metadata = nil

	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}, Timeout: 10 * time.Second}
	post := func(body []byte, h didit.Headers) error {
		req, err := http.NewRequest(http.MethodPost, s.WebhookURL(), bytes.NewReader(body))
		if err != nil {
			return err
		}
		h.Set(req.Header)
		resp, err := httpClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		if h.Signature == forgedSignature && resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("forged delivery answered %d", resp.StatusCode)
		}
		return nil
	}

	// Raw and ingest alternate within each level, A B B A, so that the
	// server's drift (its database grows with every workflow started) falls
	// on both alike.
	var runID atomic.Int64
	base := time.Now().UnixNano()
	raw := func(int64) error {
		ev := template
		ev.SessionID = fmt.Sprintf("%s-%012d", f.session[:23], base+runID.Add(1))
		id := contract.SessionWorkflowID(ev.SessionID)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := s.Client.SignalWithStartWorkflow(cctx, id, contract.EventSignal,
			contract.SessionEvent{Event: ev, Proof: didit.Proof{Scheme: didit.SchemeRaw, Timestamp: ev.Timestamp}, ReceivedAt: time.Now()},
			client.StartWorkflowOptions{ID: id, TaskQueue: "bench-ingest",
				WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
				WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE},
			contract.SessionWorkflowType, contract.SessionStart{SessionID: ev.SessionID})
		return err
	}
	ingest := func(int64) error {
		body, h := f.delivery(secret, base+runID.Add(1))
		return post(body, h)
	}
	for _, c := range opts.Concurrency {
		logf("raw SignalWithStart and ingest through the starter, concurrency %d", c)
		half := opts.Step / 2
		a1 := load(c, half, raw)
		b1 := load(c, half, ingest)
		b2 := load(c, half, ingest)
		a2 := load(c, half, raw)
		res.Raw = append(res.Raw, level(c, a1, a2))
		res.Ingest = append(res.Ingest, level(c, b1, b2))
	}

	dir, err := os.MkdirTemp("", "diditflow-bench-forged-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	res.Forged, err = Forged(ctx, secret, ForgedOptions{Repo: opts.Repo, Dir: dir, TemporalAddress: s.TemporalAddress(),
		Concurrency: slices.Max(opts.Concurrency), Step: opts.Step, Log: opts.Log})
	if err != nil {
		return res, err
	}

	s.StarterQueue = "chaos"
	if err := s.RestartStarter(ctx, secret); err != nil {
		return res, err
	}
	logf("end to end: %d approved sessions beside the lean no-op, interleaved", opts.E2ESessions)
	lc, lw, err := leanWorker(s.TemporalAddress())
	if err != nil {
		return res, err
	}
	defer lc.Close()
	defer lw.Stop()
	// All sessions of a half start at once, so some deliveries meet a busy
	// server and get 503: they are retried, as Didit would (faster, to keep
	// the run short).
	sender := &simulator.Sender{URL: s.WebhookURL(), Secret: secret, RetryDelays: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, Client: httpClient}
	half := max(opts.E2ESessions/2, 1)
	var leanTime, ourTime time.Duration
	for i, lean := range []bool{true, false, false, true} {
		if lean {
			d, err := runLean(ctx, lc, template, fmt.Sprintf("%d-%d", base, i), half, opts.IdleWindow)
			if err != nil {
				return res, err
			}
			leanTime += d
			continue
		}
		d, err := runOurs(ctx, s, sender, half)
		if err != nil {
			return res, err
		}
		ourTime += d
	}
	res.E2E.Sessions = 2 * half
	res.E2E.Elapsed = ourTime
	res.E2E.PerSecond = float64(2*half) / ourTime.Seconds()
	res.E2E.LeanPerSecond = float64(2*half) / leanTime.Seconds()
	return res, nil
}

// runOurs sends n approved sessions (In Progress, then Approved) through
// the starter, all at once, and returns when every record is Approved,
// every approval mailed and every session workflow completed: the lean
// no-op's end, plus diditflow's own work.
func runOurs(ctx context.Context, s *chaos.Stack, sender *simulator.Sender, n int) (time.Duration, error) {
	mailsBefore := len(s.Mails())
	start := time.Now()
	var sessions []string
	var mu sync.Mutex
	sr, err := sender.Run(ctx, simulator.Plan{Sessions: n}, func() ([]simulator.Delivery, error) {
		ds, err := simulator.Build("approved", simulator.Options{Email: "user@example.com"})
		if err == nil {
			mu.Lock()
			sessions = append(sessions, ds[0].SessionID)
			mu.Unlock()
		}
		return ds, err
	})
	if err != nil {
		return 0, err
	}
	if sr.ByStatus[http.StatusOK] != sr.Deliveries {
		return 0, fmt.Errorf("end to end: deliveries answered %v", sr.ByStatus)
	}
	ids := make([]string, len(sessions))
	for i, id := range sessions {
		ids[i] = contract.SessionWorkflowID(id)
	}
	if err := waitCompleted(ctx, s.Client, ids, 5*time.Minute); err != nil {
		return 0, fmt.Errorf("end to end: %w", err)
	}
	elapsed := time.Since(start)
	approved := 0
	for _, id := range sessions {
		if v, err := s.Store.Session(ctx, id); err == nil && v.Status == "Approved" {
			approved++
		}
	}
	if approved != n || len(s.Mails())-mailsBefore != n {
		return 0, fmt.Errorf("end to end: %d approved records and %d mails for %d sessions", approved, len(s.Mails())-mailsBefore, n)
	}
	return elapsed, nil
}

const forgedSignature = "0000000000000000000000000000000000000000000000000000000000000000"

// verifyBenchmarks runs the verification of each scheme on the largest
// fixture with the testing package's benchmark driver.
func verifyBenchmarks(repo, secret string) []SchemeResult {
	body, err := os.ReadFile(filepath.Join(repo, "didit", "testdata", "fixtures", "status-updated-declined-aml-hit.json"))
	if err != nil {
		return nil
	}
	h, _ := didit.Signer{Secret: secret}.Sign(body)
	ts, _ := strconv.ParseInt(h.Timestamp, 10, 64)
	v := &didit.Verifier{Secrets: []string{secret}, AllowSimple: true, Now: func() time.Time { return time.Unix(ts, 0) }}
	var out []SchemeResult
	for _, c := range []struct {
		name string
		h    didit.Headers
	}{
		{"X-Signature (raw)", didit.Headers{Signature: h.Signature, Timestamp: h.Timestamp}},
		{"X-Signature-V2", didit.Headers{SignatureV2: h.SignatureV2, Timestamp: h.Timestamp}},
		{"X-Signature-Simple", didit.Headers{SignatureSimple: h.SignatureSimple, Timestamp: h.Timestamp}},
		{"forged (all three computed)", didit.Headers{Signature: forgedSignature, SignatureV2: forgedSignature, SignatureSimple: forgedSignature, Timestamp: h.Timestamp}},
	} {
		r := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = v.Verify(body, c.h)
			}
		})
		out = append(out, SchemeResult{Name: c.name, NsPerOp: r.NsPerOp(), BytesPerOp: r.AllocedBytesPerOp(), Allocs: r.AllocsPerOp()})
	}
	return out
}

// Print writes the table.
func (r Result) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "verification (largest fixture, 9.3 KB)\tns/op\tB/op\tallocs/op")
	for _, s := range r.Schemes {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", s.Name, s.NsPerOp, s.BytesPerOp, s.Allocs)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "concurrency\traw SWS/s\traw p50\traw p99\tingest/s\tingest p50\tingest p99\tratio\terrors")
	peak := 0
	for i := range r.Raw {
		if r.Raw[i].PerSecond > r.Raw[peak].PerSecond {
			peak = i
		}
	}
	for i := range r.Raw {
		raw, in := r.Raw[i], r.Ingest[i]
		mark := ""
		if i == peak {
			mark = " ← raw peak"
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%s\t%s\t%.0f\t%s\t%s\t%.2f%s\t%d/%d\n", raw.Concurrency, raw.PerSecond, ms(raw.P50), ms(raw.P99),
			in.PerSecond, ms(in.P50), ms(in.P99), in.PerSecond/max(raw.PerSecond, 1), mark, raw.Errors, in.Errors)
	}
	fmt.Fprintln(tw)
	tw.Flush()
	r.Forged.Print(w)
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "end to end\t%d sessions (2 deliveries each) recorded, mailed and completed in %s: %.1f sessions/s\n", r.E2E.Sessions, r.E2E.Elapsed.Round(time.Millisecond), r.E2E.PerSecond)
	fmt.Fprintf(tw, "lean no-op, same sessions\t%.1f sessions/s; diditflow / lean no-op = %.2f× (target ≥ 0.80)\n", r.E2E.LeanPerSecond, r.E2E.PerSecond/max(r.E2E.LeanPerSecond, 0.001))
	tw.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }
