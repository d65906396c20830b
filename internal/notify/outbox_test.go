package notify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diditflow/diditflow/internal/notify"
)

func newOutbox(t *testing.T) (*notify.Outbox, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "not", "yet", "there")
	o, err := notify.NewOutbox(dir, sender)
	if err != nil {
		t.Fatal(err)
	}
	return o, dir
}

// entries lists every file in dir, so a leftover temporary file fails a test.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestOutboxWritesParseableMessage(t *testing.T) {
	o, dir := newOutbox(t)
	m := testMessage()
	if err := o.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	names := entries(t, dir)
	if len(names) != 1 || !strings.HasSuffix(names[0], ".eml") {
		t.Fatalf("outbox holds %q, want one .eml file", names)
	}
	raw, err := os.ReadFile(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	msg := parse(t, raw)
	if got := msg.Header.Get("Subject"); got != m.Subject {
		t.Errorf("Subject = %q, want %q", got, m.Subject)
	}
	if got := decodedBody(t, msg); got != m.TextBody {
		t.Errorf("body = %q, want %q", got, m.TextBody)
	}
}

func TestOutboxResendOverwrites(t *testing.T) {
	o, dir := newOutbox(t)
	m := testMessage()
	if err := o.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	first := entries(t, dir)
	m.TextBody = "second rendering\n"
	if err := o.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	names := entries(t, dir)
	if len(names) != 1 || names[0] != first[0] {
		t.Fatalf("after resending, outbox holds %q, want only %q", names, first)
	}
	raw, err := os.ReadFile(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodedBody(t, parse(t, raw)); got != m.TextBody {
		t.Errorf("body = %q, want the latest %q", got, m.TextBody)
	}
}

func TestOutboxKeepsDistinctIDsApartAndInside(t *testing.T) {
	o, dir := newOutbox(t)
	ids := []string{"a/b", "a_b", "a:b", "../../escape", ".hidden", strings.Repeat("x", 300)}
	for _, id := range ids {
		m := testMessage()
		m.ID = id
		if err := o.Send(context.Background(), m); err != nil {
			t.Fatalf("Send(%q): %v", id, err)
		}
	}
	names := entries(t, dir)
	if len(names) != len(ids) {
		t.Fatalf("outbox holds %d files for %d IDs: %q", len(names), len(ids), names)
	}
	for _, name := range names {
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".eml") || len(name) > 120 {
			t.Errorf("unexpected file name %q", name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "..", "..", "escape")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an ID escaped the outbox directory: %v", err)
	}
}

func TestOutboxWritesNothingForInvalidMessage(t *testing.T) {
	o, dir := newOutbox(t)
	m := testMessage()
	m.Subject = "x\r\nBcc: victim@example.com"
	if err := o.Send(context.Background(), m); !errors.Is(err, notify.ErrHeaderInjection) {
		t.Fatalf("err = %v, want ErrHeaderInjection", err)
	}
	if names := entries(t, dir); len(names) != 0 {
		t.Errorf("outbox holds %q after a rejected message", names)
	}
}

func TestOutboxCommitsJustBeforeTheFileAppears(t *testing.T) {
	o, dir := newOutbox(t)
	m := testMessage()
	var atCommit []string
	m.Commit = func() error {
		atCommit = entries(t, dir)
		return nil
	}
	if err := o.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	// At the commit the message is complete under its temporary name only.
	if len(atCommit) != 1 || !strings.HasPrefix(atCommit[0], ".tmp-") {
		t.Fatalf("outbox at commit = %q, want only the temporary file", atCommit)
	}
	if names := entries(t, dir); len(names) != 1 || !strings.HasSuffix(names[0], ".eml") {
		t.Fatalf("outbox after Send = %q, want the .eml alone", names)
	}
}

func TestOutboxFailedCommitWritesNothing(t *testing.T) {
	o, dir := newOutbox(t)
	m := testMessage()
	m.Commit = func() error { return errors.New("database down") }
	err := o.Send(context.Background(), m)
	if err == nil || !notify.NotDelivered(err) {
		t.Fatalf("err = %v, want a failure NotDelivered holds for", err)
	}
	if names := entries(t, dir); len(names) != 0 {
		t.Fatalf("outbox holds %q after a called-off send", names)
	}
}

func TestOutboxFailureBeforeCommitDoesNotCommit(t *testing.T) {
	o, dir := newOutbox(t)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	m := testMessage()
	commits := 0
	m.Commit = func() error { commits++; return nil }
	err := o.Send(context.Background(), m)
	if err == nil || !notify.NotDelivered(err) || commits != 0 {
		t.Fatalf("err = %v after %d commits, want a NotDelivered failure before any commit", err, commits)
	}
}
