package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/didit/api"
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

// TestNoticeFromRecords: a notice without an address takes the one the
// records keep; an event without a decision waits (a retryable failure
// that names why) while there is none; any other is undeliverable.
func TestNoticeFromRecords(t *testing.T) {
	sink := smtptest.NewServer(t)
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	ctx := context.Background()
	expired := UserNotice{SessionID: "s-1", Kind: NoticeKycExpired, Key: "kyc_expired:e2", FromRecords: true,
		WaitForAddress: true, NoDecision: "no DIDIT_API_KEY is configured"}
	_, err := a.NotifyUser(ctx, expired)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.NonRetryable() || app.Type() != ErrTypeNoContactAddress || !strings.Contains(err.Error(), "DIDIT_API_KEY") {
		t.Fatalf("no address yet: %v, want a retryable %s naming the missing key", err, ErrTypeNoContactAddress)
	}
	got, err := a.NotifyUser(ctx, UserNotice{SessionID: "s-1", Kind: NoticeDeclined, FromRecords: true})
	if err != nil || got != Undeliverable {
		t.Fatalf("a decision without an address: %q, %v; want undeliverable", got, err)
	}
	_, err = st.RecordEvent(ctx, store.EventRecord{SessionID: "s-1", EventKey: "e1", WebhookType: "status.updated",
		Status: "Approved", EventCreatedAt: 1767225000, ReceivedAt: time.Unix(1767225001, 0), ContactEmail: "user@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.NotifyUser(ctx, expired); err != nil || got != Sent {
		t.Fatalf("with an address on record: %q, %v", got, err)
	}
	if m := sink.Mails(); len(m) != 1 || m[0].To[0] != "user@example.com" {
		t.Fatalf("mails = %+v", m)
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
	got, err := st.AMLCase(ctx, c.ID()) // records are keyed by case
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

// --- delivery state machine: a reply code is definitive ---

// notification returns the recorded notification, failing the test without one.
func notification(t *testing.T, st *store.Store, session, kind string) store.Notification {
	t.Helper()
	n, err := st.Notification(context.Background(), session, kind)
	if err != nil {
		t.Fatalf("notification %s/%s: %v", session, kind, err)
	}
	return n
}

// retryable fails the test unless err is an application error Temporal retries.
func retryable(t *testing.T, err error) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.NonRetryable() {
		t.Fatalf("error = %v, want a retryable application error", err)
	}
}

func nonRetryable(t *testing.T, err error) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() {
		t.Fatalf("error = %v, want a non-retryable application error", err)
	}
}

func TestGreylistedAtFinalDotIsRetriedAndSentOnce(t *testing.T) {
	sink := smtptest.NewServer(t)
	sink.Script(smtptest.Rule{Command: smtptest.DataEnd, Calls: []int{1}, Reply: smtptest.Greylisted})
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	ctx := context.Background()
	in := UserNotice{SessionID: "s-1", Kind: NoticeApproved, Email: "user@example.com"}

	_, err := a.NotifyUser(ctx, in)
	retryable(t, err)
	if n := notification(t, st, "s-1", "user:approved"); n.State != store.NotificationClaimed || !strings.Contains(n.Detail, "451") {
		t.Fatalf("after a 451 to the final dot: %+v, want claimed (sendable) with the reason", n)
	}
	if got := sink.Received(); len(got) != 1 || got[0].Code != 451 || len(sink.Mails()) != 0 {
		t.Fatalf("server saw %+v, want one message refused with 451", got)
	}

	got, err := a.NotifyUser(ctx, in) // Temporal's retry, the greylisting over
	if err != nil || got != Sent {
		t.Fatalf("retry = %q, %v; want sent", got, err)
	}
	if got, err := a.NotifyUser(ctx, in); err != nil || got != AlreadySent {
		t.Fatalf("third call = %q, %v; want already sent", got, err)
	}
	if n := len(sink.Mails()); n != 1 {
		t.Fatalf("%d mails accepted, want exactly 1", n)
	}
	if n := notification(t, st, "s-1", "user:approved"); n.State != store.NotificationSent || n.Detail != "" || n.Attempts != 2 {
		t.Fatalf("notification = %+v, want sent cleanly after 2 attempts", n)
	}
}

func TestRefusedAtFinalDotParksAndOperatorRetrySends(t *testing.T) {
	sink := smtptest.NewServer(t)
	sink.Script(smtptest.Rule{Command: smtptest.DataEnd, Calls: []int{1}, Reply: smtptest.Refused})
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	ctx := context.Background()
	in := UserNotice{SessionID: "s-1", Kind: NoticeDeclined, Email: "user@example.com"}

	_, err := a.NotifyUser(ctx, in)
	nonRetryable(t, err) // the workflow parks the step
	if strings.Contains(err.Error(), "user@example.com") {
		t.Fatalf("error %q leaks the address", err)
	}
	if n := notification(t, st, "s-1", "user:declined"); n.State != store.NotificationClaimed || !strings.Contains(n.Detail, "554") {
		t.Fatalf("after a 554 to the final dot: %+v, want claimed (not sent, sendable)", n)
	}
	if len(sink.Mails()) != 0 {
		t.Fatal("a refused message counts as accepted")
	}

	// The operator's retry signal runs the activity again.
	got, err := a.NotifyUser(ctx, in)
	if err != nil || got != Sent || len(sink.Mails()) != 1 {
		t.Fatalf("operator retry = %q, %v, %d mails; want sent, 1 mail", got, err, len(sink.Mails()))
	}
}

func TestRefusedAtMailParksAndOperatorRetrySends(t *testing.T) {
	sink := smtptest.NewServer(t)
	sink.Script(smtptest.Rule{Command: smtptest.MailFrom, Calls: []int{1},
		Reply: smtptest.Reply{Code: 553, Enhanced: "5.7.1", Message: "sender not allowed"}})
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	ctx := context.Background()
	in := UserNotice{SessionID: "s-1", Kind: NoticeApproved, Email: "user@example.com"}
	_, err := a.NotifyUser(ctx, in)
	nonRetryable(t, err)
	if n := notification(t, st, "s-1", "user:approved"); n.State != store.NotificationClaimed {
		t.Fatalf("notification = %+v, want claimed", n)
	}
	if got, err := a.NotifyUser(ctx, in); err != nil || got != Sent || len(sink.Mails()) != 1 {
		t.Fatalf("operator retry = %q, %v, %d mails", got, err, len(sink.Mails()))
	}
}

func TestNoReplyAfterFinalDotIsInDoubtNotResent(t *testing.T) {
	for name, tc := range map[string]struct {
		reply   smtptest.Reply
		timeout time.Duration
	}{
		"connection dropped": {reply: smtptest.HangUp},
		"reply too slow":     {reply: smtptest.Reply{Delay: time.Second}, timeout: 200 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			sink := smtptest.NewServer(t)
			sink.Script(smtptest.Rule{Command: smtptest.DataEnd, Calls: []int{1}, Reply: tc.reply})
			m, err := notify.NewSMTP(sink.URL(), "diditflow <no-reply@example.com>", notify.WithTimeout(tc.timeout))
			if err != nil {
				t.Fatal(err)
			}
			a, st := newActivities(t, m)
			ctx := context.Background()
			in := UserNotice{SessionID: "s-1", Kind: NoticeApproved, Email: "user@example.com"}

			_, err = a.NotifyUser(ctx, in)
			retryable(t, err)
			if n := notification(t, st, "s-1", "user:approved"); n.State != store.NotificationSending {
				t.Fatalf("after no reply: %+v, want sending", n)
			}
			got, err := a.NotifyUser(ctx, in)
			if err != nil || got != InDoubt {
				t.Fatalf("retry = %q, %v; want in doubt", got, err)
			}
			if n := sink.Calls(smtptest.DataEnd); n != 1 {
				t.Fatalf("the server got %d messages, want 1: a message handed over is not sent again", n)
			}
			// A slow server answers (250) after the client gave up.
			for deadline := time.Now().Add(5 * time.Second); len(sink.Kept()) == 0 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if n := len(sink.Kept()); n != 1 {
				t.Fatalf("the server keeps %d messages, want the one whose reply was lost", n)
			}
			if n := notification(t, st, "s-1", "user:approved"); n.State != store.NotificationSent || !strings.Contains(n.Detail, "in doubt") {
				t.Fatalf("notification = %+v", n)
			}
		})
	}
}

