package fakedidit

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

// sessionUpdate is what Didit learns of a session at a status change: what
// a webhook body or a harness registration reports.
type sessionUpdate struct {
	id, status string
	// decision nil keeps the stored one (with the new status).
	decision json.RawMessage
	// vendorData "" keeps the stored one.
	vendorData string
	// createdAt is used only for a new session; zero means now.
	createdAt time.Time
}

// update reads the session state of a webhook body.
func (ev event) update() sessionUpdate {
	u := sessionUpdate{id: ev.str("session_id"), status: ev.str("status"), vendorData: ev.str("vendor_data")}
	if d, ok := ev["decision"].(map[string]any); ok {
		u.decision, _ = encodeJSON(d)
	}
	if n, ok := ev["created_at"].(json.Number); ok {
		if sec, err := n.Int64(); err == nil {
			u.createdAt = time.Unix(sec, 0)
		}
	}
	return u
}

// record merges u into the session it names, creating it if unknown.
func (s *Server) record(u sessionUpdate) *session {
	if u.id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[u.id]
	if !ok {
		s.nextNumber++
		ss = &session{id: u.id, number: s.nextNumber, createdAt: u.createdAt}
		if ss.createdAt.IsZero() {
			ss.createdAt = s.now()
		}
		s.sessions[u.id] = ss
	}
	if u.status != "" {
		ss.status = u.status
	}
	if u.vendorData != "" {
		ss.vendorData = u.vendorData
	}
	if u.decision != nil {
		ss.decision = u.decision
	}
	if ss.decision != nil {
		if d, err := withStatus(ss.decision, ss.status); err == nil {
			ss.decision = d
		}
	}
	return ss
}

// withStatus returns decision with its "status" set to status.
func withStatus(decision json.RawMessage, status string) (json.RawMessage, error) {
	var m map[string]any
	if err := decodeNumbers(decision, &m); err != nil {
		return nil, err
	}
	if m["status"] == status {
		return decision, nil
	}
	m["status"] = status
	return encodeJSON(m)
}

