package simulator_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

const fakeKey = "fake-key"

// seen is what a receiver saw: each webhook's status, and the decision
// Didit's API answered for its session when the webhook arrived.
type seen struct {
	status   didit.Status
	decision didit.Decision
}

// receiverAsking is a webhook receiver that asks the fake's decision API
// about each webhook's session as it arrives.
func receiverAsking(t *testing.T, api string) (*httptest.Server, func() []seen) {
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev didit.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook: %v", err)
			return
		}
		req, _ := http.NewRequest(http.MethodGet, api+"/v3/session/"+ev.SessionID+"/decision/", nil)
		req.Header.Set("x-api-key", fakeKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("decision: %v", err)
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		s := seen{status: ev.Status}
		if resp.StatusCode == http.StatusOK {
			d, err := didit.ParseDecision(raw)
			if err != nil {
				t.Errorf("decision: %v", err)
			}
			s.decision = *d
		}
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), got...)
	}
}

func fakeAPI(t *testing.T) string {
	fake := fakedidit.New(fakedidit.Options{Key: fakeKey})
	api := httptest.NewServer(fake.Handler())
	t.Cleanup(api.Close)
	return api.URL
}

// TestSenderRegistersEachSessionBeforeItsWebhook: with a HarnessAPI, the
// fake's decision API knows each webhook's status when it arrives, and a
// Kyc Expired webhook, which carries no decision, finds the approved
// decision (and the user's address) at Didit.
func TestSenderRegistersEachSessionBeforeItsWebhook(t *testing.T) {
	api := fakeAPI(t)
	rcv, got := receiverAsking(t, api)
	ds, err := simulator.Build("kyc-expired", simulator.Options{Email: "user@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	s := &simulator.Sender{URL: rcv.URL, Secret: "x", RetryDelays: []time.Duration{}, Log: &log,
		Registry: simulator.HarnessAPI{URL: api + "/", Key: fakeKey}}
	res, err := s.Run(context.Background(), simulator.Plan{}, func() ([]simulator.Delivery, error) { return ds, nil })
	if err != nil || res.RegistrationFailures != 0 || res.ByStatus[200] != len(ds) {
		t.Fatalf("run: %+v %v\n%s", res, err, log.String())
	}
	seen := got()
	if len(seen) != 2 {
		t.Fatalf("receiver saw %+v", seen)
	}
	for _, s := range seen {
		if s.decision.Status != s.status {
			t.Errorf("a %s webhook arrived while Didit's decision said %q", s.status, s.decision.Status)
		}
		if s.decision.ContactEmail() != "user@example.com" {
			t.Errorf("%s: Didit's decision names %q", s.status, s.decision.ContactEmail())
		}
	}
}

// TestRegistrationFailuresAreCountedNotFatal: a fake that refuses the key
// costs the registrations, not the deliveries.
func TestRegistrationFailuresAreCountedNotFatal(t *testing.T) {
	api := fakeAPI(t)
	rcv, got := receiverAsking(t, api)
	var log strings.Builder
	s := &simulator.Sender{URL: rcv.URL, Secret: "x", RetryDelays: []time.Duration{}, Log: &log,
		Registry: simulator.HarnessAPI{URL: api, Key: "wrong"}}
	res, err := s.Run(context.Background(), simulator.Plan{Sessions: 2},
		func() ([]simulator.Delivery, error) { return simulator.Build("approved", simulator.Options{}) })
	if err != nil || res.ByStatus[200] != 4 || res.RegistrationFailures != 4 {
		t.Fatalf("run: %+v %v", res, err)
	}
	if n := strings.Count(log.String(), "registration failed"); n != 4 || !strings.Contains(log.String(), "401") {
		t.Fatalf("log:\n%s", log.String())
	}
	for _, s := range got() {
		if s.decision.Status != "" {
			t.Fatalf("an unregistered session is known to Didit: %+v", s)
		}
	}
}

func TestStateOf(t *testing.T) {
	st, err := simulator.StateOf([]byte(`{"session_id":"s","status":"Kyc Expired","vendor_data":"v","created_at":1767225600,"decision":null}`))
	if err != nil {
		t.Fatal(err)
	}
	want := simulator.SessionState{SessionID: "s", Status: "Kyc Expired", VendorData: "v", CreatedAt: "2026-01-01T00:00:00Z"}
	if st.SessionID != want.SessionID || st.Status != want.Status || st.VendorData != want.VendorData ||
		st.CreatedAt != want.CreatedAt || st.Decision != nil {
		t.Fatalf("state %+v, want %+v", st, want)
	}
	if _, err := simulator.StateOf([]byte(`[]`)); err == nil {
		t.Fatal("a JSON array read as a webhook")
	}
}
