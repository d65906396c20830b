package fakedidit

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
)

// createSession posts a Create Session body and returns the answer.
func createSession(t *testing.T, api *httptest.Server, body map[string]any) (int, map[string]any) {
	t.Helper()
	resp, b := call(t, http.MethodPost, api.URL+"/v3/session/", body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

// created creates a session and fails the test unless Didit answers 201.
func created(t *testing.T, api *httptest.Server, body map[string]any) map[string]any {
	t.Helper()
	code, m := createSession(t, api, body)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, m)
	}
	return m
}

// TestCreateSession: the documented request gets the documented 201; the
// session's Not Started webhook, signed as Didit signs, reaches the
// destination; the decision API and the sessions list know the session
// with what its creator gave.
func TestCreateSession(t *testing.T) {
	rc := newReceiver(t, "secret-1", http.StatusOK)
	s, api := fixture(t, rc, Options{})
	got := created(t, api, map[string]any{
		"workflow_id": strings.ToUpper(DefaultWorkflowID), "vendor_data": "user-1",
		"callback": "https://app.example.com/kyc/done", "callback_method": "both",
		"metadata": map[string]any{"account_tier": "premium"}, "language": "es",
		"contact_details": map[string]any{"email": "user@example.com", "send_notification_emails": false,
			"email_lang": "es", "phone": "+14155552671"},
		"expected_details": map[string]any{"first_name": "Ana", "last_name": "García", "date_of_birth": "1990-05-15"},
		"portrait_image":   "aGVsbG8=",
	})
	id, _ := got["session_id"].(string)
	token, _ := got["session_token"].(string)
	meta, _ := got["metadata"].(map[string]any)
	if !isUUID(id) || got["session_number"] == nil || len(token) != 12 || got["url"] != api.URL+"/session/"+token ||
		got["vendor_data"] != "user-1" || meta["account_tier"] != "premium" || got["status"] != "Not Started" ||
		got["workflow_id"] != DefaultWorkflowID || got["workflow_version"] != float64(1) ||
		got["callback"] != "https://app.example.com/kyc/done" {
		t.Fatalf("201 body %v", got)
	}

	s.Wait()
	evs := rc.events()
	if len(evs) != 1 {
		t.Fatalf("receiver verified %d webhooks, want the creation's one", len(evs))
	}
	ev := evs[0]
	if ev.WebhookType != didit.WebhookStatusUpdated || ev.Status != didit.StatusNotStarted || ev.SessionID != id ||
		ev.VendorData != "user-1" || ev.WorkflowID != DefaultWorkflowID || ev.WorkflowVersion != 1 ||
		ev.Decision != nil || ev.EventID == "" || !strings.Contains(string(ev.Metadata), `"premium"`) {
		t.Fatalf("creation webhook %+v", ev)
	}

	d := decisionOf(t, api, id)
	contact, _ := d["contact_details"].(map[string]any)
	expected, _ := d["expected_details"].(map[string]any)
	if d["status"] != "Not Started" || contact["email"] != "user@example.com" || expected["first_name"] != "Ana" ||
		d["session_url"] != got["url"] || d["callback"] != got["callback"] || d["workflow_id"] != DefaultWorkflowID {
		t.Fatalf("decision %v", d)
	}
	if row := listed(t, api, id); row["workflow_id"] != DefaultWorkflowID || row["vendor_data"] != "user-1" {
		t.Fatalf("listed as %v", row)
	}
}

