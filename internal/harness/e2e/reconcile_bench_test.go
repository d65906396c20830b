package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

// The backlog: Temporal was down for a while, so every webhook Didit sent
// then was answered 503, and each was tried three times (Didit's first
// attempt and two retries). A third of the sessions had one more
// data.updated than the others.
const (
	backlogSessions  = 1000
	backlogFourEvent = 334 // sessions with four events, the rest three
	// backlogSpacing separates the sessions' first events: the outage lasted
	// about backlogSessions × backlogSpacing.
	backlogSpacing = 6 * time.Second
	// backlogLimit bounds the whole benchmark; it does not measure it.
	backlogLimit = 20 * time.Minute
)

// reconcilePageSize is the worker's RECONCILE_PAGE_SIZE; below about 40 the
// run has more steps than one history holds and continues as new.
var reconcilePageSize = flag.Int("reconcile-page-size", 100, "RECONCILE_PAGE_SIZE of BenchmarkReconcileBacklog's worker")

// Targets of a reconcile run over the backlog (docs/BENCHMARKS.md).
const (
	targetRSSGrowthMB  = 50
	targetEventsPerRun = 2000
)

// BenchmarkReconcileBacklog drains a backlog of 10,002 failed deliveries
// (3,334 events of 1,000 sessions, 5xx for every attempt) from the fake
// Didit's delivery log with one reconcile run, triggered through the
// worker's schedule, and reports what the run cost: the worker's memory,
// the run's history events, its Didit calls, and the time until every
// session was recorded at its latest status and mailed once. A second run
// then finds the backlog settled and must only read the lists.
//
// It drains one backlog whatever b.N is: run it with -benchtime 1x (make
// bench-reconcile). ns/op is the reconcile run's wall time.
func BenchmarkReconcileBacklog(b *testing.B) {
	if b.N > 1 {
		b.Skip("one backlog per process: run with -benchtime 1x")
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), backlogLimit)
	defer cancel()

	fake, fakeURL := backlogFake(b)
	// The reconcile schedule fires by itself only at midnight UTC (a 24h
	// interval), so the benchmark's trigger starts the run it measures
	// (triggeredRun takes either).
	s := newStack(b, func(s *stack) {
		s.workerEnv = append(s.workerEnv, "DIDIT_API_URL="+fakeURL, "DIDIT_API_KEY="+apiKey,
			// The fake has no rate limit: reconcile at 400 calls a second.
			"DIDIT_API_READS_PER_SECOND=500", "RECONCILE_READS_PER_SECOND=400",
			"RECONCILE_MAX_CALLS=100000", "RECONCILE_PAGE_SIZE="+strconv.Itoa(*reconcilePageSize),
			"RECONCILE_LOOKBACK=24h")
	})
	backlog := newBacklog(b, time.Now())
	for _, ev := range backlog.byTime() {
		if _, err := fake.SeedFailedDelivery(ev.body, http.StatusServiceUnavailable, ev.at); err != nil {
			b.Fatal(err)
		}
	}
	attempts := len(fake.Deliveries())
	progress(b, "seeded %d failed deliveries: %d events of %d sessions", attempts, len(backlog.events), len(backlog.sessions))

	sched := s.temporal.ScheduleClient().GetHandle(ctx, contract.ReconcileScheduleID)
	if err := launch.WaitFor(ctx, time.Minute, "the worker's reconcile schedule", func() bool {
		select {
		case <-s.worker.Done():
			return true
		default:
		}
		_, err := sched.Describe(ctx)
		return err == nil
	}); err != nil {
		b.Fatal(err)
	}
	select {
	case <-s.worker.Done():
		log, _ := os.ReadFile(s.workerLog)
		b.Fatalf("the worker exited:\n%s", log)
	default:
	}
	rssBefore := vmKB(b, s.worker.Pid(), "VmRSS")

	triggered := time.Now()
	b.StartTimer()
	wfID, firstRun, sum := s.reconcile(ctx, b, sched, backlog)
	b.StopTimer()
	ran := time.Since(triggered)
	progress(b, "reconcile run %s after %s: %+v", sum.Result, ran.Round(time.Millisecond), sum)
	if sum.Result != "ok" {
		b.Fatalf("reconcile run ended %q (%s), want ok", sum.Result, sum.Failure)
	}

	if err := launch.WaitFor(ctx, backlogLimit, "every session recorded at its latest status and mailed",
		s.watch(ctx, b, wfID, backlog, triggered, func() bool { return s.settled(ctx, backlog) })); err != nil {
		b.Fatal(err)
	}
	for _, id := range backlog.sessions {
		if err := launch.WaitFor(ctx, time.Minute, "session "+id+" to complete", func() bool {
			d, err := s.temporal.DescribeWorkflow(ctx, contract.SessionWorkflowID(id), "")
			return err == nil && d.Status == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED
		}); err != nil {
			b.Fatal(err)
		}
	}
	settled := time.Since(triggered)
	rssAfter, peak := vmKB(b, s.worker.Pid(), "VmRSS"), vmKB(b, s.worker.Pid(), "VmHWM")
	s.checkBacklog(ctx, b, backlog)

	runs := s.runEvents(ctx, b, wfID, firstRun)
	total := 0
	for i, n := range runs {
		total += n
		progress(b, "reconcile run %d of %d: %d history events", i+1, len(runs), n)
	}
	most := slices.Max(runs)
	growth := float64(peak-rssBefore) / 1024
	progress(b, "worker RSS %.1f MB before, %.1f MB after, peak %.1f MB: grew %.1f MB at most (target < %d)",
		float64(rssBefore)/1024, float64(rssAfter)/1024, float64(peak)/1024, growth, targetRSSGrowthMB)
	progress(b, "largest run %d history events (target < %d); %d Didit calls; every session settled %s after the trigger",
		most, targetEventsPerRun, sum.Calls, settled.Round(time.Millisecond))
	sws := s.workerMetric(b, "temporal_request_latency_seconds", `operation="SignalWithStartWorkflowExecution"`)
	steps := s.workerMetric(b, "temporal_activity_execution_latency_seconds", `activity_type="ReconcileDeliveries"`)
	progress(b, "the deliveries steps took %.0f s, %.1f ms a delivery; %.0f SignalWithStart calls took %.0f s of it (%.1f ms each)",
		steps.sum, 1000*steps.sum/float64(attempts), sws.count, sws.sum, 1000*sws.sum/sws.count)

	// The next run finds the backlog settled: it reads the lists and
	// nothing else.
	mails := len(s.sink.Mails())
	rerun := time.Now()
	_, _, again := s.reconcile(ctx, b, sched, backlog)
	progress(b, "the next run, over the settled backlog: %s after %s, %d Didit calls", again.Result,
		time.Since(rerun).Round(time.Millisecond), again.Calls)
	// The destinations, the delivery pages and the session pages.
	page := *reconcilePageSize
	lists := 1 + (attempts+page-1)/page + (backlogSessions+page-1)/page
	if again.Result != "ok" || again.Repaired["deliveries"]+again.Repaired["sessions"] != 0 || again.Calls > lists {
		b.Errorf("the next run over the settled backlog: %+v, want only its list pages read and nothing repaired", again)
	}
	if n := len(s.sink.Mails()); n != mails {
		b.Errorf("%d mails after the next run, want %d", n, mails)
	}

	b.ReportMetric(float64(most), "events/run")
	b.ReportMetric(float64(len(runs)), "runs")
	b.ReportMetric(float64(total), "history-events")
	b.ReportMetric(growth, "rss-growth-MB")
	b.ReportMetric(float64(rssAfter-rssBefore)/1024, "rss-retained-MB")
	b.ReportMetric(float64(sum.Calls), "api-calls")
	b.ReportMetric(float64(sum.Repaired["deliveries"]), "deliveries-fed")
	b.ReportMetric(float64(sum.Repaired["sessions"]), "sessions-repaired")
	b.ReportMetric(settled.Seconds(), "settled-s")
	b.ReportMetric(float64(again.Calls), "rerun-api-calls")
}

