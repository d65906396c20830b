package rotation

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/admin"
)

// The destination procedure: Didit cannot rotate a destination's secret
// (SPEC §4.2), but a second destination with its own secret can deliver
// beside the first. Both sign every event, each with its secret; the
// starters accept the old one's copies until they have the new secret and
// then drop the second copy of each event by its event_id, so nothing is
// lost. Disabling the old destination ends the overlap.

// rotationParam is the query parameter that gives a rotated destination a
// URL of its own, which Didit requires; the starter routes on the path and
// ignores the query.
const rotationParam = "rotation"

// rotatedSuffix is what rotatedLabel appends, with its number.
var rotatedSuffix = regexp.MustCompile(` \(rotated \d+\)$`)

// rotateDestination is destination step 1: create an enabled copy of the
// destination on a new URL variant, and show its secret.
func (r *Rotator) rotateDestination(ctx context.Context, oldID string) (Outcome, error) {
	c, err := r.didit()
	if err != nil {
		return Outcome{}, err
	}
	old, err := c.Destination(ctx, oldID)
	if err != nil {
		return Outcome{}, admin.DiditFailure("nothing created: reading destination "+oldID, err)
	}
	if !old.Enabled {
		return Outcome{}, fmt.Errorf("nothing created: destination %s is disabled, so it delivers nothing and there "+
			"is no delivery to keep; enable it first, or create a destination in Didit's console", oldID)
	}
	all, err := c.Destinations(ctx)
	if err != nil {
		return Outcome{}, admin.DiditFailure("nothing created: listing the destinations", err)
	}
	n, err := nextRotation(old.URL, all)
	if err != nil {
		return Outcome{}, fmt.Errorf("nothing created: destination %s: %w", oldID, err)
	}
	base, _, _ := splitRotation(old.URL) // nextRotation parsed it
	label := rotatedLabel(old.Label, n)
	created, err := c.CreateDestination(ctx, api.Destination{
		Label:            label,
		URL:              withRotation(base, n),
		Enabled:          true,
		WebhookVersion:   old.WebhookVersion,
		SubscribedEvents: old.SubscribedEvents,
	})
	if err != nil {
		return Outcome{}, admin.DiditFailure(fmt.Sprintf("nothing created: creating a copy of destination %s "+
			"(Didit answers 400 when another destination has its URL or a field is invalid)", oldID), err)
	}
	if created.UUID == "" {
		return Outcome{}, fmt.Errorf("the destination was created, but Didit named no UUID: find %q in Didit's "+
			"console, which shows its secret, and go on from there", label)
	}
	r.log().Info("created a rotated copy of a webhook destination", "destination", oldID, "new_destination", created.UUID)
	if created.Secret == "" {
		read, err := c.Destination(ctx, created.UUID)
		if err != nil || read.Secret == "" {
			return Outcome{}, fmt.Errorf("created destination %s, but could not read its secret: %w; Didit's "+
				"console shows it", created.UUID, orNoSecret(err))
		}
		created.Secret = read.Secret
	}

	newURL := created.URL
	if newURL == "" {
		newURL = withRotation(base, n)
	}
	return Outcome{
		Summary: fmt.Sprintf("Created destination %s, %q, delivering to %s: a copy of destination %s (%q) "+
			"with its events and webhook version, enabled.", created.UUID, label, newURL, oldID, old.Label),
		Secret:      created.Secret,
		SecretTitle: "The new destination's secret, shown only this once (store it now):",
		Destination: created.UUID,
		Notes: []string{
			"Both destinations now receive every event, each signed with its own secret. Until a starter has " +
				"the new secret, it answers the new destination's copies 401 but accepts the old one's, so no " +
				"event is lost; once it has both, each event arrives twice and the session workflow drops the " +
				"second copy by its event_id.",
			fmt.Sprintf("The new URL differs only by its query parameter %s=%d, since Didit wants a URL of its own "+
				"for each destination; the starter routes on the path and ignores the query.", rotationParam, n),
		},
		Steps: []Step{{
			Do: "Deploy to every starter, and restart it, with the new secret first and the current one kept " +
				"(<current value> is what DIDIT_WEBHOOK_SECRETS holds now; this command never prints it):",
			Command: "DIDIT_WEBHOOK_SECRETS=<new secret>,<current value>",
		}, {
			Do:      "Once every starter runs with both secrets, and no sooner than 10 minutes after that, disable the old destination:",
			Command: fmt.Sprintf("diditflow-admin rotate-secret --destination %s --finish-destination %s", oldID, created.UUID),
			Why: "The wait lets Didit finish retrying the deliveries made before the deploy, which only the old " +
				"destination's copies carried (Didit's last retry comes about 5 minutes after a first attempt).",
		}},
	}, nil
}

