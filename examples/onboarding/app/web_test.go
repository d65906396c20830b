package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/diditflow/diditflow/kyc"
)

// fetch answers a GET of path by the handler: the status and the body.
func fetch(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// TestAccountPage: a pending account's page reloads itself and, once the
// verification is recorded, links to it; a decided one stops reloading.
// (The signup's path through Temporal runs end to end, in
// internal/harness/e2e's TestOnboardingExampleInTheBrowser.)
func TestAccountPage(t *testing.T) {
	e := newTestEnv(t)
	h := (&App{accounts: e.accounts, logger: slog.New(slog.DiscardHandler)}).Handler()
	acct := e.signUp()
	const refresh = `<meta http-equiv="refresh"`

	code, body := fetch(t, h, "/accounts/"+acct.ID)
	if code != http.StatusOK || !strings.Contains(body, refresh) || !strings.Contains(body, "Preparing your verification") {
		t.Fatalf("a new account's page: %d\n%s", code, body)
	}
	link := "https://verify.didit.me/session/tok?a=1&b=2"
	if err := e.accounts.RecordVerification(context.Background(), acct.ID, 1, "s-1", link); err != nil {
		t.Fatal(err)
	}
	_, body = fetch(t, h, "/accounts/"+acct.ID+"?verificationSessionId=s-1&status=Approved")
	if !strings.Contains(body, `href="https://verify.didit.me/session/tok?a=1&amp;b=2"`) || !strings.Contains(body, "Didit is telling us") {
		t.Fatalf("a pending account's page, back from Didit, lacks its link or the thanks:\n%s", body)
	}
	if _, err := e.accounts.Settle(context.Background(), acct.ID, "s-1", 2, kyc.Approved); err != nil {
		t.Fatal(err)
	}
	_, body = fetch(t, h, "/accounts/"+acct.ID)
	if strings.Contains(body, refresh) || !strings.Contains(body, "Status: <strong id=\"status\">active</strong>") || strings.Contains(body, `id="verify"`) {
		t.Fatalf("an active account's page:\n%s", body)
	}
	if code, _ := fetch(t, h, "/accounts/nobody"); code != http.StatusNotFound {
		t.Fatalf("an unknown account's page: %d, want 404", code)
	}
}

// post answers a form's POST to path by the handler, sent from site
// (Sec-Fetch-Site, as browsers send it).
func post(h http.Handler, path, site string, form url.Values) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", site)
	h.ServeHTTP(rec, req)
	return rec
}

// TestSignupRefusesWhatItCannotUse: a signup without a name or a usable
// address is shown the form again, and one posted from another site is
// refused; neither starts anything (there is no Temporal client here: a
// start would panic).
func TestSignupRefusesWhatItCannotUse(t *testing.T) {
	e := newTestEnv(t)
	h := (&App{accounts: e.accounts, logger: slog.New(slog.DiscardHandler)}).Handler()
	for _, form := range []url.Values{
		{"name": {"Ada"}, "email": {"not an address"}},
		{"name": {"Ada"}, "email": {"Ada <ada@example.com>"}},
		{"name": {" "}, "email": {"ada@example.com"}},
	} {
		if rec := post(h, "/signup", "same-origin", form); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `role="alert"`) {
			t.Errorf("signup %v: %d, want the form again with the problem", form, rec.Code)
		}
	}
	if rec := post(h, "/signup", "cross-site", url.Values{"name": {"Ada"}, "email": {"ada@example.com"}}); rec.Code != http.StatusForbidden {
		t.Errorf("a signup from another site: %d, want 403", rec.Code)
	}
}
