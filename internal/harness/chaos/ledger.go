package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/internal/harness/smtptest"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/store"
	"github.com/diditflow/diditflow/workflows"
)

// mailFrom is the worker's default sender; Message-IDs derive from it.
const mailFrom = "no-reply@diditflow.localhost"

// outcome is what a session must end in, given the deliveries Temporal
// accepted, whatever order they arrived in.
type outcome struct {
	status string
	final  bool
	// required notices are sent exactly once; optional ones (intermediate
	// statuses a reordering can make stale) at most once.
	required, optional []string
	aml                string // "yes", "no" or "maybe"
}

// notices maps a status to the user notice it causes.
var notices = map[didit.Status]string{
	didit.StatusApproved: "approved", didit.StatusDeclined: "declined", didit.StatusInReview: "in_review",
	didit.StatusResubmitted: "resubmitted", didit.StatusKycExpired: "kyc_expired",
}

// expect works out a session's outcome from its acknowledged deliveries: the
// newest one decides the record (the simulator builds them oldest first);
// in the simulator's shapes, In Review and Declined carry an AML hit.
func expect(ss *session) outcome {
	var o outcome
	o.aml = "no"
	var last simulator.Delivery
	for _, d := range ss.deliveries {
		if ss.acked[d.EventID()] {
			last = d
		}
	}
	o.status, o.final = string(last.Status), last.Status.Final()
	hits := func(st didit.Status) bool { return st == didit.StatusInReview || st == didit.StatusDeclined }
	if k, ok := notices[last.Status]; ok {
		o.required = append(o.required, k)
	}
	if hits(last.Status) {
		o.aml = "yes"
	}
	for _, d := range ss.deliveries {
		if !ss.acked[d.EventID()] || d.EventID() == last.EventID() {
			continue
		}
		if k, ok := notices[d.Status]; ok && !slices.Contains(o.required, k) && !slices.Contains(o.optional, k) {
			o.optional = append(o.optional, k)
		}
		if hits(d.Status) && o.aml == "no" {
			o.aml = "maybe"
		}
	}
	return o
}

// Scenarios are the simulator scenarios the harness uses: all end final.
func Scenarios() []string {
	return []string{"approved", "declined-aml", "in-review-then-approved", "abandoned", "kyc-expired"}
}

type session struct {
	id, scenario string
	deliveries   []simulator.Delivery
	acked        map[string]bool // event ids Temporal accepted
}

// Ledger remembers what was sent and acknowledged, to check the outcome.
type Ledger struct {
	mu          sync.Mutex
	sessions    []*session
	sent        int
	acked       int
	answered5xx int
	refused     int
	parked      map[string]bool // workflow id/step id of every step seen parked
	parkedSteps []string
	problems    []string
}

// NewSession builds a session of the scenario and registers it.
func (l *Ledger) NewSession(scenario string) (*session, error) {
	ds, err := simulator.Build(scenario, simulator.Options{Email: "user@example.com"})
	if err != nil {
		return nil, err
	}
	s := &session{id: ds[0].SessionID, scenario: scenario, deliveries: ds, acked: map[string]bool{}}
	l.mu.Lock()
	l.sessions = append(l.sessions, s)
	l.mu.Unlock()
	return s, nil
}

// Deliver sends d with sender (which retries like Didit) and records every
// attempt. It returns the last status.
func (l *Ledger) Deliver(ctx context.Context, sender *simulator.Sender, s *session, d simulator.Delivery) int {
	attempts := sender.Send(ctx, d)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range attempts {
		l.sent++
		switch {
		case a.Status >= 200 && a.Status < 300:
			l.acked++
			if s != nil {
				s.acked[d.EventID()] = true
			}
		case a.Status >= 500 || a.Err != nil:
			l.answered5xx++
		default:
			l.refused++
		}
	}
	return attempts[len(attempts)-1].Status
}