// decodeNumbers decodes JSON into v, keeping numbers as written.
func decodeNumbers(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// encodeJSON marshals v without HTML escaping, as Didit's Python does.
func encodeJSON(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// registerSession serves POST /_harness/sessions/, the harness's way to
// record a session from another process (see the package doc).
func (s *Server) registerSession(w http.ResponseWriter, r *http.Request, _ []string) {
	var in struct {
		SessionID  string          `json:"session_id"`
		Status     string          `json:"status"`
		Decision   json.RawMessage `json:"decision"`
		VendorData string          `json:"vendor_data"`
		CreatedAt  string          `json:"created_at"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	u := sessionUpdate{id: in.SessionID, status: in.Status, vendorData: in.VendorData}
	switch {
	case !isUUID(in.SessionID):
		fieldError(w, "session_id", "Must be a valid UUID.")
		return
	case !didit.Status(in.Status).Known():
		fieldError(w, "status", strconv.Quote(in.Status)+" is not a valid choice.")
		return
	}
	if d := bytes.TrimSpace(in.Decision); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		if d[0] != '{' {
			fieldError(w, "decision", "Must be a JSON object.")
			return
		}
		u.decision = append(json.RawMessage(nil), d...)
	}
	if in.CreatedAt != "" {
		t, err := time.Parse(time.RFC3339, in.CreatedAt)
		if err != nil {
			fieldError(w, "created_at", "Must be an RFC 3339 time.")
			return
		}
		u.createdAt = t
	}
	ss := s.record(u)
	s.mu.Lock()
	row := ss.row()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, row)
}

// isoTime renders a time the way Didit's API does (Python isoformat, UTC).
func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// getDecision serves GET /v3/session/{id}/decision/.
func (s *Server) getDecision(w http.ResponseWriter, _ *http.Request, ids []string) {
	s.mu.Lock()
	ss, ok := s.sessions[ids[0]]
	var body json.RawMessage
	if ok {
		body = ss.decisionJSON()
	}
	s.mu.Unlock()
	if !ok {
		notFoundJSON(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// decisionJSON is the stored decision, or the minimal one Didit has for a
// session before any feature ran.
func (ss *session) decisionJSON() json.RawMessage {
	if ss.decision != nil {
		return ss.decision
	}
	m := map[string]any{
		"session_url":      nil,
		"workflow_id":      nil,
		"features":         []string{},
		"metadata":         nil,
		"callback":         nil,
		"contact_details":  nil,
		"expected_details": nil,
		"reviews":          []any{},
		"expires_at":       nil,
	}
	for _, f := range []string{"id_verifications", "nfc_verifications", "liveness_checks", "face_matches",
		"phone_verifications", "email_verifications", "poa_verifications", "aml_screenings", "ip_analyses",
		"database_validations", "questionnaire_responses"} {
		m[f] = nil
	}
	maps.Copy(m, ss.fields())
	b, _ := json.Marshal(m)
	return b
}

// fields are the top-level decision fields the session itself decides
// (SPEC §2.4), whatever its features found: a created session's add what
// its creator gave.
func (ss *session) fields() map[string]any {
	m := map[string]any{
		"session_id":     ss.id,
		"session_number": ss.number,
		"session_kind":   "user",
		"status":         ss.status,
		"environment":    "sandbox",
		"vendor_data":    nullable(ss.vendorData),
		"created_at":     isoTime(ss.createdAt),
	}
	if h := ss.hosted; h != nil {
		m["session_url"] = h.url
		m["workflow_id"] = h.workflowID
		m["metadata"] = h.metadata
		m["callback"] = nullable(h.callback)
		m["expected_details"] = h.expected
		m["contact_details"] = nil
		if c := h.contact; c != nil {
			m["contact_details"] = map[string]any{"email": nullable(c.Email), "email_lang": nullable(c.EmailLang),
				"send_notification_emails": c.SendNotificationEmails, "phone": nullable(c.Phone)}
		}
	}
	return m
}

// sessionEvent is a webhook of the session as Didit builds one, created at
// at and reporting status; s.mu must be held.
func (s *Server) sessionEvent(ss *session, webhookType string, status didit.Status, at time.Time) event {
	ev := event{
		"event_id":       simulator.NewUUID(),
		"webhook_type":   webhookType,
		"application_id": ApplicationID,
		"environment":    "sandbox",
		"session_id":     ss.id,
		"status":         string(status),
		"created_at":     at.Unix(),
		"timestamp":      at.Unix(),
	}
	if ss.vendorData != "" {
		ev["vendor_data"] = ss.vendorData
	}
	if h := ss.hosted; h != nil {
		ev["workflow_id"], ev["workflow_version"] = h.workflowID, h.workflowVersion
		if h.metadata != nil {
			ev["metadata"] = h.metadata
		}
	}
	return ev
}

// statusEvent is the status.updated webhook of a change to status, without
// a decision; s.mu must be held.
func (s *Server) statusEvent(ss *session, status didit.Status, at time.Time) event {
	return s.sessionEvent(ss, "status.updated", status, at)
}

// nextEventTime is the created_at of the session's next webhook: now, to
// the second, and at least a second after the one before, so a receiver
// that orders a session's events by time sees them in the order they
// happened however fast a developer clicks; s.mu must be held.
func (ss *session) nextEventTime(now time.Time) time.Time {
	at := now.Truncate(time.Second)
	if !at.After(ss.lastEvent) {
		at = ss.lastEvent.Add(time.Second)
	}
	ss.lastEvent = at
	return at
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// dateRange is the inclusive date_from/date_to filter of list endpoints.
type dateRange struct{ from, to string }

// parseDates reads date_from and date_to (YYYY-MM-DD), answering 400 for
// anything else.
func parseDates(w http.ResponseWriter, r *http.Request) (dateRange, bool) {
	var d dateRange
	for name, dst := range map[string]*string{"date_from": &d.from, "date_to": &d.to} {
		v := r.URL.Query().Get(name)
		if v == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			fieldError(w, name, "Enter a valid date.")
			return d, false
		}
		*dst = v
	}
	return d, true
}

func (d dateRange) contains(t time.Time) bool {
	day := t.UTC().Format(time.DateOnly)
	return (d.from == "" || day >= d.from) && (d.to == "" || day <= d.to)
}

// listSessions serves GET /v3/sessions/: filters status (comma list, exact
// match), vendor_data, date_from/date_to on the creation date; newest first.
func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, _ []string) {
	dates, ok := parseDates(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var statuses []string
	if v := q.Get("status"); v != "" {
		statuses = strings.Split(v, ",")
	}
	vendor, hasVendor := q.Get("vendor_data"), q.Has("vendor_data")

	s.mu.Lock()
	var matched []*session
	for _, ss := range s.sessions {
		if (statuses == nil || slices.Contains(statuses, ss.status)) &&
			(!hasVendor || ss.vendorData == vendor) && dates.contains(ss.createdAt) {
			matched = append(matched, ss)
		}
	}
	slices.SortFunc(matched, func(a, b *session) int {
		if c := b.createdAt.Compare(a.createdAt); c != 0 {
			return c
		}
		return b.number - a.number
	})
	p := paginate(r, len(matched))
	lo, hi := p.window(len(matched))
	rows := make([]map[string]any, 0, hi-lo)
	for _, ss := range matched[lo:hi] {
		rows = append(rows, ss.row())
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, p.body(len(matched), rows))
}

// row is a session as the sessions list shows it.
func (ss *session) row() map[string]any {
	var workflow any
	var d struct {
		WorkflowID *string `json:"workflow_id"`
	}
	switch {
	case ss.hosted != nil:
		workflow = ss.hosted.workflowID
	case ss.decision != nil && json.Unmarshal(ss.decision, &d) == nil && d.WorkflowID != nil:
		workflow = *d.WorkflowID
	}
	return map[string]any{
		"session_id":     ss.id,
		"session_number": ss.number,
		"session_kind":   "user",
		"status":         ss.status,
		"vendor_data":    nullable(ss.vendorData),
		"workflow_id":    workflow,
		"created_at":     isoTime(ss.createdAt),
	}
}
