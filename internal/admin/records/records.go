// Package records prints the business's verification records for an
// operator, as diditflow-records shows them: the most recent sessions, or
// one session's record, events, notices and AML cases.
package records

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/diditflow/diditflow/internal/store"
)

// Store is what the listings read of the records.
type Store interface {
	RecentSessions(ctx context.Context, limit int) ([]store.SessionRecord, error)
	Session(ctx context.Context, sessionID string) (store.SessionRecord, error)
	Events(ctx context.Context, sessionID string) ([]store.Event, error)
	Notifications(ctx context.Context, sessionID string) ([]store.Notification, error)
	AMLCases(ctx context.Context, sessionID string) ([]store.AMLCase, error)
}

// WriteRecent writes the limit most recently updated sessions, one a line.
func WriteRecent(ctx context.Context, out io.Writer, st Store, limit int) error {
	vs, err := st.RecentSessions(ctx, limit)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SESSION\tSTATUS\tAML HITS\tATTENTION\tVENDOR DATA\tUPDATED")
	for _, v := range vs {
		fmt.Fprintf(w, "%s\t%s\t%d\t%t\t%s\t%s\n", v.SessionID, v.Status, v.AMLHits, v.NeedsAttention, v.VendorData, v.UpdatedAt.Format(time.RFC3339))
	}
	return w.Flush()
}

// WriteSession writes one session: its record, then a line per reason it
// needs attention, event, notice and AML case.
func WriteSession(ctx context.Context, out io.Writer, st Store, sessionID string) error {
	v, err := st.Session(ctx, sessionID)
	if err != nil {
		return err
	}
	events, err := st.Events(ctx, sessionID)
	if err != nil {
		return err
	}
	notes, err := st.Notifications(ctx, sessionID)
	if err != nil {
		return err
	}
	cases, err := st.AMLCases(ctx, sessionID)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "record\t%s\tstatus %s (event %s, created %s)\tAML hits %d\tneeds attention %t\n",
		v.SessionID, v.Status, v.EventKey, unixTime(v.EventCreatedAt), v.AMLHits, v.NeedsAttention)
	if !v.ErasedAt.IsZero() {
		fmt.Fprintf(w, "erased\t%s\tlater events recorded without personal data; no notice sent, nothing fetched\n",
			v.ErasedAt.Format(time.RFC3339))
	}
	for _, reason := range strings.Split(v.Attention, "\n") {
		if reason != "" {
			fmt.Fprintf(w, "attention\t%s\n", reason)
		}
	}
	for _, e := range events {
		fmt.Fprintf(w, "event\t%s\t%s %s\tcreated %s\tapplied %t\n", e.EventKey, e.WebhookType, e.Status,
			unixTime(e.EventCreatedAt), e.Applied)
	}
	for _, n := range notes {
		fmt.Fprintf(w, "notice\t%s\t%s\tattempts %d\t%s\n", n.Kind, n.State, n.Attempts, n.Detail)
	}
	for _, c := range cases {
		resolution := "unresolved"
		if c.Resolution != nil {
			resolution = fmt.Sprintf("%s by %s", c.Resolution.Outcome, c.Resolution.Reviewer)
			if c.Resolution.Identity != "" {
				resolution += " (via " + c.Resolution.Identity + ")"
			}
		}
		fmt.Fprintf(w, "AML case\t%s\t%s\t%d hit(s)\treminders %d, escalated %t\t%s\tneeds attention %t\n",
			c.CaseID, c.State, len(c.Hits), c.RemindersSent, c.Escalated, resolution, c.NeedsAttention)
	}
	return w.Flush()
}

func unixTime(sec int64) string { return time.Unix(sec, 0).UTC().Format(time.RFC3339) }
