package workflows

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
)

// TestCarriedStateKeepsItsShape: continue-as-new carries a session's state,
// parked notices and AML cases included, to the next run as JSON, outside
// the recorded histories the replay test reads (its input is exempt from
// the golden payload test). Renaming a field there strands what open runs
// carry: after the first release that is a versioned change
// (docs/VERSIONS.md), so the shape is pinned here. A deliberate change
// rewrites testdata/carried-state.json with UPDATE_CARRIED_STATE=1.
func TestCarriedStateKeepsItsShape(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	score := 86.0
	state := SessionState{
		SessionID: "9b2f4c1e", Status: didit.StatusApproved, VendorData: "user-1", AMLHit: true, AMLCase: true,
		Seen:      []string{"evt-1"},
		History:   []HandledEvent{{Key: "evt-1", WebhookType: didit.WebhookStatusUpdated, Status: didit.StatusApproved, CreatedAt: 1767225391, Outcome: "applied"}},
		Forgotten: 1,
		Flags:     []Flag{{ID: 1, Kind: FlagUndeliverable, Reason: "no address", Since: at}},
		Parked:    []ParkedStep{{ID: 2, Step: "notify user: approved (event evt-1)", Error: "550", Since: at}},
		Decisions: []OperatorDecision{{Step: "record event evt-0", Action: "retry", Operator: "ops", Note: "db back", At: at}},
		Effects: []PendingEffect{
			{EventKey: "evt-1", Notice: &activities.UserNotice{SessionID: "9b2f4c1e", Kind: activities.NoticeApproved, Key: "approved:evt-1",
				Email: "", FromRecords: true, WaitForAddress: true, NoDecision: "404", Redo: []string{"DOCUMENT"}}},
			{EventKey: "evt-2", Case: &activities.AMLCase{CaseID: "aml-case-9b2f4c1e-2", FollowUpOf: "aml-case-9b2f4c1e", SessionID: "9b2f4c1e",
				Status: didit.StatusInReview, VendorData: "user-1", Hits: []didit.AMLHit{{ID: "hit-1", NodeID: "aml-1", Match: true,
					Datasets: []string{"PEP"}, MatchScore: &score, RiskScore: &score, ReviewStatus: didit.ReviewUnreviewed}}}},
		},
		ContactEmail: "user@example.com", Unconfirmed: true,
		Cases: []string{"aml-case-9b2f4c1e"}, CasedHits: []string{"hit-1"}, CasesKnown: true, Erased: true, Runs: 3,
	}
	got, err := json.MarshalIndent(SessionInput{State: &state}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "carried-state.json")
	if os.Getenv("UPDATE_CARRIED_STATE") != "" {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Fatalf("the carried state's JSON changed:\n%s\nwant (%s):\n%s", got, golden, want)
	}
}
