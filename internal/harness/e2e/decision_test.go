package e2e

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
)

const apiKey = "e2e-didit-api-key"

// withFakeDidit points the worker at a fake of Didit's API.
func withFakeDidit(t *testing.T) (*fakedidit.Server, func(*stack)) {
	fake := fakedidit.New(fakedidit.Options{Key: apiKey, Secret: secret, RetryDelays: []time.Duration{}})
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	return fake, func(s *stack) {
		s.workerEnv = append(s.workerEnv, "DIDIT_API_URL="+srv.URL, "DIDIT_API_KEY="+apiKey)
	}
}

func sessionUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// TestKycExpiredFetchesTheDecisionEndToEnd: Didit sends Kyc Expired without
// a decision, and this run never saw the user's address; the worker fetches
// the decision from (the fake) Didit and asks the user to verify again.
func TestKycExpiredFetchesTheDecisionEndToEnd(t *testing.T) {
	fake, opt := withFakeDidit(t)
	s := newStack(t, opt)
	session := sessionUUID()
	decision, _ := json.Marshal(map[string]any{
		"session_id": session, "status": "Kyc Expired", "vendor_data": "user-e2e",
		"contact_details": map[string]any{"email": "fetched@example.com"},
	})
	fake.PutSession(session, "Kyc Expired", decision, "user-e2e", time.Now().Add(-48*time.Hour))

	var body map[string]any
	if err := json.Unmarshal(delivery(t, "status-updated-in-progress.json", session), &body); err != nil {
		t.Fatal(err)
	}
	body["status"] = "Kyc Expired"
	delete(body, "decision")
	raw, _ := json.Marshal(body)
	s.deliver(raw)

	id := contract.SessionWorkflowID(session)
	s.waitFor("the verify-again notice", func() bool { return s.sent(session, "user:kyc_expired") })
	s.waitFor("the session to complete", func() bool { return s.completed(id) })
	mails := s.sink.Mails()
	if len(mails) != 1 || !strings.Contains(strings.Join(mails[0].To, ","), "fetched@example.com") {
		t.Fatalf("mails = %+v, want one to the fetched address", mails)
	}
	if got := s.status(session); got != "Kyc Expired" {
		t.Fatalf("record = %q", got)
	}
	s.saveHistory(id, "decision-fetch-kyc-expired.json")
	_ = strconv.Itoa
}