func TestGreylistedAtRcptIsRetriedAndSentOnce(t *testing.T) {
	sink := smtptest.NewServer(t)
	sink.Script(smtptest.Rule{Command: smtptest.RcptTo, Calls: []int{1}, Reply: smtptest.Greylisted})
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	ctx := context.Background()
	in := UserNotice{SessionID: "s-1", Kind: NoticeInReview, Email: "user@example.com"}

	_, err := a.NotifyUser(ctx, in)
	retryable(t, err)
	if n := notification(t, st, "s-1", "user:in_review"); n.State != store.NotificationClaimed {
		t.Fatalf("after a 451 to RCPT: %+v, want claimed", n)
	}
	if n := sink.Calls(smtptest.DataEnd); n != 0 {
		t.Fatalf("%d messages sent after a deferred recipient, want none", n)
	}
	if got, err := a.NotifyUser(ctx, in); err != nil || got != Sent {
		t.Fatalf("retry = %q, %v; want sent", got, err)
	}
	if got, _ := a.NotifyUser(ctx, in); got != AlreadySent || len(sink.Mails()) != 1 {
		t.Fatalf("third call = %q with %d mails; want already sent, 1 mail", got, len(sink.Mails()))
	}
}

// counter reads one counter of reg; 0 when it was never counted.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestComplianceRecipientRefusedIsDroppedRecordedAndCounted(t *testing.T) {
	sink := smtptest.NewServer(t)
	sink.Script(smtptest.Rule{Command: smtptest.RcptTo, Recipient: "head@example.com",
		Reply: smtptest.Reply{Code: 550, Enhanced: "5.1.1", Message: "<head@example.com>: Recipient address rejected: User unknown"}})
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	reg := prometheus.NewRegistry()
	a.Metrics = NewMetrics(reg)
	var logs syncBuffer
	a.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	c := AMLCase{SessionID: "s-1", Status: didit.StatusInReview, Hits: []didit.AMLHit{{ID: "hit-1"}}}

	escalated := ComplianceNotice{Case: c, Reminder: 3, Escalate: true}
	got, err := a.NotifyCompliance(ctx, escalated)
	if err != nil || got != PartlySent {
		t.Fatalf("NotifyCompliance = %q, %v; want partly sent", got, err)
	}
	mails := sink.Mails()
	if len(mails) != 1 || len(mails[0].To) != 1 || mails[0].To[0] != "compliance@example.com" {
		t.Fatalf("mails = %+v, want one to the accepting recipient", mails)
	}
	n := notification(t, st, "s-1", "compliance:reminder-3:email")
	if n.State != store.NotificationSent || len(n.Refused) != 1 {
		t.Fatalf("notification = %+v, want sent with one refusal", n)
	}
	r := n.Refused[0]
	if r.RecipientHash != pii.HashAddress("head@example.com") || r.Code != 550 || r.Enhanced != "5.1.1" ||
		!strings.Contains(r.Text, "User unknown") || strings.Contains(n.Detail, "head@") {
		t.Fatalf("refusal = %+v (detail %q): want the hash, the code and the redacted text", r, n.Detail)
	}
	refused := map[string]string{"audience": "compliance"}
	if v := counter(t, reg, "diditflow_recipients_refused_total", refused); v != 1 {
		t.Fatalf("diditflow_recipients_refused_total = %v, want 1", v)
	}
	if v := counter(t, reg, "diditflow_notifications_total", map[string]string{"audience": "compliance", "result": "partly_sent"}); v != 1 {
		t.Fatalf("partly_sent notifications = %v, want 1", v)
	}

	// Temporal retries the activity (say the webhook failed after the mail):
	// the same answer, nothing sent or counted twice.
	if got, err := a.NotifyCompliance(ctx, escalated); err != nil || got != PartlySent {
		t.Fatalf("retry = %q, %v; want partly sent again", got, err)
	}
	if len(sink.Mails()) != 1 || counter(t, reg, "diditflow_recipients_refused_total", refused) != 1 {
		t.Fatal("a retry sent or counted again")
	}

	// The next reminder still reaches the recipient that accepts.
	got, err = a.NotifyCompliance(ctx, ComplianceNotice{Case: c, Reminder: 4, Escalate: true})
	if err != nil || got != PartlySent {
		t.Fatalf("next reminder = %q, %v; want partly sent", got, err)
	}
	mails = sink.Mails()
	if len(mails) != 2 || mails[1].To[0] != "compliance@example.com" || !strings.Contains(mails[1].Subject, "reminder 4") {
		t.Fatalf("mails = %+v, want reminder 4 to the accepting recipient", mails)
	}
	if v := counter(t, reg, "diditflow_recipients_refused_total", refused); v != 2 {
		t.Fatalf("diditflow_recipients_refused_total = %v, want 2", v)
	}
	if out := logs.String(); strings.Contains(out, "@example.com") || !strings.Contains(out, pii.HashAddress("head@example.com")) {
		t.Fatalf("logs must name the refused recipient by hash only:\n%s", out)
	}
}

