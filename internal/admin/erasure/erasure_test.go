package erasure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	launch.StopTemporal()
	os.Exit(code)
}

const (
	eraseKey   = "sk_test_erase_key_not_for_output"
	userEmail  = "jane.doe@example.com"
	vendorData = "customer-4711"
	sessionA   = "9b2f4c1e-0d7a-4b8e-9c35-2f1e6d7a8a64"
	sessionB   = "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
)

// eraseFixture is the worker's records and outbox, filled by the activities
// as a worker would, a fake Didit that deletes sessions, and the command
// pointed at them by its environment.
type eraseFixture struct {
	st       *store.Store
	acts     *activities.Activities
	outbox   string
	temporal *fakeTemporal
	mu       sync.Mutex
	// diditDeleted lists the sessions Didit was asked to delete.
	diditDeleted []string
}

func newEraseFixture(t *testing.T) *eraseFixture {
	t.Helper()
	dir := t.TempDir()
	f := &eraseFixture{outbox: filepath.Join(dir, "outbox"), temporal: &fakeTemporal{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, "/v3/session/")
		id, ok2 := strings.CutSuffix(id, "/delete/")
		if r.Header.Get("x-api-key") != eraseKey || r.Method != http.MethodDelete || !ok || !ok2 {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if slices.Contains(f.diditDeleted, id) {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		f.diditDeleted = append(f.diditDeleted, id)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	db := filepath.Join(dir, "records.db")
	for name, value := range map[string]string{
		"DATABASE_URL": db, "OUTBOX_DIR": f.outbox, "SMTP_URL": "", "MAIL_FROM": "diditflow <no-reply@example.com>",
		"DIDIT_API_URL": srv.URL, "DIDIT_API_KEY": eraseKey, "LOG_LEVEL": "debug", "LOG_FORMAT": "json",
		"PAYLOAD_ENCRYPTION_KEYS": launch.PayloadKeys,
	} {
		t.Setenv(name, value)
	}
	st, err := store.Open(t.Context(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	mailer, err := notify.NewOutbox(f.outbox, "diditflow <no-reply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	f.st = st
	f.acts = &activities.Activities{Store: st, Mailer: mailer, Compliance: activities.Compliance{Email: "compliance@example.com"}}
	return f
}

// session records an Approved session of vendorData the user was told
// about by mail; with aml, also a resolved AML case compliance was mailed.
func (f *eraseFixture) session(t *testing.T, sessionID, vendorData string, aml bool) {
	t.Helper()
	ctx := t.Context()
	in := activities.RecordInput{SessionID: sessionID, EventKey: "e-1", WebhookType: didit.WebhookStatusUpdated,
		Status: didit.StatusApproved, EventCreatedAt: 100, VendorData: vendorData, ContactEmail: userEmail}
	if _, err := f.acts.RecordVerification(ctx, in); err != nil {
		t.Fatal(err)
	}
	if got, err := f.acts.NotifyUser(ctx, activities.UserNotice{SessionID: sessionID, Kind: activities.NoticeApproved,
		Key: "approved:e-1", FromRecords: true}); err != nil || got != activities.Sent {
		t.Fatalf("NotifyUser = %q, %v", got, err)
	}
	if !aml {
		return
	}
	c := activities.AMLCase{SessionID: sessionID, Status: didit.StatusApproved, VendorData: vendorData, Hits: []didit.AMLHit{{ID: "h-1"}}}
	if _, err := f.acts.OpenAMLCase(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := f.acts.NotifyCompliance(ctx, activities.ComplianceNotice{Case: c}); err != nil || got != activities.Sent {
		t.Fatalf("NotifyCompliance = %q, %v", got, err)
	}
	if err := f.acts.ResolveAMLCase(ctx, activities.ResolveInput{SessionID: sessionID, Resolution: contract.Resolution{
		Outcome: contract.FalsePositive, Reviewer: "officer@example.com", Note: "Jane Doe is a namesake"}}); err != nil {
		t.Fatal(err)
	}
}

// mails counts the outbox's mails that mention s (their bodies and
// subjects name sessions; a user notice names none, so it is counted by
// the address it went to).
func (f *eraseFixture) mails(t *testing.T, s string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(f.outbox, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			n++
		}
	}
	return n
}

// result is an erasure as diditflow-admin erase shows it.
type result struct {
	// erased: the run started and erased every session in full.
	erased bool
	// stdout is the report; stderr the logs and why the run did not start.
	stdout, stderr string
}

// erase runs req against the fixture's environment, Temporal through open.
func erase(t *testing.T, req Request, asJSON bool, open OpenExecutions) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cfg, err := config.LoadWorker()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(&stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rep, err := Run(t.Context(), cfg, log, req, open)
	switch {
	case err != nil:
		stderr.WriteString(err.Error())
	case asJSON:
		err = rep.WriteJSON(&stdout)
	default:
		err = rep.WriteText(&stdout)
	}
	if err != nil && stdout.Len() > 0 {
		t.Fatal(err)
	}
	out := result{err == nil && rep.Complete(), stdout.String(), stderr.String()}
	t.Logf("erase %+v → erased %t\nstdout:\n%s\nstderr:\n%s", req, out.erased, out.stdout, out.stderr)
	return out
}

// run erases req with the fixture's Temporal, and fails the test if the
// output shows any personal data or the API key.
func (f *eraseFixture) run(t *testing.T, req Request, asJSON bool) result {
	t.Helper()
	out := erase(t, req, asJSON, func(context.Context, *slog.Logger, config.Worker) (Executions, func(), error) {
		return f.temporal, func() {}, nil
	})
	for _, secret := range []string{userEmail, vendorData, "officer@example.com", "namesake", eraseKey} {
		if strings.Contains(out.stdout+out.stderr, secret) {
			t.Errorf("the output shows %q", secret)
		}
	}
	return out
}

// fakeTemporal stands in for the Temporal API. That the real one lists,
// terminates and deletes as erase expects is TestEraseAgainstTemporal's.
type fakeTemporal struct {
	runs                []Execution
	deleted, terminated []Execution
	// afterDelete, if set, runs after each delete, as a delivery of
	// Didit's that lands meanwhile would.
	afterDelete func(f *fakeTemporal)
}

func (f *fakeTemporal) Runs(_ context.Context, workflowID string) ([]Execution, error) {
	var out []Execution
	for _, r := range f.runs {
		if r.WorkflowID == workflowID {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeTemporal) CaseIDs(_ context.Context, sessionID string) ([]string, error) {
	var out []string
	for _, r := range f.runs {
		if strings.HasPrefix(r.WorkflowID, contract.AMLCaseWorkflowID(sessionID)) && !slices.Contains(out, r.WorkflowID) {
			out = append(out, r.WorkflowID)
		}
	}
	return out, nil
}

func (f *fakeTemporal) Terminate(_ context.Context, r Execution, _ string) error {
	for i := range f.runs {
		if f.runs[i].RunID == r.RunID {
			f.runs[i].Running = false
		}
	}
	f.terminated = append(f.terminated, r)
	return nil
}

func (f *fakeTemporal) Delete(_ context.Context, r Execution) (bool, error) {
	i := slices.IndexFunc(f.runs, func(x Execution) bool { return x.RunID == r.RunID })
	if i < 0 {
		return false, nil
	}
	if f.runs[i].Running {
		panic("erase deleted a running execution")
	}
	f.runs = slices.Delete(f.runs, i, i+1)
	f.deleted = append(f.deleted, r)
	if f.afterDelete != nil {
		f.afterDelete(f)
	}
	return true, nil
}

// TestEraseSession: the records keep the session's statuses and facts
// without its personal fields, its mails leave the outbox, its executions
// and its cases' (a follow-up only Temporal knows included) are deleted,
// Didit deletes its copy; another session keeps everything. Again, it finds
// nothing left.
func TestEraseSession(t *testing.T) {
	f := newEraseFixture(t)
	f.session(t, sessionA, vendorData, true)
	f.session(t, sessionB, "customer-other", true)
	f.temporal.runs = []Execution{
		{WorkflowID: contract.SessionWorkflowID(sessionA), RunID: "a-1"},
		{WorkflowID: contract.SessionWorkflowID(sessionA), RunID: "a-2"},
		{WorkflowID: contract.AMLCaseWorkflowID(sessionA), RunID: "c-1"},
		{WorkflowID: contract.FollowUpCaseID(sessionA, 2), RunID: "c-2"},
		{WorkflowID: contract.SessionWorkflowID(sessionB), RunID: "b-1"},
		{WorkflowID: contract.AMLCaseWorkflowID(sessionB), RunID: "b-2", Running: true},
	}
	if f.mails(t, sessionA) != 1 || f.mails(t, sessionB) != 1 || f.mails(t, "verification is complete") != 2 {
		t.Fatal("the fixture's outbox is not one compliance mail and one user notice per session")
	}

	r := f.run(t, Request{Session: sessionA, IncludeAML: true, Didit: true}, false)
	if !r.erased || !strings.Contains(r.stdout, "Erased session "+sessionA) {
		t.Fatalf("erased %t, stdout %q", r.erased, r.stdout)
	}
	for _, want := range []string{"2 personal fields of the session, 2 notifications and 1 AML case record blanked",
		"2 mails removed", "4 executions deleted", "Didit: its copy of the session deleted"} {
		if !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	ctx := t.Context()
	v, err := f.st.Session(ctx, sessionA)
	if err != nil || v.VendorData != "" || v.Status != string(didit.StatusApproved) || v.EventKey != "e-1" {
		t.Fatalf("record = %+v, %v; want kept without vendor_data", v, err)
	}
	if email, err := f.st.ContactAddress(ctx, sessionA); err != nil || email != "" {
		t.Fatalf("address = %q, %v", email, err)
	}
	if c, err := f.st.AMLCase(ctx, contract.AMLCaseWorkflowID(sessionA)); err != nil || c.Resolution.Reviewer != "" ||
		c.Resolution.Note != "" || c.Resolution.Outcome != contract.FalsePositive {
		t.Fatalf("case = %+v, %v", c, err)
	}
	if f.mails(t, sessionA) != 0 || f.mails(t, sessionB) != 1 || f.mails(t, "verification is complete") != 1 {
		t.Fatalf("outbox: %d mails of %s, %d of %s, %d user notices; want only the other session's left",
			f.mails(t, sessionA), sessionA, f.mails(t, sessionB), sessionB, f.mails(t, "verification is complete"))
	}
	if len(f.temporal.deleted) != 4 || len(f.temporal.runs) != 2 || len(f.temporal.terminated) != 0 {
		t.Fatalf("deleted %v, left %v", f.temporal.deleted, f.temporal.runs)
	}
	if !slices.Equal(f.diditDeleted, []string{sessionA}) {
		t.Fatalf("Didit deleted %v", f.diditDeleted)
	}
	if v, err := f.st.Session(ctx, sessionB); err != nil || v.VendorData != "customer-other" {
		t.Fatalf("the other session = %+v, %v", v, err)
	}

	r = f.run(t, Request{Session: sessionA, IncludeAML: true, Didit: true}, true)
	var rep Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || !r.erased || len(rep.Sessions) != 1 {
		t.Fatalf("again: erased %t, %v, %+v", r.erased, err, rep)
	}
	if s := rep.Sessions[0]; s.Records == nil || *s.Records != (store.EraseResult{Found: true}) || s.Mails != 0 || s.Deleted != 0 ||
		s.Didit != "not found" {
		t.Fatalf("again: %+v (records %+v); want nothing left to remove", s, s.Records)
	}
}

// TestEraseLeavesWhatItMustNotTouch: a session with an AML case record
// within its retention, or with an execution running, is left whole until
// the operator says otherwise.
func TestEraseLeavesWhatItMustNotTouch(t *testing.T) {
	f := newEraseFixture(t)
	f.session(t, sessionA, vendorData, true)
	f.session(t, sessionB, "customer-other", false)
	f.temporal.runs = []Execution{
		{WorkflowID: contract.SessionWorkflowID(sessionA), RunID: "a-1"},
		{WorkflowID: contract.SessionWorkflowID(sessionB), RunID: "b-1", Running: true},
	}
	ctx := t.Context()
	mails := f.mails(t, "Message-ID")
	untouched := func(session, vendor string) {
		t.Helper()
		if v, err := f.st.Session(ctx, session); err != nil || v.VendorData != vendor {
			t.Fatalf("%s = %+v, %v; want it untouched", session, v, err)
		}
		if email, err := f.st.ContactAddress(ctx, session); err != nil || email != userEmail {
			t.Fatalf("%s lost its address (%q, %v)", session, email, err)
		}
		if n := f.mails(t, "Message-ID"); n != mails {
			t.Fatalf("the outbox holds %d mails, want the %d it had", n, mails)
		}
	}

	r := f.run(t, Request{Session: sessionA}, false)
	if r.erased || !strings.Contains(r.stdout, "AML_RECORD_RETENTION") || !strings.Contains(r.stdout, "--include-aml") {
		t.Fatalf("AML case kept: erased %t, stdout %q", r.erased, r.stdout)
	}
	untouched(sessionA, vendorData)
	if len(f.temporal.deleted) != 0 || len(f.temporal.runs) != 2 {
		t.Fatalf("an execution of a session left whole was deleted: %v", f.temporal.deleted)
	}

	r = f.run(t, Request{Session: sessionB}, false)
	if r.erased || !strings.Contains(r.stdout, "1 execution running") || !strings.Contains(r.stdout, "--terminate") {
		t.Fatalf("running: erased %t, stdout %q", r.erased, r.stdout)
	}
	untouched(sessionB, "customer-other")
	r = f.run(t, Request{Session: sessionB, Terminate: true}, false)
	if !r.erased || len(f.temporal.terminated) != 1 || len(f.temporal.deleted) != 1 ||
		!strings.Contains(r.stdout, "1 terminated first") {
		t.Fatalf("--terminate: erased %t, terminated %v, deleted %v", r.erased, f.temporal.terminated, f.temporal.deleted)
	}
	if len(f.diditDeleted) != 0 {
		t.Fatalf("Didit asked to delete %v without --didit", f.diditDeleted)
	}
}

// TestEraseFindsRunsStartedMeanwhile: Didit delivers to the session while
// erase deletes its executions, which starts a new run (and that run opens
// a follow-up case). erase lists the runs again, terminates and deletes
// both, and reports the session erased only once nothing is left. Without
// --terminate the running newcomer is reported left, with its records
// erased all the same.
func TestEraseFindsRunsStartedMeanwhile(t *testing.T) {
	for _, terminate := range []bool{true, false} {
		f := newEraseFixture(t)
		f.session(t, sessionA, vendorData, false)
		f.temporal.runs = []Execution{{WorkflowID: contract.SessionWorkflowID(sessionA), RunID: "a-1"}}
		f.temporal.afterDelete = func(f *fakeTemporal) {
			f.afterDelete = nil
			f.runs = append(f.runs, Execution{WorkflowID: contract.SessionWorkflowID(sessionA), RunID: "a-2", Running: true},
				Execution{WorkflowID: contract.FollowUpCaseID(sessionA, 2), RunID: "c-2", Running: true})
		}
		r := f.run(t, Request{Session: sessionA, Terminate: terminate}, true)
		var rep Report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Sessions) != 1 {
			t.Fatalf("report %q: %v", r.stdout, err)
		}
		s := rep.Sessions[0]
		if v, err := f.st.Session(t.Context(), sessionA); err != nil || v.VendorData != "" || v.ErasedAt.IsZero() {
			t.Fatalf("record = %+v, %v; want it erased", v, err)
		}
		if !terminate {
			if r.erased || s.Meanwhile != 2 || len(s.Left) != 1 || !strings.Contains(s.Left[0], "--terminate") ||
				len(f.temporal.runs) != 2 {
				t.Fatalf("without --terminate: erased %t, %+v, runs left %v; want the newcomers reported left", r.erased, s, f.temporal.runs)
			}
			continue
		}
		if !r.erased || len(s.Left) != 0 || s.Deleted != 3 || s.Terminated != 2 || s.Meanwhile != 2 {
			t.Fatalf("erased %t, %+v; want all three executions deleted, two of them started meanwhile", r.erased, s)
		}
		if len(f.temporal.runs) != 0 {
			t.Fatalf("left %v", f.temporal.runs)
		}
		text := f.run(t, Request{Session: sessionA, Terminate: true}, false)
		if !text.erased || !strings.Contains(strings.Join(strings.Fields(text.stdout), " "), "Erased session "+sessionA) {
			t.Fatalf("again: erased %t, %q", text.erased, text.stdout)
		}
	}
}

// TestEraseGivesUpOnRunsThatKeepStarting: a run starts after every delete;
// erase stops after its rounds and says the session is not fully erased.
func TestEraseGivesUpOnRunsThatKeepStarting(t *testing.T) {
	f := newEraseFixture(t)
	f.session(t, sessionA, vendorData, false)
	f.temporal.runs = []Execution{{WorkflowID: contract.SessionWorkflowID(sessionA), RunID: "a-0"}}
	n := 0
	f.temporal.afterDelete = func(f *fakeTemporal) {
		n++
		f.runs = append(f.runs, Execution{WorkflowID: contract.SessionWorkflowID(sessionA), RunID: fmt.Sprintf("a-%d", n), Running: true})
	}
	r := f.run(t, Request{Session: sessionA, Terminate: true}, false)
	out := strings.Join(strings.Fields(r.stdout), " ")
	if r.erased || !strings.Contains(out, "is not fully erased") || !strings.Contains(out, "more after each of") {
		t.Fatalf("erased %t, stdout %q", r.erased, r.stdout)
	}
	if n != maxListRounds {
		t.Fatalf("deleted %d times, want one round of deletes per listing (%d)", n, maxListRounds)
	}
}

// TestEraseByVendorData: every session of the reference, and only those;
// the report never shows the reference.
func TestEraseByVendorData(t *testing.T) {
	f := newEraseFixture(t)
	f.session(t, sessionA, vendorData, false)
	f.session(t, sessionB, vendorData, false)
	f.session(t, "s-other", "customer-47", false)
	// The store's order (first seen, then session ID): the two may or may
	// not have been first seen in the same second.
	order, err := f.st.SessionsByVendorData(t.Context(), vendorData)
	if err != nil || len(order) != 2 {
		t.Fatalf("sessions of the reference: %v, %v", order, err)
	}
	r := f.run(t, Request{VendorData: vendorData}, true)
	var rep Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || !r.erased || !rep.ByVendorData || len(rep.Sessions) != 2 {
		t.Fatalf("erased %t, %v, %+v", r.erased, err, rep)
	}
	if rep.Sessions[0].SessionID != order[0] || rep.Sessions[1].SessionID != order[1] {
		t.Fatalf("sessions %+v", rep.Sessions)
	}
	if ids, err := f.st.SessionsByVendorData(t.Context(), vendorData); err != nil || len(ids) != 0 {
		t.Fatalf("left with the reference: %v, %v", ids, err)
	}
	if ids, err := f.st.SessionsByVendorData(t.Context(), "customer-47"); err != nil || len(ids) != 1 {
		t.Fatalf("another reference: %v, %v", ids, err)
	}
	r = f.run(t, Request{VendorData: vendorData}, false)
	if !r.erased || !strings.Contains(r.stdout, "No session record holds this vendor_data") {
		t.Fatalf("again: erased %t, stdout %q", r.erased, r.stdout)
	}
}

// TestEraseRefusesIDsItWouldQueryUnchecked: a record from before the
// receiver checked session ids holds one no Didit session has; erase
// --vendor-data leaves it, saying why, and erases the reference's valid
// session. No list query is ever built from such an id.
func TestEraseRefusesIDsItWouldQueryUnchecked(t *testing.T) {
	f := newEraseFixture(t)
	const odd = "x' OR WorkflowId STARTS_WITH '"
	f.session(t, odd, vendorData, false)
	f.session(t, sessionA, vendorData, false)
	r := f.run(t, Request{VendorData: vendorData}, true)
	var rep Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.erased || len(rep.Sessions) != 2 {
		t.Fatalf("erased %t, %v, %+v", r.erased, err, rep)
	}
	for _, s := range rep.Sessions {
		switch s.SessionID {
		case odd:
			if s.Records != nil || len(s.Left) != 1 || !strings.Contains(s.Left[0], "not a session id Didit sends") {
				t.Errorf("the odd id: %+v", s)
			}
		case sessionA:
			if s.Records == nil || len(s.Left) != 0 {
				t.Errorf("the valid id: %+v", s)
			}
		}
	}
	for _, id := range []string{odd, "aml-case-a'b", "didit-session-a\\", "aml-case-\u00e9", ""} {
		if q, err := listQuery("=", id); err == nil {
			t.Errorf("listQuery(%q) = %q, want it refused", id, q)
		}
	}
	if q, err := listQuery("STARTS_WITH", contract.AMLCaseWorkflowID(sessionA)); err != nil ||
		q != "WorkflowId STARTS_WITH 'aml-case-"+sessionA+"'" {
		t.Errorf("listQuery of a case = %q, %v", q, err)
	}
}

// TestEraseWithDiditNeedsAKey: --didit without DIDIT_API_KEY erases
// nothing and says what is missing.
func TestEraseWithDiditNeedsAKey(t *testing.T) {
	f := newEraseFixture(t)
	f.session(t, sessionA, vendorData, false)
	t.Setenv("DIDIT_API_KEY", "")
	if r := f.run(t, Request{Session: sessionA, Didit: true}, false); r.erased || !strings.Contains(r.stderr, "--didit needs DIDIT_API_KEY") {
		t.Errorf("--didit without a key: erased %t, stderr %q", r.erased, r.stderr)
	}
	if v, err := f.st.Session(t.Context(), sessionA); err != nil || v.VendorData != vendorData {
		t.Errorf("record = %+v, %v; want it untouched", v, err)
	}
}

// TestEraseAgainstTemporal runs erase against a real dev server: it lists
// every run of the session workflow and of its case, refuses a running
// one, terminates it when told to, and deletes them all, and nothing else.
func TestEraseAgainstTemporal(t *testing.T) {
	tc := launch.Temporal(t)
	f := newEraseFixture(t)
	t.Setenv("TEMPORAL_ADDRESS", launch.TemporalAddress(t))
	t.Setenv("TEMPORAL_NAMESPACE", "default")
	f.session(t, sessionA, vendorData, false)
	ctx := t.Context()
	// No worker polls this queue: the runs stay as they are started.
	queue := "erase-test-" + time.Now().Format("150405.000000")
	start := func(id string) client.WorkflowRun {
		t.Helper()
		r, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, contract.SessionWorkflowType)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	closed := func(r client.WorkflowRun) {
		t.Helper()
		if err := tc.TerminateWorkflow(ctx, r.GetID(), r.GetRunID(), "closed by the test"); err != nil {
			t.Fatal(err)
		}
	}
	sessionID := contract.SessionWorkflowID(sessionA)
	caseID := contract.AMLCaseWorkflowID(sessionA)
	other := start(contract.SessionWorkflowID(sessionB))
	first, firstCase := start(sessionID), start(caseID)
	closed(first)
	closed(firstCase)
	running := start(sessionID)

	run := func(terminate bool) result {
		return erase(t, Request{Session: sessionA, Terminate: terminate}, false, nil)
	}
	if r := run(false); r.erased || !strings.Contains(strings.Join(strings.Fields(r.stdout), " "),
		"1 execution running ("+sessionID+")") {
		t.Fatalf("running: erased %t", r.erased)
	}
	if d, err := tc.DescribeWorkflow(ctx, sessionID, running.GetRunID()); err != nil || d.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("the running session after a refusal: %v, %v", d, err)
	}
	if r := run(true); !r.erased || !strings.Contains(strings.Join(strings.Fields(r.stdout), " "),
		"3 executions deleted (1 terminated first)") {
		t.Fatalf("--terminate: erased %t", r.erased)
	}
	// The server deletes in the background, a minute or more later on the
	// dev server, which is too long to wait for here: what is checked is
	// that it accepted the deletes, ended the running run, and left
	// another session's alone.
	d, err := tc.DescribeWorkflow(ctx, sessionID, running.GetRunID())
	var notFound *serviceerror.NotFound
	if !errors.As(err, &notFound) && (err != nil || d.Status != enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED) {
		t.Fatalf("the running session after --terminate: %v, %v", d, err)
	}
	if d, err := tc.DescribeWorkflow(ctx, other.GetID(), other.GetRunID()); err != nil ||
		d.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("another session's execution: %v, %v", d, err)
	}
	// Again while the deletes are pending: nothing is running, and asking
	// again is harmless.
	if r := run(false); !r.erased {
		t.Fatalf("again: erased %t", r.erased)
	}
}

// deliveryMeanwhile is the real Temporal API with a delivery of Didit's
// landing right after erase deletes the session's first execution: the
// receiver's SignalWithStart starts a new run.
type deliveryMeanwhile struct {
	Executions
	deliver func()
}

func (d *deliveryMeanwhile) Delete(ctx context.Context, r Execution) (bool, error) {
	deleted, err := d.Executions.Delete(ctx, r)
	if d.deliver != nil {
		d.deliver()
		d.deliver = nil
	}
	return deleted, err
}

// TestEraseAgainstTemporalFindsARunStartedMeanwhile: on a real dev server,
// a delivery lands between erase's terminate and its delete and starts a
// new run of the session; erase lists the runs again, finds it, terminates
// and deletes it, and only then says the session is erased.
func TestEraseAgainstTemporalFindsARunStartedMeanwhile(t *testing.T) {
	tc := launch.Temporal(t)
	f := newEraseFixture(t)
	t.Setenv("TEMPORAL_ADDRESS", launch.TemporalAddress(t))
	t.Setenv("TEMPORAL_NAMESPACE", "default")
	session := "erase-meanwhile-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	f.session(t, session, vendorData, false)
	ctx := t.Context()
	// No worker polls this queue: the runs stay as they are started.
	queue := "erase-test-" + time.Now().Format("150405.000000")
	id := contract.SessionWorkflowID(session)
	first, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, contract.SessionWorkflowType)
	if err != nil {
		t.Fatal(err)
	}
	var meanwhile client.WorkflowRun
	r := erase(t, Request{Session: session, Terminate: true}, true,
		func(ctx context.Context, log *slog.Logger, cfg config.Worker) (Executions, func(), error) {
			ex, closeTemporal, err := DialExecutions(ctx, log, cfg)
			if err != nil {
				return nil, nil, err
			}
			return &deliveryMeanwhile{Executions: ex, deliver: func() {
				meanwhile, err = tc.SignalWithStartWorkflow(ctx, id, contract.EventSignal, "a delivery",
					client.StartWorkflowOptions{TaskQueue: queue}, contract.SessionWorkflowType)
				if err != nil {
					t.Errorf("the delivery meanwhile: %v", err)
				}
			}}, closeTemporal, nil
		})
	var rep Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || !r.erased || len(rep.Sessions) != 1 {
		t.Fatalf("erased %t, %v", r.erased, err)
	}
	if s := rep.Sessions[0]; s.Deleted != 2 || s.Terminated != 2 || s.Meanwhile != 1 || len(s.Left) != 0 {
		t.Fatalf("report %+v; want the first run and the one started meanwhile deleted", s)
	}
	if meanwhile == nil || meanwhile.GetRunID() == first.GetRunID() {
		t.Fatal("no new run started meanwhile")
	}
	d, err := tc.DescribeWorkflow(ctx, id, meanwhile.GetRunID())
	var notFound *serviceerror.NotFound
	if !errors.As(err, &notFound) && (err != nil || d.Status != enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED) {
		t.Fatalf("the run started meanwhile: %v, %v; want it terminated and deleted", d, err)
	}
}
