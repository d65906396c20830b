package records

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/store"
)

// The listings show what the records hold of a session, each kind of
// record on lines of its own, and say when a session is unknown.
func TestListings(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "records.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, e := range []store.EventRecord{
		{SessionID: "s-1", EventKey: "e-1", WebhookType: string(didit.WebhookStatusUpdated), Status: string(didit.StatusInProgress),
			StatusRank: didit.StatusInProgress.Rank(), EventCreatedAt: 100, VendorData: "customer-1"},
		{SessionID: "s-1", EventKey: "e-2", WebhookType: string(didit.WebhookStatusUpdated), Status: string(didit.StatusDeclined),
			StatusRank: didit.StatusDeclined.Rank(), EventCreatedAt: 200, AMLHits: 1},
		{SessionID: "s-2", EventKey: "e-3", WebhookType: string(didit.WebhookStatusUpdated), Status: string(didit.StatusApproved),
			StatusRank: didit.StatusApproved.Rank(), EventCreatedAt: 300},
	} {
		if _, err := st.RecordEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetAttention(ctx, "s-1", true, "parked: NotifyUser: refused\nin_doubt: check the mail"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.ClaimNotification(ctx, "s-1", "user:declined:e-2", strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenAMLCase(ctx, store.AMLCase{CaseID: "aml-case-s-1", SessionID: "s-1", Hits: []store.AMLHit{{ID: "h-1"}}}); err != nil {
		t.Fatal(err)
	}

	var recent bytes.Buffer
	if err := WriteRecent(ctx, &recent, st, 10); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(recent.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SESSION") {
		t.Fatalf("recent sessions:\n%s", recent.String())
	}
	for _, want := range []string{"s-1  Declined  1", "s-2  Approved  0", "customer-1"} {
		if !strings.Contains(strings.Join(strings.Fields(recent.String()), "  "), want) {
			t.Errorf("recent sessions lack %q:\n%s", want, recent.String())
		}
	}

	var one bytes.Buffer
	if err := WriteSession(ctx, &one, st, "s-1"); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(one.String()), "\n") {
		kinds[strings.Fields(l)[0]]++
	}
	if kinds["record"] != 1 || kinds["attention"] != 2 || kinds["event"] != 2 || kinds["notice"] != 1 || kinds["AML"] != 1 {
		t.Errorf("session s-1 shows %v:\n%s", kinds, one.String())
	}
	if !strings.Contains(one.String(), "status Declined (event e-2, created 1970-01-01T00:03:20Z)") ||
		!strings.Contains(one.String(), "aml-case-s-1") {
		t.Errorf("session s-1:\n%s", one.String())
	}
	if err := WriteSession(ctx, &one, st, "s-unknown"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unknown session: %v, want store.ErrNotFound", err)
	}
}
