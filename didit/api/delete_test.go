package api

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
)

func TestDeleteSession(t *testing.T) {
	var deleted atomic.Int32
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("x-api-key") != testKey:
			w.WriteHeader(http.StatusUnauthorized)
		case r.Method == http.MethodDelete && r.URL.EscapedPath() == "/v3/session/s%2F1/delete/":
			deleted.Add(1)
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodDelete && r.URL.Path == "/v3/session/gone/delete/":
			writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Session not found. " + bodySecret})
		case r.URL.Path == "/v3/session/busy/delete/":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			writeJSON(w, http.StatusForbidden, map[string]string{"detail": bodySecret})
		}
	})
	ctx := context.Background()
	if err := c.DeleteSession(ctx, "s/1"); err != nil || deleted.Load() != 1 {
		t.Fatalf("DeleteSession = %v, %d deletes; want one, escaped", err, deleted.Load())
	}
	requireKind(t, c.DeleteSession(ctx, "gone"), KindNotFound)
	if e := requireKind(t, c.DeleteSession(ctx, "busy"), KindRateLimited); e.RetryAfter.Seconds() != 7 {
		t.Fatalf("RetryAfter = %v, want 7s", e.RetryAfter)
	}
	requireKind(t, c.DeleteSession(ctx, "other"), KindCredentials)
	requireKind(t, c.DeleteSession(ctx, ""), KindRequest)

	off, err := New(Config{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := off.DeleteSession(ctx, "s-1"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("without a key: %v, want ErrNoKey", err)
	}
}
