package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

// The lean no-op is the end-to-end anchor of make bench: the same sessions
// (In Progress, then Approved) through the cheapest workflow Temporal
// allows that does the same work in shape: a signal per event, an upsert
// per event, a local activity per event and one for the notice, an idle
// timer. It records nothing, mails nobody and uses no codec.
const (
	leanQueue        = "bench-lean"
	leanWorkflowType = "BenchLeanSession"
)

// leanSession handles events until the session is final and quiet for idle.
func leanSession(ctx workflow.Context, idle time.Duration) error {
	events := workflow.GetSignalChannel(ctx, contract.EventSignal)
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	final := false
	for {
		if final {
			if got, _ := workflow.AwaitWithTimeout(ctx, idle, func() bool { return events.Len() > 0 }); !got {
				return nil
			}
		}
		var ev contract.SessionEvent
		events.Receive(ctx, &ev)
		if err := workflow.ExecuteLocalActivity(lctx, leanRecord, ev.Event.Status).Get(ctx, nil); err != nil {
			return err
		}
		if err := workflow.UpsertTypedSearchAttributes(ctx, contract.StatusKey.ValueSet(string(ev.Event.Status))); err != nil {
			return err
		}
		if ev.Event.Status.Final() && !final {
			if err := workflow.ExecuteLocalActivity(lctx, leanNotify, ev.Event.Status).Get(ctx, nil); err != nil {
				return err
			}
			final = true
		}
	}
}

func leanRecord(context.Context, didit.Status) error { return nil }
func leanNotify(context.Context, didit.Status) error { return nil }

// leanWorker runs the lean no-op in the harness process, with a client of
// its own that has no codec.
func leanWorker(address string) (client.Client, worker.Worker, error) {
	c, err := client.Dial(client.Options{HostPort: address, Logger: launch.QuietLogger()})
	if err != nil {
		return nil, nil, err
	}
	w := worker.New(c, leanQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(leanSession, workflow.RegisterOptions{Name: leanWorkflowType})
	w.RegisterActivity(leanRecord)
	w.RegisterActivity(leanNotify)
	if err := w.Start(); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, w, nil
}

// runLean sends n sessions (two raw SignalWithStart each, In Progress then
// Approved) to the lean no-op, all at once, and returns when every one of
// their workflows has completed.
func runLean(ctx context.Context, c client.Client, template didit.Event, prefix string, n int, idle time.Duration) (time.Duration, error) {
	start := time.Now()
	ids := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		session := fmt.Sprintf("%s-%06d", prefix, i)
		ids[i] = "lean-" + session
		wg.Go(func() {
			for _, status := range []didit.Status{didit.StatusInProgress, didit.StatusApproved} {
				ev := template
				ev.SessionID, ev.Status = session, status
				_, err := c.SignalWithStartWorkflow(ctx, ids[i], contract.EventSignal,
					contract.SessionEvent{Event: ev, Proof: didit.Proof{Scheme: didit.SchemeRaw, Timestamp: ev.Timestamp}, ReceivedAt: time.Now()},
					client.StartWorkflowOptions{ID: ids[i], TaskQueue: leanQueue,
						WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING},
					leanWorkflowType, idle)
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("lean no-op: %w", err)
	}
	if err := waitCompleted(ctx, c, ids, 5*time.Minute); err != nil {
		return 0, fmt.Errorf("lean no-op: %w", err)
	}
	return time.Since(start), nil
}

// waitCompleted polls until every workflow in ids has completed.
func waitCompleted(ctx context.Context, c client.Client, ids []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	pending := ids
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d workflows not completed after %s", len(pending), len(ids), limit)
		}
		var still []string
		for _, id := range pending {
			d, err := c.DescribeWorkflow(ctx, id, "")
			if err != nil || d.Status != enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}
