package e2e

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/workflows"
)

// TestPurgeEndToEnd: an approved session and a declined one whose AML case
// compliance resolved are past their retention; a purge run, a page of one
// record at a time, blanks the personal fields of both sessions, their
// three notifications and the case, and keeps the audit trail (statuses,
// the case's outcome). The declined session's vendor_data is held for its
// case, and released with it.
func TestPurgeEndToEnd(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	approved, declined := simulator.NewUUID(), simulator.NewUUID()
	s.deliver(delivery(t, "status-updated-approved.json", approved))
	s.deliver(delivery(t, "status-updated-declined-aml-hit.json", declined))
	s.waitFor("both sessions to complete", func() bool {
		return s.completed(contract.SessionWorkflowID(approved)) && s.completed(contract.SessionWorkflowID(declined))
	})
	// Didit's console confirmed the declined session's hit: its case is
	// resolved from there.
	s.waitFor("the case to be resolved", func() bool { return s.completed(contract.AMLCaseWorkflowID(declined)) })

	// The purge schedule's action, with retentions a test can wait out and
	// pages of one record, started by hand as `temporal schedule trigger`
	// would.
	params := workflows.PurgeParams{RecordRetention: time.Second, AMLRetention: time.Second, PageSize: 1}
	// Wait out the retentions, which the records count in whole seconds.
	time.Sleep(2 * time.Second)
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "e2e-purge-" + strconv.FormatInt(time.Now().UnixNano(), 36), TaskQueue: taskQueue,
	}, contract.PurgeWorkflowType, workflows.PurgeInput{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	var sum workflows.PurgeSummary
	if err := run.Get(ctx, &sum); err != nil {
		t.Fatal(err)
	}
	want := workflows.PurgeSummary{Sessions: 2, Notifications: 3, AMLCases: 1, VendorDataHeld: 1, VendorDataReleased: 1, Pages: 5}
	if sum != want {
		t.Errorf("purge summary = %+v, want %+v", sum, want)
	}
	for _, session := range []string{approved, declined} {
		v, err := s.store.Session(ctx, session)
		if err != nil || v.VendorData != "" || v.Status == "" {
			t.Errorf("record of %s = %+v, %v; want its status without vendor_data", session, v, err)
		}
		if email, err := s.store.ContactAddress(ctx, session); err != nil || email != "" {
			t.Errorf("address on record of %s = %q, %v; want none", session, email, err)
		}
	}
	c, err := s.store.AMLCase(ctx, contract.AMLCaseWorkflowID(declined))
	if err != nil || c.Resolution.Reviewer != "" || c.Resolution.Note != "" || c.Resolution.Outcome != contract.ConfirmedMatch {
		t.Errorf("AML case = %+v, %v; want its outcome without reviewer or note", c, err)
	}
	s.saveHistory(run.GetID(), "purge.json")
}
