package rotation

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
	"github.com/diditflow/diditflow/internal/receiver"
)

// signals records what the receiver hands to Temporal, by event_id.
type signals struct {
	mu     sync.Mutex
	events map[string]int
}

func (s *signals) SignalWithStartWorkflow(_ context.Context, workflowID, _ string, arg any,
	_ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	ev, _ := arg.(contract.SessionEvent)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events[ev.Event.EventID]++
	return run{id: workflowID}, nil
}

func (s *signals) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return &client.CheckHealthResponse{}, nil
}

func (s *signals) count(eventID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events[eventID]
}

type run struct {
	client.WorkflowRun
	id string
}

func (r run) GetID() string    { return r.id }
func (r run) GetRunID() string { return "run-" + r.id }

// starter is the real receiver behind a swappable secret list: a deploy.
type starter struct {
	temporal *signals
	mu       sync.Mutex
	handler  http.Handler
}

func (s *starter) deploy(secrets ...string) {
	gin.SetMode(gin.TestMode)
	h := receiver.New(s.temporal, receiver.Config{
		Verifier:  &didit.Verifier{Secrets: secrets},
		TaskQueue: "admin-test",
	}).Handler()
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

func (s *starter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.handler
	s.mu.Unlock()
	h.ServeHTTP(w, r)
}

// The destination procedure, with Didit's deliveries going to the real
// receiver: no event is lost at any step, and the starter's route takes the
// rotated URL's query parameter in its stride.
func TestDestinationRotationLosesNoDelivery(t *testing.T) {
	st := &starter{temporal: &signals{events: map[string]int{}}}
	st.deploy(oldSecret)
	srv := httptest.NewServer(st)
	t.Cleanup(srv.Close)
	f := newFixture(t, srv.URL+"/webhooks/didit", nil)

	deliver := func(eventID string) []fakedidit.Attempt {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"event_id": eventID, "webhook_type": "status.updated",
			"session_id": "9b2f4c1e-6d3a-4e8b-a5f0-1c7d2e9b8a64", "status": "Approved",
			"created_at": time.Now().Unix(), "timestamp": 0})
		attempts := f.fake.Deliver(context.Background(), body)
		if st.temporal.count(eventID) == 0 {
			t.Fatalf("event %s was lost: %+v", eventID, attempts)
		}
		return attempts
	}

	r := f.run(t, Request{Destination: fakedidit.DefaultDestinationUUID})
	if r.err != nil {
		t.Fatal(r.err)
	}
	dests := f.destinations(t)
	nu := dests[len(dests)-1]

	// Before the deploy: the new destination's copy is refused, the old
	// one's accepted.
	attempts := deliver("before-deploy")
	if len(attempts) != 2 || attempts[0].Status != http.StatusOK || attempts[1].Status != http.StatusUnauthorized {
		t.Fatalf("before the deploy: attempts %+v, want 200 (old destination) and 401 (new)", attempts)
	}

	// With both secrets, both copies are accepted.
	st.deploy(nu.Secret, oldSecret)
	attempts = deliver("both-secrets")
	if len(attempts) != 2 || attempts[0].Status != http.StatusOK || attempts[1].Status != http.StatusOK {
		t.Fatalf("with both secrets: attempts %+v, want two 200s", attempts)
	}
	var viaRotated bool
	for _, d := range f.fake.Deliveries() {
		if d.DestinationUUID == nu.UUID && d.ResponseStatus == http.StatusOK {
			viaRotated = strings.HasSuffix(d.RequestURL, "/webhooks/didit?rotation=1")
		}
	}
	if !viaRotated {
		t.Fatal("no delivery to the rotated URL was accepted")
	}

	// Finished: the old destination is off and its secret dropped.
	r = f.run(t, Request{Destination: fakedidit.DefaultDestinationUUID, FinishDestination: nu.UUID})
	if r.err != nil {
		t.Fatalf("finish: %v", r.err)
	}
	st.deploy(nu.Secret)
	attempts = deliver("after-finish")
	if len(attempts) != 1 || attempts[0].Status != http.StatusOK {
		t.Fatalf("after the finish: attempts %+v, want one 200", attempts)
	}
}
