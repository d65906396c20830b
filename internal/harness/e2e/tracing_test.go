package e2e

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/otlpsink"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/internal/harness/smtptest"
)

// tracingEnv points a process at the collector. The batch delay is longer
// than any test, so the spans the collector gets were flushed on SIGTERM.
func tracingEnv(endpoint string) []string {
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint, "OTEL_BSP_SCHEDULE_DELAY=600000"}
}

// startStarter runs the starter binary against the stack's Temporal and
// returns its base URL once it answers /healthz; its metrics are served on
// s.starterMetricsAddr.
func (s *stack) startStarter(env ...string) (base string, p *launch.Proc, logPath string) {
	s.t.Helper()
	addr := net.JoinHostPort("127.0.0.1", launch.Port(s.t))
	s.starterMetricsAddr = net.JoinHostPort("127.0.0.1", launch.Port(s.t))
	logPath = filepath.Join(s.t.TempDir(), "starter.log")
	p, err := launch.Start(starterBin, nil, append([]string{
		"HTTP_ADDR=" + addr,
		"STARTER_METRICS_ADDR=" + s.starterMetricsAddr,
		"TEMPORAL_ADDRESS=" + s.address,
		"TEMPORAL_TASK_QUEUE=" + taskQueue,
		"DIDIT_WEBHOOK_SECRETS=" + secret,
		"PAYLOAD_ENCRYPTION_KEYS=" + launch.PayloadKeys,
	}, env...), logPath)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { p.Stop(syscall.SIGKILL) })
	base = "http://" + addr
	s.waitFor("the starter to listen", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base, p, logPath
}

// stopped sends sig to p and waits for it to exit; the wait bounds a hang,
// it does not measure speed.
func (s *stack) stopped(p *launch.Proc, what string) {
	s.t.Helper()
	p.Stop(syscall.SIGTERM)
	select {
	case <-p.Done():
	case <-time.After(60 * time.Second):
		s.t.Fatalf("%s still running a minute after SIGTERM", what)
	}
}

// TestTraceFromDeliveryToMail: Didit's two deliveries of an approved
// session, through the starter and worker binaries exporting to a
// collector. One trace joins the first POST, its SignalWithStart, the
// workflow and each activity down to the SMTP call; the second POST joins
// the workflow through its signal; log lines carry the trace; no span holds
// the person's data; and the spans arrive although the batch delay never
// passed, because both processes flush on SIGTERM.
func TestTraceFromDeliveryToMail(t *testing.T) {
	collector := otlpsink.New(t)
	s := newStack(t, func(s *stack) { s.workerEnv = tracingEnv(collector.Endpoint()) })
	base, starter, starterLog := s.startStarter(tracingEnv(collector.Endpoint())...)

	// The first try of the notice fails with a reply that quotes the
	// address: the failure goes into spans (status, exception event) too.
	s.sink.Script(smtptest.Rule{Command: smtptest.DataEnd, Calls: []int{1},
		Reply: smtptest.Reply{Code: 451, Enhanced: "4.2.0", Message: "mailbox <" + userEmail + "> busy, try later"}})
	session := simulator.NewUUID()
	s.deliverTo(base, delivery(t, "status-updated-in-progress.json", session))
	s.deliverTo(base, personal(t, delivery(t, "status-updated-approved.json", session)))
	id := contract.SessionWorkflowID(session)
	s.waitFor("the session to complete", func() bool { return s.completed(id) && s.sent(session, "user:") })
	s.stopped(starter, "the starter")
	s.stopped(s.worker, "the worker")
	s.worker = nil

	spans := collector.Spans()
	var posts []otlpsink.Span
	for _, sp := range spans {
		if sp.Name == "POST /webhooks/didit" && sp.Attrs["didit.session_id"] == session {
			posts = append(posts, sp)
		}
	}
	if len(posts) != 2 {
		t.Fatalf("%d delivery spans of the session, want 2; got %v", len(posts), names(spans))
	}
	first := posts[0]
	if posts[1].Attrs["didit.status"] == "In Progress" {
		first = posts[1]
	}
	tree := otlpsink.Tree(spans, first.TraceID)
	t.Logf("the first delivery's trace:\n%s", tree)
	for _, want := range []string{
		"POST /webhooks/didit (diditflow-starter)",
		"SignalWithStartWorkflow:" + contract.SessionWorkflowType + " (diditflow-starter)",
		"RunWorkflow:" + contract.SessionWorkflowType + " (diditflow-worker)",
		"StartActivity:NotifyUser (diditflow-worker)",
		"RunActivity:NotifyUser (diditflow-worker)",
		"SMTP send (diditflow-worker)",
	} {
		if !strings.Contains(tree, want) {
			t.Errorf("the trace has no %q", want)
		}
	}
	second := posts[0]
	if second.SpanID == first.SpanID {
		second = posts[1]
	}
	if tree := otlpsink.Tree(spans, second.TraceID); !strings.Contains(tree, "HandleSignal:"+contract.EventSignal) {
		t.Errorf("the second delivery's trace does not reach the workflow:\n%s", tree)
	}

	failed := false
	for _, sp := range spans {
		if sp.Name == "SMTP send" && sp.Status != "" {
			failed = true
		}
		fields := append([]string{sp.Name, sp.Status}, sp.Events...)
		for k, v := range sp.Attrs {
			fields = append(fields, k+"="+v)
		}
		for _, f := range fields {
			for _, needle := range personalData {
				if strings.Contains(f, needle) {
					t.Errorf("span %s holds personal data %q: %s", sp.Name, needle, f)
				}
			}
		}
	}

	if !failed {
		t.Error("no span recorded the refused first try of the notice")
	}
	if !loggedInTrace(t, starterLog, "didit delivery", first.TraceID) {
		t.Errorf("no starter log line of the first delivery carries trace_id %s", first.TraceID)
	}
	if !loggedInTrace(t, s.workerLog, "user notified", first.TraceID) {
		t.Errorf("no worker log line of the notice carries trace_id %s", first.TraceID)
	}
}

