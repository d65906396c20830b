package activities

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/smtptest"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/pii"
	"github.com/diditflow/diditflow/internal/store"
)

func newActivities(t *testing.T, mailer notify.Mailer) (*Activities, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "records.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Activities{Store: st, Mailer: mailer, Compliance: Compliance{Email: "compliance@example.com", Escalation: "head@example.com"}}, st
}

func smtpMailer(t *testing.T, url string) notify.Mailer {
	t.Helper()
	m, err := notify.NewSMTP(url, "diditflow <no-reply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNotifyUserSendsOncePerKind(t *testing.T) {
	sink := smtptest.NewServer(t)
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	ctx := context.Background()
	in := UserNotice{SessionID: "s-1", Kind: NoticeApproved, Email: "user@example.com"}
	for i, want := range []NoticeResult{Sent, AlreadySent, AlreadySent} {
		got, err := a.NotifyUser(ctx, in)
		if err != nil || got != want {
			t.Fatalf("call %d: %q, %v; want %q", i, got, err, want)
		}
	}
	if n := len(sink.Mails()); n != 1 {
		t.Fatalf("SMTP server received %d messages, want 1", n)
	}
	if m := sink.Mails()[0]; len(m.To) != 1 || m.To[0] != "user@example.com" || m.Subject != "Your identity verification is approved" {
		t.Fatalf("mail = %+v", m)
	}
	n, err := st.Notification(ctx, "s-1", "user:approved")
	if err != nil || n.State != store.NotificationSent || n.RecipientHash != pii.HashAddress("user@example.com") {
		t.Fatalf("notification = %+v, %v", n, err)
	}
}

func TestNotifyUserWithoutAddressIsUndeliverable(t *testing.T) {
	sink := smtptest.NewServer(t)
	a, _ := newActivities(t, smtpMailer(t, sink.URL()))
	got, err := a.NotifyUser(context.Background(), UserNotice{SessionID: "s-1", Kind: NoticeDeclined})
	if err != nil || got != Undeliverable || len(sink.Mails()) != 0 {
		t.Fatalf("NotifyUser = %q, %v, %d mails", got, err, len(sink.Mails()))
	}
}

func TestSMTPDownIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	a, st := newActivities(t, smtpMailer(t, "smtp://"+addr))
	_, err = a.NotifyUser(context.Background(), UserNotice{SessionID: "s-1", Kind: NoticeApproved, Email: "user@example.com"})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.NonRetryable() {
		t.Fatalf("error = %v, want a retryable application error", err)
	}
	if strings.Contains(err.Error(), "user@example.com") {
		t.Fatalf("error %q leaks the address", err)
	}
	// The claim stays open, so the retry sends.
	if n, _ := st.Notification(context.Background(), "s-1", "user:approved"); n.State != store.NotificationClaimed {
		t.Fatalf("notification state = %q, want claimed", n.State)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err          error
		nonRetryable bool
	}{
		{store.ErrInvalid, true},
		{store.ErrConflict, true},
		{notify.ErrInvalidAddress, true},
		{errors.New("database is locked"), false},
		{notify.ErrCircuitOpen, false},
	}
	for _, c := range cases {
		var app *temporal.ApplicationError
		err := classify("op", c.err)
		if !errors.As(err, &app) || app.NonRetryable() != c.nonRetryable {
			t.Errorf("classify(%v) = %v, non-retryable %v", c.err, err, c.nonRetryable)
		}
	}
	if err := classify("send", errors.New("550 5.1.1 <jose.muller@example.com>: unknown")); strings.Contains(err.Error(), "jose") {
		t.Fatalf("classify kept the address: %v", err)
	}
	if err := classify("op", context.Canceled); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancellation must pass through: %v", err)
	}
}

