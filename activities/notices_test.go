package activities

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/harness/smtptest"
	"github.com/diditflow/diditflow/internal/notice"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/store"
)

// text is the text of a mail the SMTP server received.
func text(t *testing.T, m smtptest.Mail) string {
	t.Helper()
	s, err := m.Text()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// With USER_NOTICES=off no notice reaches the user, by SMTP or the outbox,
// and none is recorded, whatever the notice (even one that would wait for
// an address); compliance is told about AML cases as before.
func TestUserNoticesOffSendAndRecordNothing(t *testing.T) {
	notices := []UserNotice{
		{SessionID: "s-1", Kind: NoticeApproved, Key: "approved:e1", FromRecords: true},
		{SessionID: "s-1", Kind: NoticeDeclined, Email: "user@example.com"},
		{SessionID: "s-1", Kind: NoticeResubmitted, Key: "resubmitted:e2", FromRecords: true, WaitForAddress: true, Redo: []string{"OCR"}},
	}
	complianceCase := ComplianceNotice{Case: AMLCase{SessionID: "s-1", Status: didit.StatusInReview, Hits: []didit.AMLHit{{ID: "hit-1"}}}}
	check := func(t *testing.T, a *Activities, st *store.Store, reg *prometheus.Registry) {
		t.Helper()
		ctx := context.Background()
		// An address on record, which a notice would be mailed to.
		if _, err := st.RecordEvent(ctx, store.EventRecord{SessionID: "s-1", EventKey: "e1", WebhookType: "status.updated",
			Status: "Approved", EventCreatedAt: 1767225000, ReceivedAt: time.Unix(1767225001, 0), ContactEmail: "user@example.com"}); err != nil {
			t.Fatal(err)
		}
		for _, n := range notices {
			for range 2 {
				if got, err := a.NotifyUser(ctx, n); err != nil || got != Disabled {
					t.Fatalf("%s notice: %q, %v; want %q", n.Kind, got, err, Disabled)
				}
			}
		}
		if ns, err := st.Notifications(ctx, "s-1"); err != nil || len(ns) != 0 {
			t.Fatalf("notifications recorded: %+v, %v", ns, err)
		}
		if got := counter(t, reg, "diditflow_notifications_total", map[string]string{"audience": "user", "result": "disabled"}); got != 6 {
			t.Errorf("disabled notices counted %v, want 6", got)
		}
		if got, err := a.NotifyCompliance(ctx, complianceCase); err != nil || got != Sent {
			t.Fatalf("compliance notice: %q, %v; want sent", got, err)
		}
	}

	t.Run("smtp", func(t *testing.T) {
		sink := smtptest.NewServer(t)
		a, st := newActivities(t, smtpMailer(t, sink.URL()))
		reg := prometheus.NewRegistry()
		a.Metrics, a.UserNoticesOff = NewMetrics(reg), true
		check(t, a, st, reg)
		if mails := sink.Received(); len(mails) != 1 || mails[0].To[0] != "compliance@example.com" {
			t.Fatalf("the SMTP server received %+v, want the compliance notice alone", mails)
		}
	})
	t.Run("outbox", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "outbox")
		o, err := notify.NewOutbox(dir, "diditflow <no-reply@example.com>")
		if err != nil {
			t.Fatal(err)
		}
		a, st := newActivities(t, o)
		reg := prometheus.NewRegistry()
		a.Metrics, a.UserNoticesOff = NewMetrics(reg), true
		check(t, a, st, reg)
		if n := countEML(dir); n != 1 {
			t.Fatalf("the outbox holds %d messages, want the compliance notice alone", n)
		}
	})
}

// An override mails its own text for its notice; the other notices keep
// the embedded text.
func TestOverriddenNoticeIsMailed(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "approved.tmpl"),
		[]byte("Subject: Welcome to Acme\n\nYou are verified. Reference: {{.SessionID}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	templates, err := notice.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	sink := smtptest.NewServer(t)
	a, _ := newActivities(t, smtpMailer(t, sink.URL()))
	a.Notices = templates
	ctx := context.Background()
	for _, kind := range []Notice{NoticeApproved, NoticeDeclined} {
		if got, err := a.NotifyUser(ctx, UserNotice{SessionID: "s-1", Kind: kind, Email: "user@example.com"}); err != nil || got != Sent {
			t.Fatalf("%s: %q, %v", kind, got, err)
		}
	}
	mails := sink.Mails()
	if len(mails) != 2 {
		t.Fatalf("%d mails, want 2", len(mails))
	}
	if mails[0].Subject != "Welcome to Acme" || text(t, mails[0]) != "You are verified. Reference: s-1\n" {
		t.Errorf("approval: %q / %q, want the override's", mails[0].Subject, text(t, mails[0]))
	}
	_, embedded, err := notice.Embedded().Render(notice.NewVars("declined", "s-1", nil))
	if err != nil {
		t.Fatal(err)
	}
	if mails[1].Subject != "Your identity verification was not approved" || text(t, mails[1]) != embedded {
		t.Errorf("decline: %q / %q, want the embedded text", mails[1].Subject, text(t, mails[1]))
	}
}

// A template that fails on a real notice, in a way the check at load could
// not see, fails the notice for good, so its step parks for an operator
// instead of retrying: nothing is sent or recorded until a fixed template
// and a retry send it.
func TestTemplateFailingOnANoticeIsPermanent(t *testing.T) {
	dir := t.TempDir()
	// The samples at load have every known step; this notice has one.
	if err := os.WriteFile(filepath.Join(dir, "resubmitted.tmpl"),
		[]byte("Subject: Redo\n\n{{if .Redo}}{{(index .Redo 5).Name}}{{else}}the steps{{end}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	templates, err := notice.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	sink := smtptest.NewServer(t)
	a, st := newActivities(t, smtpMailer(t, sink.URL()))
	a.Notices = templates
	in := UserNotice{SessionID: "s-1", Kind: NoticeResubmitted, Key: "resubmitted:e1", Email: "user@example.com", Redo: []string{"OCR"}}
	_, err = a.NotifyUser(context.Background(), in)
	nonRetryable(t, err)
	if !strings.Contains(err.Error(), filepath.Join(dir, "resubmitted.tmpl")) {
		t.Errorf("error %v does not name the template", err)
	}
	if ns, _ := st.Notifications(context.Background(), "s-1"); len(ns) != 0 || len(sink.Received()) != 0 {
		t.Fatalf("recorded %+v and sent %d mails, want nothing", ns, len(sink.Received()))
	}
	a.Notices = notice.Embedded()
	if got, err := a.NotifyUser(context.Background(), in); err != nil || got != Sent {
		t.Fatalf("after the fix: %q, %v", got, err)
	}
}

// Every notice the workflows ask for has a template: a kind added without
// one would fail every such notice.
func TestEveryNoticeKindHasATemplate(t *testing.T) {
	for _, kind := range []Notice{NoticeApproved, NoticeDeclined, NoticeInReview, NoticeResubmitted, NoticeKycExpired} {
		msg, err := userMessage(notice.Embedded(), UserNotice{SessionID: "s-1", Kind: kind, Email: "user@example.com"})
		if err != nil || msg.Subject == "" || msg.TextBody == "" {
			t.Errorf("%s: %+v, %v", kind, msg, err)
		}
	}
}
