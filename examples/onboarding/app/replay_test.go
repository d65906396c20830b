package app

import (
	"testing"

	"github.com/diditflow/diditflow/kyctest"
)

// recordedWith is the payload key the recorded histories are encrypted
// with: diditflow's end-to-end tests' own, which protects nothing. A
// business replays its histories with its own keys, from its environment.
const recordedWith = "harness:X6GlX+ygP6kCoq059an51BH1l7ZlaWWztDOHnB77gsg="

// TestRecordedHistoriesReplay replays histories of Onboarding and
// OnKYCEvent recorded end to end (go test ./internal/harness/e2e -run
// TestOnboardingExampleInTheBrowser -args -update-replay) through today's
// code: a change to the workflows, or to kyc's calls inside them, that a
// running workflow would not survive fails here.
func TestRecordedHistoriesReplay(t *testing.T) {
	t.Setenv("PAYLOAD_ENCRYPTION", "on")
	t.Setenv("PAYLOAD_ENCRYPTION_KEYS", recordedWith)
	kyctest.Replay(t, "testdata/replay/*.json", Onboarding, OnKYCEvent)
}