func TestComplianceAllRecipientsRefusedIsUndeliverable(t *testing.T) {
	sink := smtptest.NewServer(t)
	sink.Script(smtptest.Rule{Command: smtptest.RcptTo, Reply: smtptest.NoSuchUser})
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	ctx := context.Background()
	c := AMLCase{SessionID: "s-1", Hits: []didit.AMLHit{{ID: "hit-1"}}}
	got, err := a.NotifyCompliance(ctx, ComplianceNotice{Case: c, Reminder: 3, Escalate: true})
	if err != nil || got != Undeliverable {
		t.Fatalf("NotifyCompliance = %q, %v; want undeliverable", got, err)
	}
	n := notification(t, st, "s-1", "compliance:reminder-3:email")
	if n.State != store.NotificationUndeliverable || len(n.Refused) != 2 || sink.Calls(smtptest.DataEnd) != 0 {
		t.Fatalf("notification = %+v, %d messages; want undeliverable, both refusals, no DATA", n, sink.Calls(smtptest.DataEnd))
	}
}

// recordingStore is the real store, with the order of the notification
// transitions recorded and MarkNotificationSent failing as a worker killed
// right after the handover would.
type recordingStore struct {
	*store.Store
	outbox   string
	steps    []string
	failSent int
}

func (s *recordingStore) ClaimNotification(ctx context.Context, sessionID, kind, hash string) (store.Notification, bool, error) {
	s.steps = append(s.steps, "claim")
	return s.Store.ClaimNotification(ctx, sessionID, kind, hash)
}

