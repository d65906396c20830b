// Package cases is compliance's view of the AML cases, for diditflow-admin:
// the open cases (cases), one case's hits (case) and a case's resolution
// through the AMLCase workflow's resolve Update (resolve). The listings read
// the records, never Temporal's payloads; names, which the records do not
// keep (docs/PRIVACY.md), come from Didit's API on demand.
package cases

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
)

// DefaultLimit is how many open cases List shows unless told.
const DefaultLimit = 100

// Store is what the listings read of the records.
type Store interface {
	OpenAMLCases(ctx context.Context, limit int) ([]store.AMLCase, int, error)
	AMLCase(ctx context.Context, caseID string) (store.AMLCase, error)
	Session(ctx context.Context, sessionID string) (store.SessionRecord, error)
}

// Summary is one open case as the listing shows it.
type Summary struct {
	CaseID     string    `json:"case_id"`
	SessionID  string    `json:"session_id"`
	FollowUpOf string    `json:"follow_up_of,omitempty"`
	OpenedAt   time.Time `json:"opened_at"`
	// AgeSeconds is how long the case has been open.
	AgeSeconds int64 `json:"age_seconds"`
	Reminders  int   `json:"reminders"`
	// Escalated is the record's flag: set once the reminders reached
	// AML_ESCALATE_AFTER and the escalation contact was added.
	Escalated bool `json:"escalated"`
	// HitsReviewed counts the hits with a final review status in Didit
	// (Reviewed); Hits counts them all.
	HitsReviewed   int  `json:"hits_reviewed"`
	Hits           int  `json:"hits"`
	NeedsAttention bool `json:"needs_attention"`
}

// Listing is the open cases, oldest first, and how many there are in all.
type Listing struct {
	Cases []Summary `json:"cases"`
	Open  int       `json:"open"`
	// More is how many open cases the limit left out.
	More int `json:"more"`
}

// List reads the limit oldest open cases, their ages as of now.
func List(ctx context.Context, st Store, limit int, now time.Time) (Listing, error) {
	cs, open, err := st.OpenAMLCases(ctx, limit)
	if err != nil {
		return Listing{}, err
	}
	l := Listing{Cases: make([]Summary, 0, len(cs)), Open: open, More: open - len(cs)}
	for _, c := range cs {
		s := Summary{CaseID: c.CaseID, SessionID: c.SessionID, FollowUpOf: c.FollowUpOf, OpenedAt: c.OpenedAt.UTC(),
			AgeSeconds: int64(max(now.Sub(c.OpenedAt), 0) / time.Second), Reminders: c.RemindersSent, Escalated: c.Escalated,
			Hits: len(c.Hits), NeedsAttention: c.NeedsAttention}
		for _, h := range c.Hits {
			if contract.Final(h.ReviewStatus) {
				s.HitsReviewed++
			}
		}
		l.Cases = append(l.Cases, s)
	}
	return l, nil
}

// WriteText writes the listing as a table, then what the limit left out.
func (l Listing) WriteText(out io.Writer) error {
	if len(l.Cases) == 0 {
		_, err := fmt.Fprintln(out, "No open AML case.")
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CASE\tSESSION\tOPENED\tAGE\tREMINDERS\tESCALATED\tREVIEWED\tATTENTION")
	for _, c := range l.Cases {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%d of %d\t%s\n", c.CaseID, c.SessionID, c.OpenedAt.Format(time.RFC3339),
			Age(time.Duration(c.AgeSeconds)*time.Second), c.Reminders, yes(c.Escalated), c.HitsReviewed, c.Hits, yes(c.NeedsAttention))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var err error
	if l.More > 0 {
		_, err = fmt.Fprintf(out, "%d more open, newer: raise --limit to see them (%d open in all).\n", l.More, l.Open)
	}
	return err
}

// WriteJSON writes the listing as one JSON object.
func (l Listing) WriteJSON(out io.Writer) error { return writeJSON(out, l) }

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}

// Age is d for a person: days and hours, hours and minutes, or minutes.
func Age(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}
