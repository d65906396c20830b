package chaos

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/internal/harness/launch"
)

// TestChaosShort is the short chaos run: every fault once, a short soak.
// make chaos runs the full one (cmd/chaos).
func TestChaosShort(t *testing.T) {
	if _, err := launch.TemporalCLI(); err != nil {
		launch.Unavailable(t, "temporal CLI", err)
	}
	var log strings.Builder
	ctx := context.Background()
	s, err := Start(ctx, Config{
		Dir: t.TempDir(), Secret: "chaos-secret",
		StepBudget: 20 * time.Second, IdleWindow: 3 * time.Second, Log: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res := Run(ctx, s, ShortPlan)
	var table strings.Builder
	res.Print(&table)
	t.Logf("progress:\n%s\nfigures:\n%s", log.String(), table.String())
	if !res.OK() {
		t.Fatal("chaos run found lost, duplicated or mishandled events")
	}
}
