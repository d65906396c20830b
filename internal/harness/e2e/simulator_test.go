package e2e

import (
	"context"
	"io"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

// TestSimulatorScenarios plays every simulator scenario against the real
// stack and checks the record, the mail and the workflows each ends with.
// The fake Didit learns each session before its webhook is sent, so the
// events that come without a decision (Kyc Expired, Resubmitted) find it at
// Didit's API as they would in production.
func TestSimulatorScenarios(t *testing.T) {
	cases := []struct {
		scenario string
		status   string
		mails    []string // subject fragments, one mail each
		amlCase  bool
		closes   bool // the session reaches a final status and its run completes
	}{
		{"approved", "Approved", []string{"is approved"}, false, true},
		{"declined-aml", "Declined", []string{"under review", "was not approved", "AML case opened"}, true, true},
		{"in-review-then-approved", "Approved", []string{"under review", "is approved", "AML case opened"}, true, true},
		{"resubmitted", "Resubmitted", []string{"under review", "redo part"}, false, false},
		{"abandoned", "Abandoned", nil, false, true},
		{"kyc-expired", "Kyc Expired", []string{"is approved", "verify your identity again"}, false, true},
	}
	for _, c := range cases {
		t.Run(c.scenario, func(t *testing.T) {
			fake, opt := withFakeDidit(t)
			s := newStack(t, opt)
			ds, err := simulator.Build(c.scenario, simulator.Options{Email: userEmail})
			if err != nil {
				t.Fatal(err)
			}
			sender := &simulator.Sender{URL: s.receiver.URL + "/webhooks/didit", Secret: secret, RetryDelays: []time.Duration{}, Log: io.Discard,
				Registry: fake}
			res, err := sender.Run(context.Background(), simulator.Plan{}, func() ([]simulator.Delivery, error) { return ds, nil })
			if err != nil || res.ByStatus[200] != len(ds) || res.RegistrationFailures != 0 {
				t.Fatalf("deliveries: %+v, %v", res, err)
			}
			session := ds[0].SessionID
			id := contract.SessionWorkflowID(session)
			s.waitFor("the record and the mail", func() bool {
				return s.status(session) == c.status && len(s.sink.Mails()) >= len(c.mails)
			})
			if c.closes {
				s.waitFor("the session run to complete", func() bool { return s.completed(id) })
			} else if st := s.workflowStatus(id); st != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
				t.Fatalf("an open session's workflow is %v, want running", st)
			}
			for _, m := range c.mails {
				if n := s.sink.Count(m); n != 1 {
					t.Errorf("%d mails about %q, want 1", n, m)
				}
			}
			if n := len(s.sink.Mails()); n != len(c.mails) {
				t.Errorf("%d mails, want %d", n, len(c.mails))
			}
			_, err = s.store.AMLCase(context.Background(), contract.AMLCaseWorkflowID(session))
			if (err == nil) != c.amlCase {
				t.Errorf("AML case present = %v, want %v", err == nil, c.amlCase)
			}
		})
	}
}