func (s *recordingStore) ClaimUserNotification(ctx context.Context, sessionID, kind, hash string) (store.Notification, bool, error) {
	s.steps = append(s.steps, "claim")
	return s.Store.ClaimUserNotification(ctx, sessionID, kind, hash)
}

func (s *recordingStore) MarkNotificationSending(ctx context.Context, sessionID, kind string, refused ...store.RefusedRecipient) error {
	tmp, _ := filepath.Glob(filepath.Join(s.outbox, ".tmp-*"))
	s.steps = append(s.steps, fmt.Sprintf("sending(%d tmp, %d .eml)", len(tmp), countEML(s.outbox)))
	return s.Store.MarkNotificationSending(ctx, sessionID, kind, refused...)
}

func (s *recordingStore) MarkNotificationSent(ctx context.Context, sessionID, kind string, refused ...store.RefusedRecipient) error {
	s.steps = append(s.steps, fmt.Sprintf("sent(%d .eml)", countEML(s.outbox)))
	if s.failSent > 0 {
		s.failSent--
		return errors.New("worker killed before recording sent")
	}
	return s.Store.MarkNotificationSent(ctx, sessionID, kind, refused...)
}

func countEML(dir string) int {
	names, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	return len(names)
}

// countingMailer counts the messages it passes on.
type countingMailer struct {
	next  notify.Mailer
	sends int
}

