package activities

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/internal/store"
)

// The engine itself is internal/reconcile's to test; these tests hold what
// the activities add: the signal the receiver would send, and Didit's
// failures turned into what Temporal does.

const reconcileKey = "reconcile-test-key"

// signals records the SignalWithStarts the reconcile activities send.
type signals struct {
	mu    sync.Mutex
	calls []signalCall
}

type signalCall struct {
	id, name string
	event    contract.SessionEvent
	opts     client.StartWorkflowOptions
	workflow any
	args     []any
}

func (s *signals) SignalWithStartWorkflow(_ context.Context, id, name string, arg any,
	opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, signalCall{id: id, name: name, event: arg.(contract.SessionEvent), opts: opts, workflow: wf, args: args})
	return nil, nil
}

// reconcileActivities are the reconcile activities on a real store, against
// the fake Didit, in Temporal's activity test environment.
func reconcileActivities(t *testing.T, opts fakedidit.Options) (*Reconciler, *fakedidit.Server, *testsuite.TestActivityEnvironment) {
	t.Helper()
	opts.Key = reconcileKey
	fake := fakedidit.New(opts)
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	c, err := api.New(api.Config{BaseURL: srv.URL, Key: reconcileKey})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "records.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rec := &Reconciler{API: c, Store: st, Temporal: &signals{}, TaskQueue: "sessions"}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(rec)
	return rec, fake, env
}

// TestReconcileSignalsAsTheReceiverDoes: a session behind Didit is fed
// through the receiver's SignalWithStart: its workflow's ID, the event
// signal, the session queue, and a new run's start, without the business's
// metadata.
func TestReconcileSignalsAsTheReceiverDoes(t *testing.T) {
	rec, fake, env := reconcileActivities(t, fakedidit.Options{})
	sid := simulator.NewUUID()
	decision, _ := json.Marshal(map[string]any{"session_id": sid, "status": "Approved"})
	fake.PutSession(sid, "Approved", decision, "u-1", time.Now().Add(-time.Hour))

	val, err := env.ExecuteActivity(rec.ReconcileSessions, SessionsStep{From: time.Now().Add(-24 * time.Hour), To: time.Now(), PageSize: 50})
	var res StepResult
	if err != nil || val.Get(&res) != nil || res.Repaired != 1 {
		t.Fatalf("step: %+v, %v", res, err)
	}
	calls := rec.Temporal.(*signals).calls
	if len(calls) != 1 {
		t.Fatalf("%d signals, want 1", len(calls))
	}
	c := calls[0]
	if c.id != contract.SessionWorkflowID(sid) || c.name != contract.EventSignal || c.workflow != contract.SessionWorkflowType ||
		c.opts.TaskQueue != "sessions" || c.opts.ID != contract.SessionWorkflowID(sid) ||
		len(c.args) != 1 || c.args[0] != (contract.SessionStart{SessionID: sid}) {
		t.Fatalf("signalled %+v", c)
	}
	if c.event.Event.Status != didit.StatusApproved || c.event.Proof.Source != didit.SourceAPI || c.event.Event.Metadata != nil {
		t.Fatalf("fed %+v", c.event)
	}
}

// TestReconcileErrors: a 429 is retried after Didit's Retry-After; a
// refused key fails the step for good; no key does nothing.
func TestReconcileErrors(t *testing.T) {
	rec, _, env := reconcileActivities(t, fakedidit.Options{RateLimitEvery: 1})
	_, err := env.ExecuteActivity(rec.ReconcileTargets, "")
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.NonRetryable() || appErr.NextRetryDelay() <= 0 {
		t.Fatalf("429: %v", err)
	}

	refused, fake, env := reconcileActivities(t, fakedidit.Options{})
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	refused.API, _ = api.New(api.Config{BaseURL: srv.URL, Key: "wrong-key"})
	_, err = env.ExecuteActivity(refused.ReconcileTargets, "")
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != ErrTypeDiditCredentials {
		t.Fatalf("401: %v", err)
	}

	off, _, env := reconcileActivities(t, fakedidit.Options{})
	off.API, _ = api.New(api.Config{BaseURL: "http://127.0.0.1:1"})
	var targets ReconcileTargets
	val, err := env.ExecuteActivity(off.ReconcileTargets, "")
	if err != nil || val.Get(&targets) != nil || targets.Enabled {
		t.Fatalf("no key: %+v, %v", targets, err)
	}
}
