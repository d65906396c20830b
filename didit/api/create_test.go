package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestCreateSessionSendsTheDocumentedBody: the body is Didit's Create
// Session request, and the 201 answer gives the session and its URL.
func TestCreateSessionSendsTheDocumentedBody(t *testing.T) {
	var got map[string]any
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v3/session/" {
			t.Errorf("%s %s, want POST /v3/session/", r.Method, r.URL.Path)
		}
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("x-api-key") != testKey {
			t.Errorf("headers %v", r.Header)
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &got); err != nil {
			t.Error(err)
		}
		writeJSON(w, http.StatusCreated, map[string]any{
			"session_id": "11111111-2222-3333-4444-555555555555", "session_number": 43762,
			"session_token": "abcdef", "url": "https://verify.didit.me/session/abcdef",
			"vendor_data": "user-123", "status": "Not Started", "workflow_id": "wf-1", "workflow_version": 3,
		})
	})
	out, err := c.CreateSession(context.Background(), NewSession{
		WorkflowID: "wf-1", VendorData: "user-123", Callback: "https://example.com/done",
		Metadata: json.RawMessage(`{"plan":"gold"}`), Language: "en",
		ContactDetails:  &ContactDetails{Email: "u@example.com", EmailLanguage: "en", SendNotificationEmails: true},
		ExpectedDetails: &ExpectedDetails{FirstName: "Ada", DateOfBirth: "1990-05-15"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.SessionID != "11111111-2222-3333-4444-555555555555" || out.URL != "https://verify.didit.me/session/abcdef" ||
		out.Status != "Not Started" || out.VendorData != "user-123" {
		t.Fatalf("created = %+v", out)
	}
	want := map[string]any{
		"workflow_id": "wf-1", "vendor_data": "user-123", "callback": "https://example.com/done",
		"metadata": map[string]any{"plan": "gold"}, "language": "en",
		"contact_details":  map[string]any{"email": "u@example.com", "email_lang": "en", "send_notification_emails": true},
		"expected_details": map[string]any{"first_name": "Ada", "date_of_birth": "1990-05-15"},
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("body = %s\nwant   %s", gotJSON, wantJSON)
	}
}

// TestCreateSessionRefusalSaysWhy: a 400 is a request error that keeps
// Didit's reason for the caller, out of the error's text.
func TestCreateSessionRefusalSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
		status           int
		kind             Kind
	}{
		{"field errors", `{"workflow_id":["Workflow not found."],"language":["\"xx\" is not a valid choice."]}`,
			`language: "xx" is not a valid choice.; workflow_id: Workflow not found.`, 400, KindRequest},
		{"detail", `{"detail":"You do not have permission to perform this action."}`,
			"You do not have permission to perform this action.", 403, KindCredentials},
		{"html", `<html>` + bodySecret + `</html>`, "", 404, KindNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			_, err := c.CreateSession(context.Background(), NewSession{WorkflowID: "wf-1", VendorData: "user-1"})
			e := requireKind(t, err, tc.kind)
			if e.Detail != tc.want {
				t.Fatalf("detail = %q, want %q", e.Detail, tc.want)
			}
			if e.Retryable() {
				t.Fatal("a refusal must not be retryable")
			}
		})
	}
}

// TestCreateSessionRetryablesKeepNoDetail: a 429 and a 5xx are retried by
// the caller; their bodies are not read.
func TestCreateSessionRetryablesKeepNoDetail(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusBadGateway} {
		c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			writeJSON(w, status, map[string]string{"detail": bodySecret})
		})
		_, err := c.CreateSession(context.Background(), NewSession{WorkflowID: "wf-1", VendorData: "user-1"})
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%d: %v, want an *Error", status, err)
		}
		if !e.Retryable() || e.Detail != "" {
			t.Fatalf("%d: %v (detail %q), want retryable without detail", status, err, e.Detail)
		}
	}
}

// TestCreateSessionDetailIsBounded: a long refusal is cut.
func TestCreateSessionDetailIsBounded(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": strings.Repeat("é", 5000)})
	})
	_, err := c.CreateSession(context.Background(), NewSession{WorkflowID: "wf-1", VendorData: "user-1"})
	e := requireKind(t, err, KindRequest)
	if n := len([]rune(e.Detail)); n != maxDetail+1 {
		t.Fatalf("detail of %d runes, want %d", n, maxDetail+1)
	}
}

// TestCreateSessionWithoutWorkflowIsRefusedLocally: no request is sent
// without the required workflow_id.
func TestCreateSessionWithoutWorkflowIsRefusedLocally(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { t.Error("no request expected") })
	_, err := c.CreateSession(context.Background(), NewSession{VendorData: "user-1"})
	if e := requireKind(t, err, KindRequest); e.Detail == "" {
		t.Fatal("no detail")
	}
}
