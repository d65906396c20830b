package untrusted_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/internal/codec"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/untrusted"
)

func TestMain(m *testing.M) {
	code := m.Run()
	launch.StopTemporal()
	os.Exit(code)
}

const (
	workflowType = "GuardedNotes"
	noteName     = "note"
	seenQuery    = "seen"
	stop         = "stop"
)

// guardedNotes takes notes by signal and by Update until a note says stop;
// the seen query lists what reached it.
func guardedNotes(ctx workflow.Context, first string) ([]string, error) {
	seen := []string{"input:" + first}
	if err := workflow.SetQueryHandler(ctx, seenQuery, func() ([]string, error) { return seen, nil }); err != nil {
		return nil, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, noteName, func(ctx workflow.Context, note string) error {
		seen = append(seen, "update:"+note)
		return nil
	}, workflow.UpdateHandlerOptions{Validator: func(note string) error {
		if note == "" {
			return errors.New("empty note")
		}
		return nil
	}}); err != nil {
		return nil, err
	}
	// The operators' Updates, which may come without input.
	for _, name := range []string{contract.RetrySignal, contract.SkipSignal} {
		if err := workflow.SetUpdateHandler(ctx, name, func(ctx workflow.Context, note string) error {
			if note == "" {
				note = "(bare)"
			}
			seen = append(seen, "update-"+name+":"+note)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	notes := workflow.GetSignalChannel(ctx, noteName)
	retries := workflow.GetSignalChannel(ctx, contract.RetrySignal)
	for !slices.Contains(seen, "signal:"+stop) {
		var note string
		name := "signal:"
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(notes, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &note) })
		sel.AddReceive(retries, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); name = "retry:" })
		sel.Select(ctx)
		if note == "" {
			note = "(bare)"
		}
		seen = append(seen, name+note)
	}
	return seen, nil
}

