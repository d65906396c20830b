package e2e

import (
	"bytes"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

// TestReencodedDeclineCannotBurnTheGenuineOne: X-Signature-V2 covers the
// canonical form, so a captured delivery re-encoded with its integers as
// floats ("created_at":1767225391.0) still verifies. Read from its own
// bytes it was an event of time 0: recorded as stale, its event_id burnt,
// and Didit's genuine retry then dropped as a duplicate, so a manual
// review's Declined was lost and the session stayed Approved. Read from
// what was signed, the re-encoding is the genuine event: the session ends
// Declined, the user is told once, and Temporal holds the genuine times.
func TestReencodedDeclineCannotBurnTheGenuineOne(t *testing.T) {
	s := newStack(t)
	session := "e2e-reencoded-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	now := time.Now().Unix()
	s.deliver(deliveryOf(t, "status-updated-approved.json", session, session+"/approved", now, now-600))

	// The reviewer's decline, as Didit signs it.
	declined := rewire(t, deliveryOf(t, "status-updated-approved.json", session, session+"/declined", now, now-60), func(body map[string]any) {
		body["status"] = "Declined"
		body["decision"].(map[string]any)["status"] = "Declined"
	})
	headers, err := didit.Signer{Secret: secret}.Sign(declined)
	if err != nil {
		t.Fatal(err)
	}
	// What an attacker who captured it sends first: the same signature
	// over the same canonical form, with every integer time a float, plus
	// an address of their own in front of the genuine contact details.
	attack := regexp.MustCompile(`"(timestamp|created_at)":(\d+)`).ReplaceAll(declined, []byte(`"$1":$2.0`))
	attack = bytes.Replace(attack, []byte(`"decision":{`), []byte(`"decision":{"contact_details":{"email":"mallory@example.com"},`), 1)
	for name, body := range map[string][]byte{"re-encoded": attack, "genuine retry": declined} {
		req, _ := http.NewRequest(http.MethodPost, s.receiver.URL+"/webhooks/didit", bytes.NewReader(body))
		headers.Set(req.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s delivery answered %d", name, resp.StatusCode)
		}
	}

	id := contract.SessionWorkflowID(session)
	s.waitFor("the session to complete", func() bool { return s.completed(id) })
	if got := s.status(session); got != "Declined" {
		t.Fatalf("record status %q, want Declined: the decline was lost", got)
	}
	if !s.sent(session, "user:declined") {
		t.Fatal("the user was not told of the decline")
	}
	if mail := s.sink.Mails(); len(mail) != 2 {
		t.Fatalf("%d mails, want the approval and the decline, once each", len(mail))
	}
	for _, m := range s.sink.Mails() {
		if bytes.Contains(m.Data, []byte("mallory")) || m.To[0] != userEmail {
			t.Fatalf("mail to %v: the injected address was used", m.To)
		}
	}

	var declines []contract.SessionEvent
	s.eachRunEvent(id, func() {}, func(e *historypb.HistoryEvent) {
		a := e.GetWorkflowExecutionSignaledEventAttributes()
		if a == nil {
			return
		}
		var se contract.SessionEvent
		if err := launch.Codec().DataConverter().FromPayload(a.GetInput().GetPayloads()[0], &se); err != nil {
			t.Fatal(err)
		}
		if se.Event.Status == didit.StatusDeclined {
			declines = append(declines, se)
		}
	})
	// One signal: the re-encoding took the genuine delivery's replay key.
	if len(declines) != 1 {
		t.Fatalf("%d decline signals, want 1", len(declines))
	}
	if ev := declines[0].Event; ev.CreatedAt != now-60 || ev.Timestamp != now || ev.Decision.ContactEmail() != userEmail {
		t.Fatalf("Temporal holds created_at %d, timestamp %d, address %q; want %d, %d, the user's",
			ev.CreatedAt, ev.Timestamp, ev.Decision.ContactEmail(), now-60, now)
	}
}
