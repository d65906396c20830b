package erasure

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/diditflow/diditflow/internal/admin"
	"github.com/diditflow/diditflow/internal/store"
)

// Report is what an erasure did: erase's whole output.
type Report struct {
	// ByVendorData is true when the sessions were found by vendor_data,
	// which the report never shows.
	ByVendorData bool `json:"by_vendor_data"`
	// SMTP is true when the worker sends mail over SMTP: no outbox to clean.
	SMTP     bool            `json:"smtp,omitempty"`
	Sessions []SessionReport `json:"sessions"`
}

// Complete reports whether every session was erased in full.
func (r Report) Complete() bool {
	for _, s := range r.Sessions {
		if len(s.Left) > 0 {
			return false
		}
	}
	return true
}

// WriteJSON writes the report as one JSON object.
func (r Report) WriteJSON(w io.Writer) error {
	if r.Sessions == nil {
		r.Sessions = []SessionReport{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person: a paragraph per session.
func (r Report) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	if len(r.Sessions) == 0 {
		if r.ByVendorData {
			admin.WriteWrapped(b, "No session record holds this vendor_data: nothing erased. A session erased or purged "+
				"before no longer holds it; erase it by --session <id> (a run that failed part way says which).", "", "")
		}
		return b.Flush()
	}
	for i, s := range r.Sessions {
		if i > 0 {
			b.WriteString("\n")
		}
		head := "Erased session " + s.SessionID + "."
		if len(s.Left) > 0 {
			head = "Session " + s.SessionID + " is not fully erased."
		}
		admin.WriteWrapped(b, head, "", "")
		for _, line := range s.lines(r.SMTP) {
			admin.WriteWrapped(b, line, "  - ", "    ")
		}
		for _, why := range s.Left {
			admin.WriteWrapped(b, "left: "+why, "  ! ", "    ")
		}
	}
	return b.Flush()
}

// lines are what was removed, one line per place.
func (s SessionReport) lines(smtp bool) []string {
	var out []string
	if rec := s.Records; rec != nil {
		switch {
		case !rec.Found:
			out = append(out, "records: no record of the session; it is marked erased, so that an event Didit sends "+
				"later is recorded without personal data")
		default:
			out = append(out, fmt.Sprintf("records: %s of the session, %s and %s blanked; statuses, events and decisions' facts kept",
				admin.Plural(rec.Fields, "personal field"), admin.Plural(rec.Notifications, "notification"), admin.Plural(rec.AMLCases, "AML case record")))
		}
	}
	switch {
	case smtp:
		out = append(out, "mail: sent over SMTP, so it is with its recipients; nothing kept locally")
	case s.Records != nil:
		out = append(out, fmt.Sprintf("outbox: %s removed", admin.Plural(s.Mails, "mail")))
	}
	if s.Records != nil || s.Deleted > 0 {
		line := fmt.Sprintf("Temporal: %s deleted", admin.Plural(s.Deleted, "execution"))
		if s.Terminated > 0 {
			line += fmt.Sprintf(" (%d terminated first)", s.Terminated)
		}
		if s.Meanwhile > 0 {
			line += fmt.Sprintf(", %d of them started while erase ran and found when it listed the runs again", s.Meanwhile)
		}
		if s.Deleted > 0 {
			line += "; the server removes their histories in the background"
		}
		out = append(out, line)
	}
	switch s.Didit {
	case "deleted":
		out = append(out, "Didit: its copy of the session deleted")
	case "not found":
		out = append(out, "Didit: has no such session (already deleted, or outside DIDIT_API_KEY's scope)")
	}
	return out
}

// SessionReport is what the erasure of one session removed, in counts, and
// what it left and why.
type SessionReport struct {
	SessionID string `json:"session_id"`
	// Left says what was not removed and why; empty when the session is
	// erased.
	Left []string `json:"left,omitempty"`
	// Records is what the records lost; nil when they were not touched.
	Records    *store.EraseResult `json:"records,omitempty"`
	Mails      int                `json:"mails_removed"`
	Terminated int                `json:"executions_terminated"`
	Deleted    int                `json:"executions_deleted"`
	// Meanwhile counts the executions that started while erase ran (a
	// delivery of Didit's, a reconcile run), found when it listed the runs
	// again after deleting them.
	Meanwhile int `json:"executions_started_meanwhile,omitempty"`
	// Didit is "deleted", "not found", or empty when not asked.
	Didit string `json:"didit,omitempty"`
}
