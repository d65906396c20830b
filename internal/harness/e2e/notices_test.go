package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

// A business's template for the approval, in NOTICE_TEMPLATES, is what the
// approved user is mailed.
func TestOverriddenNoticeTemplateEndToEnd(t *testing.T) {
	dir := t.TempDir()
	override := "{{/* Acme's approval */}}\nSubject: Welcome to Acme, you are verified\n\n" +
		"Your identity is verified ({{.Status}}). Quote {{.SessionID}} if you write to us.\n"
	if err := os.WriteFile(filepath.Join(dir, "approved.tmpl"), []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, func(s *stack) { s.workerEnv = append(s.workerEnv, "NOTICE_TEMPLATES="+dir) })
	session := "e2e-template-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, f := range []string{"status-updated-in-progress.json", "status-updated-approved.json", "data-updated.json"} {
		s.deliver(delivery(t, f, session))
	}
	s.waitFor("the session to complete", func() bool { return s.completed(contract.SessionWorkflowID(session)) })

	mails := s.sink.Mails()
	if len(mails) != 1 || len(mails[0].To) != 1 || mails[0].To[0] != userEmail {
		t.Fatalf("mails = %+v, want one approval to the user", mails)
	}
	text, err := mails[0].Text()
	if err != nil {
		t.Fatal(err)
	}
	want := "Your identity is verified (Approved). Quote " + session + " if you write to us.\n"
	if mails[0].Subject != "Welcome to Acme, you are verified" || text != want {
		t.Fatalf("approval mailed as %q:\n%s\nwant the override's %q:\n%s", mails[0].Subject, text,
			"Welcome to Acme, you are verified", want)
	}
}

// With USER_NOTICES=off a session's user is mailed nothing and no user
// notice is recorded, while its record, its AML case and compliance's mail
// are what they are with notices on.
func TestUserNoticesOffEndToEnd(t *testing.T) {
	s := newStack(t, func(s *stack) { s.workerEnv = append(s.workerEnv, "USER_NOTICES=off") })
	session := "e2e-notices-off-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s.deliver(delivery(t, "status-updated-in-review.json", session))
	s.deliver(delivery(t, "status-updated-declined-aml-hit.json", session))
	s.waitFor("the session to complete", func() bool { return s.completed(contract.SessionWorkflowID(session)) })

	if got := s.status(session); got != "Declined" {
		t.Fatalf("record status = %q, want Declined", got)
	}
	c, err := s.store.AMLCase(context.Background(), contract.AMLCaseWorkflowID(session))
	if err != nil || len(c.Hits) != 1 {
		t.Fatalf("AML case = %+v, %v; want it opened as with notices on", c, err)
	}
	s.waitFor("compliance's notice", func() bool { return s.sent(session, "compliance:opened:email") })
	for _, m := range s.sink.Received() {
		if len(m.To) != 1 || m.To[0] != "compliance@example.com" {
			t.Errorf("mail %q to %v: with USER_NOTICES=off only compliance is mailed", m.Subject, m.To)
		}
	}
	if n := s.sink.Count("AML case opened"); n != 1 {
		t.Errorf("%d compliance notices, want 1", n)
	}
	ns, err := s.store.Notifications(context.Background(), session)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if strings.HasPrefix(n.Kind, "user:") {
			t.Errorf("user notice %s recorded as %s", n.Kind, n.State)
		}
	}
	resp, err := http.Get("http://" + s.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The review and the decline each called for a notice.
	for _, want := range []string{`diditflow_notifications_total{audience="user",result="disabled"} 2`,
		`diditflow_notifications_total{audience="user",result="sent"} 0`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("worker /metrics lacks %s", want)
		}
	}
}

// A broken override stops the worker at start, naming the file and what
// is wrong, before it opens the records or polls a task queue.
func TestBrokenNoticeTemplateStopsTheWorker(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "declined.tmpl")
	if err := os.WriteFile(broken, []byte("Subject: Sorry {{.FirstName}}\n\nNot this time.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	records := filepath.Join(t.TempDir(), "records.db")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, workerBin)
	cmd.Env = append(os.Environ(),
		"TEMPORAL_ADDRESS="+launch.TemporalAddress(t),
		"TEMPORAL_TASK_QUEUE="+taskQueue+"-broken-template",
		"PAYLOAD_ENCRYPTION_KEYS="+launch.PayloadKeys,
		"DATABASE_URL="+records,
		"METRICS_ADDR=",
		"NOTICE_TEMPLATES="+dir,
	)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the worker ran on with a broken template:\n%s", out)
	}
	if err == nil {
		t.Fatalf("the worker exited 0 with a broken template:\n%s", out)
	}
	if !strings.Contains(string(out), broken) || !strings.Contains(string(out), "can't evaluate field FirstName") {
		t.Errorf("the worker's error does not name %s and its fault:\n%s", broken, out)
	}
	if _, err := os.Stat(records); !os.IsNotExist(err) {
		t.Errorf("the worker opened the records before it checked its templates (%v)", err)
	}
}
