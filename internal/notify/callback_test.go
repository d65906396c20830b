package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/diditflow/diditflow/internal/notify"
)

func newCallback(t *testing.T, h http.HandlerFunc) (*notify.Callback, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	wh, err := notify.NewCallback(srv.URL+"/aml?token=s3cret", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return wh, &hits
}

func TestCallbackPostsJSON(t *testing.T) {
	type alert struct {
		SessionID string `json:"session_id"`
		Hits      int    `json:"hits"`
	}
	var got alert
	wh, hits := newCallback(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.URL.Query().Get("token") != "s3cret" {
			t.Errorf("got %s %s with Content-Type %q", r.Method, r.URL, r.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("decode: %v", err)
		}
		w.WriteHeader(http.StatusOK)
	})
	want := alert{SessionID: "session-123", Hits: 2}
	if err := wh.Post(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if got != want || hits.Load() != 1 {
		t.Errorf("endpoint got %+v in %d requests, want %+v once", got, hits.Load(), want)
	}
}

func TestCallbackClassifiesStatuses(t *testing.T) {
	for _, tt := range []struct {
		status    int
		permanent bool
	}{
		{http.StatusNoContent, false},
		{http.StatusBadRequest, true},
		{http.StatusUnauthorized, true},
		{http.StatusNotFound, true},
		{http.StatusRequestTimeout, false},
		{http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false},
		{http.StatusServiceUnavailable, false},
	} {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			wh, _ := newCallback(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
			})
			err := wh.Post(context.Background(), map[string]int{"n": 1})
			if tt.status < 300 {
				if err != nil {
					t.Fatalf("err = %v, want success", err)
				}
				return
			}
			var se *notify.StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.status {
				t.Fatalf("err = %v, want StatusError %d", err, tt.status)
			}
			if got := notify.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tt.permanent)
			}
		})
	}
}

func TestCallbackRejectsUnencodablePayload(t *testing.T) {
	wh, hits := newCallback(t, func(w http.ResponseWriter, _ *http.Request) {})
	for name, payload := range map[string]any{
		"channel": make(chan int),
		"NaN":     math.NaN(),
	} {
		t.Run(name, func(t *testing.T) {
			if err := wh.Post(context.Background(), payload); err == nil || !notify.IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent encoding error", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("endpoint hit %d times", n)
	}
}

func TestCallbackNetworkErrorIsTransient(t *testing.T) {
	wh, err := notify.NewCallback("http://"+closedAddr(t)+"/aml?token=s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = wh.Post(context.Background(), map[string]string{})
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want transient", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q leaks the URL's token", err)
	}
}

func TestNewCallbackRejectsBadURLs(t *testing.T) {
	for _, raw := range []string{"", "ftp://example.com/x", "http://", "/relative", "http://example.com/%zz?token=s3cret"} {
		_, err := notify.NewCallback(raw, nil)
		if err == nil {
			t.Errorf("NewCallback(%q) accepted it", raw)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %q leaks the URL's token", err)
		}
	}
}
