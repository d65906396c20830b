// Package kyctest stands in for diditflow in Temporal's testsuite, so that a
// business unit-tests its workflows that use package kyc without a Temporal
// server, a Didit account or diditflow's worker:
//
//	env := suite.NewTestWorkflowEnvironment()
//	didit := kyctest.New(env)
//	// The user is approved before the workflow waits: it must not miss it.
//	didit.OnCreate(func(s *kyctest.Session) { s.Set(kyc.Approved) })
//	env.ExecuteWorkflow(Onboarding, "user-1")
//
// The stand-in keeps diditflow's promises to the waiting side: a subscriber
// is told where its session stands when it subscribes and every status
// change after, each with the session's Sequence; Duplicates tells every
// update twice, as a retried announcement does. Sessions change when a test
// says so: Set now, After a while of the test environment's clock.
package kyctest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/kyc"
)

// Diditflow is diditflow as a business's workflows see it through package
// kyc, in one test environment.
type Diditflow struct {
	env *testsuite.TestWorkflowEnvironment
	// Duplicates signals every update twice, as diditflow does when an
	// announcement is retried: the waiting side must drop what it has seen.
	Duplicates bool

	mu       sync.Mutex
	sessions map[string]*Session
	created  []*Session
	onCreate func(*Session)
	refusal  *kyc.RequestError
}

// New registers the stand-in's activities (StartVerification's,
// AwaitOutcome's and Decision's) in env.
func New(env *testsuite.TestWorkflowEnvironment) *Diditflow {
	d := &Diditflow{env: env, sessions: map[string]*Session{}}
	env.RegisterActivityWithOptions(d.createSession, activity.RegisterOptions{Name: kyc.CreateSessionActivity})
	env.RegisterActivityWithOptions(d.subscribe, activity.RegisterOptions{Name: kyc.SubscribeActivity})
	env.RegisterActivityWithOptions(d.unsubscribe, activity.RegisterOptions{Name: kyc.UnsubscribeActivity})
	env.RegisterActivityWithOptions(d.decision, activity.RegisterOptions{Name: kyc.DecisionActivity})
	return d
}

// OnCreate calls f with each session StartVerification creates, as Didit
// creates it (Not Started): to schedule what the user does, relative to
// that moment.
func (d *Diditflow) OnCreate(f func(*Session)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.onCreate = f
}

// Refuse makes the next StartVerification fail as Didit refuses a request:
// a *kyc.RequestError with status and message.
func (d *Diditflow) Refuse(status int, message string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refusal = &kyc.RequestError{StatusCode: status, Message: message}
}

// Created lists the sessions StartVerification created, in order (a reused
// one once).
func (d *Diditflow) Created() []*Session {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.created)
}

// Session is the session of that ID, created (Not Started) if it does not
// exist: for a workflow that waits for a session it did not start.
func (d *Diditflow) Session(id string) *Session {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.session(id, "")
}

func (d *Diditflow) session(id, vendorData string) *Session {
	s, ok := d.sessions[id]
	if !ok {
		s = &Session{d: d, ID: id, URL: "https://verify.didit.me/session/" + id, VendorData: vendorData}
		d.sessions[id] = s
		s.change(kyc.NotStarted)
	}
	return s
}

// Session is a Didit session as diditflow knows it.
type Session struct {
	d          *Diditflow
	ID         string
	URL        string
	VendorData string
	// Guarded by d.mu.
	changes     []kyc.Change
	subscribers []kyc.Subscription
	decision    *kyc.SessionDecision
}

// Set moves the session to status now, as a webhook diditflow recorded
// does: its subscribers are told.
func (s *Session) Set(status kyc.Status) {
	s.d.mu.Lock()
	c := s.change(status)
	subs := slices.Clone(s.subscribers)
	if kyc.Decided(status) {
		s.subscribers = nil
	}
	s.d.mu.Unlock()
	for _, sub := range subs {
		s.d.tell(sub, c)
	}
}

// After moves the session to status once d has passed on the test
// environment's clock.
func (s *Session) After(d time.Duration, status kyc.Status) {
	s.d.env.RegisterDelayedCallback(func() { s.Set(status) }, d)
}

// SetDecision is what Decision answers for the session; without it, its
// status alone.
func (s *Session) SetDecision(dec kyc.SessionDecision) {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	dec.SessionID = s.ID
	s.decision = &dec
}

// Status is the session's status.
func (s *Session) Status() kyc.Status {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	return s.changes[len(s.changes)-1].Status
}

// Subscribers counts the workflows waiting for the session.
func (s *Session) Subscribers() int {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	return len(s.subscribers)
}