// TestUnreachableCollectorNeverBlocksADelivery: with a collector that takes
// connections and never answers (worse than a closed port, which refuses at
// once), deliveries are answered, the session completes and both processes
// still exit on SIGTERM, the flush giving up after its timeout.
func TestUnreachableCollectorNeverBlocksADelivery(t *testing.T) {
	addr, _ := launch.SilentServer(t)
	silent := "http://" + addr
	s := newStack(t, func(s *stack) { s.workerEnv = tracingEnv(silent) })
	base, starter, _ := s.startStarter(tracingEnv(silent)...)
	session := simulator.NewUUID()
	s.deliverTo(base, delivery(t, "status-updated-approved.json", session))
	s.waitFor("the session to complete", func() bool { return s.completed(contract.SessionWorkflowID(session)) })
	s.stopped(starter, "the starter")
	s.stopped(s.worker, "the worker")
	s.worker = nil
}

// personalData is what personal() puts in a delivery, beside the fixture's
// own name, document number, birth date and the user's IP address.
var personalData = []string{userEmail, "trace-sentinel-vendor-51c2", "Emma", "Clarke", "533401278", "1991-04-17", "203.0.113.24"}

// personal gives a delivery a vendor_data that a span must not hold.
func personal(t *testing.T, wire []byte) []byte {
	t.Helper()
	return withVendorData(t, wire, personalData[1])
}

func names(spans []otlpsink.Span) []string {
	out := make([]string, 0, len(spans))
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// loggedInTrace reports whether a JSON or text log line with msg carries
// trace_id traceID.
func loggedInTrace(t *testing.T, path, msg, traceID string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, msg) {
			continue
		}
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			if rec["trace_id"] == traceID {
				return true
			}
			continue
		}
		if strings.Contains(line, "trace_id="+traceID) {
			return true
		}
	}
	return false
}

// withVendorData sets a delivery's vendor_data, its decision's too.
func withVendorData(t *testing.T, wire []byte, vendorData string) []byte {
	t.Helper()
	return rewire(t, wire, func(body map[string]any) {
		body["vendor_data"] = vendorData
		if d, ok := body["decision"].(map[string]any); ok {
			d["vendor_data"] = vendorData
		}
	})
}
