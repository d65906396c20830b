package kyc

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/internal/codec"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/temporalclient"
)

// TestWaiterTakesEachChangeOnceInOrder: an update told twice, or one older
// than what the waiter has seen, changes nothing; the first decided change
// ends the wait.
func TestWaiterTakesEachChangeOnceInOrder(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := &waiter{sessionID: "s-1", seen: -1}
	steps := []struct {
		u    Update
		want Status
	}{
		{Update{Changes: []Change{{Sequence: 1, Status: NotStarted}, {Sequence: 2, Status: InProgress}}}, ""},
		{Update{Changes: []Change{{Sequence: 2, Status: InProgress}}}, ""},
		{Update{Changes: []Change{{Sequence: 4, Status: InReview}}}, ""},
		// Older than what was seen: an Approved the session has left.
		{Update{Changes: []Change{{Sequence: 3, Status: Approved}}}, ""},
		{Update{Changes: []Change{{Sequence: 5, Status: Declined, At: at}, {Sequence: 6, Status: Approved}}}, Declined},
	}
	for i, st := range steps {
		out, ok := w.take(st.u)
		if ok != (st.want != "") || out.Status != st.want {
			t.Fatalf("step %d: %+v, %v; want %q", i, out, ok, st.want)
		}
		if ok && (out.Sequence != 5 || !out.At.Equal(at) || out.SessionID != "s-1") {
			t.Fatalf("outcome = %+v", out)
		}
	}
}

// TestSessionRecordedBeforeSequences: a session whose status was recorded
// before diditflow numbered changes is at 0, and is taken.
func TestSessionRecordedBeforeSequences(t *testing.T) {
	w := &waiter{sessionID: "s-1", seen: -1}
	if out, ok := w.take(Update{Changes: []Change{{Sequence: 0, Status: Approved}}}); !ok || out.Status != Approved {
		t.Fatalf("%+v, %v", out, ok)
	}
}

func TestDecided(t *testing.T) {
	for _, s := range []Status{NotStarted, InProgress, AwaitingUser, InReview, Resubmitted, Approved, Declined, Expired, KycExpired, Abandoned} {
		want := s == Approved || s == Declined || s == Abandoned || s == Expired
		if Decided(s) != want {
			t.Errorf("Decided(%q) = %v", s, !want)
		}
	}
}

// TestBadArgumentsFailAtOnce: nothing is scheduled for a call that cannot
// succeed.
func TestBadArgumentsFailAtOnce(t *testing.T) {
	for name, call := range map[string]func(ctx workflow.Context) error{
		"no vendor_data": func(ctx workflow.Context) error { _, err := StartVerification(ctx, Request{}); return err },
		"bad session":    func(ctx workflow.Context) error { _, err := AwaitOutcome(ctx, "../x", time.Hour); return err },
		"no timeout":     func(ctx workflow.Context) error { _, err := AwaitOutcome(ctx, "s-1", 0); return err },
		"bad decision":   func(ctx workflow.Context) error { _, err := Decision(ctx, ""); return err },
	} {
		t.Run(name, func(t *testing.T) {
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestWorkflowEnvironment()
			env.RegisterWorkflowWithOptions(call, workflow.RegisterOptions{Name: "call"})
			env.ExecuteWorkflow("call")
			if env.GetWorkflowError() == nil {
				t.Fatal("no error")
			}
		})
	}
}

// TestConfigureClientSharesDiditflowsEncryption: with the keys, what a
// business's client writes diditflow reads, and the other way round;
// without them nothing changes.
func TestConfigureClientSharesDiditflowsEncryption(t *testing.T) {
	key, err := codec.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PAYLOAD_ENCRYPTION", "on")
	t.Setenv("PAYLOAD_ENCRYPTION_KEYS", "")
	var plain client.Options
	if err := ConfigureClient(&plain); err != nil || plain.DataConverter != nil || plain.FailureConverter != nil {
		t.Fatalf("without keys: %+v, %v; want nothing set", plain, err)
	}

	t.Setenv("PAYLOAD_ENCRYPTION_KEYS", key)
	var business client.Options
	if err := ConfigureClient(&business); err != nil {
		t.Fatal(err)
	}
	enc, err := config.LoadEncryption()
	if err != nil {
		t.Fatal(err)
	}
	diditflow, err := temporalclient.Options(slog.New(slog.DiscardHandler), enc)
	if err != nil {
		t.Fatal(err)
	}
	ev := Event{Kind: StatusChanged, SessionID: "s-1", VendorData: "user-1", Status: Approved}
	for _, pair := range []struct{ from, to converter.DataConverter }{
		{diditflow.DataConverter, business.DataConverter}, {business.DataConverter, diditflow.DataConverter},
	} {
		p, err := pair.from.ToPayload(ev)
		if err != nil {
			t.Fatal(err)
		}
		if enc := string(p.Metadata["encoding"]); enc != codec.Encoding {
			t.Fatalf("payload encoded as %q, want encrypted", enc)
		}
		var got Event
		if err := pair.to.FromPayload(p, &got); err != nil || got != ev {
			t.Fatalf("read back %+v, %v", got, err)
		}
	}
}