// Events are the events diditflow's hooks would have been started with for
// the session's status changes so far, in order: run a hook workflow with
// them to test it.
func (s *Session) Events() []kyc.Event {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	var out []kyc.Event
	var previous kyc.Status
	for _, c := range s.changes {
		out = append(out, kyc.Event{Kind: kyc.StatusChanged, Key: contract.HookEventKey(s.ID, c.Sequence), SessionID: s.ID,
			VendorData: s.VendorData, Status: c.Status, PreviousStatus: previous, At: c.At, Sequence: c.Sequence})
		previous = c.Status
	}
	return out
}

// change records a status change; d.mu is held.
func (s *Session) change(status kyc.Status) kyc.Change {
	c := kyc.Change{Sequence: int64(len(s.changes) + 1), Status: status, At: s.d.env.Now().UTC()}
	s.changes = append(s.changes, c)
	return c
}

// tell signals a subscriber on the environment's own loop, once more with
// Duplicates.
func (d *Diditflow) tell(sub kyc.Subscription, changes ...kyc.Change) {
	u := kyc.Update{SessionID: sub.SessionID, Changes: changes}
	times := 1
	if d.Duplicates {
		times = 2
	}
	for range times {
		d.env.RegisterDelayedCallback(func() {
			// A subscriber gone is dropped, as diditflow drops it.
			_ = d.env.SignalWorkflowByID(sub.WorkflowID, kyc.UpdateSignal(sub.SessionID), u)
		}, 0)
	}
}

// refused is the failure diditflow's activities give a refused request.
func refused(e kyc.RequestError) error {
	return temporal.NewNonRetryableApplicationError(e.Message, kyc.RequestErrorType, nil, e)
}

// sessionNumbers numbers the sessions the stand-ins create.
var sessionNumbers atomic.Int64

func (d *Diditflow) createSession(_ context.Context, req kyc.Request) (kyc.Verification, error) {
	d.mu.Lock()
	if r := d.refusal; r != nil {
		d.refusal = nil
		d.mu.Unlock()
		return kyc.Verification{}, refused(*r)
	}
	if req.VendorData == "" {
		d.mu.Unlock()
		return kyc.Verification{}, refused(kyc.RequestError{StatusCode: 400, Message: "vendor_data: This field is required."})
	}
	// Didit returns an unfinished session of the same vendor_data.
	for _, s := range d.created {
		st := s.changes[len(s.changes)-1].Status
		if s.VendorData == req.VendorData && (st == kyc.NotStarted || st == kyc.InProgress || st == kyc.Resubmitted || st == kyc.AwaitingUser) {
			d.mu.Unlock()
			return kyc.Verification{SessionID: s.ID, URL: s.URL, Status: st}, nil
		}
	}
	// Numbered across the process, as Didit's IDs are unique across
	// accounts: two environments of one test never share a session.
	s := d.session(fmt.Sprintf("kyctest-session-%d", sessionNumbers.Add(1)), req.VendorData)
	d.created = append(d.created, s)
	f := d.onCreate
	d.mu.Unlock()
	if f != nil {
		f(s)
	}
	return kyc.Verification{SessionID: s.ID, URL: s.URL, Status: kyc.NotStarted}, nil
}

// subscribe tells the subscriber where the session stands, then keeps it
// until it is told a decided status or unsubscribes.
func (d *Diditflow) subscribe(_ context.Context, sub kyc.Subscription) error {
	d.mu.Lock()
	s := d.session(sub.SessionID, "")
	current := s.changes[len(s.changes)-1]
	if !kyc.Decided(current.Status) && !slices.ContainsFunc(s.subscribers, same(sub)) {
		s.subscribers = append(s.subscribers, sub)
	}
	d.mu.Unlock()
	d.tell(sub, current)
	return nil
}

func (d *Diditflow) unsubscribe(_ context.Context, sub kyc.Subscription) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.sessions[sub.SessionID]; ok {
		s.subscribers = slices.DeleteFunc(s.subscribers, same(sub))
	}
	return nil
}

func same(a kyc.Subscription) func(kyc.Subscription) bool {
	return func(b kyc.Subscription) bool { return a.WorkflowID == b.WorkflowID && a.RunID == b.RunID }
}

func (d *Diditflow) decision(_ context.Context, in kyc.DecisionRequest) (kyc.SessionDecision, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.sessions[in.SessionID]
	switch {
	case !ok:
		return kyc.SessionDecision{}, refused(kyc.RequestError{StatusCode: 404, Message: "Session not found."})
	case s.decision != nil:
		dec := *s.decision
		dec.Status = s.changes[len(s.changes)-1].Status
		return dec, nil
	}
	return kyc.SessionDecision{SessionID: s.ID, Status: s.changes[len(s.changes)-1].Status}, nil
}
