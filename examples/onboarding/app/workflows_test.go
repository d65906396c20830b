package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/diditflow/diditflow/kyc"
	"github.com/diditflow/diditflow/kyctest"
)

// testEnv is a test's accounts table and Temporal's testsuite, quiet.
type testEnv struct {
	t        *testing.T
	suite    testsuite.WorkflowTestSuite
	accounts *Accounts
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	accounts, err := OpenAccounts(context.Background(), filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { accounts.Close() })
	e := &testEnv{t: t, accounts: accounts}
	e.suite.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	return e
}

// workflowEnv is a fresh environment with the app's workflows and
// activities registered.
func (e *testEnv) workflowEnv() *testsuite.TestWorkflowEnvironment {
	env := e.suite.NewTestWorkflowEnvironment()
	Register(env, &Activities{Accounts: e.accounts})
	return env
}

// signUp creates a pending account.
func (e *testEnv) signUp() Account {
	e.t.Helper()
	acct, err := e.accounts.Create(context.Background(), "Ada Lovelace", "ada@example.com")
	if err != nil {
		e.t.Fatal(err)
	}
	return acct
}

// onboard runs Onboarding for the account's attempt, with kyctest standing
// in for diditflow; user says what the user and Didit do once the session
// is created. It returns the workflow's result and the session.
func (e *testEnv) onboard(acct Account, attempt int, user func(*kyctest.Session)) (Status, *kyctest.Session) {
	e.t.Helper()
	env := e.workflowEnv()
	didit := kyctest.New(env)
	didit.Duplicates = true
	didit.OnCreate(user)
	env.ExecuteWorkflow(OnboardingWorkflowType, OnboardingInput{AccountID: acct.ID, Attempt: attempt, Email: acct.Email,
		AccountURL: "https://bank.example/accounts/" + acct.ID})
	var got Status
	if err := env.GetWorkflowResult(&got); err != nil {
		e.t.Fatal(err)
	}
	created := didit.Created()
	if len(created) != 1 || created[0].VendorData != acct.ID {
		e.t.Fatalf("sessions created: %+v, want one with the account's ID as vendor_data", created)
	}
	if n := created[0].Subscribers(); n != 0 {
		e.t.Errorf("%d workflows still wait for the session", n)
	}
	return got, created[0]
}

// hook runs OnKYCEvent with ev, as diditflow starts it.
func (e *testEnv) hook(ev kyc.Event) Applied {
	e.t.Helper()
	env := e.workflowEnv()
	env.ExecuteWorkflow(HookWorkflowType, ev)
	var done Applied
	if err := env.GetWorkflowResult(&done); err != nil {
		e.t.Fatal(err)
	}
	return done
}

// account is the account as the table has it.
func (e *testEnv) account(id string) Account {
	e.t.Helper()
	acct, err := e.accounts.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return acct
}

// TestApprovedBeforeTheWait: the user finishes before the workflow waits
// for the outcome; the wait does not miss it, and the account is active
// with the session's link recorded.
func TestApprovedBeforeTheWait(t *testing.T) {
	e := newTestEnv(t)
	acct := e.signUp()
	got, s := e.onboard(acct, 1, func(s *kyctest.Session) {
		s.Set(kyc.InProgress)
		s.Set(kyc.Approved)
	})
	if got != Active {
		t.Fatalf("Onboarding = %q, want active", got)
	}
	a := e.account(acct.ID)
	if a.Status != Active || a.SessionID != s.ID || a.VerificationURL != s.URL || a.Attempt != 1 || a.LastSequence != 3 {
		t.Fatalf("account = %+v, want active on %s, its link recorded, at change 3", a, s.ID)
	}
}

// TestDeclinedRejects: Didit declines the user an hour into the wait.
func TestDeclinedRejects(t *testing.T) {
	e := newTestEnv(t)
	acct := e.signUp()
	got, _ := e.onboard(acct, 1, func(s *kyctest.Session) {
		s.After(time.Minute, kyc.InProgress)
		s.After(time.Hour, kyc.Declined)
	})
	if a := e.account(acct.ID); got != Rejected || a.Status != Rejected {
		t.Fatalf("Onboarding = %q, account %q, want rejected", got, a.Status)
	}
}

