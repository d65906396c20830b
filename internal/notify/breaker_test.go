package notify_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/diditflow/diditflow/internal/notify"
)

var quiet = notify.BreakerLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

func TestBreakerOpensAfterConsecutiveTransientFailures(t *testing.T) {
	addr, gate := startServer(t, &backend{})
	gate.dead.Store(true)
	s := newSMTP(t, "smtp://"+addr)
	var dials dialCounter
	dials.install(s)
	m := notify.WithBreaker(s, "smtp", notify.BreakerThreshold(3), notify.BreakerOpenTimeout(time.Hour), quiet)

	for i := range 3 {
		err := m.Send(context.Background(), testMessage())
		if err == nil || notify.IsPermanent(err) || errors.Is(err, notify.ErrCircuitOpen) {
			t.Fatalf("send %d: err = %v, want a transient server failure", i, err)
		}
	}
	err := m.Send(context.Background(), testMessage())
	if !errors.Is(err, notify.ErrCircuitOpen) {
		t.Fatalf("after 3 failures: err = %v, want ErrCircuitOpen", err)
	}
	if notify.IsPermanent(err) {
		t.Errorf("ErrCircuitOpen is classified permanent")
	}
	if n := dials.n.Load(); n != 3 {
		t.Errorf("dialed %d times, want 3: an open circuit must not dial", n)
	}
}

func TestBreakerIgnoresPermanentFailures(t *testing.T) {
	addr, _ := startServer(t, &backend{rcptErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "unknown"}})
	s := newSMTP(t, "smtp://"+addr)
	var dials dialCounter
	dials.install(s)
	m := notify.WithBreaker(s, "smtp", notify.BreakerThreshold(2), notify.BreakerOpenTimeout(time.Hour), quiet)

	for i := range 5 {
		if err := m.Send(context.Background(), testMessage()); !notify.IsPermanent(err) {
			t.Fatalf("send %d: err = %v, want the permanent 550", i, err)
		}
	}
	if n := dials.n.Load(); n != 5 {
		t.Errorf("dialed %d times, want 5", n)
	}
}

func TestBreakerIgnoresCancellation(t *testing.T) {
	calls := 0
	m := notify.WithBreaker(mailerFunc(func(ctx context.Context, _ notify.Message) error {
		calls++
		return ctx.Err()
	}), "fake", notify.BreakerThreshold(1), notify.BreakerOpenTimeout(time.Hour), quiet)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 3 {
		if err := m.Send(ctx, testMessage()); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	}
	if calls != 3 {
		t.Errorf("inner mailer called %d times, want 3", calls)
	}
}

func TestBreakerHalfOpensAndCloses(t *testing.T) {
	b := &backend{}
	addr, gate := startServer(t, b)
	gate.dead.Store(true)
	s := newSMTP(t, "smtp://"+addr)
	var dials dialCounter
	dials.install(s)
	m := notify.WithBreaker(s, "smtp", notify.BreakerThreshold(1), notify.BreakerOpenTimeout(20*time.Millisecond), quiet)

	if err := m.Send(context.Background(), testMessage()); err == nil || errors.Is(err, notify.ErrCircuitOpen) {
		t.Fatalf("first send: err = %v, want a server failure", err)
	}
	gate.dead.Store(false)

	// Whenever the open timeout passes, exactly one trial send reaches the
	// server; until then every send fails fast.
	waitFor(t, func() bool {
		err := m.Send(context.Background(), testMessage())
		if err != nil && !errors.Is(err, notify.ErrCircuitOpen) {
			t.Fatalf("while open: err = %v, want ErrCircuitOpen or success", err)
		}
		return err == nil
	})
	if n := dials.n.Load(); n != 2 {
		t.Errorf("dialed %d times, want 2 (the failure and the trial)", n)
	}
	if err := m.Send(context.Background(), testMessage()); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if n := len(b.messages()); n != 2 {
		t.Errorf("server received %d messages, want 2", n)
	}
}

func TestPosterBreaker(t *testing.T) {
	var status, hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	wh, err := notify.NewCallback(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	p := notify.WithPosterBreaker(wh, "compliance", notify.BreakerThreshold(2), notify.BreakerOpenTimeout(time.Hour), quiet)

	status.Store(http.StatusBadRequest)
	for i := range 3 {
		if err := p.Post(context.Background(), map[string]string{"k": "v"}); !notify.IsPermanent(err) {
			t.Fatalf("400 #%d: err = %v, want permanent", i, err)
		}
	}
	status.Store(http.StatusServiceUnavailable)
	for i := range 2 {
		if err := p.Post(context.Background(), nil); err == nil || notify.IsPermanent(err) || errors.Is(err, notify.ErrCircuitOpen) {
			t.Fatalf("503 #%d: err = %v, want transient", i, err)
		}
	}
	if err := p.Post(context.Background(), nil); !errors.Is(err, notify.ErrCircuitOpen) {
		t.Fatalf("after 2 transient failures: err = %v, want ErrCircuitOpen", err)
	}
	if n := hits.Load(); n != 5 {
		t.Errorf("endpoint hit %d times, want 5", n)
	}
}

// waitFor polls cond until it holds, failing the test if it never does.
// The generous bound only catches a hang; nothing asserts on how long it took.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