// reconcile triggers a run through the schedule and waits for its chain of
// runs to end.
func (s *stack) reconcile(ctx context.Context, b *testing.B, sched client.ScheduleHandle, bl *backlog) (id, firstRun string, sum activities.ReconcileSummary) {
	b.Helper()
	triggered := time.Now()
	if err := sched.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		b.Fatal(err)
	}
	id, firstRun = s.triggeredRun(ctx, b, sched, triggered)
	if err := launch.WaitFor(ctx, backlogLimit, "the reconcile run", s.watch(ctx, b, id, bl, triggered, func() bool {
		d, err := s.temporal.DescribeWorkflow(ctx, id, "")
		return err == nil && d.Status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING
	})); err != nil {
		b.Fatal(err)
	}
	if err := s.temporal.GetWorkflow(ctx, id, "").Get(ctx, &sum); err != nil {
		b.Fatalf("reconcile run: %v", err)
	}
	return id, firstRun, sum
}

// progress prints at once: a benchmark's log only shows when it ends.
func progress(b *testing.B, format string, args ...any) {
	b.Helper()
	fmt.Fprintf(os.Stderr, "reconcile backlog: "+format+"\n", args...)
}

// backlogFake is the fake Didit whose delivery log holds the backlog: its
// webhooks went to a receiver answering 503, Temporal being down.
func backlogFake(b *testing.B) (*fakedidit.Server, string) {
	b.Helper()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "temporal unavailable", http.StatusServiceUnavailable)
	}))
	b.Cleanup(down.Close)
	fake := fakedidit.New(fakedidit.Options{Key: apiKey, Secret: secret, ReceiverURL: down.URL + "/webhooks/didit"})
	api := httptest.NewServer(fake.Handler())
	b.Cleanup(func() {
		api.Close()
		_ = fake.Close()
	})
	return fake, api.URL
}

