package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/admin/cases"
	"github.com/diditflow/diditflow/internal/admin/erasure"
	"github.com/diditflow/diditflow/internal/admin/rotation"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
	"github.com/diditflow/diditflow/internal/store"
)

// The procedures are internal/admin/rotation's and internal/admin/erasure's
// to test; these tests hold what the command adds: its flags, its usage,
// its exit codes and its two outputs.

const (
	testKey   = "sk_test_admin_key_not_for_output"
	oldSecret = "old-secret-tno2NTeRC1ZK3sBOYlBJDyEzBVENl3pQ1A"
	sessionA  = "9b2f4c1e-0d7a-4b8e-9c35-2f1e6d7a8a64"
)

// command is the command pointed at a fake Didit by its environment, with
// a records database of its own; it counts its connections to Temporal,
// and has none to give.
type command struct {
	didit *api.Client
	opens int
	// updater answers resolve's Update.
	updater cases.Updater
}

func newCommand(t *testing.T) *command {
	t.Helper()
	fake := fakedidit.New(fakedidit.Options{Key: testKey, Secret: oldSecret, ReceiverURL: "https://receiver.example/webhooks/didit"})
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = fake.Close()
	})
	c, err := api.New(api.Config{BaseURL: srv.URL, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, value := range map[string]string{
		"DIDIT_API_URL": srv.URL, "DIDIT_API_KEY": testKey, "LOG_FORMAT": "json",
		"DATABASE_URL": filepath.Join(dir, "records.db"), "OUTBOX_DIR": filepath.Join(dir, "outbox"), "SMTP_URL": "",
		"PAYLOAD_ENCRYPTION": "off",
	} {
		t.Setenv(name, value)
	}
	return &command{didit: c}
}

type result struct {
	code           int
	stdout, stderr string
}

func (c *command) run(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdout: &stdout, stderr: &stderr,
		openSchedule: func(context.Context, *slog.Logger) (rotation.Schedule, func(), error) {
			c.opens++
			return nil, nil, rotation.ErrNoSchedule
		},
		openExecutions: func(context.Context, *slog.Logger, config.Worker) (erasure.Executions, func(), error) {
			c.opens++
			return noExecutions{}, func() {}, nil
		},
		openUpdater: func(context.Context, *slog.Logger, config.Worker) (cases.Updater, func(), error) {
			c.opens++
			return c.updater, func() {}, nil
		}}
	code := a.run(context.Background(), args)
	t.Logf("diditflow-admin %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return result{code, stdout.String(), stderr.String()}
}

// noExecutions is a Temporal that has never run the session.
type noExecutions struct{ erasure.Executions }

func (noExecutions) Runs(context.Context, string) ([]erasure.Execution, error) { return nil, nil }
func (noExecutions) CaseIDs(context.Context, string) ([]string, error)         { return nil, nil }

func (c *command) legacySecret(t *testing.T) string {
	t.Helper()
	cfg, err := c.didit.WebhookConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Secret
}

func TestUsage(t *testing.T) {
	c := newCommand(t)
	uuid := fakedidit.DefaultDestinationUUID
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage: diditflow-admin rotate-secret"},
		{[]string{"rotate"}, `unknown command "rotate"`},
		{[]string{"rotate-secret", "--bogus"}, "flag provided but not defined"},
		{[]string{"rotate-secret", "now"}, `unexpected argument "now"`},
		{[]string{"rotate-secret", "--finish", "--after-deploy"}, "separate steps"},
		{[]string{"rotate-secret", "--finish", "--destination", uuid}, "separate steps"},
		{[]string{"rotate-secret", "--without-reconcile", "--after-deploy"}, "--without-reconcile belongs"},
		{[]string{"rotate-secret", "--finish-destination", uuid}, "needs --destination"},
		{[]string{"rotate-secret", "--destination", "prod"}, `"prod" is not a UUID`},
		{[]string{"rotate-secret", "--destination", uuid, "--finish-destination", uuid}, "not the old one again"},
	} {
		r := c.run(t, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, r.code, r.stderr, exitUsage, tc.want)
		}
	}
	for _, args := range [][]string{{"-h"}, {"help"}, {"rotate-secret", "-h"}, {"rotate-secret", "--help"}} {
		r := c.run(t, args...)
		if r.code != exitOK || !strings.Contains(r.stdout, "--finish-destination <new-uuid>") {
			t.Errorf("%v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
	if c.opens != 0 || c.legacySecret(t) != oldSecret {
		t.Error("a usage error did something")
	}
}

func TestEraseUsage(t *testing.T) {
	c := newCommand(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"erase"}, "give one of --session"},
		{[]string{"erase", "--session", sessionA, "--vendor-data", "customer-4711"}, "give one of --session"},
		{[]string{"erase", "--session", "a' OR WorkflowId != '"}, "is not a Didit session id"},
		{[]string{"erase", "--session", strings.Repeat("a", 65)}, "is not a Didit session id"},
		{[]string{"erase", "--session", "9b2f4c1e\u00a0"}, "is not a Didit session id"},
		{[]string{"erase", "--session", "a b"}, "is not a Didit session id"},
		{[]string{"erase", "--session", sessionA, "now"}, `unexpected argument "now"`},
		{[]string{"erase", "--bogus"}, "flag provided but not defined"},
	} {
		r := c.run(t, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "diditflow-admin erase -h") {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, r.code, r.stderr, exitUsage, tc.want)
		}
	}
	if r := c.run(t, "erase", "-h"); r.code != exitOK || !strings.Contains(r.stdout, "--include-aml") {
		t.Errorf("-h: exit %d, stdout %q", r.code, r.stdout)
	}
	if c.opens != 0 {
		t.Error("a usage error connected to Temporal")
	}
}

// Each command prints its outcome as JSON when asked, and says how it
// ended in its exit status.
func TestJSONAndExitStatus(t *testing.T) {
	c := newCommand(t)
	r := c.run(t, "rotate-secret", "--without-reconcile", "--json")
	var out struct {
		Secret string `json:"secret"`
	}
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &out) != nil || out.Secret == "" || out.Secret != c.legacySecret(t) {
		t.Fatalf("rotate-secret --json: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := c.run(t, "rotate-secret"); r.code != exitFailure || r.stdout != "" || !strings.Contains(r.stderr, "nothing rotated") {
		t.Fatalf("rotate-secret without the reconcile schedule: exit %d", r.code)
	}

	r = c.run(t, "erase", "--session", sessionA, "--json")
	var rep erasure.Report
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &rep) != nil || len(rep.Sessions) != 1 || rep.Sessions[0].SessionID != sessionA {
		t.Fatalf("erase --json: exit %d, stdout %q", r.code, r.stdout)
	}
	// Something left (an AML case still within its retention): the report
	// says so and the exit status is 1, which scripts check.
	st, err := store.Open(context.Background(), os.Getenv("DATABASE_URL"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenAMLCase(context.Background(), store.AMLCase{CaseID: "aml-case-" + sessionA, SessionID: sessionA}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	r = c.run(t, "erase", "--session", sessionA, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &rep); r.code != exitFailure || err != nil || rep.Complete() {
		t.Fatalf("erase leaving an AML case: exit %d, stdout %q; want 1 and an incomplete report", r.code, r.stdout)
	}
	t.Setenv("DIDIT_API_KEY", "")
	if r := c.run(t, "erase", "--session", sessionA, "--didit"); r.code != exitFailure || !strings.Contains(r.stderr, "--didit needs DIDIT_API_KEY") {
		t.Fatalf("erase --didit without a key: exit %d", r.code)
	}
}
