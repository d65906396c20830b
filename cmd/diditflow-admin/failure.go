package main

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/diditflow/diditflow/didit/api"
)

// diditFailure explains a failed call to Didit: what was being done, what
// Didit's answer means (SPEC §4.4) and what to do about it. The client's
// own text, which names the call, kind and status and never the key or the
// body, ends the message.
func diditFailure(doing string, err error) error {
	var e *api.Error
	switch {
	case errors.Is(err, api.ErrNoKey):
		return errNoAPIKey
	case !errors.As(err, &e):
		return fmt.Errorf("%s: %w", doing, err)
	}
	var why string
	switch e.Kind {
	case api.KindCredentials:
		why = fmt.Sprintf("Didit refused DIDIT_API_KEY (%d): ", e.Status)
		if e.Status == http.StatusUnauthorized {
			why += "the key is missing, wrong, revoked or expired"
		} else {
			why += "the key may not make this call (a scoped key needs to read and write webhooks), " +
				"or this machine's IP address is not on its allow-list"
		}
	case api.KindNotFound:
		why = fmt.Sprintf("Didit answered %d: it does not exist, or it is outside DIDIT_API_KEY's scope", e.Status)
	case api.KindRateLimited:
		why = "Didit is rate-limiting DIDIT_API_KEY (429); try again"
		if e.RetryAfter > 0 {
			why += " in " + e.RetryAfter.String()
		} else {
			why += " in a minute"
		}
	case api.KindServer:
		if e.Status != 0 {
			why = fmt.Sprintf("Didit failed (%d); try again in a few minutes", e.Status)
		} else {
			why = "Didit did not answer; check DIDIT_API_URL and the network, then try again"
		}
	case api.KindMalformed:
		why = "Didit's answer is not the JSON its API documents; check that DIDIT_API_URL is Didit's API"
	default:
		why = fmt.Sprintf("Didit rejected the request (%d)", e.Status)
	}
	return fmt.Errorf("%s: %s [%w]", doing, why, err)
}
