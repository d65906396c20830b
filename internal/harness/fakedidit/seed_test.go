package fakedidit

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

// TestSeedLogsWhatDeliverWouldHave: a seeded delivery is logged as Deliver
// logs one to a receiver that answers 503 to every attempt, byte for byte,
// with each retry at its delay after the one before.
func TestSeedLogsWhatDeliverWouldHave(t *testing.T) {
	at := time.Now().Truncate(time.Second)
	clock := Options{Now: func() time.Time { return at }}
	rc := newReceiver(t, "secret-1", http.StatusServiceUnavailable)
	sent, _ := fixture(t, rc, clock)
	seeded, _ := fixture(t, rc, clock)
	body := webhookBody(sessionA, simulator.NewUUID())

	want := sent.Deliver(context.Background(), body)
	got, err := seeded.SeedFailedDelivery(body, http.StatusServiceUnavailable, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 3 || len(got) != len(want) {
		t.Fatalf("seeded %d attempts, Deliver made %d: %+v", len(got), len(want), want)
	}
	wantLog := sent.Deliveries()
	if n := len(rc.events()); n != len(want) {
		t.Fatalf("the receiver got %d requests, want only Deliver's %d", n, len(want))
	}
	delays := []time.Duration{0, time.Millisecond, 3 * time.Millisecond}
	for i, g := range got {
		w := wantLog[i]
		if g.UUID == w.UUID || g.UUID == "" {
			t.Errorf("attempt %d: uuid %q, want a fresh one", i, g.UUID)
		}
		if !g.CreatedAt.Equal(at.Add(delays[i])) {
			t.Errorf("attempt %d at %v, want %v", i, g.CreatedAt, at.Add(delays[i]))
		}
		g.UUID, g.CreatedAt, g.ResponseTimeMS = w.UUID, w.CreatedAt, w.ResponseTimeMS
		if !bytes.Equal(g.RequestBody, w.RequestBody) || !equalHeaders(g.RequestHeader, w.RequestHeader) ||
			g.DestinationUUID != w.DestinationUUID || g.SessionID != w.SessionID || g.EventID != w.EventID ||
			g.WebhookType != w.WebhookType || g.RequestURL != w.RequestURL || g.ResponseStatus != w.ResponseStatus ||
			g.Status != w.Status {
			t.Errorf("attempt %d:\nseeded %+v\nsent   %+v", i, g, w)
		}
	}
	if log := seeded.Deliveries(); len(log) != len(got) {
		t.Fatalf("%d attempts in the seeded fake's log, want %d", len(log), len(got))
	}
}

func equalHeaders(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestSeededBacklogReadsLikeDidit: seeded deliveries verify with the
// secret, list newest first among the others whatever order they were
// seeded in, read back in full, and the session is recorded as Deliver
// records it.
func TestSeededBacklogReadsLikeDidit(t *testing.T) {
	rc := newReceiver(t, "secret-1", http.StatusOK)
	s, api := fixture(t, rc, Options{RetryDelays: DiditRetryDelays})
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	earlierID := simulator.NewUUID()
	later := webhookBody(sessionA, simulator.NewUUID())
	earlier := webhookBody(sessionA, earlierID)
	if _, err := s.SeedFailedDelivery(later, http.StatusBadGateway, start.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SeedFailedDelivery(earlier, http.StatusBadGateway, start); err != nil {
		t.Fatal(err)
	}

	v := didit.Verifier{Secrets: []string{"secret-1"}, Tolerance: 2 * time.Hour}
	for _, d := range s.Deliveries() {
		h := http.Header{}
		for k, x := range d.RequestHeader {
			h.Set(k, x)
		}
		if _, _, err := v.ConstructEvent(d.RequestBody, didit.HeadersFrom(h)); err != nil {
			t.Fatalf("seeded delivery at %v does not verify: %v", d.CreatedAt, err)
		}
	}

	type row struct {
		UUID           string `json:"uuid"`
		Status         string `json:"status"`
		ResponseStatus int    `json:"response_status"`
		CreatedAt      string `json:"created_at"`
	}
	resp, b := call(t, http.MethodGet, api.URL+"/v3/webhook/destinations/"+DefaultDestinationUUID+"/deliveries/?limit=100", nil)
	page := decode[struct {
		Count   int   `json:"count"`
		Results []row `json:"results"`
	}](t, b)
	if resp.StatusCode != 200 || page.Count != 6 {
		t.Fatalf("deliveries: %d %s", resp.StatusCode, b)
	}
	for i, r := range page.Results {
		if r.Status != "failed" || r.ResponseStatus != http.StatusBadGateway {
			t.Fatalf("row %d: %+v", i, r)
		}
		if i > 0 && r.CreatedAt > page.Results[i-1].CreatedAt {
			t.Fatalf("not newest first: %+v", page.Results)
		}
	}
	// Attempts at 0, 1 and 5 minutes and at 2, 3 and 7: the earlier
	// event's last retry is the second newest.
	resp, b = call(t, http.MethodGet, api.URL+"/v3/webhook/destinations/"+DefaultDestinationUUID+"/deliveries/"+page.Results[1].UUID+"/", nil)
	full := decode[map[string]any](t, b)
	if body, _ := full["request_body"].(string); resp.StatusCode != 200 || !strings.Contains(body, earlierID) {
		t.Fatalf("delivery in full: %d %s", resp.StatusCode, b)
	}
	if page.Results[1].CreatedAt != start.Add(5*time.Minute).UTC().Format(time.RFC3339) {
		t.Fatalf("second newest at %s, want the earlier event's last retry", page.Results[1].CreatedAt)
	}

	resp, b = call(t, http.MethodGet, api.URL+"/v3/session/"+sessionA+"/decision/", nil)
	if d := decode[map[string]any](t, b); resp.StatusCode != 200 || d["status"] != "Approved" {
		t.Fatalf("decision after the seed: %d %s", resp.StatusCode, b)
	}
	if n := len(rc.events()); n != 0 {
		t.Fatalf("the receiver got %d requests; seeding sends nothing", n)
	}
}

func TestSeedRefusesWhatDeliverWouldNotLog(t *testing.T) {
	rc := newReceiver(t, "secret-1", http.StatusOK)
	s, api := fixture(t, rc, Options{})
	body := webhookBody(sessionA, simulator.NewUUID())
	if _, err := s.SeedFailedDelivery(body, http.StatusOK, time.Now()); err == nil {
		t.Fatal("a 200 seeded as a failure")
	}
	if got, err := s.SeedFailedDelivery(body, http.StatusBadRequest, time.Now()); err != nil || len(got) != 1 {
		t.Fatalf("a 400 (Didit does not retry it): %d attempts, %v; want 1", len(got), err)
	}
	if resp, b := call(t, http.MethodPatch, api.URL+"/v3/webhook/", map[string]any{"webhook_url": nil}); resp.StatusCode != 200 {
		t.Fatalf("disable the webhook: %d %s", resp.StatusCode, b)
	}
	if _, err := s.SeedFailedDelivery(body, http.StatusServiceUnavailable, time.Now()); err == nil {
		t.Fatal("seeded to a disabled destination")
	}
}

func TestSeedRestampsRetriesWhenDeliverDoes(t *testing.T) {
	s, _ := fixture(t, newReceiver(t, "secret-1", http.StatusOK), Options{RestampRetries: true,
		RetryDelays: []time.Duration{time.Minute, 4 * time.Minute}})
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	got, err := s.SeedFailedDelivery(webhookBody(sessionA, simulator.NewUUID()), http.StatusServiceUnavailable, at)
	if err != nil || len(got) != 3 {
		t.Fatalf("%d attempts, %v", len(got), err)
	}
	for i, d := range got {
		want := strconv.FormatInt(d.CreatedAt.Unix(), 10)
		if d.RequestHeader["X-Timestamp"] != want || !bytes.Contains(d.RequestBody, []byte(`"timestamp":`+want)) {
			t.Errorf("attempt %d at %v stamped %s", i, d.CreatedAt, d.RequestHeader["X-Timestamp"])
		}
	}
}
