package e2e

import (
	"bytes"
	"context"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/promq"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/internal/harness/smtptest"
	"github.com/diditflow/diditflow/workflows"
)

// TestShippedQueriesNameExportedMetrics: every metric that the alert rules
// and the dashboard select is exported by the starter and the worker
// binaries from the start, with the label values the queries pick, at zero:
// a panel shows 0 rather than no data, and increase() sees the first
// parked step. It still is once they have done what production does daily:
// refused a forged delivery, run an approved session, parked a notice the
// mail server refused, released by an operator's retry, and raised a flag
// an operator acknowledged; and the workflows counted those into the very
// series the worker created at start. A metric renamed in the code and not
// in the queries, or a typo in a query, fails here.
func TestShippedQueriesNameExportedMetrics(t *testing.T) {
	s := newStack(t, func(s *stack) { s.stepBudget = "3s" })
	base, _, _ := s.startStarter()
	s.waitFor("the worker's metrics", func() bool {
		resp, err := http.Get("http://" + s.metricsAddr + "/metrics")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	// The Temporal SDK's own histograms appear at their first observation:
	// a latency quantile has nothing to say before one.
	fresh := s.exportedMetrics(t)
	queriesSelectExported(t, "a fresh stack", fresh, "diditflow_")

	forged, _ := http.NewRequest(http.MethodPost, base+"/webhooks/didit", bytes.NewReader(delivery(t, "status-updated-approved.json", simulator.NewUUID())))
	didit.Headers{Timestamp: "1", Signature: strings.Repeat("0", 64)}.Set(forged.Header)
	resp, err := http.DefaultClient.Do(forged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged delivery answered %d", resp.StatusCode)
	}

	approved := simulator.NewUUID()
	s.deliverTo(base, delivery(t, "status-updated-approved.json", approved))
	s.sink.Script(smtptest.Rule{Command: smtptest.DataEnd, Calls: []int{2},
		Reply: smtptest.Reply{Code: 554, Enhanced: "5.7.1", Message: "refused"}})
	refused := simulator.NewUUID()
	s.waitFor("the first notice", func() bool { return s.sent(approved, "user:") })
	s.deliverTo(base, delivery(t, "status-updated-approved.json", refused))
	id := contract.SessionWorkflowID(refused)
	var state workflows.SessionState
	s.waitFor("the refused notice to park", func() bool {
		v, err := s.temporal.QueryWorkflow(context.Background(), id, "", contract.StateQuery)
		return err == nil && v.Get(&state) == nil && len(state.Parked) == 1
	})
	if err := s.temporal.SignalWorkflow(context.Background(), id, "", contract.RetrySignal,
		contract.OperatorAction{Operator: "ops@example.com", Note: "address fixed"}); err != nil {
		t.Fatal(err)
	}

	// A recipient refused for good raises a flag, which an operator
	// acknowledges.
	const refusedAddress = "refused-recipient@example.com"
	s.sink.Script(smtptest.Rule{Command: smtptest.RcptTo, Recipient: refusedAddress,
		Reply: smtptest.Reply{Code: 550, Enhanced: "5.1.1", Message: "no such user"}})
	flagged := simulator.NewUUID()
	s.deliverTo(base, rewire(t, delivery(t, "status-updated-approved.json", flagged), func(body map[string]any) {
		body["decision"].(map[string]any)["contact_details"] = map[string]any{"email": refusedAddress}
	}))
	flaggedID := contract.SessionWorkflowID(flagged)
	s.waitFor("the refused recipient's flag", func() bool {
		v, err := s.temporal.QueryWorkflow(context.Background(), flaggedID, "", contract.StateQuery)
		return err == nil && v.Get(&state) == nil && len(state.Flags) > 0
	})
	if err := s.temporal.SignalWorkflow(context.Background(), flaggedID, "", contract.AcknowledgeSignal,
		contract.OperatorAction{Operator: "ops@example.com", Note: "user told"}); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the sessions to complete", func() bool {
		return s.completed(id) && s.completed(contract.SessionWorkflowID(approved)) && s.completed(flaggedID)
	})

	// The webhook's listener serves no metrics: they are on their own.
	if resp, err := http.Get(base + "/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics on the webhook's listener: %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}
	after := s.exportedMetrics(t)
	queriesSelectExported(t, "after a day's work", after, "")

	// The workflows counted into the series the worker made at start: the
	// same label sets, now above zero.
	session := map[string]string{"workflow_type": contract.SessionWorkflowType}
	for _, c := range []struct {
		family string
		labels map[string]string
	}{
		{"diditflow_steps_parked_total", session},
		{"diditflow_steps_released_total", map[string]string{"workflow_type": contract.SessionWorkflowType, "action": contract.RetrySignal}},
		{"diditflow_flags_raised_total", session},
		{"diditflow_flags_cleared_total", session},
	} {
		before, now := series(fresh[c.family], c.labels), series(after[c.family], c.labels)
		if len(now) != len(before) || len(before) == 0 {
			t.Errorf("%s %v: %d series at start, %d now; want the same ones", c.family, c.labels, len(before), len(now))
		}
		var total float64
		for _, m := range now {
			total += m.GetCounter().GetValue()
		}
		if total < 1 {
			t.Errorf("%s %v: nothing counted into the series made at start", c.family, c.labels)
		}
	}
}

// exportedMetrics scrapes the starter and the worker.
func (s *stack) exportedMetrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	exported := map[string]*dto.MetricFamily{}
	for _, url := range []string{"http://" + s.starterMetricsAddr + "/metrics", "http://" + s.metricsAddr + "/metrics"} {
		for name, mf := range scrape(t, url) {
			exported[name] = mf
		}
	}
	return exported
}

