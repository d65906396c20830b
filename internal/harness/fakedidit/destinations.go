package fakedidit

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/diditflow/diditflow/internal/harness/simulator"
)

// destination is a webhook destination (SPEC §4.2). The default one is also
// the legacy webhook config.
type destination struct {
	uuid, label, url     string
	enabled              bool
	version              string
	events               []string
	secret               string
	createdAt, updatedAt time.Time
	deleted              bool
}

// legacyConfig holds the legacy webhook settings that destinations lack.
type legacyConfig struct {
	webhookVersion  string
	captureMethod   string
	retentionMonths *int
}

var knownEvents = []string{
	"status.updated", "data.updated", "user.status.updated", "user.data.updated",
	"business.status.updated", "business.data.updated", "activity.created",
	"transaction.created", "transaction.status.updated", "travel_rule.status.updated",
}

var webhookVersions = []string{"v1", "v2", "v3"}

func (d *destination) live() bool { return !d.deleted }

// destination returns a copy of a live destination.
func (s *Server) destination(uuid string) (destination, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.findDest(uuid); d != nil {
		return *d, true
	}
	return destination{}, false
}

// findDest finds a live destination; s.mu must be held.
func (s *Server) findDest(uuid string) *destination {
	for _, d := range s.dests {
		if d.uuid == uuid && d.live() {
			return d
		}
	}
	return nil
}

// newSecret is a 43-character URL-safe token, like Didit's.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// row is a destination as the list shows it: no secret.
func (d *destination) row() map[string]any {
	return map[string]any{
		"uuid":              d.uuid,
		"label":             d.label,
		"url":               d.url,
		"enabled":           d.enabled,
		"webhook_version":   d.version,
		"subscribed_events": slices.Clone(d.events),
		"created_at":        isoTime(d.createdAt),
		"updated_at":        isoTime(d.updatedAt),
	}
}

// detailed adds the secret, as GET one and POST return it.
func (d *destination) detailed() map[string]any {
	m := d.row()
	m["secret_shared_key"] = d.secret
	return m
}

// listDestinations serves GET /v3/webhook/destinations/: oldest first.
func (s *Server) listDestinations(w http.ResponseWriter, _ *http.Request, _ []string) {
	s.mu.Lock()
	rows := []map[string]any{}
	for _, d := range s.dests {
		if d.live() {
			rows = append(rows, d.row())
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, rows)
}

// destinationInput is the body of POST and PATCH; nil fields are absent.
type destinationInput struct {
	Label            *string   `json:"label"`
	URL              *string   `json:"url"`
	Enabled          *bool     `json:"enabled"`
	WebhookVersion   *string   `json:"webhook_version"`
	SubscribedEvents *[]string `json:"subscribed_events"`
}

// validate checks the present fields, answering 400 for the first bad one.
// self is the destination being patched (excluded from the url check).
func (s *Server) validate(w http.ResponseWriter, in destinationInput, self string) bool {
	switch {
	case in.Label != nil && *in.Label == "":
		fieldError(w, "label", "This field may not be blank.")
	case in.URL != nil && !validURL(*in.URL):
		fieldError(w, "url", "Enter a valid URL.")
	case in.URL != nil && s.urlTaken(*in.URL, self):
		fieldError(w, "url", "webhook destination with this url already exists.")
	case in.WebhookVersion != nil && !slices.Contains(webhookVersions, *in.WebhookVersion):
		fieldError(w, "webhook_version", "\""+*in.WebhookVersion+"\" is not a valid choice.")
	case in.SubscribedEvents != nil && len(*in.SubscribedEvents) == 0:
		fieldError(w, "subscribed_events", "Select at least one event.")
	case in.SubscribedEvents != nil && !allKnown(*in.SubscribedEvents):
		fieldError(w, "subscribed_events", "Unknown event type.")
	default:
		return true
	}
	return false
}

func validURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func allKnown(events []string) bool {
	for _, e := range events {
		if !slices.Contains(knownEvents, e) {
			return false
		}
	}
	return true
}

func (s *Server) urlTaken(u, self string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.dests {
		if d.live() && d.url == u && d.uuid != self {
			return true
		}
	}
	return false
}

// createDestination serves POST /v3/webhook/destinations/.
func (s *Server) createDestination(w http.ResponseWriter, r *http.Request, _ []string) {
	var in destinationInput
	if !readJSON(w, r, &in) {
		return
	}
	switch {
	case in.Label == nil:
		fieldError(w, "label", "This field is required.")
		return
	case in.URL == nil:
		fieldError(w, "url", "This field is required.")
		return
	}
	if !s.validate(w, in, "") {
		return
	}
	now := s.now()
	d := &destination{uuid: simulator.NewUUID(), enabled: true, version: "v3", events: []string{},
		secret: newSecret(), createdAt: now, updatedAt: now}
	d.apply(in)
	s.mu.Lock()
	s.dests = append(s.dests, d)
	body := d.detailed()
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, body)
}

// apply copies the present fields; subscribed_events is replaced wholesale.
func (d *destination) apply(in destinationInput) {
	if in.Label != nil {
		d.label = *in.Label
	}
	if in.URL != nil {
		d.url = *in.URL
	}
	if in.Enabled != nil {
		d.enabled = *in.Enabled
	}
	if in.WebhookVersion != nil {
		d.version = *in.WebhookVersion
	}
	if in.SubscribedEvents != nil {
		d.events = slices.Clone(*in.SubscribedEvents)
	}
}