// triggeredRun is the reconcile workflow the schedule started for the
// trigger at (or at the same time by itself: either drains the backlog).
func (s *stack) triggeredRun(ctx context.Context, b *testing.B, sched client.ScheduleHandle, at time.Time) (id, firstRun string) {
	b.Helper()
	err := launch.WaitFor(ctx, time.Minute, "the triggered reconcile run", func() bool {
		d, err := sched.Describe(ctx)
		if err != nil {
			return false
		}
		for _, a := range d.Info.RecentActions {
			if r := a.StartWorkflowResult; r != nil && !a.ActualTime.Before(at.Add(-time.Second)) {
				id, firstRun = r.WorkflowID, r.FirstExecutionRunID
				return true
			}
		}
		return false
	})
	if err != nil {
		b.Fatal(err)
	}
	return id, firstRun
}

// watch wraps cond with a progress line every 15 s.
func (s *stack) watch(ctx context.Context, b *testing.B, wfID string, bl *backlog, start time.Time, cond func() bool) func() bool {
	next := time.Now().Add(15 * time.Second)
	return func() bool {
		if cond() {
			return true
		}
		if time.Now().Before(next) {
			return false
		}
		next = time.Now().Add(15 * time.Second)
		history := 0
		if d, err := s.temporal.DescribeWorkflow(ctx, wfID, ""); err == nil {
			history = d.HistoryLength
		}
		statuses, _ := s.store.SessionStatuses(ctx, bl.sessions)
		approved := 0
		for _, st := range statuses {
			if st == bl.final {
				approved++
			}
		}
		progress(b, "%s: reconcile run at %d history events; %d of %d sessions recorded %s; %d mails; worker RSS %.1f MB",
			time.Since(start).Round(time.Second), history, approved, len(bl.sessions), bl.final, len(s.sink.Mails()),
			float64(vmKB(b, s.worker.Pid(), "VmRSS"))/1024)
		return false
	}
}

// settled reports whether every session's record is at its latest status
// and every session has been mailed.
func (s *stack) settled(ctx context.Context, bl *backlog) bool {
	statuses, err := s.store.SessionStatuses(ctx, bl.sessions)
	if err != nil || len(statuses) != len(bl.sessions) {
		return false
	}
	for _, st := range statuses {
		if st != bl.final {
			return false
		}
	}
	return len(s.sink.Mails()) >= len(bl.sessions)
}

// checkBacklog fails b unless every event of the backlog is in its
// session's event log, every record is at its latest status, and every
// user got exactly one mail: the approval.
func (s *stack) checkBacklog(ctx context.Context, b *testing.B, bl *backlog) {
	b.Helper()
	missing := 0
	for _, id := range bl.sessions {
		evs, err := s.store.Events(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		held := map[string]bool{}
		for _, e := range evs {
			held[e.EventKey] = true
		}
		for _, key := range bl.keys[id] {
			if !held[key] {
				missing++
			}
		}
		rec, err := s.store.Session(ctx, id)
		if err != nil || rec.Status != bl.final {
			b.Errorf("session %s recorded %q (%v), want %q", id, rec.Status, err, bl.final)
		}
	}
	if missing > 0 {
		b.Errorf("%d of the backlog's %d events are missing from the event log", missing, len(bl.events))
	}
	mails := map[string][]string{}
	for _, m := range s.sink.Mails() {
		for _, to := range m.To {
			mails[to] = append(mails[to], m.Subject)
		}
	}
	for _, id := range bl.sessions {
		if got := mails[bl.email[id]]; len(got) != 1 || !strings.Contains(got[0], "is approved") {
			b.Errorf("session %s: mails %q, want the approval once", id, got)
		}
	}
	if len(mails) != len(bl.sessions) {
		b.Errorf("mail went to %d addresses, want the %d users'", len(mails), len(bl.sessions))
	}
}

// runEvents counts the history events of each run of a chain, following
// its continue-as-new from the first.
func (s *stack) runEvents(ctx context.Context, b *testing.B, id, runID string) []int {
	b.Helper()
	var out []int
	for runID != "" {
		n, next := 0, ""
		it := s.temporal.GetWorkflowHistory(ctx, id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			n++
			if a := e.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				next = a.GetNewExecutionRunId()
			}
		}
		out = append(out, n)
		runID = next
	}
	return out
}

