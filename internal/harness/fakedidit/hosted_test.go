package fakedidit

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// noRedirects is a browser that shows each redirect instead of following it.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// press submits a choice on a hosted page, as its button does.
func press(t *testing.T, pageURL string, c Choice) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirects.PostForm(pageURL, url.Values{"choice": {string(c)}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// open loads a hosted page.
func open(t *testing.T, pageURL string) (int, string) {
	t.Helper()
	resp, err := http.Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sent are the bodies of the webhooks the fake delivered for a session, in
// the order they were sent.
func sent(t *testing.T, s *Server, session string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, d := range s.Deliveries() {
		if d.SessionID != session || d.Status != "delivered" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(d.RequestBody, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func statuses(bodies []map[string]any) []string {
	var out []string
	for _, b := range bodies {
		out = append(out, b["status"].(string))
	}
	return out
}

// hostedSession creates a session with a contact address, vendor_data and
// metadata, and returns its id and page.
func hostedSession(t *testing.T, api *httptest.Server, callback string) (string, string) {
	t.Helper()
	body := map[string]any{"workflow_id": DefaultWorkflowID, "vendor_data": "user-7",
		"metadata":        map[string]any{"plan": "pro"},
		"contact_details": map[string]any{"email": "user7@example.com"}}
	if callback != "" {
		body["callback"] = callback
	}
	m := created(t, api, body)
	return m["session_id"].(string), m["url"].(string)
}

// TestHostedPageChoices: each of the user's choices on the page sends
// Didit's webhooks for that path, signed and in the order it happened,
// with a decision only where Didit puts one, carrying the session's
// vendor_data, metadata and contact address; the decision API then agrees.
func TestHostedPageChoices(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		choice   Choice
		statuses []string
		// check looks at the outcome's decision, as the webhook carries it.
		check func(t *testing.T, decision map[string]any)
	}{
		{Approve, []string{"Not Started", "In Progress", "Approved"}, nil},
		{Decline, []string{"Not Started", "In Progress", "Declined"}, func(t *testing.T, d map[string]any) {
			live := d["liveness_checks"].([]any)[0].(map[string]any)
			if live["status"] != "Declined" || !strings.Contains(mustJSON(t, live["warnings"]), "LOW_LIVENESS_SCORE") {
				t.Errorf("declined liveness %v", live)
			}
		}},
		{Review, []string{"Not Started", "In Progress", "In Review"}, func(t *testing.T, d map[string]any) {
			hit := d["aml_screenings"].([]any)[0].(map[string]any)["hits"].([]any)[0].(map[string]any)
			if hit["review_status"] != "Unreviewed" || hit["id"] == "" {
				t.Errorf("AML hit %v", hit)
			}
		}},
		{Abandon, []string{"Not Started", "In Progress", "Abandoned"}, func(t *testing.T, d map[string]any) {
			if d["liveness_checks"] != nil || d["id_verifications"] == nil {
				t.Errorf("abandoned after the document: liveness %v", d["liveness_checks"])
			}
		}},
		{Expire, []string{"Not Started", "Expired"}, nil},
	} {
		t.Run(string(tc.choice), func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, "secret-1", http.StatusOK)
			s, api := fixture(t, rc, Options{})
			id, page := hostedSession(t, api, "")
			code, html := open(t, page)
			if code != http.StatusOK || !strings.Contains(html, `value="`+string(tc.choice)+`"`) || strings.Contains(html, "<script") {
				t.Fatalf("page: %d\n%s", code, html)
			}
			if resp, _ := press(t, page, tc.choice); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/session/"+page[strings.LastIndex(page, "/")+1:] {
				t.Fatalf("choice answered %d to %q, want 303 to the page", resp.StatusCode, resp.Header.Get("Location"))
			}
			s.Wait()

			bodies := sent(t, s, id)
			if got := statuses(bodies); !slices.Equal(got, tc.statuses) {
				t.Fatalf("webhooks %v, want %v", got, tc.statuses)
			}
			if n := len(rc.events()); n != len(tc.statuses) {
				t.Fatalf("receiver verified %d of %d", n, len(tc.statuses))
			}
			var last float64
			for _, b := range bodies {
				if b["vendor_data"] != "user-7" || b["metadata"].(map[string]any)["plan"] != "pro" || b["workflow_id"] != DefaultWorkflowID {
					t.Errorf("%s webhook lacks the session's details: %v", b["status"], b)
				}
				if at := b["created_at"].(float64); at <= last {
					t.Errorf("%s webhook created at %v, not after the one before (%v)", b["status"], at, last)
				} else {
					last = at
				}
				// SPEC §2.3: only these carry a decision.
				d, has := b["decision"].(map[string]any)
				if want := slices.Contains([]any{"Approved", "Declined", "In Review", "Abandoned"}, b["status"]); has != want {
					t.Errorf("%s webhook: decision present %v, want %v", b["status"], has, want)
				}
				if !has {
					continue
				}
				contact, _ := d["contact_details"].(map[string]any)
				if d["status"] != b["status"] || d["session_id"] != id || d["vendor_data"] != "user-7" || contact["email"] != "user7@example.com" {
					t.Errorf("decision of the %s webhook: %v", b["status"], d)
				}
				if tc.check != nil {
					tc.check(t, d)
				}
			}
			outcome := tc.statuses[len(tc.statuses)-1]
			if d := decisionOf(t, api, id); d["status"] != outcome {
				t.Fatalf("decision API says %v after %s", d["status"], outcome)
			}
			if _, html := open(t, page); !strings.Contains(html, `<dd id="status">`+outcome+`</dd>`) {
				t.Fatalf("page after the choice:\n%s", html)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHostedPageRedirectsToTheCallback: after a finishing choice Didit sends
// the browser to the creator's callback with verificationSessionId and
// status appended; after abandoning, or with no callback, it stays.
func TestHostedPageRedirectsToTheCallback(t *testing.T) {
	t.Parallel()
	_, api := fixture(t, nil, Options{})
	const callback = "https://app.example.com/kyc/done?from=didit"
	for choice, want := range map[Choice]string{
		Approve: "Approved", Review: "In Review", Decline: "Declined", Abandon: "",
	} {
		id, page := hostedSession(t, api, callback)
		resp, _ := press(t, page, choice)
		loc := resp.Header.Get("Location")
		if want == "" {
			if resp.StatusCode != http.StatusSeeOther || strings.HasPrefix(loc, "https://") {
				t.Errorf("%s: %d to %q, want the page", choice, resp.StatusCode, loc)
			}
			continue
		}
		u, err := url.Parse(loc)
		if err != nil || resp.StatusCode != http.StatusSeeOther || u.Host != "app.example.com" || u.Path != "/kyc/done" ||
			u.Query().Get("from") != "didit" || u.Query().Get("verificationSessionId") != id || u.Query().Get("status") != want {
			t.Errorf("%s: %d to %q, want the callback with session %s and status %s", choice, resp.StatusCode, loc, id, want)
		}
	}
}

// TestReviewerDecidesLater: a session sent to review is declined by a
// reviewer; an approved one is declined by a later manual review, and one
// expires under the KYC expiry policy; each sends its status.updated, the
// reviewer's with the decision Didit keeps (its AML hit, the review). A
// choice the session's status does not allow is refused and sends nothing.
func TestReviewerDecidesLater(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, "secret-1", http.StatusOK)
	s, api := fixture(t, rc, Options{})
	inReview, page := hostedSession(t, api, "https://app.example.com/done")
	press(t, page, Review)
	if _, html := open(t, page); !strings.Contains(html, `value="reviewer-decline"`) || strings.Contains(html, `value="approve"`) {
		t.Fatalf("page in review offers:\n%s", html)
	}
	if resp, _ := press(t, page, ReviewerDecline); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/session/"+page[strings.LastIndex(page, "/")+1:] {
		t.Fatalf("reviewer's choice: %d to %q, want the page (the user is not there)", resp.StatusCode, resp.Header.Get("Location"))
	}

	approved, _ := hostedSession(t, api, "")
	for _, c := range []Choice{Approve, ReviewerDecline} {
		if _, err := s.Choose(approved, c); err != nil {
			t.Fatal(err)
		}
	}
	expired, expiredPage := hostedSession(t, api, "")
	if _, err := s.Choose(expired, Approve); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Choose(expired, KycExpire); err != nil {
		t.Fatal(err)
	}
	if resp, html := press(t, expiredPage, Approve); resp.StatusCode != http.StatusConflict || !strings.Contains(html, "Kyc Expired") {
		t.Fatalf("approve a Kyc Expired session: %d\n%s", resp.StatusCode, html)
	}
	if _, err := s.Choose(expired, Abandon); err == nil {
		t.Fatal("abandon a Kyc Expired session: no error")
	}
	s.Wait()

	for id, want := range map[string][]string{
		inReview: {"Not Started", "In Progress", "In Review", "Declined"},
		approved: {"Not Started", "In Progress", "Approved", "Declined"},
		expired:  {"Not Started", "In Progress", "Approved", "Kyc Expired"},
	} {
		bodies := sent(t, s, id)
		if got := statuses(bodies); !slices.Equal(got, want) {
			t.Fatalf("session %s: webhooks %v, want %v", id, got, want)
		}
		last := bodies[len(bodies)-1]
		d, has := last["decision"].(map[string]any)
		if want[3] == "Kyc Expired" {
			if has {
				t.Errorf("Kyc Expired webhook with a decision")
			}
			continue
		}
		reviews, _ := d["reviews"].([]any)
		if !has || d["status"] != "Declined" || len(reviews) != 1 || reviews[0].(map[string]any)["new_status"] != "Declined" {
			t.Errorf("reviewer's webhook decision: %v", d)
		}
	}
	inReviewDecision := sent(t, s, inReview)[3]["decision"].(map[string]any)
	if hits := inReviewDecision["aml_screenings"].([]any)[0].(map[string]any)["hits"].([]any); len(hits) != 1 {
		t.Errorf("the reviewed session's AML hit is gone: %v", inReviewDecision["aml_screenings"])
	}
	if d := decisionOf(t, api, expired); d["status"] != "Kyc Expired" || d["contact_details"] == nil {
		t.Errorf("decision API after Kyc Expired: %v", d)
	}
}

// TestHostedPageUnknown: a token no session has is Didit's 404 page.
func TestHostedPageUnknown(t *testing.T) {
	_, api := fixture(t, nil, Options{})
	if code, html := open(t, api.URL+"/session/AAAAAAAAAAAA"); code != http.StatusNotFound || !strings.Contains(html, "Not Found") {
		t.Fatalf("%d %s", code, html)
	}
}