// TestUndecidedExpires: a user who never finishes has the account expire
// after VerificationWindow, and may verify again.
func TestUndecidedExpires(t *testing.T) {
	e := newTestEnv(t)
	acct := e.signUp()
	got, _ := e.onboard(acct, 1, func(s *kyctest.Session) { s.After(time.Hour, kyc.InProgress) })
	a := e.account(acct.ID)
	if got != Expired || a.Status != Expired || !a.Status.CanVerifyAgain() {
		t.Fatalf("Onboarding = %q, account %q, want expired", got, a.Status)
	}
}

// TestHooksOutOfOrder: a review declines the approved user; the hooks of
// the session's events run in any order, each maybe twice. The decline
// closes the account, the approval's hook that runs after it is ignored as
// older, and a hook run again answers what it did the first time.
func TestHooksOutOfOrder(t *testing.T) {
	e := newTestEnv(t)
	acct := e.signUp()
	_, s := e.onboard(acct, 1, func(s *kyctest.Session) { s.Set(kyc.Approved) })
	s.Set(kyc.Declined)
	events := s.Events() // Not Started 1, Approved 2, Declined 3

	declined := e.hook(events[2])
	if declined.From != Active || declined.To != Closed || declined.Ignored != "" {
		t.Fatalf("the decline's hook did %+v, want active → closed", declined)
	}
	for _, ev := range []kyc.Event{events[1], events[0]} {
		if done := e.hook(ev); done.To != Closed || done.Ignored == "" {
			t.Errorf("the hook of %s (change %d) after the decline did %+v, want it ignored", ev.Status, ev.Sequence, done)
		}
	}
	if again := e.hook(events[2]); again != declined {
		t.Errorf("the decline's hook again did %+v, want %+v, what it did the first time", again, declined)
	}
	if a := e.account(acct.ID); a.Status != Closed || a.LastSequence != 3 {
		t.Fatalf("account = %+v, want closed at change 3", a)
	}
}

// event is diditflow's event numbered seq for the session: a status
// change, or with hits the resolution of an AML case with those hit
// outcomes.
func event(s *kyctest.Session, seq int64, status kyc.Status, hits map[string]string) kyc.Event {
	e := kyc.Event{Kind: kyc.StatusChanged, Key: s.ID + "-" + strconv.FormatInt(seq, 10), SessionID: s.ID, VendorData: s.VendorData,
		Status: status, Sequence: seq}
	if hits != nil {
		e.Kind = kyc.AMLCaseResolved
		e.Case = &kyc.CaseResolution{CaseID: "aml-case-" + s.ID, Outcome: kyc.FalsePositive, Hits: hits}
	}
	return e
}

// TestConfirmedMatchFreezes: compliance's false positives change nothing;
// a confirmed match, among false positives, freezes the account even when
// its hook runs after those of later events, and a later approval does not
// unfreeze it.
func TestConfirmedMatchFreezes(t *testing.T) {
	e := newTestEnv(t)
	acct := e.signUp()
	_, s := e.onboard(acct, 1, func(s *kyctest.Session) { s.Set(kyc.Approved) }) // Not Started 1, Approved 2
	if done := e.hook(event(s, 3, kyc.Approved, map[string]string{"hit-1": kyc.FalsePositive})); done.To != Active || done.Ignored == "" {
		t.Fatalf("a false positive did %+v, want nothing", done)
	}
	// A case resolved at 4, then a review declines (5) and another
	// approves (6); the case's hook runs last.
	e.hook(event(s, 5, kyc.Declined, nil))
	e.hook(event(s, 6, kyc.Approved, nil))
	frozen := e.hook(event(s, 4, kyc.Approved, map[string]string{"hit-1": kyc.FalsePositive, "hit-2": kyc.ConfirmedMatch}))
	if frozen.From != Active || frozen.To != Frozen {
		t.Fatalf("a confirmed match after later events did %+v, want the account frozen", frozen)
	}
	if done := e.hook(event(s, 7, kyc.Approved, nil)); done.To != Frozen {
		t.Fatalf("a later approval did %+v, want the account still frozen", done)
	}
}

