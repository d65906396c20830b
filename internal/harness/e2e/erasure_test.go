package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/workflows"
)

// TestErasedSessionStaysErasedEndToEnd: an approved session is erased with
// diditflow-admin. Didit then sends Kyc Expired (no decision) and the
// outcome of a manual review, Declined, with the user's address and
// vendor_data; it would answer a decision fetch with the address. Both are
// recorded and close the session, nobody is mailed, Didit is asked for
// nothing, and neither the records nor the run hold the address or the
// vendor_data.
func TestErasedSessionStaysErasedEndToEnd(t *testing.T) {
	fake, _, opt := fakeDidit(t)
	s := newStack(t, opt)
	session := simulator.NewUUID()
	putKycExpired(fake, session)
	id := contract.SessionWorkflowID(session)
	s.deliver(delivery(t, "status-updated-approved.json", session))
	s.waitFor("the approval's run to complete", func() bool { return s.completed(id) })

	out, err := s.admin("erase", "--session", session, "--terminate")
	if err != nil || !strings.Contains(out, "Erased session "+session) {
		t.Fatalf("erase: %v\n%s", err, out)
	}

	now := time.Now().Unix()
	expired := rewire(t, deliveryOf(t, "status-updated-in-progress.json", session, session+"/expired", now, now), func(body map[string]any) {
		body["status"] = "Kyc Expired"
		delete(body, "decision")
	})
	declined := rewire(t, deliveryOf(t, "status-updated-approved.json", session, session+"/declined", now, now+1), func(body map[string]any) {
		body["status"] = "Declined"
		body["decision"].(map[string]any)["status"] = "Declined"
	})
	// One after the other, as months apart: the Declined's address must
	// not serve the Kyc Expired, which carries none.
	s.deliver(expired)
	s.waitFor("the Kyc Expired recorded", func() bool { return s.status(session) == "Kyc Expired" })
	s.deliver(declined)
	s.waitFor("the manual review's Declined recorded", func() bool { return s.status(session) == "Declined" })
	s.waitFor("the new run to complete", func() bool { return s.completed(id) })

	if n := fake.Calls(http.MethodGet, "/v3/session/{id}/decision/"); n != 0 {
		t.Errorf("Didit was asked for the erased session's decision %d times", n)
	}
	var subjects []string
	for _, m := range s.sink.Mails() {
		subjects = append(subjects, m.Subject)
	}
	if len(subjects) != 1 || !strings.Contains(subjects[0], "approved") {
		t.Errorf("mails %q, want the approval alone, sent before the erasure", subjects)
	}
	ctx := context.Background()
	v, err := s.store.Session(ctx, session)
	if err != nil || v.VendorData != "" || v.ErasedAt.IsZero() || v.NeedsAttention {
		t.Fatalf("record = %+v, %v; want it erased, without vendor_data, not flagged", v, err)
	}
	if email, err := s.store.ContactAddress(ctx, session); err != nil || email != "" {
		t.Errorf("address on record = %q, %v; want none", email, err)
	}
	events, err := s.store.Events(ctx, session)
	if err != nil || len(events) != 3 {
		t.Errorf("events = %+v, %v; want the approval and both later events", events, err)
	}
	var st workflows.SessionState
	q, err := s.temporal.QueryWorkflow(ctx, id, "", contract.StateQuery)
	if err != nil || q.Get(&st) != nil {
		t.Fatalf("state query: %v", err)
	}
	if !st.Erased || st.ContactEmail != "" || st.VendorData != "" || len(st.Flags) != 0 {
		t.Errorf("state: erased %t, address %q, vendor_data %q, flags %+v", st.Erased, st.ContactEmail, st.VendorData, st.Flags)
	}
}

// admin runs diditflow-admin against the stack, as an operator would, and
// returns its output.
func (s *stack) admin(args ...string) (string, error) {
	cmd := exec.Command(adminBin, args...)
	cmd.Env = append(cmd.Environ(),
		"TEMPORAL_ADDRESS="+s.address,
		"DATABASE_URL="+s.dbPath,
		"SMTP_URL="+s.sink.URL(),
		"PAYLOAD_ENCRYPTION_KEYS="+launch.PayloadKeys,
		"LOG_FORMAT=text",
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
