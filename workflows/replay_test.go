package workflows

import (
	"log/slog"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/diditflow/diditflow/internal/codec"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

// TestReplayRecordedHistories replays histories recorded from real runs
// (go test ./internal/harness/e2e -run ... -args -update-replay), their
// payloads encrypted with launch.PayloadKeys. A change to the workflow code
// that would break running workflows fails here: before the first release
// it re-records the histories, from then on it is versioned
// (docs/VERSIONS.md).
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "replay", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded histories: %v", err)
	}
	logger := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			dc := launch.Codec().DataConverter()
			r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
				DataConverter: dc, FailureConverter: codec.FailureConverter(dc),
			})
			if err != nil {
				t.Fatal(err)
			}
			(&Workflows{Settings: DefaultSettings()}).Register(r)
			if err := r.ReplayWorkflowHistoryFromJSONFile(logger, f); err != nil {
				t.Fatalf("replay: %v", err)
			}
		})
	}
}