func (l *Ledger) problem(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

// Report is the table chaos prints.
type Report struct {
	Sent, Acknowledged, Answered5xx, Refused4xx int
	SessionsExpected, SessionsCompleted         int
	RecordsWrong                                int
	MailsSent, MailsExpected                    int
	AMLCases, AMLCasesExpected                  int
	LostEvents, DuplicateEffects                int
	ParkedSteps                                 int
	Parked                                      []string
	// InDoubt counts notices whose worker died after handing them to the
	// mail server and before recording it: not resent, flagged for a person.
	InDoubt                     int
	PeakStarterKB, PeakWorkerKB int64
	Problems                    []string
}

// OK reports whether nothing was lost, duplicated or left wrong.
func (r Report) OK() bool {
	return r.LostEvents == 0 && r.DuplicateEffects == 0 && r.RecordsWrong == 0 &&
		r.SessionsCompleted == r.SessionsExpected && r.MailsSent == r.MailsExpected &&
		r.AMLCases == r.AMLCasesExpected && len(r.Problems) == 0
}

// Verify waits for every session to settle, releases steps still parked,
// and compares the stack's state with the ledger.
func (l *Ledger) Verify(ctx context.Context, s *Stack, limit time.Duration) Report {
	l.mu.Lock()
	sessions := slices.Clone(l.sessions)
	l.mu.Unlock()

	// Sessions Temporal never accepted an event of are not expected anywhere.
	var expected []*session
	for _, ss := range sessions {
		if len(ss.acked) > 0 {
			expected = append(expected, ss)
		}
	}
	completed := func(ss *session) bool {
		if !expect(ss).final {
			return true // an open session has nothing to complete
		}
		d, err := s.Client.DescribeWorkflow(ctx, contract.SessionWorkflowID(ss.id), "")
		return err == nil && d.Status == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		var pending []*session
		for _, ss := range expected {
			if !completed(ss) || expect(ss).aml != "no" {
				pending = append(pending, ss)
			}
		}
		l.releaseParked(ctx, s, pending)
		if !slices.ContainsFunc(expected, func(ss *session) bool { return !completed(ss) || !s.complianceNotified(ctx, ss) }) {
			break
		}
		time.Sleep(time.Second)
	}

	mailsByID := map[string]int{}
	for _, m := range s.Mails() {
		mailsByID[m.Header.Get("Message-Id")]++
	}
	r := Report{}
	l.mu.Lock()
	r.Sent, r.Acknowledged, r.Answered5xx, r.Refused4xx, r.ParkedSteps = l.sent, l.acked, l.answered5xx, l.refused, len(l.parked)
	r.Parked = slices.Clone(l.parkedSteps)
	l.mu.Unlock()
	r.SessionsExpected = len(expected)
	r.MailsSent = len(s.Mails())
	for _, ss := range expected {
		want := expect(ss)
		if completed(ss) {
			r.SessionsCompleted++
		} else {
			l.problem("session %s (%s) did not complete", ss.id, ss.scenario)
		}
		rec, err := s.Store.Session(ctx, ss.id)
		if err != nil || rec.Status != want.status {
			r.RecordsWrong++
			l.problem("session %s (%s): record %q, want %q (%v)", ss.id, ss.scenario, rec.Status, want.status, err)
		}
		events, _ := s.Store.Events(ctx, ss.id)
		for id := range ss.acked {
			if !slices.ContainsFunc(events, func(e store.Event) bool { return e.EventKey == id }) {
				r.LostEvents++
				l.problem("session %s: acknowledged event %s never recorded", ss.id, id)
			}
		}
		count := func(kind string) int {
			return mailsByID[notify.MessageID(ss.id+"/"+kind, mailFrom)]
		}
		// A user notice is keyed by the event whose status change called for
		// it (the notification kind user:<notice>:<event key>), so each event
		// of a status is a place it may be; more than one mail under one key
		// is a duplicate.
		userNotices := func(k string) (sent, duplicates int) {
			for _, d := range ss.deliveries {
				if !ss.acked[d.EventID()] || notices[d.Status] != k {
					continue
				}
				n := count("user/" + k + ":" + d.EventID())
				sent += min(n, 1)
				duplicates += max(n-1, 0)
			}
			return sent, duplicates
		}
		for _, k := range want.required {
			r.MailsExpected++
			n, dup := userNotices(k)
			if n == 0 {
				l.problem("session %s (%s): no %s notice", ss.id, ss.scenario, k)
			}
			r.MailsExpected += max(n-1, 0)
			r.DuplicateEffects += dup
		}
		for _, k := range want.optional {
			n, dup := userNotices(k)
			r.MailsExpected += n
			r.DuplicateEffects += dup
		}
		_, caseErr := s.Store.AMLCase(ctx, contract.AMLCaseWorkflowID(ss.id))
		hasCase := caseErr == nil
		if caseErr != nil && !errors.Is(caseErr, store.ErrNotFound) {
			l.problem("session %s: AML case: %v", ss.id, caseErr)
		}
		switch {
		case want.aml == "yes" || (want.aml == "maybe" && hasCase):
			r.AMLCasesExpected++
		case hasCase:
			l.problem("session %s (%s): unexpected AML case", ss.id, ss.scenario)
		}
		if hasCase {
			r.AMLCases++
			r.MailsExpected++
		}
		notices, _ := s.Store.Notifications(ctx, ss.id)
		for _, n := range notices {
			if strings.HasPrefix(n.Detail, "in doubt") {
				r.InDoubt++
			}
		}
		opened := count("compliance/opened")
		r.DuplicateEffects += max(opened-1, 0)
		if hasCase != (opened > 0) {
			l.problem("session %s: AML case %v but %d compliance notices", ss.id, hasCase, opened)
		}
	}
	r.PeakStarterKB, r.PeakWorkerKB = s.Peaks()
	l.mu.Lock()
	r.Problems = slices.Clone(l.problems)
	l.mu.Unlock()
	return r
}

// releaseParked answers every parked step with retry, as an operator would
// once the fault is gone, and counts them; a notice in doubt is
// acknowledged.
func (l *Ledger) releaseParked(ctx context.Context, s *Stack, sessions []*session) {
	for _, ss := range sessions {
		for _, id := range []string{contract.SessionWorkflowID(ss.id), contract.AMLCaseWorkflowID(ss.id)} {
			v, err := s.Client.QueryWorkflow(ctx, id, "", contract.StateQuery)
			if err != nil {
				continue
			}
			var st struct {
				Parked []workflows.ParkedStep `json:"parked"`
				Flags  []workflows.Flag       `json:"flags"`
			}
			if v.Get(&st) != nil {
				continue
			}
			// A notice in doubt keeps its session open until a person has
			// checked that it arrived; the ledger has (it counts the mails),
			// so it acknowledges that flag, and only that one: any other
			// flag leaves the session open and the run failing.
			if slices.ContainsFunc(st.Flags, func(f workflows.Flag) bool { return f.Kind == workflows.FlagInDoubt }) {
				_ = s.Client.SignalWorkflow(ctx, id, "", contract.AcknowledgeSignal,
					contract.OperatorAction{Flag: workflows.FlagInDoubt, Operator: "chaos", Note: "mail counted by the ledger"})
			}
			if len(st.Parked) == 0 {
				continue
			}
			if err := s.Client.SignalWorkflow(ctx, id, "", contract.RetrySignal, contract.OperatorAction{Operator: "chaos"}); err == nil {
				l.mu.Lock()
				if l.parked == nil {
					l.parked = map[string]bool{}
				}
				for _, p := range st.Parked {
					key := fmt.Sprintf("%s/%d", id, p.ID)
					if !l.parked[key] {
						l.parked[key] = true
						l.parkedSteps = append(l.parkedSteps, p.Step+"\x00"+p.Error)
					}
				}
				l.mu.Unlock()
			}
		}
	}
}

// complianceNotified reports whether a session's AML case, if it has one,
// has told compliance.
func (s *Stack) complianceNotified(ctx context.Context, ss *session) bool {
	if _, err := s.Store.AMLCase(ctx, contract.AMLCaseWorkflowID(ss.id)); err != nil {
		return true
	}
	id := notify.MessageID(ss.id+"/compliance/opened", mailFrom)
	return slices.ContainsFunc(s.Mails(), func(m smtptest.Mail) bool { return m.Header.Get("Message-Id") == id })
}
