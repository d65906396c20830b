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
// and the dashboard select is exported by the starter or the worker binary,
// once they have done what production does daily: refused a forged
// delivery, run an approved session, and parked a notice the mail server
// refused, released by an operator's retry. A metric renamed in the code
// and not in the queries, or a typo in a query, fails here.
func TestShippedQueriesNameExportedMetrics(t *testing.T) {
	s := newStack(t, func(s *stack) { s.stepBudget = "3s" })
	base, _, _ := s.startStarter()

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

	exported := map[string]*dto.MetricFamily{}
	// The webhook's listener serves no metrics: they are on their own.
	if resp, err := http.Get(base + "/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics on the webhook's listener: %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}
	for _, url := range []string{"http://" + s.starterMetricsAddr + "/metrics", "http://" + s.metricsAddr + "/metrics"} {
		for name, mf := range scrape(t, url) {
			exported[name] = mf
		}
	}
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
			mf := exported[promq.Family(sel.Metric, families)]
			if mf == nil {
				missing[sel.Metric] = append(missing[sel.Metric], q.Where)
				continue
			}
			// The label values a query picks exist, at zero if need be.
			if !slices.ContainsFunc(mf.GetMetric(), func(m *dto.Metric) bool { return sel.Matches(labelsOf(m)) }) {
				t.Errorf("%s: no series of %s matches %v", q.Where, sel.Metric, sel.Matchers)
			}
		}
		thresholds, err := promq.QuantileThresholds(q.Expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, th := range thresholds {
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
		t.Fatalf("metrics no process exports:\n%s\nexported:\n%s", strings.Join(lines, "\n"), strings.Join(have, "\n"))
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
