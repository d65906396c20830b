// Command diditflow-records prints the business's verification records from
// the worker's database (DATABASE_URL, default .data/diditflow.db): the most
// recent sessions, or one session's record, events, notices and AML case.
//
//	go run ./cmd/diditflow-records
//	go run ./cmd/diditflow-records -session <session_id>
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/diditflow/diditflow/internal/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "diditflow-records:", err)
		os.Exit(1)
	}
}

func run() error {
	dsn := os.Getenv("DATABASE_URL")
	if dsn == "" {
		dsn = ".data/diditflow.db"
	}
	session := flag.String("session", "", "show this session in detail")
	limit := flag.Int("n", 20, "how many recent sessions to list")
	flag.Parse()

	ctx := context.Background()
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()

	if *session == "" {
		vs, err := st.RecentSessions(ctx, *limit)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "SESSION\tSTATUS\tAML HITS\tATTENTION\tVENDOR DATA\tUPDATED")
		for _, v := range vs {
			fmt.Fprintf(w, "%s\t%s\t%d\t%t\t%s\t%s\n", v.SessionID, v.Status, v.AMLHits, v.NeedsAttention, v.VendorData, v.UpdatedAt.Format(time.RFC3339))
		}
		return nil
	}

	v, err := st.Session(ctx, *session)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "record\t%s\tstatus %s (event %s, created %s)\tAML hits %d\tneeds attention %t\n",
		v.SessionID, v.Status, v.EventKey, time.Unix(v.EventCreatedAt, 0).UTC().Format(time.RFC3339), v.AMLHits, v.NeedsAttention)
	if !v.ErasedAt.IsZero() {
		fmt.Fprintf(w, "erased\t%s\tlater events recorded without personal data; no notice sent, nothing fetched\n",
			v.ErasedAt.Format(time.RFC3339))
	}
	for _, reason := range strings.Split(v.Attention, "\n") {
		if reason != "" {
			fmt.Fprintf(w, "attention\t%s\n", reason)
		}
	}
	events, err := st.Events(ctx, *session)
	if err != nil {
		return err
	}
	for _, e := range events {
		fmt.Fprintf(w, "event\t%s\t%s %s\tcreated %s\tapplied %t\n", e.EventKey, e.WebhookType, e.Status,
			time.Unix(e.EventCreatedAt, 0).UTC().Format(time.RFC3339), e.Applied)
	}
	notes, err := st.Notifications(ctx, *session)
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintf(w, "notice\t%s\t%s\tattempts %d\t%s\n", n.Kind, n.State, n.Attempts, n.Detail)
	}
	cases, err := st.AMLCases(ctx, *session)
	if err != nil {
		return err
	}
	for _, c := range cases {
		resolution := "unresolved"
		if c.Resolution != nil {
			resolution = fmt.Sprintf("%s by %s", c.Resolution.Outcome, c.Resolution.Reviewer)
		}
		fmt.Fprintf(w, "AML case\t%s\t%s\t%d hit(s)\treminders %d, escalated %t\t%s\tneeds attention %t\n",
			c.CaseID, c.State, len(c.Hits), c.RemindersSent, c.Escalated, resolution, c.NeedsAttention)
	}
	return nil
}