// orNoSecret is err, or a note that the answer had no secret.
func orNoSecret(err error) error {
	if err != nil {
		return err
	}
	return errors.New("no secret in Didit's answer")
}

// finishDestination is destination step 2: disable the old destination,
// once it is sure the new one delivers in its place.
func (r *Rotator) finishDestination(ctx context.Context, oldID, newID string) (Outcome, error) {
	c, err := r.didit()
	if err != nil {
		return Outcome{}, err
	}
	old, err := c.Destination(ctx, oldID)
	if err != nil {
		return Outcome{}, admin.DiditFailure("nothing disabled: reading the old destination "+oldID, err)
	}
	nu, err := c.Destination(ctx, newID)
	if err != nil {
		return Outcome{}, admin.DiditFailure("nothing disabled: reading the new destination "+newID, err)
	}
	if !nu.Enabled {
		return Outcome{}, fmt.Errorf("nothing disabled: the new destination %s is disabled, so nothing would "+
			"deliver; enable it in Didit's console first", newID)
	}
	oldBase, _, errOld := splitRotation(old.URL)
	newBase, _, errNew := splitRotation(nu.URL)
	if errOld != nil || errNew != nil || oldBase != newBase {
		return Outcome{}, fmt.Errorf("nothing disabled: destination %s delivers to %s, not to a variant of %s; "+
			"give --finish-destination the UUID that rotate-secret --destination %s printed", newID, nu.URL, old.URL, oldID)
	}

	summary := fmt.Sprintf("Disabled destination %s (%q). Destination %s (%q) now delivers alone, signed with "+
		"its own secret.", oldID, old.Label, newID, nu.Label)
	if old.Enabled {
		off := false
		if _, err := c.UpdateDestination(ctx, oldID, api.DestinationPatch{Enabled: &off}); err != nil {
			return Outcome{}, admin.DiditFailure("disabling destination "+oldID, err)
		}
		r.log().Info("disabled the old webhook destination", "destination", oldID, "new_destination", newID)
	} else {
		summary = fmt.Sprintf("Destination %s (%q) was already disabled. Destination %s (%q) delivers alone, "+
			"signed with its own secret.", oldID, old.Label, newID, nu.Label)
	}
	return Outcome{
		Summary: summary,
		Notes: []string{"The old destination is kept, disabled, with its delivery log; delete it in Didit's " +
			"console once you no longer need that log."},
		Steps: []Step{{
			Do:      "Deploy to every starter, and restart it, with only the new destination's secret (the one rotate-secret --destination printed):",
			Command: "DIDIT_WEBHOOK_SECRETS=<new secret>",
		}, {
			Do:      "If the worker sets DIDIT_WEBHOOK_DESTINATION_ID, point it at the new destination and restart the worker:",
			Command: "DIDIT_WEBHOOK_DESTINATION_ID=" + newID,
		}},
	}, nil
}

// nextRotation is the rotation number for a copy of the destination on
// rawURL: one above the highest that rawURL or any destination on a
// variant of it carries, so the new URL is unique.
func nextRotation(rawURL string, all []api.Destination) (int, error) {
	base, n, err := splitRotation(rawURL)
	if err != nil {
		return 0, err
	}
	for _, d := range all {
		if b, k, err := splitRotation(d.URL); err == nil && b == base && k > n {
			n = k
		}
	}
	return n + 1, nil
}

// splitRotation returns rawURL without its rotation parameters, and the
// highest number they carry (0 when none). The other parameters keep
// their order and spelling.
func splitRotation(rawURL string) (base string, n int, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", 0, fmt.Errorf("URL %q is not an absolute http(s) URL", rawURL)
	}
	var kept []string
	for _, part := range strings.Split(u.RawQuery, "&") {
		key, value, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil && k == rotationParam {
			if v, err := strconv.Atoi(value); err == nil && v > n {
				n = v
			}
			continue
		}
		if part != "" {
			kept = append(kept, part)
		}
	}
	u.RawQuery, u.ForceQuery = strings.Join(kept, "&"), false
	return u.String(), n, nil
}

// withRotation adds rotation=n to base, a URL without one.
func withRotation(base string, n int) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	param := rotationParam + "=" + strconv.Itoa(n)
	if u.RawQuery == "" {
		u.RawQuery = param
	} else {
		u.RawQuery += "&" + param
	}
	return u.String()
}

// rotatedLabel is label with its rotation suffix set to n.
func rotatedLabel(label string, n int) string {
	return rotatedSuffix.ReplaceAllString(label, "") + fmt.Sprintf(" (rotated %d)", n)
}
