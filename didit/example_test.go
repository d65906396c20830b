package didit_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/diditflow/diditflow/didit"
)

// A webhook endpoint in the standard library: verify, parse, hand the
// event over, and only then answer 200.
func Example() {
	verifier := &didit.Verifier{Secrets: []string{"webhook-secret"}}
	handler := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		ev, _, err := verifier.ConstructEvent(body, didit.HeadersFrom(r.Header))
		switch {
		case errors.Is(err, didit.ErrNotDiditEvent):
			http.Error(w, "not a session event", http.StatusBadRequest)
			return
		case err != nil:
			http.Error(w, "unauthorized", http.StatusUnauthorized) // the reason is for your logs
			return
		}
		// Store or enqueue the event here; answer 5xx if you cannot, and
		// Didit retries.
		fmt.Println(ev.SessionID, ev.Status, ev.Key())
		w.WriteHeader(http.StatusOK)
	}

	// What Didit would send.
	body := fmt.Sprintf(`{"event_id":"evt-1","session_id":"9b2f4c1e","status":"Approved","timestamp":%d,"webhook_type":"status.updated"}`,
		time.Now().Unix())
	headers, _ := didit.Signer{Secret: "webhook-secret"}.Sign([]byte(body))
	req := httptest.NewRequest(http.MethodPost, "/webhooks/didit", strings.NewReader(body))
	headers.Set(req.Header)
	rec := httptest.NewRecorder()
	handler(rec, req)
	fmt.Println(rec.Code)

	// The same body, tampered with.
	req = httptest.NewRequest(http.MethodPost, "/webhooks/didit", strings.NewReader(strings.Replace(body, "Approved", "Declined", 1)))
	headers.Set(req.Header)
	rec = httptest.NewRecorder()
	handler(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// 9b2f4c1e Approved evt-1
	// 200
	// 401
}

// A re-encoded delivery (here pretty-printed, its times as floats) still
// verifies under X-Signature-V2, and reads as what Didit signed.
func ExampleVerifier_ConstructEvent() {
	signed := []byte(`{"created_at":1767225391,"session_id":"9b2f4c1e","status":"Declined","timestamp":1767225600,"webhook_type":"status.updated"}`)
	headers, _ := didit.Signer{Secret: "webhook-secret"}.Sign(signed)
	reencoded := []byte(`{
  "webhook_type": "status.updated",
  "timestamp": 1767225600.0,
  "status": "Declined",
  "session_id": "9b2f4c1e",
  "created_at": 1.767225391e9
}`)
	v := &didit.Verifier{Secrets: []string{"webhook-secret"}, Now: func() time.Time { return time.Unix(1767225600, 0) }}
	ev, proof, err := v.ConstructEvent(reencoded, headers)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.Status, ev.CreatedAt, proof.Scheme)
	// Output: Declined 1767225391 v2
}
