package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/didit/api"
)

func TestDiditFailuresSayWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&api.Error{Kind: api.KindCredentials, Op: "x", Status: 401}, "Didit refused DIDIT_API_KEY (401): the key is missing, wrong, revoked or expired"},
		{&api.Error{Kind: api.KindCredentials, Op: "x", Status: 403}, "Didit refused DIDIT_API_KEY (403): the key may not make this call"},
		{&api.Error{Kind: api.KindNotFound, Op: "x", Status: 404}, "Didit answered 404: it does not exist, or it is outside DIDIT_API_KEY's scope"},
		{&api.Error{Kind: api.KindRateLimited, Op: "x", Status: 429, RetryAfter: 7 * time.Second}, "rate-limiting DIDIT_API_KEY (429); try again in 7s"},
		{&api.Error{Kind: api.KindServer, Op: "x", Status: 503}, "Didit failed (503)"},
		{&api.Error{Kind: api.KindServer, Op: "x"}, "Didit did not answer; check DIDIT_API_URL"},
		{&api.Error{Kind: api.KindMalformed, Op: "x", Status: 200}, "check that DIDIT_API_URL is Didit's API"},
		{&api.Error{Kind: api.KindRequest, Op: "x", Status: 400}, "Didit rejected the request (400)"},
		{api.ErrNoKey, "DIDIT_API_KEY is not set"},
	} {
		got := DiditFailure("doing it", tc.err)
		if !strings.Contains(got.Error(), tc.want) {
			t.Errorf("%v: %q does not say %q", tc.err, got, tc.want)
		}
	}
}

// The admin command's Temporal identity names the person and the machine.
func TestIdentityNamesThePerson(t *testing.T) {
	t.Setenv("USER", "ada")
	id := Identity()
	user, host, ok := strings.Cut(strings.TrimPrefix(id, "diditflow-admin:"), "@")
	if !strings.HasPrefix(id, "diditflow-admin:") || !ok || user == "" || host == "" {
		t.Errorf("Identity() = %q, want diditflow-admin:<user>@<host>", id)
	}
}