// TestKycExpiredAsksAgain: Kyc Expired marks an active account for a new
// verification, which the user starts: its session becomes the account's,
// and the old session's events no longer move it.
func TestKycExpiredAsksAgain(t *testing.T) {
	e := newTestEnv(t)
	acct := e.signUp()
	// The first verification, approved a year ago (kyctest numbers its
	// sessions per environment: this one is Didit's).
	ctx := context.Background()
	const old = "1f0c4e2a-7d3b-4c55-9a61-0b8e2f4d6c11"
	if err := e.accounts.RecordVerification(ctx, acct.ID, 1, old, "https://verify.didit.me/session/old"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.accounts.Settle(ctx, acct.ID, old, 2, kyc.Approved); err != nil {
		t.Fatal(err)
	}
	expired := kyc.Event{Kind: kyc.StatusChanged, Key: old + "-3", SessionID: old, VendorData: acct.ID, Status: kyc.KycExpired, Sequence: 3}
	if done := e.hook(expired); done.From != Active || done.To != Reverify {
		t.Fatalf("Kyc Expired did %+v, want active → reverify", done)
	}
	if !e.account(acct.ID).Status.CanVerifyAgain() {
		t.Fatal("the account does not offer a new verification")
	}

	got, fresh := e.onboard(acct, 2, func(s *kyctest.Session) { s.After(time.Hour, kyc.Approved) })
	a := e.account(acct.ID)
	if got != Active || a.Status != Active || a.SessionID != fresh.ID || a.Attempt != 2 {
		t.Fatalf("Onboarding = %q, account %+v, want active on the new session", got, a)
	}
	declined := kyc.Event{Kind: kyc.StatusChanged, Key: old + "-4", SessionID: old, VendorData: acct.ID, Status: kyc.Declined, Sequence: 4}
	if done := e.hook(declined); done.To != Active || done.Ignored == "" {
		t.Fatalf("the old session's decline did %+v, want it ignored", done)
	}
}

// TestAnotherBusinessesEvent: diditflow starts the hook for every session,
// other apps' and erased ones too; an event naming no account is ignored.
func TestAnotherBusinessesEvent(t *testing.T) {
	e := newTestEnv(t)
	ev := kyc.Event{Kind: kyc.StatusChanged, Key: "s-1", SessionID: "s", VendorData: "user-of-another-app", Status: kyc.Approved, Sequence: 1}
	if done := e.hook(ev); done.AccountID != "" || done.Ignored == "" {
		t.Fatalf("the hook did %+v, want the event ignored", done)
	}
}

// TestStatusRules: where each status change takes an account.
func TestStatusRules(t *testing.T) {
	for _, tc := range []struct {
		from Status
		kyc  kyc.Status
		to   Status
	}{
		{Pending, kyc.InProgress, Pending},
		{Pending, kyc.Approved, Active},
		{Pending, kyc.Declined, Rejected},
		{Pending, kyc.Abandoned, Rejected},
		{Pending, kyc.Expired, Rejected},
		{Expired, kyc.Approved, Active}, // finished after the app stopped waiting
		{Active, kyc.Declined, Closed},
		{Active, kyc.KycExpired, Reverify},
		{Active, kyc.Abandoned, Active},
		{Closed, kyc.Approved, Active}, // a reviewer overturned the decline
		{Reverify, kyc.Approved, Active},
		{Reverify, kyc.Abandoned, Reverify},
		{Frozen, kyc.Approved, Frozen},
		{Frozen, kyc.Declined, Frozen},
	} {
		if got := tc.from.after(tc.kyc); got != tc.to {
			t.Errorf("%s after %s = %s, want %s", tc.from, tc.kyc, got, tc.to)
		}
	}
}