// histogram is the totals of a latency histogram.
type histogram struct{ sum, count float64 }

// workerMetric totals the series of a histogram of the worker's /metrics
// whose labels hold label.
func (s *stack) workerMetric(b *testing.B, name, label string) histogram {
	b.Helper()
	resp, err := http.Get("http://" + s.metricsAddr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var h histogram
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		series, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.Contains(series, label) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		switch {
		case err != nil:
			continue
		case strings.HasPrefix(series, name+"_sum{"):
			h.sum += v
		case strings.HasPrefix(series, name+"_count{"):
			h.count += v
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return h
}

// vmKB reads a size field (VmRSS, VmHWM) of /proc/<pid>/status, in kB.
func vmKB(b *testing.B, pid int, field string) int64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("worker memory: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("worker memory: %s: %v", sc.Text(), err)
			}
			return kb
		}
	}
	b.Fatalf("worker memory: no %s in /proc/%d/status", field, pid)
	return 0
}

// backlog is the events Didit failed to deliver, and what each session
// should end as.
type backlog struct {
	events   []backlogEvent
	sessions []string
	// keys are each session's event keys; email its user's address.
	keys  map[string][]string
	email map[string]string
	// final is every session's latest status.
	final string
}

type backlogEvent struct {
	body []byte
	// at is Didit's first attempt.
	at time.Time
}

// byTime is the events in the order Didit sent them.
func (bl *backlog) byTime() []backlogEvent {
	return slices.SortedStableFunc(slices.Values(bl.events), func(x, y backlogEvent) int { return x.at.Compare(y.at) })
}

// newBacklog builds the sessions of an outage that ended about ten minutes
// before now: each In Progress, Approved a minute later, then its data
// updated once or twice a minute apart, every event delivered (and failed)
// a second after it happened.
func newBacklog(b *testing.B, now time.Time) *backlog {
	b.Helper()
	fixtures := map[string]map[string]any{}
	for _, f := range []string{"status-updated-in-progress.json", "status-updated-approved.json", "data-updated.json"} {
		raw, err := os.ReadFile(launch.Path(b, "didit", "testdata", "fixtures", f))
		if err != nil {
			b.Fatal(err)
		}
		fixtures[f] = decodeNumbers(b, raw)
	}
	bl := &backlog{keys: map[string][]string{}, email: map[string]string{}, final: string(didit.StatusApproved)}
	start := now.Add(-backlogSessions*backlogSpacing - 10*time.Minute).Truncate(time.Second)
	for i := range backlogSessions {
		id := simulator.NewUUID()
		bl.sessions = append(bl.sessions, id)
		bl.email[id] = fmt.Sprintf("user-%04d@example.com", i)
		plan := []string{"status-updated-in-progress.json", "status-updated-approved.json", "data-updated.json"}
		if i < backlogFourEvent {
			plan = append(plan, "data-updated.json")
		}
		first := start.Add(time.Duration(i) * backlogSpacing)
		for j, f := range plan {
			created := first.Add(time.Duration(j) * time.Minute)
			key := simulator.NewUUID()
			bl.keys[id] = append(bl.keys[id], key)
			bl.events = append(bl.events, backlogEvent{
				body: backlogBody(b, fixtures[f], id, key, bl.email[id], created.Unix()),
				at:   created.Add(time.Second),
			})
		}
	}
	return bl
}

// backlogBody is deliveryOf for a fixture already decoded, with the
// user's own address; the fake stamps and signs it when it logs it.
func backlogBody(b *testing.B, fixture map[string]any, session, eventID, email string, createdAt int64) []byte {
	b.Helper()
	body := make(map[string]any, len(fixture))
	for k, v := range fixture {
		body[k] = v
	}
	body["session_id"] = session
	body["event_id"] = eventID
	body["created_at"] = json.Number(strconv.FormatInt(createdAt, 10))
	if d, ok := fixture["decision"].(map[string]any); ok {
		dc := make(map[string]any, len(d))
		for k, v := range d {
			dc[k] = v
		}
		dc["session_id"] = session
		dc["contact_details"] = map[string]any{"email": email}
		body["decision"] = dc
	}
	js, err := json.Marshal(body)
	if err != nil {
		b.Fatal(err)
	}
	return js
}

func decodeNumbers(b *testing.B, raw []byte) map[string]any {
	b.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		b.Fatal(err)
	}
	return m
}
