package kyctest

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/diditflow/diditflow/kyc"
)

// Replay replays every history that pattern matches (JSON, as `temporal
// workflow show --output json` writes it, or the Temporal UI downloads it)
// through workflows, registered by their function names, and fails t for
// each the code no longer reproduces: a change to the business's workflow,
// or to kyc's workflow-side code, that a workflow running in production
// would not survive. Histories recorded with payload encryption replay with
// the keys kyc.ConfigureClient reads (PAYLOAD_ENCRYPTION_KEYS).
func Replay(t testing.TB, pattern string, workflows ...any) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("kyctest.Replay: no history matches %s", pattern)
	}
	var opts client.Options
	if err := kyc.ConfigureClient(&opts); err != nil {
		t.Fatal(err)
	}
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter: opts.DataConverter, FailureConverter: opts.FailureConverter,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range workflows {
		r.RegisterWorkflow(w)
	}
	for _, f := range files {
		if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
			t.Errorf("%s does not replay: %v", f, err)
		}
	}
}
