package fakedidit

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

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
		"session_id":     ss.id,
		"session_number": ss.number,
		"session_kind":   "user",
		"session_url":    nil,
		"status":         ss.status,
		"environment":    "sandbox",
		"workflow_id":    nil,
		"features":       []string{},
		"vendor_data":    nullable(ss.vendorData),
		"metadata":       nil,
		"callback":       nil,
		"reviews":        []any{},
		"created_at":     isoTime(ss.createdAt),
		"expires_at":     nil,
	}
	for _, f := range []string{"id_verifications", "nfc_verifications", "liveness_checks", "face_matches",
		"phone_verifications", "email_verifications", "poa_verifications", "aml_screenings", "ip_analyses",
		"database_validations", "questionnaire_responses"} {
		m[f] = nil
	}
	b, _ := json.Marshal(m)
	return b
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
	if ss.decision != nil && json.Unmarshal(ss.decision, &d) == nil && d.WorkflowID != nil {
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