// getDestination serves GET /v3/webhook/destinations/{uuid}/, secret included.
func (s *Server) getDestination(w http.ResponseWriter, _ *http.Request, ids []string) {
	d, ok := s.destination(ids[0])
	if !ok {
		notFoundJSON(w)
		return
	}
	writeJSON(w, http.StatusOK, d.detailed())
}

// patchDestination serves PATCH /v3/webhook/destinations/{uuid}/; it never
// rotates the secret.
func (s *Server) patchDestination(w http.ResponseWriter, r *http.Request, ids []string) {
	if _, ok := s.destination(ids[0]); !ok {
		notFoundJSON(w)
		return
	}
	var in destinationInput
	if !readJSON(w, r, &in) || !s.validate(w, in, ids[0]) {
		return
	}
	s.mu.Lock()
	d := s.findDest(ids[0])
	if d == nil {
		s.mu.Unlock()
		notFoundJSON(w)
		return
	}
	d.apply(in)
	d.updatedAt = s.now()
	body := d.detailed()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// deleteDestination serves DELETE /v3/webhook/destinations/{uuid}/ (soft).
func (s *Server) deleteDestination(w http.ResponseWriter, _ *http.Request, ids []string) {
	s.mu.Lock()
	d := s.findDest(ids[0])
	if d != nil {
		d.deleted = true
	}
	s.mu.Unlock()
	if d == nil {
		notFoundJSON(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// legacyBody is GET /v3/webhook/'s answer; s.mu must be held.
func (s *Server) legacyBody() map[string]any {
	var hook any
	secret := ""
	if d := s.findDest(DefaultDestinationUUID); d != nil {
		secret = d.secret
		if d.enabled && d.url != "" {
			hook = d.url
		}
	}
	var retention any
	if s.legacy.retentionMonths != nil {
		retention = *s.legacy.retentionMonths
	}
	return map[string]any{
		"webhook_url":           hook,
		"webhook_version":       s.legacy.webhookVersion,
		"secret_shared_key":     secret,
		"capture_method":        s.legacy.captureMethod,
		"data_retention_months": retention,
	}
}

// getLegacy serves GET /v3/webhook/.
func (s *Server) getLegacy(w http.ResponseWriter, _ *http.Request, _ []string) {
	s.mu.Lock()
	body := s.legacyBody()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// legacyInput is PATCH /v3/webhook/'s body. Raw fields tell absent from null.
type legacyInput struct {
	WebhookURL          json.RawMessage `json:"webhook_url"`
	WebhookVersion      *string         `json:"webhook_version"`
	RotateSecretKey     bool            `json:"rotate_secret_key"`
	CaptureMethod       *string         `json:"capture_method"`
	DataRetentionMonths json.RawMessage `json:"data_retention_months"`
}

// patchLegacy serves PATCH /v3/webhook/. A rotated secret replaces the old
// one at once for every later signature (SPEC §4.1); webhook_url null
// disables deliveries to the default destination.
func (s *Server) patchLegacy(w http.ResponseWriter, r *http.Request, _ []string) {
	var in legacyInput
	if !readJSON(w, r, &in) {
		return
	}
	hookURL, clearURL, ok := parseNullableURL(w, in.WebhookURL)
	if !ok {
		return
	}
	retention, clearRetention, ok := parseRetention(w, in.DataRetentionMonths)
	if !ok {
		return
	}
	switch {
	case in.WebhookVersion != nil && !slices.Contains(webhookVersions, *in.WebhookVersion):
		fieldError(w, "webhook_version", "\""+*in.WebhookVersion+"\" is not a valid choice.")
		return
	case in.CaptureMethod != nil && !slices.Contains([]string{"mobile", "desktop", "both"}, *in.CaptureMethod):
		fieldError(w, "capture_method", "\""+*in.CaptureMethod+"\" is not a valid choice.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.findDest(DefaultDestinationUUID); d != nil {
		switch {
		case clearURL:
			d.enabled = false
		case hookURL != "":
			d.url, d.enabled = hookURL, true
		}
		if in.RotateSecretKey {
			d.secret = newSecret()
		}
		if in.WebhookVersion != nil {
			d.version = *in.WebhookVersion
		}
		d.updatedAt = s.now()
	}
	if in.WebhookVersion != nil {
		s.legacy.webhookVersion = *in.WebhookVersion
	}
	if in.CaptureMethod != nil {
		s.legacy.captureMethod = *in.CaptureMethod
	}
	if clearRetention {
		s.legacy.retentionMonths = nil
	} else if retention != nil {
		s.legacy.retentionMonths = retention
	}
	writeJSON(w, http.StatusOK, s.legacyBody())
}

// parseNullableURL reads webhook_url: absent, null (clear) or a URL.
func parseNullableURL(w http.ResponseWriter, raw json.RawMessage) (u string, clear, ok bool) {
	if raw == nil {
		return "", false, true
	}
	if string(raw) == "null" {
		return "", true, true
	}
	if json.Unmarshal(raw, &u) != nil || !validURL(u) {
		fieldError(w, "webhook_url", "Enter a valid URL.")
		return "", false, false
	}
	return u, false, true
}

// parseRetention reads data_retention_months: absent, null or 1–120.
func parseRetention(w http.ResponseWriter, raw json.RawMessage) (months *int, clear, ok bool) {
	if raw == nil {
		return nil, false, true
	}
	if string(raw) == "null" {
		return nil, true, true
	}
	var n int
	if json.Unmarshal(raw, &n) != nil || n < 1 || n > 120 {
		fieldError(w, "data_retention_months", "Ensure this value is between 1 and 120.")
		return nil, false, false
	}
	return &n, false, true
}
