package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
)

// sessionFrom reads the session id off the run's last line.
func sessionFrom(t *testing.T, out string) string {
	t.Helper()
	_, id, ok := strings.Cut(out, "workflow: didit-session-")
	if !ok {
		t.Fatalf("no session in the output:\n%s", out)
	}
	return strings.TrimSpace(id)
}

// TestRegistersWithTheFakeDidit: with -didit-api (or $DIDIT_API_URL), the
// fake's decision API ends with the scenario's last status and the decision
// of its approval, although the Kyc Expired webhook carried none.
func TestRegistersWithTheFakeDidit(t *testing.T) {
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer receiver.Close()
	for _, viaEnv := range []bool{false, true} {
		srv := httptest.NewServer(fakedidit.New(fakedidit.Options{Key: "k"}).Handler())
		t.Cleanup(srv.Close)
		args := []string{"-url", receiver.URL, "-scenario", "kyc-expired", "-retry-delays", ""}
		if viaEnv {
			t.Setenv("DIDIT_API_URL", srv.URL)
			t.Setenv("DIDIT_API_KEY", "k")
		} else {
			args = append(args, "-didit-api", srv.URL, "-didit-api-key", "k")
		}
		var out strings.Builder
		if err := run(args, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "0 failed") {
			t.Fatalf("output:\n%s", out.String())
		}
		client, err := api.New(api.Config{BaseURL: srv.URL, Key: "k"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := client.Decision(t.Context(), sessionFrom(t, out.String()))
		if d := got.Decision; err != nil || d.Status != "Kyc Expired" || d.ContactEmail() != "user@example.com" {
			t.Fatalf("env %v: decision at the fake: %+v, %v", viaEnv, got, err)
		}
	}
}

// TestRegistrationFailureIsNotFatal: a fake that refuses the key costs the
// registrations only.
func TestRegistrationFailureIsNotFatal(t *testing.T) {
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer receiver.Close()
	srv := httptest.NewServer(fakedidit.New(fakedidit.Options{Key: "k"}).Handler())
	defer srv.Close()
	var out strings.Builder
	err := run([]string{"-url", receiver.URL, "-scenario", "approved", "-retry-delays", "", "-didit-api", srv.URL, "-didit-api-key", "wrong"}, &out)
	if err != nil || !strings.Contains(out.String(), "200×2") || !strings.Contains(out.String(), "2 failed") {
		t.Fatalf("%v\n%s", err, out.String())
	}
}
