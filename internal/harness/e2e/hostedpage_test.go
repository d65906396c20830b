package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
)

// TestFakeDiditHostedPageInTheBrowser: a session created on the fake Didit
// has a url that opens, in headless Chromium, the fake's hosted page;
// approving there sends Didit's webhooks, signed, which diditflow takes
// (the record approved, the user mailed at the address given at creation),
// and the browser lands on the creator's callback with the session and its
// status. The page, loaded again, lists the webhooks as delivered.
func TestFakeDiditHostedPageInTheBrowser(t *testing.T) {
	ctx := browser(t)
	shots := shotsDir(t)
	fake := fakedidit.New(fakedidit.Options{Key: apiKey, Secret: secret, RetryDelays: []time.Duration{}})
	t.Cleanup(func() { _ = fake.Close() })
	didit := httptest.NewServer(fake.Handler())
	t.Cleanup(didit.Close)
	s := newStack(t, func(s *stack) {
		s.workerEnv = append(s.workerEnv, "DIDIT_API_URL="+didit.URL, "DIDIT_API_KEY="+apiKey)
	})
	client, err := api.New(api.Config{BaseURL: didit.URL, Key: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	s.receiveWebhooksOf(client)

	// The business's page Didit sends the browser back to.
	var mu sync.Mutex
	var back url.Values
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/kyc/done" {
			http.NotFound(w, r) // the browser's favicon
			return
		}
		mu.Lock()
		back = r.URL.Query()
		mu.Unlock()
		fmt.Fprint(w, "<!doctype html><title>Example</title><h1>Thanks, your verification is being checked</h1>")
	}))
	t.Cleanup(app.Close)

	const email = "hosted-page@example.com"
	body, _ := json.Marshal(map[string]any{
		"workflow_id": fakedidit.DefaultWorkflowID, "vendor_data": "user-hosted", "callback": app.URL + "/kyc/done",
		"contact_details": map[string]any{"email": email},
	})
	req, _ := http.NewRequest(http.MethodPost, didit.URL+"/v3/session/", bytes.NewReader(body))
	req.Header.Set("x-api-key", apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var session struct {
		ID  string `json:"session_id"`
		URL string `json:"url"`
	}
	err = json.NewDecoder(resp.Body).Decode(&session)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	// The creation's Not Started webhook needs no browser.
	s.waitFor("the Not Started record", func() bool { return s.status(session.ID) == "Not Started" })

	step(t, ctx, shots, "1-hosted-page",
		chromedp.Navigate(session.URL),
		pageShows("Verify your identity"), pageShows("Not Started"))
	step(t, ctx, shots, "2-approved",
		chromedp.Click(chromedp.CSS(`button[value="approve"]`)),
		landsOn("Thanks, your verification is being checked"))
	mu.Lock()
	got := back
	mu.Unlock()
	if got.Get("verificationSessionId") != session.ID || got.Get("status") != "Approved" {
		t.Fatalf("the callback got %v, want the session %s, Approved", got, session.ID)
	}

	id := contract.SessionWorkflowID(session.ID)
	s.waitFor("the approval mail", func() bool { return s.sent(session.ID, "user:approved") })
	if st := s.status(session.ID); st != "Approved" {
		t.Fatalf("record = %q", st)
	}
	if mails := s.sink.Mails(); len(mails) != 1 || !slices.Equal(mails[0].To, []string{email}) {
		t.Fatalf("mails %+v, want one to the address given at creation", mails)
	}
	fake.Wait()
	var statuses []string
	for _, d := range fake.Deliveries() {
		if d.SessionID != session.ID || d.Status != "delivered" || d.ResponseStatus != http.StatusOK {
			t.Fatalf("delivery %+v", d)
		}
		var ev struct{ Status string }
		_ = json.Unmarshal(d.RequestBody, &ev)
		statuses = append(statuses, ev.Status)
	}
	if want := []string{"Not Started", "In Progress", "Approved"}; !slices.Equal(statuses, want) {
		t.Fatalf("webhooks %v, want %v", statuses, want)
	}
	step(t, ctx, shots, "3-webhooks",
		chromedp.Navigate(session.URL),
		pageShows("Approved"), pageShows("200 delivered"))
	s.waitFor("the session to complete", func() bool { return s.completed(id) })
}

// receiveWebhooksOf makes the stack's receiver the destination of the
// fake Didit's webhooks, as a business sets its webhook URL in Didit's
// console.
func (s *stack) receiveWebhooksOf(client *api.Client) {
	s.t.Helper()
	receiverURL := s.receiver.URL + "/webhooks/didit"
	if _, err := client.PatchWebhookConfig(context.Background(), api.WebhookPatch{URL: &receiverURL}); err != nil {
		s.t.Fatal(err)
	}
}

// landsOn waits until the page's text holds text, through the navigations
// a click starts (a form's post, a redirect) and the page's own reloads (a
// meta refresh), each of which ends a poll of the page it leaves.
func landsOn(text string) chromedp.Action[chromedp.Void] {
	shows := fmt.Sprintf("document.body !== null && document.body.innerText.includes(%q)", text)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
		defer cancel()
		for {
			if ok, err := chromedp.Evaluate[bool](shows)(ctx, t); err == nil && ok {
				return chromedp.Void{}, nil
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, fmt.Errorf("the page never showed %q: %w", text, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}