// setUp runs a worker on the dev server whose client has the guard, and
// returns a client with the keys and one without.
func setUp(t *testing.T) (keyed, plain client.Client, reg *prometheus.Registry, queue string) {
	t.Helper()
	keyed = launch.Temporal(t)
	reg = prometheus.NewRegistry()
	queue = "untrusted-" + t.Name()
	guardedWorker(t, keyed, launch.Codec(), reg, queue)
	plain, err := client.NewClientFromExisting(keyed, client.Options{Logger: launch.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Close)
	return keyed, plain, reg, queue
}

// guardedWorker starts a worker of queue whose client has the guard of c.
func guardedWorker(t *testing.T, existing client.Client, c *codec.Codec, reg *prometheus.Registry, queue string) worker.Worker {
	t.Helper()
	g := untrusted.New(c, slog.New(slog.NewTextHandler(t.Output(), nil)), reg)
	dc := g.DataConverter()
	guarded, err := client.NewClientFromExisting(existing, client.Options{
		DataConverter: dc, FailureConverter: g.FailureConverter(dc),
		Interceptors: []interceptor.ClientInterceptor{g}, Logger: launch.QuietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(guarded.Close)
	w := worker.New(guarded, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(guardedNotes, workflow.RegisterOptions{Name: workflowType})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

func refused(t *testing.T, reg *prometheus.Registry, kind, name string) float64 {
	t.Helper()
	return counted(t, reg, "diditflow_untrusted_payloads_total", kind, name)
}

// heldForKey is how many decodes of kind waited for a key the worker lacks.
func heldForKey(t *testing.T, reg *prometheus.Registry, kind string) float64 {
	t.Helper()
	return counted(t, reg, "diditflow_payloads_unknown_key_total", kind, "")
}

func counted(t *testing.T, reg *prometheus.Registry, metric, kind, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["name"] == name {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// A workflow started without the keys fails its run (a workflow failure:
// a workflow-task failure would retry forever and keep the ID taken), for
// good even under the sender's retry policy, so the same ID starts again
// with the keys; the refusal is counted as a start of its type.
func TestUnencryptedStartFailsTheRun(t *testing.T) {
	keyed, plain, reg, queue := setUp(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	opts := client.StartWorkflowOptions{ID: "untrusted-start-" + time.Now().Format("150405.000000"), TaskQueue: queue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		RetryPolicy:           &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumAttempts: 0}}
	run, err := plain.ExecuteWorkflow(ctx, opts, workflowType, "forged")
	if err != nil {
		t.Fatal(err)
	}
	var wfErr *temporal.WorkflowExecutionError
	if err := keyed.GetWorkflow(ctx, opts.ID, run.GetRunID()).Get(ctx, nil); !errors.As(err, &wfErr) {
		t.Fatalf("the unencrypted run ended with %v, want a workflow failure", err)
	}
	var appErr *temporal.ApplicationError
	if !errors.As(wfErr, &appErr) || !appErr.NonRetryable() || !strings.Contains(appErr.Error(), "payload not encrypted") {
		t.Fatalf("failure %v: want a non-retryable one saying the input was not encrypted", wfErr)
	}
	if d, err := keyed.DescribeWorkflow(ctx, opts.ID, ""); err != nil || d.Status != enums.WORKFLOW_EXECUTION_STATUS_FAILED {
		t.Fatalf("the workflow after the refusal: %v, %v; want failed, not retried", d, err)
	}
	if n := refused(t, reg, untrusted.KindStart, workflowType); n != 1 {
		t.Fatalf("refused starts = %v, want 1", n)
	}

	run, err = keyed.ExecuteWorkflow(ctx, opts, workflowType, "genuine")
	if err != nil {
		t.Fatal(err)
	}
	if err := keyed.SignalWorkflow(ctx, opts.ID, "", noteName, stop); err != nil {
		t.Fatal(err)
	}
	var seen []string
	if err := run.Get(ctx, &seen); err != nil || seen[0] != "input:genuine" {
		t.Fatalf("the genuine run: %v, %v", seen, err)
	}
}

// Into a running workflow, an unencrypted signal is dropped before its
// channel and the run goes on; a signal without payload (an operator's bare
// signal from the CLI) still arrives if it is a retry; an unencrypted Update
// is rejected before its validator, and so is one without payload unless it
// is a retry, as for signals, even from a client with the keys. Each
// refusal is counted.
func TestUnencryptedSignalAndUpdateAreRefused(t *testing.T) {
	keyed, plain, reg, queue := setUp(t)
	ctx := t.Context()
	id := "untrusted-signal-" + time.Now().Format("150405.000000")
	run, err := keyed.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, workflowType, "genuine")
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.SignalWorkflow(ctx, id, "", noteName, "forged"); err != nil {
		t.Fatal(err)
	}
	// Without a payload only a retry is taken: a bare skip or acknowledge
	// would give up every parked step or clear every flag.
	for _, name := range []string{noteName, contract.SkipSignal, contract.RetrySignal} {
		if _, err := keyed.WorkflowService().SignalWorkflowExecution(ctx, &workflowservice.SignalWorkflowExecutionRequest{
			Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: id}, SignalName: name,
		}); err != nil {
			t.Fatal(err)
		}
	}
	forged, err := plain.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: noteName,
		Args: []any{"forged"}, WaitForStage: client.WorkflowUpdateStageAccepted})
	if err == nil {
		err = forged.Get(ctx, nil)
	}
	if err == nil {
		t.Fatal("an unencrypted Update was accepted")
	}
	h, err := keyed.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: noteName,
		Args: []any{"genuine"}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil || h.Get(ctx, nil) != nil {
		t.Fatalf("the genuine Update: %v", err)
	}
	for _, name := range []string{contract.SkipSignal, contract.RetrySignal} {
		h, err := keyed.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: name,
			WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		if bare := name == contract.RetrySignal; bare != (err == nil) {
			t.Errorf("a bare %s Update: %v", name, err)
		}
	}
	for _, note := range []string{"genuine", stop} {
		if err := keyed.SignalWorkflow(ctx, id, "", noteName, note); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	if err := run.Get(ctx, &seen); err != nil {
		t.Fatal(err)
	}
	want := []string{"input:genuine", "retry:(bare)", "update:genuine", "update-retry:(bare)", "signal:genuine", "signal:" + stop}
	if !slices.Equal(seen, want) {
		t.Fatalf("the workflow saw %q, want %q", seen, want)
	}
	if n := refused(t, reg, untrusted.KindSignal, "unknown"); n != 2 {
		t.Errorf("refused signals named other than diditflow's = %v, want 2 (the forged and the bare note, labelled unknown)", n)
	}
	if n := refused(t, reg, untrusted.KindSignal, contract.SkipSignal); n != 1 {
		t.Errorf("refused skips = %v, want the bare one", n)
	}
	if n := refused(t, reg, untrusted.KindUpdate, ""); n != 1 {
		t.Errorf("refused Updates = %v, want 1", n)
	}
	if n := refused(t, reg, untrusted.KindUpdate, contract.SkipSignal); n != 1 {
		t.Errorf("refused bare skip Updates = %v, want 1", n)
	}
}

// A signal encrypted under a key this worker lacks (a new key deployed to a
// starter before the workers) is no forgery: it is not dropped, its
// workflow task fails until a worker with the key takes it.
func TestSignalUnderAnUnknownKeyWaitsForAWorkerWithIt(t *testing.T) {
	keyed := launch.Temporal(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	reg := prometheus.NewRegistry()
	queue := "untrusted-" + t.Name()
	old := guardedWorker(t, keyed, launch.Codec(), reg, queue)
	fresh, err := codec.GenerateKey("fresh")
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := codec.ParseKeys(fresh + "," + launch.PayloadKeys)
	if err != nil {
		t.Fatal(err)
	}
	starter, err := client.NewClientFromExisting(keyed, client.Options{DataConverter: rotated.DataConverter(), Logger: launch.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(starter.Close)

	id := "untrusted-key-" + time.Now().Format("150405.000000")
	run, err := keyed.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, workflowType, "genuine")
	if err != nil {
		t.Fatal(err)
	}
	if err := starter.SignalWorkflow(ctx, id, "", noteName, "under the fresh key"); err != nil {
		t.Fatal(err)
	}
	for failed := false; !failed; {
		it := keyed.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			failed = failed || e.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_FAILED
		}
		if !failed {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if n := refused(t, reg, untrusted.KindSignal, "unknown"); n != 0 {
		t.Fatalf("the signal under a fresh key was refused as untrusted (%v)", n)
	}
	if n := heldForKey(t, reg, untrusted.KindSignal); n < 1 {
		t.Fatal("the signal held for a key the worker lacks is not counted")
	}

	old.Stop()
	guardedWorker(t, keyed, rotated, prometheus.NewRegistry(), queue)
	if err := keyed.SignalWorkflow(ctx, id, "", noteName, stop); err != nil {
		t.Fatal(err)
	}
	var seen []string
	if err := starter.GetWorkflow(ctx, id, run.GetRunID()).Get(ctx, &seen); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(seen, "signal:under the fresh key") {
		t.Fatalf("the workflow saw %q, without the signal under the fresh key", seen)
	}
}

// A run started with an input under a key this worker lacks is no forgery
// either: its first workflow task fails until a worker with the key takes
// it, instead of the run failing with a genuine event in it.
func TestStartUnderAnUnknownKeyWaitsForAWorkerWithIt(t *testing.T) {
	keyed := launch.Temporal(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	queue := "untrusted-" + t.Name()
	reg := prometheus.NewRegistry()
	old := guardedWorker(t, keyed, launch.Codec(), reg, queue)
	fresh, err := codec.GenerateKey("fresh")
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := codec.ParseKeys(fresh + "," + launch.PayloadKeys)
	if err != nil {
		t.Fatal(err)
	}
	starter, err := client.NewClientFromExisting(keyed, client.Options{DataConverter: rotated.DataConverter(), Logger: launch.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(starter.Close)

	id := "untrusted-start-key-" + time.Now().Format("150405.000000")
	run, err := starter.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, workflowType, "under the fresh key")
	if err != nil {
		t.Fatal(err)
	}
	for failed := false; !failed; {
		it := keyed.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			failed = failed || e.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_FAILED
			if e.GetEventType() == enums.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED {
				t.Fatal("the run failed over an input under a key the worker lacks")
			}
		}
		if !failed {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if n := refused(t, reg, untrusted.KindStart, workflowType); n != 0 {
		t.Fatalf("the start under a fresh key was refused as untrusted (%v)", n)
	}
	if n := heldForKey(t, reg, untrusted.KindStart); n < 1 {
		t.Fatal("the start held for a key the worker lacks is not counted")
	}

	old.Stop()
	guardedWorker(t, keyed, rotated, prometheus.NewRegistry(), queue)
	if err := keyed.SignalWorkflow(ctx, id, "", noteName, stop); err != nil {
		t.Fatal(err)
	}
	var seen []string
	if err := starter.GetWorkflow(ctx, id, run.GetRunID()).Get(ctx, &seen); err != nil {
		t.Fatal(err)
	}
}