func TestHookWorkflowID(t *testing.T) {
	e := Event{Key: "8c5a41f6-0d0e-4a43-9c1f-4b3c7e3f2a10-7"}
	if id := HookWorkflowID("OnKYCEvent", e); id != "OnKYCEvent-8c5a41f6-0d0e-4a43-9c1f-4b3c7e3f2a10-7" {
		t.Fatalf("id = %q", id)
	}
}

// TestRefusedSubscription: a session with MaxSubscribers waiting refuses
// the next; the wait fails with ErrTooManySubscribers at once.
func TestRefusedSubscription(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterActivityWithOptions(func(_ context.Context, sub Subscription) error {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(UpdateSignal(sub.SessionID), Update{SessionID: sub.SessionID, Refused: "the session has 100 subscribers"})
		}, 0)
		return nil
	}, activity.RegisterOptions{Name: SubscribeActivity})
	wait := func(ctx workflow.Context) (bool, error) {
		_, err := AwaitOutcome(ctx, "s-1", time.Hour)
		return errors.Is(err, ErrTooManySubscribers), nil
	}
	env.RegisterWorkflow(wait)
	env.ExecuteWorkflow(wait)
	var refused bool
	if err := env.GetWorkflowResult(&refused); err != nil || !refused {
		t.Fatalf("refused = %v, %v; want ErrTooManySubscribers", refused, err)
	}
}

// TestSubscriptionThatCannotSucceed: a subscription diditflow refuses for
// good (an invalid one, an unencrypted one) ends the wait with its error,
// not a timeout an hour later.
func TestSubscriptionThatCannotSucceed(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterActivityWithOptions(func(context.Context, Subscription) error {
		return temporal.NewNonRetryableApplicationError("payload not encrypted", "Plaintext", nil)
	}, activity.RegisterOptions{Name: SubscribeActivity})
	start := env.Now()
	wait := func(ctx workflow.Context) (string, error) {
		_, err := AwaitOutcome(ctx, "s-1", time.Hour)
		if err == nil || errors.Is(err, ErrTimeout) {
			return "", errors.New("want the subscription's error")
		}
		return err.Error(), nil
	}
	env.RegisterWorkflow(wait)
	env.ExecuteWorkflow(wait)
	var msg string
	if err := env.GetWorkflowResult(&msg); err != nil || !strings.Contains(msg, "payload not encrypted") {
		t.Fatalf("%q, %v", msg, err)
	}
	if waited := env.Now().Sub(start); waited >= time.Hour {
		t.Fatalf("waited %s", waited)
	}
}

// TestASecondWaitIsToldWhereTheSessionStands: an update that came after a
// wait of the run ended is old news to the next wait, which is told where
// the session stands when it subscribes.
func TestASecondWaitIsToldWhereTheSessionStands(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	current := Change{Sequence: 1, Status: NotStarted}
	env.RegisterActivityWithOptions(func(_ context.Context, sub Subscription) error {
		c := current
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(UpdateSignal(sub.SessionID), Update{Changes: []Change{c}}) }, 0)
		return nil
	}, activity.RegisterOptions{Name: SubscribeActivity})
	env.RegisterActivityWithOptions(func(context.Context, Subscription) error { return nil }, activity.RegisterOptions{Name: UnsubscribeActivity})
	// Late for the first wait: an approval since reviewed and declined.
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(UpdateSignal("s-1"), Update{Changes: []Change{{Sequence: 2, Status: Approved}}})
		current = Change{Sequence: 3, Status: Declined}
	}, 90*time.Minute)
	waits := func(ctx workflow.Context) (Status, error) {
		if _, err := AwaitOutcome(ctx, "s-1", time.Hour); !errors.Is(err, ErrTimeout) {
			return "", errors.New("the first wait should time out")
		}
		if err := workflow.Sleep(ctx, time.Hour); err != nil {
			return "", err
		}
		out, err := AwaitOutcome(ctx, "s-1", time.Hour)
		return out.Status, err
	}
	env.RegisterWorkflow(waits)
	env.ExecuteWorkflow(waits)
	var got Status
	if err := env.GetWorkflowResult(&got); err != nil || got != Declined {
		t.Fatalf("second wait = %q, %v; want Declined, where the session stands", got, err)
	}
}