// series are the metrics of mf whose labels include labels.
func series(mf *dto.MetricFamily, labels map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range mf.GetMetric() {
		have := labelsOf(m)
		match := true
		for k, v := range labels {
			match = match && have[k] == v
		}
		if match {
			out = append(out, m)
		}
	}
	return out
}

// queriesSelectExported fails unless every selector of the shipped alert
// rules and dashboard that names a metric starting with prefix names an
// exported one, with a series its matchers pick, and every quantile
// threshold is below the histogram's largest bucket.
func queriesSelectExported(t *testing.T, when string, exported map[string]*dto.MetricFamily, prefix string) {
	t.Helper()
	families := map[string]bool{}
	for name := range exported {
		families[name] = true
	}
	queries, err := promq.Queries(launch.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	missing := map[string][]string{}
	for _, q := range queries {
		selectors, err := promq.Selectors(q.Expr)
		if err != nil {
			t.Fatalf("%s: %v", q.Where, err)
		}
		if len(selectors) == 0 {
			t.Errorf("%s selects no metric: %s", q.Where, q.Expr)
		}
		for _, sel := range selectors {
			if !strings.HasPrefix(sel.Metric, prefix) {
				continue
			}
			mf := exported[promq.Family(sel.Metric, families)]
			if mf == nil {
				missing[sel.Metric] = append(missing[sel.Metric], q.Where)
				continue
			}
			// The label values a query picks exist, at zero if need be.
			if !slices.ContainsFunc(mf.GetMetric(), func(m *dto.Metric) bool { return sel.Matches(labelsOf(m)) }) {
				t.Errorf("%s: %s: no series of %s matches %v", when, q.Where, sel.Metric, sel.Matchers)
			}
		}
		thresholds, err := promq.QuantileThresholds(q.Expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, th := range thresholds {
			if !strings.HasPrefix(th.Metric, prefix) {
				continue
			}
			mf := exported[promq.Family(th.Metric, families)]
			if top := largestBucket(mf); top <= th.Value {
				t.Errorf("%s: a quantile of %s is compared with %g, but its largest finite bucket is %g: it can never pass it",
					q.Where, th.Metric, th.Value, top)
			}
		}
	}
	if len(missing) > 0 {
		var lines []string
		for n, where := range missing {
			lines = append(lines, n+" (in "+strings.Join(where, "; ")+")")
		}
		sort.Strings(lines)
		var have []string
		for f := range families {
			if strings.HasPrefix(f, "diditflow_") || strings.HasPrefix(f, "temporal_") {
				have = append(have, f)
			}
		}
		sort.Strings(have)
		t.Errorf("%s: metrics no process exports:\n%s\nexported:\n%s", when, strings.Join(lines, "\n"), strings.Join(have, "\n"))
	}
}

// scrape reads a /metrics page into its metric families.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return mfs
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// largestBucket is the largest finite upper bound of a histogram family's
// buckets; 0 when it has none.
func largestBucket(mf *dto.MetricFamily) float64 {
	top := 0.0
	for _, m := range mf.GetMetric() {
		for _, b := range m.GetHistogram().GetBucket() {
			if ub := b.GetUpperBound(); !math.IsInf(ub, 1) && ub > top {
				top = ub
			}
		}
	}
	return top
}

// A worker whose metrics port is taken says so in its log and goes on
// doing its job: metrics are for the operator, the sessions are for the
// users.
func TestWorkerRunsWhenItsMetricsCannotBind(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	s := newStack(t, func(s *stack) { s.metricsAddr = taken.Addr().String() })
	session := simulator.NewUUID()
	s.deliver(delivery(t, "status-updated-approved.json", session))
	s.waitFor("the approval notice", func() bool { return s.sent(session, "user:") })
	if got := s.status(session); got != "Approved" {
		t.Fatalf("record status = %q, want Approved", got)
	}
	log, err := os.ReadFile(s.workerLog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "worker metrics unavailable") || !strings.Contains(string(log), taken.Addr().String()) {
		t.Errorf("the worker's log does not say its metrics are unavailable on %s:\n%s", taken.Addr(), log)
	}
}
