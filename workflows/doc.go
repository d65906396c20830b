// Package workflows holds diditflow's deterministic Temporal workflow code.
// It never does I/O; activities do.
//
// # Determinism
//
// Temporal's analyzer, workflowcheck, runs over this package in make test.
// It flags every call that reaches encoding/json's decoder, only because,
// deep in reflect and the runtime, an allocation may start the garbage
// collector's worker goroutines (its sole reasons are
// runtime.gcBgMarkStartWorkers and gcBgMarkWorker); decoding bytes is
// deterministic. Such calls go through decodeJSON, or carry a
// //workflowcheck:ignore that points here.
package workflows

import (
	"encoding/json"
)

// decodeJSON decodes raw into v, as the SDK's data converter would, for the
// signals a workflow decodes itself (to record what it rejects).
func decodeJSON(raw json.RawMessage, v any) error {
	// See "Determinism" in the package comment.
	//workflowcheck:ignore
	return json.Unmarshal(raw, v)
}