// TestCreateSessionErrors: what Didit refuses, with Django REST
// framework's answers, creates nothing and sends nothing.
func TestCreateSessionErrors(t *testing.T) {
	rc := newReceiver(t, "secret-1", http.StatusOK)
	s, api := fixture(t, rc, Options{})
	const otherWorkflow = "0d3e6c52-7a1b-4f0e-9c3d-5b8a2f6e1d47"
	valid := `"workflow_id":"` + DefaultWorkflowID + `"`
	for _, tc := range []struct {
		name, key, contentType, body string
		want                         int
		field                        string
	}{
		{"no key", "", "application/json", "{" + valid + "}", http.StatusForbidden, "detail"},
		{"wrong key", "wrong", "application/json", "{" + valid + "}", http.StatusUnauthorized, "detail"},
		{"form body", testKey, "application/x-www-form-urlencoded", "workflow_id=" + DefaultWorkflowID, http.StatusUnsupportedMediaType, "detail"},
		{"malformed", testKey, "application/json", `{"workflow_id":`, http.StatusBadRequest, "detail"},
		{"no workflow", testKey, "application/json", `{"vendor_data":"user-1"}`, http.StatusBadRequest, "workflow_id"},
		{"workflow not a uuid", testKey, "application/json", `{"workflow_id":"kyc-default"}`, http.StatusBadRequest, "workflow_id"},
		{"unknown workflow", testKey, "application/json", `{"workflow_id":"` + otherWorkflow + `"}`, http.StatusBadRequest, "workflow_id"},
		{"callback", testKey, "application/json", "{" + valid + `,"callback":"app/done"}`, http.StatusBadRequest, "callback"},
		{"callback_method", testKey, "application/json", "{" + valid + `,"callback_method":"browser"}`, http.StatusBadRequest, "callback_method"},
		{"language", testKey, "application/json", "{" + valid + `,"language":"english"}`, http.StatusBadRequest, "language"},
		{"metadata", testKey, "application/json", "{" + valid + `,"metadata":"not json"}`, http.StatusBadRequest, "metadata"},
		{"email", testKey, "application/json", "{" + valid + `,"contact_details":{"email":"nobody"}}`, http.StatusBadRequest, "contact_details"},
		{"phone", testKey, "application/json", "{" + valid + `,"contact_details":{"phone":"555 0100"}}`, http.StatusBadRequest, "contact_details"},
		{"date of birth", testKey, "application/json", "{" + valid + `,"expected_details":{"date_of_birth":"15/05/1990"}}`, http.StatusBadRequest, "expected_details"},
	} {
		req, _ := http.NewRequest(http.MethodPost, api.URL+"/v3/session/", strings.NewReader(tc.body))
		if tc.key != "" {
			req.Header.Set("x-api-key", tc.key)
		}
		req.Header.Set("Content-Type", tc.contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || resp.StatusCode != tc.want || m[tc.field] == nil || len(m) != 1 {
			t.Errorf("%s: %d %s; want %d naming %s", tc.name, resp.StatusCode, b, tc.want, tc.field)
		}
	}
	s.Wait()
	if _, b := call(t, http.MethodGet, api.URL+"/v3/sessions/", nil); !strings.Contains(string(b), `"count":0`) {
		t.Fatalf("refused creations left sessions: %s", b)
	}
	if n := len(s.Deliveries()); n != 0 {
		t.Fatalf("refused creations sent %d webhooks", n)
	}
}

// TestCreateSessionRateLimit: past the configured creations a minute,
// Didit answers 429 with when to come back, and admits again a minute
// after the first.
func TestCreateSessionRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	_, api := fixture(t, nil, Options{CreateLimit: 2, Now: clock})
	body := map[string]any{"workflow_id": DefaultWorkflowID}
	created(t, api, body)
	advance(20 * time.Second)
	created(t, api, body)

	resp, b := call(t, http.MethodPost, api.URL+"/v3/session/", body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "40" ||
		resp.Header.Get("X-RateLimit-Limit") != "2" || resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("third creation in a minute: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	// Sessions are still read while creation is throttled.
	if resp, _ := call(t, http.MethodGet, api.URL+"/v3/sessions/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("list while creation is throttled: %d", resp.StatusCode)
	}
	advance(40 * time.Second)
	created(t, api, body)
}

// TestCreateSessionReusesUnfinished: Didit returns an unfinished session of
// the same vendor_data on the workflow's current version again, with the
// new callback and metadata, and sends no second Not Started; a finished
// session, another workflow, a republished workflow or no vendor_data get
// a new session.
func TestCreateSessionReusesUnfinished(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, "secret-1", http.StatusOK)
	const otherWorkflow = "0d3e6c52-7a1b-4f0e-9c3d-5b8a2f6e1d47"
	s, api := fixture(t, rc, Options{Workflows: []string{DefaultWorkflowID, otherWorkflow}})
	first := created(t, api, map[string]any{"workflow_id": DefaultWorkflowID, "vendor_data": "user-1",
		"callback": "https://app.example.com/a", "metadata": map[string]any{"try": 1}})
	again := created(t, api, map[string]any{"workflow_id": DefaultWorkflowID, "vendor_data": "user-1",
		"callback": "https://app.example.com/b", "metadata": `{"try": 2}`})
	id := first["session_id"]
	if again["session_id"] != id || again["url"] != first["url"] || again["callback"] != "https://app.example.com/b" ||
		again["metadata"].(map[string]any)["try"] != float64(2) {
		t.Fatalf("retried creation: %v, first %v", again, first)
	}
	if d := decisionOf(t, api, id.(string)); d["callback"] != "https://app.example.com/b" {
		t.Fatalf("decision after the reuse: %v", d)
	}
	// Didit overwrites both: a retry without metadata clears it.
	if bare := created(t, api, map[string]any{"workflow_id": DefaultWorkflowID, "vendor_data": "user-1"}); bare["session_id"] != id ||
		bare["metadata"] != nil || bare["callback"] != nil {
		t.Fatalf("retry without callback or metadata: %v", bare)
	}

	fresh := func(why string, body map[string]any) string {
		t.Helper()
		m := created(t, api, body)
		if m["session_id"] == id {
			t.Fatalf("%s: the session was reused", why)
		}
		return m["session_id"].(string)
	}
	fresh("no vendor_data", map[string]any{"workflow_id": DefaultWorkflowID})
	fresh("another workflow", map[string]any{"workflow_id": otherWorkflow, "vendor_data": "user-1"})
	// Once the session is approved, it is not reused.
	if err := s.Register(context.Background(), []byte(`{"session_id":"`+id.(string)+`","status":"Approved"}`)); err != nil {
		t.Fatal(err)
	}
	approved := fresh("an approved session", map[string]any{"workflow_id": DefaultWorkflowID, "vendor_data": "user-1"})
	if v := s.PublishWorkflow(DefaultWorkflowID); v != 2 {
		t.Fatalf("republished as version %d", v)
	}
	m := created(t, api, map[string]any{"workflow_id": DefaultWorkflowID, "vendor_data": "user-1"})
	if m["session_id"] == approved || m["workflow_version"] != float64(2) {
		t.Fatalf("after republishing: %v (the open session was %s)", m, approved)
	}

	s.Wait()
	notStarted := map[string]int{}
	for _, ev := range rc.events() {
		if ev.Status == didit.StatusNotStarted {
			notStarted[ev.SessionID]++
		}
	}
	if len(notStarted) != 5 || notStarted[id.(string)] != 1 {
		t.Fatalf("Not Started webhooks per session: %v, want one for each of the 5 sessions", notStarted)
	}
}
