package simulator

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/diditflow/diditflow/didit"
)

func TestScenariosAreVerifiableDiditEvents(t *testing.T) {
	now := time.Unix(1767225600, 0)
	v := &didit.Verifier{Secrets: []string{"s3cret"}, Now: func() time.Time { return now }}
	for _, name := range Scenarios() {
		t.Run(name, func(t *testing.T) {
			ds, err := Build(name, Options{Email: "user@example.com", Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			var last int64
			keys := map[string]bool{}
			for _, d := range ds {
				body, err := d.Body(now)
				if err != nil {
					t.Fatal(err)
				}
				h, err := didit.Signer{Secret: "s3cret"}.Sign(body)
				if err != nil {
					t.Fatal(err)
				}
				ev, ver, err := v.ConstructEvent(body, h)
				if err != nil {
					t.Fatalf("%s: %v", d.Name, err)
				}
				if ver.Scheme != didit.SchemeRaw {
					t.Fatalf("%s: body is not wire-exact (verified by %v)", d.Name, ver.Scheme)
				}
				if ev.SessionID != ds[0].SessionID || ev.Status != d.Status || !ev.Status.Known() || keys[ev.EventID] {
					t.Fatalf("%s: event %s %q %q", d.Name, ev.SessionID, ev.Status, ev.EventID)
				}
				keys[ev.EventID] = true
				if ev.CreatedAt < last || ev.CreatedAt > now.Unix() {
					t.Fatalf("%s: created_at %d out of order", d.Name, ev.CreatedAt)
				}
				last = ev.CreatedAt
				// Didit sends a decision with these statuses only (SPEC §2.3).
				want := ev.Status == didit.StatusApproved || ev.Status == didit.StatusDeclined ||
					ev.Status == didit.StatusInReview || ev.Status == didit.StatusAbandoned
				if (ev.Decision != nil) != want {
					t.Fatalf("%s: decision present = %v, want %v", d.Name, ev.Decision != nil, want)
				}
				if ev.Decision != nil && (ev.Decision.ContactEmail() != "user@example.com" || ev.Decision.Status != ev.Status) {
					t.Fatalf("%s: decision %q to %q", d.Name, ev.Decision.Status, ev.Decision.ContactEmail())
				}
			}
		})
	}
	if _, err := Build("nope", Options{}); err == nil {
		t.Fatal("unknown scenario accepted")
	}
}

func TestFromFileGivesAFreshSession(t *testing.T) {
	raw := []byte(`{"session_id":"old","event_id":"e","status":"Approved","webhook_type":"status.updated","timestamp":1,"created_at":1}`)
	a, err := FromFile(raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := FromFile(raw, Options{})
	if a.SessionID == "old" || a.SessionID == b.SessionID {
		t.Fatalf("sessions %q, %q", a.SessionID, b.SessionID)
	}
	if _, err := FromFile([]byte(`[1]`), Options{}); err == nil {
		t.Fatal("a JSON array accepted as an event")
	}
}

func TestPlanOrder(t *testing.T) {
	ds := []Delivery{{Name: "a"}, {Name: "b"}}
	got := Plan{Duplicate: 2, Reorder: true}.Order(ds)
	var names string
	for _, d := range got {
		names += d.Name
	}
	if names != "bbaa" {
		t.Fatalf("order = %q, want bbaa", names)
	}
}

func TestSenderRetriesLikeDidit(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	ds, _ := Build("approved", Options{})
	s := &Sender{URL: srv.URL, Secret: "x", RetryDelays: []time.Duration{time.Millisecond, time.Millisecond}, Log: io.Discard}
	attempts := s.Send(context.Background(), ds[0])
	if len(attempts) != 3 || attempts[2].Status != http.StatusOK {
		t.Fatalf("attempts = %+v, want two 503 then 200", attempts)
	}

	calls.Store(0)
	unauthorized := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer unauthorized.Close()
	s.URL = unauthorized.URL
	if attempts := s.Send(context.Background(), ds[0]); len(attempts) != 1 || calls.Load() != 1 {
		t.Fatalf("a 401 must not be retried: %+v", attempts)
	}
}

func TestRunSendsEverySession(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	s := &Sender{URL: srv.URL, Secret: "x", Log: io.Discard}
	res, err := s.Run(context.Background(), Plan{Sessions: 5, Rate: 1000, Duplicate: 2},
		func() ([]Delivery, error) { return Build("declined-aml", Options{}) })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sessions) != 5 || res.Deliveries != 30 || res.ByStatus[200] != 30 || calls.Load() != 30 {
		t.Fatalf("result = %+v, calls %d", res, calls.Load())
	}
}