func TestNotifyComplianceEscalates(t *testing.T) {
	sink := smtptest.NewServer(t)
	a, _ := newActivities(t, smtpMailer(t, sink.URL()))
	ctx := context.Background()
	score := 86.0
	c := AMLCase{SessionID: "s-1", Status: didit.StatusInReview, Hits: []didit.AMLHit{{ID: "hit-1", RiskScore: &score}}}
	for _, n := range []ComplianceNotice{{Case: c}, {Case: c, Reminder: 1}, {Case: c, Reminder: 2, Escalate: true}, {Case: c, Reminder: 2, Escalate: true}} {
		if _, err := a.NotifyCompliance(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	mails := sink.Mails()
	if len(mails) != 3 {
		t.Fatalf("%d mails, want opened, reminder 1 and reminder 2 once each", len(mails))
	}
	if len(mails[1].To) != 1 || len(mails[2].To) != 2 || !strings.HasPrefix(mails[2].Subject, "ESCALATED") {
		t.Fatalf("reminders = %+v / %+v", mails[1], mails[2])
	}
}

func TestOpenAndResolveAMLCase(t *testing.T) {
	a, st := newActivities(t, nil)
	ctx := context.Background()
	c := AMLCase{SessionID: "s-1", Hits: []didit.AMLHit{{ID: "hit-1", Datasets: []string{"PEP"}}}}
	for i, want := range []bool{true, false} {
		created, err := a.OpenAMLCase(ctx, c)
		if err != nil || created != want {
			t.Fatalf("open %d = %v, %v", i, created, err)
		}
	}
	res := ResolveInput{SessionID: "s-1", Resolution: contract.Resolution{Outcome: contract.FalsePositive, Reviewer: "officer"}}
	if err := a.ResolveAMLCase(ctx, res); err != nil {
		t.Fatal(err)
	}
	res.Resolution.Outcome = contract.ConfirmedMatch
	var app *temporal.ApplicationError
	if err := a.ResolveAMLCase(ctx, res); !errors.As(err, &app) || !app.NonRetryable() {
		t.Fatalf("a conflicting resolution must not be retried: %v", err)
	}
	got, err := st.AMLCase(ctx, "s-1")
	if err != nil || got.Resolution.Outcome != contract.FalsePositive {
		t.Fatalf("case = %+v, %v", got, err)
	}
}

func TestRejectedRecipientIsUndeliverableNotParked(t *testing.T) {
	sink := smtptest.NewServer(t)
	sink.RejectRecipient(func(to string) bool { return to == "gone@example.com" })
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	ctx := context.Background()
	got, err := a.NotifyUser(ctx, UserNotice{SessionID: "s-1", Kind: NoticeApproved, Email: "gone@example.com"})
	if err != nil || got != Undeliverable {
		t.Fatalf("NotifyUser = %q, %v; want undeliverable, no error to park on", got, err)
	}
	n, err := st.Notification(ctx, "s-1", "user:approved")
	if err != nil || n.State != store.NotificationUndeliverable || strings.Contains(n.Detail, "gone@") {
		t.Fatalf("notification = %+v, %v", n, err)
	}
}

// droppingMailer hands the message over (Commit) and then loses the
// acknowledgement, as a worker killed at that moment would.
type droppingMailer struct{ sends int }

func (m *droppingMailer) Send(_ context.Context, msg notify.Message) error {
	m.sends++
	if err := msg.Commit(); err != nil {
		return err
	}
	return errors.New("connection reset after the final dot")
}

func TestHandedOverButUnacknowledgedIsNeverSentTwice(t *testing.T) {
	mailer := &droppingMailer{}
	a, st := newActivities(t, mailer)
	ctx := context.Background()
	in := UserNotice{SessionID: "s-1", Kind: NoticeApproved, Email: "user@example.com"}
	if _, err := a.NotifyUser(ctx, in); err == nil {
		t.Fatal("the lost acknowledgement should fail the attempt")
	}
	got, err := a.NotifyUser(ctx, in)
	if err != nil || got != InDoubt {
		t.Fatalf("retry = %q, %v; want in doubt", got, err)
	}
	if mailer.sends != 1 {
		t.Fatalf("%d sends, want 1: a message handed over is not sent again", mailer.sends)
	}
	n, err := st.Notification(ctx, "s-1", "user:approved")
	if err != nil || n.State != store.NotificationSent || !strings.Contains(n.Detail, "in doubt") {
		t.Fatalf("notification = %+v, %v", n, err)
	}
	if got, _ := a.NotifyUser(ctx, in); got != AlreadySent {
		t.Fatalf("third call = %q, want already sent", got)
	}
}

func TestCommitFailureCallsTheSendOff(t *testing.T) {
	sink := smtptest.NewServer(t)
	m := smtpMailer(t, sink.URL())
	err := m.Send(context.Background(), notify.Message{ID: "x", To: []string{"user@example.com"}, Subject: "s", TextBody: "b",
		Commit: func() error { return errors.New("database down") }})
	if err == nil {
		t.Fatal("a failed commit must fail the send")
	}
	if n := len(sink.Mails()); n != 0 {
		t.Fatalf("the server kept %d messages; without the final dot it must discard it", n)
	}
}
