package kyc_test

import (
	"path/filepath"
	"testing"

	"github.com/diditflow/diditflow/internal/harness/business"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/kyctest"
)

// TestRecordedHistoriesReplay replays the histories of a business's
// workflows recorded end to end (go test ./internal/harness/e2e -run ...
// -args -update-replay): kyc runs inside the business's histories, so a
// change to the commands its calls issue, which a workflow waiting in
// production would not survive, fails here (docs/VERSIONS.md).
func TestRecordedHistoriesReplay(t *testing.T) {
	t.Setenv("PAYLOAD_ENCRYPTION", "on")
	t.Setenv("PAYLOAD_ENCRYPTION_KEYS", launch.PayloadKeys)
	files, _ := filepath.Glob(filepath.Join("testdata", "replay", "*.json"))
	if len(files) < 4 {
		t.Fatalf("%d recorded histories, want those of await-decided, await-open, await-timeout and onboard", len(files))
	}
	kyctest.Replay(t, filepath.Join("testdata", "replay", "*.json"), business.Await, business.Onboard)
}