func (m *countingMailer) Send(ctx context.Context, msg notify.Message) error {
	m.sends++
	return m.next.Send(ctx, msg)
}

func newOutboxActivities(t *testing.T) (*Activities, *recordingStore, *countingMailer, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "outbox")
	o, err := notify.NewOutbox(dir, "diditflow <no-reply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	a, st := newActivities(t, nil)
	rs := &recordingStore{Store: st, outbox: dir}
	mailer := &countingMailer{next: o}
	a.Store, a.Mailer = rs, mailer
	return a, rs, mailer, dir
}

func TestOutboxFailureBeforeCommitLeavesItSendable(t *testing.T) {
	a, rs, _, dir := newOutboxActivities(t)
	ctx := context.Background()
	in := UserNotice{SessionID: "s-1", Kind: NoticeApproved, Email: "user@example.com"}
	if err := os.RemoveAll(dir); err != nil { // the temporary file cannot be created
		t.Fatal(err)
	}
	_, err := a.NotifyUser(ctx, in)
	retryable(t, err)
	if n := notification(t, rs.Store, "s-1", "user:approved"); n.State != store.NotificationClaimed {
		t.Fatalf("after a failed write: %+v, want claimed", n)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if got, err := a.NotifyUser(ctx, in); err != nil || got != Sent || countEML(dir) != 1 {
		t.Fatalf("retry = %q, %v, %d files; want sent, 1 file", got, err, countEML(dir))
	}
	if want := []string{"claim", "claim", "sending(1 tmp, 0 .eml)", "sent(1 .eml)"}; !slices.Equal(rs.steps, want) {
		t.Fatalf("steps = %v, want %v: sending once the file is complete, just before it appears", rs.steps, want)
	}
}

func TestOutboxCrashAfterCommitIsInDoubtWithoutSecondFile(t *testing.T) {
	a, rs, mailer, dir := newOutboxActivities(t)
	rs.failSent = 1
	ctx := context.Background()
	in := UserNotice{SessionID: "s-1", Kind: NoticeApproved, Email: "user@example.com"}
	_, err := a.NotifyUser(ctx, in)
	retryable(t, err)
	if n := notification(t, rs.Store, "s-1", "user:approved"); n.State != store.NotificationSending || countEML(dir) != 1 {
		t.Fatalf("after the crash: %+v, %d files; want sending, 1 file", n, countEML(dir))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	before, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.NotifyUser(ctx, in)
	if err != nil || got != InDoubt {
		t.Fatalf("retry = %q, %v; want in doubt", got, err)
	}
	after, err := os.ReadFile(files[0])
	if err != nil || !bytes.Equal(before, after) || countEML(dir) != 1 || mailer.sends != 1 {
		t.Fatalf("the retry wrote again: %d sends, %d files, same content %v", mailer.sends, countEML(dir), bytes.Equal(before, after))
	}
	if want := []string{"claim", "sending(1 tmp, 0 .eml)", "sent(1 .eml)", "claim"}; !slices.Equal(rs.steps, want) {
		t.Fatalf("steps = %v, want %v", rs.steps, want)
	}
}

func TestUserNoticeKeySendsOncePerKey(t *testing.T) {
	sink := smtptest.NewServer(t)
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	ctx := context.Background()
	notice := func(key string) UserNotice {
		return UserNotice{SessionID: "s-1", Kind: NoticeResubmitted, Email: "user@example.com", Key: key, Redo: []string{"liveness"}}
	}
	for i, step := range []struct {
		key  string
		want NoticeResult
	}{
		{"resubmitted:event-1", Sent},
		{"resubmitted:event-2", Sent},
		{"resubmitted:event-1", AlreadySent},
		{"", Sent}, // a recorded history's notice: keyed by its kind
		{"", AlreadySent},
	} {
		if got, err := a.NotifyUser(ctx, notice(step.key)); err != nil || got != step.want {
			t.Fatalf("call %d (key %q) = %q, %v; want %q", i, step.key, got, err, step.want)
		}
	}
	mails := sink.Mails()
	if len(mails) != 3 {
		t.Fatalf("%d mails, want 3", len(mails))
	}
	ids := map[string]bool{}
	for _, m := range mails {
		ids[m.Header.Get("Message-Id")] = true
	}
	if len(ids) != 3 {
		t.Fatalf("Message-IDs %v: two notices share one, so receivers may drop one as a duplicate", ids)
	}
	var kinds []string
	ns, err := st.Notifications(ctx, "s-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		kinds = append(kinds, n.Kind)
	}
	if want := []string{"user:resubmitted", "user:resubmitted:event-1", "user:resubmitted:event-2"}; !slices.Equal(kinds, want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}
}

func TestFollowUpCaseNoticesAreTheirOwn(t *testing.T) {
	sink := smtptest.NewServer(t)
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	ctx := context.Background()
	first := AMLCase{CaseID: contract.AMLCaseWorkflowID("s-1"), SessionID: "s-1", Hits: []didit.AMLHit{{ID: "hit-1"}}}
	followUp := AMLCase{CaseID: contract.FollowUpCaseID("s-1", 2), FollowUpOf: first.CaseID, SessionID: "s-1",
		Hits: []didit.AMLHit{{ID: "hit-2"}}}
	for i, n := range []struct {
		c    AMLCase
		want NoticeResult
	}{{first, Sent}, {followUp, Sent}, {followUp, AlreadySent}} {
		if got, err := a.NotifyCompliance(ctx, ComplianceNotice{Case: n.c}); err != nil || got != n.want {
			t.Fatalf("notice %d = %q, %v; want %q", i, got, err, n.want)
		}
	}
	mails := sink.Mails()
	if len(mails) != 2 || mails[0].Header.Get("Message-Id") == mails[1].Header.Get("Message-Id") ||
		!strings.Contains(string(mails[1].Data), "diditflow-admin resolve "+followUp.CaseID+" ") {
		t.Fatalf("mails = %+v, want one per case, the follow-up's naming its own workflow", mails)
	}
	// The first case keeps the kind recorded before follow-up cases.
	notification(t, st, "s-1", "compliance:opened:email")
	notification(t, st, "s-1", "compliance:"+followUp.CaseID+":opened:email")
}

// countingDidit is a Didit API that counts the decisions asked of it.
type countingDidit struct{ decisions int }

func (c *countingDidit) Enabled() bool { return true }

func (c *countingDidit) Decision(context.Context, string) (api.DecisionResult, error) {
	c.decisions++
	return api.DecisionResult{Decision: didit.Decision{Status: didit.StatusKycExpired, Email: "fetched@example.com"}, Date: time.Now()}, nil
}

func (c *countingDidit) BulkUpdateAMLHits(context.Context, string, string, []api.HitReview) error {
	return nil
}

// TestErasedSessionIsNeitherMailedNorFetched: once a session is erased, a
// notice queued for it (by a run that started before the erasure, address
// in hand, or one that reads the records) is withheld, mails nobody and
// leaves no notification; its decision is not asked of Didit. Another
// session is mailed and fetched as before.
func TestErasedSessionIsNeitherMailedNorFetched(t *testing.T) {
	sink := smtptest.NewServer(t)
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	fake := &countingDidit{}
	a.Didit = fake
	ctx := context.Background()
	for _, s := range []string{"s-erased", "s-other"} {
		_, err := st.RecordEvent(ctx, store.EventRecord{SessionID: s, EventKey: "e1", WebhookType: "status.updated",
			Status: "Approved", EventCreatedAt: 1767225000, ContactEmail: "user@example.com"})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.EraseSession(ctx, "s-erased"); err != nil {
		t.Fatal(err)
	}

	for _, in := range []UserNotice{
		{SessionID: "s-erased", Kind: NoticeKycExpired, Key: "kyc_expired:e2", FromRecords: true, WaitForAddress: true},
		{SessionID: "s-erased", Kind: NoticeDeclined, Key: "declined:e3", Email: "user@example.com"},
	} {
		if got, err := a.NotifyUser(ctx, in); err != nil || got != Withheld {
			t.Fatalf("%s notice of an erased session: %q, %v; want withheld", in.Kind, got, err)
		}
	}
	if ns, err := st.Notifications(ctx, "s-erased"); err != nil || len(ns) != 0 {
		t.Fatalf("notifications of the erased session = %+v, %v; want none", ns, err)
	}
	if got, err := a.FetchDecision(ctx, "s-erased"); err != nil || got.Decision != nil || got.Missing != DecisionErased {
		t.Fatalf("FetchDecision of the erased session = %+v, %v; want %q", got, err, DecisionErased)
	}
	if fake.decisions != 0 || len(sink.Mails()) != 0 {
		t.Fatalf("%d decisions fetched, %d mails; want none for an erased session", fake.decisions, len(sink.Mails()))
	}

	if got, err := a.NotifyUser(ctx, UserNotice{SessionID: "s-other", Kind: NoticeKycExpired, Key: "kyc_expired:e2",
		FromRecords: true}); err != nil || got != Sent {
		t.Fatalf("another session's notice: %q, %v", got, err)
	}
	if got, err := a.FetchDecision(ctx, "s-other"); err != nil || got.Decision == nil || fake.decisions != 1 {
		t.Fatalf("another session's decision: %+v, %v (%d calls)", got, err, fake.decisions)
	}
}

// staleErasureView is the records as NotifyUser saw them an instant before
// an erasure committed: not erased.
type staleErasureView struct{ Store }

func (staleErasureView) Erased(context.Context, string) (bool, error) { return false, nil }

// TestErasureAfterTheCheckStillStopsTheMail: an erasure that commits after
// NotifyUser asked whether the session was erased still stops the mail, as
// the claim checks it again in its own transaction; nothing is recorded.
func TestErasureAfterTheCheckStillStopsTheMail(t *testing.T) {
	sink := smtptest.NewServer(t)
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	ctx := context.Background()
	if _, err := st.RecordEvent(ctx, store.EventRecord{SessionID: "s-late", EventKey: "e1", WebhookType: "status.updated",
		Status: "Approved", EventCreatedAt: 1767225000, ContactEmail: "user@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EraseSession(ctx, "s-late"); err != nil {
		t.Fatal(err)
	}
	a.Store = staleErasureView{st}
	for _, in := range []UserNotice{
		{SessionID: "s-late", Kind: NoticeDeclined, Key: "declined:e2", Email: "user@example.com"},
		{SessionID: "s-late", Kind: NoticeKycExpired, Key: "kyc_expired:e3", FromRecords: true},
	} {
		if got, err := a.NotifyUser(ctx, in); err != nil || got != Withheld {
			t.Fatalf("%s notice after a late erasure: %q, %v; want withheld", in.Kind, got, err)
		}
	}
	if ns, err := st.Notifications(ctx, "s-late"); err != nil || len(ns) != 0 || len(sink.Mails()) != 0 {
		t.Fatalf("%d notifications recorded, %d mails; want none (%v)", len(ns), len(sink.Mails()), err)
	}
}
