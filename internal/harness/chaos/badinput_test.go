package chaos

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/receiver"
)

// badCountingTemporal passes calls to a real client and counts the signals,
// so the test proves that no bad input reached Temporal.
type badCountingTemporal struct {
	receiver.Temporal
	signals atomic.Int64
}

func (c *badCountingTemporal) SignalWithStartWorkflow(ctx context.Context, id, signal string, arg any,
	opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	c.signals.Add(1)
	return c.Temporal.SignalWithStartWorkflow(ctx, id, signal, arg, opts, wf, args...)
}

// badDeadTemporal is a real lazy client pointed at a port where nothing

func TestBadInputsGetTheirPinnedAnswers(t *testing.T) {
	gin.SetMode(gin.TestMode) // no route dump on stdout
	const secret = "chaos-badinput-secret"
	// The receiver's clock is fixed, so the ±301 s cases cannot drift.
	now := time.Unix(1767225600, 0)
	temporal := &badCountingTemporal{Temporal: launch.UnreachableTemporal(t)}
	rcv := receiver.New(temporal, receiver.Config{
		Verifier:  &didit.Verifier{Secrets: []string{secret}, Now: func() time.Time { return now }},
		TaskQueue: "badinput",
	})
	srv := httptest.NewServer(rcv.Handler())
	t.Cleanup(srv.Close)

	inputs := BadInputs(secret, now)
	names := map[string]bool{}
	for _, in := range inputs {
		if names[in.Name] {
			t.Fatalf("duplicate input name %q", in.Name)
		}
		names[in.Name] = true
	}

	results := SendBadInputs(context.Background(), srv.URL, inputs)
	if len(results) != len(inputs) {
		t.Fatalf("%d results for %d inputs", len(results), len(inputs))
	}
	for i, r := range results {
		if !r.OK() {
			t.Errorf("%v (%s)", r, inputs[i].Why)
		}
	}
	if n := temporal.signals.Load(); n != 0 {
		t.Errorf("%d bad inputs reached Temporal; none may", n)
	}

	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatalf("/healthz after the corpus: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after the corpus = %d, want 200", resp.StatusCode)
	}
}

// TestSendBadInputsStopsOnASilentServer sends each kind of input (plain,
// slow 100 MB stream, raw TCP) to a server that reads everything and never
// answers: each run must end by itself with an error, not hang.
func TestSendBadInputsStopsOnASilentServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)

	var stream, plain, raw *BadInput
	inputs := BadInputs("chaos-badinput-secret", time.Now())
	for i := range inputs {
		in := &inputs[i]
		switch {
		case in.Stream != nil && stream == nil:
			stream = in
		case in.Raw != nil && raw == nil:
			raw = in
		case in.Stream == nil && in.Raw == nil && len(in.Body) > 0 && plain == nil:
			plain = in
		}
	}
	for _, in := range []*BadInput{plain, stream, raw} {
		if in == nil {
			t.Fatal("the corpus lacks a plain, a streamed or a raw input")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		done := make(chan []BadInputResult, 1)
		go func() { done <- SendBadInputs(ctx, srv.URL, []BadInput{*in}) }()
		select {
		case results := <-done:
			cancel()
			if r := results[0]; r.Got != 0 || r.Err == nil {
				t.Errorf("%s: got %d, err %v; want no status and an error", in.Name, r.Got, r.Err)
			} else if !errors.Is(r.Err, context.DeadlineExceeded) && !isTimeout(r.Err) {
				t.Errorf("%s: err %v, want a deadline error", in.Name, r.Err)
			}
		case <-time.After(30 * time.Second): // a watchdog, not a timing assertion
			cancel()
			t.Fatalf("%s: SendBadInputs did not return", in.Name)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
