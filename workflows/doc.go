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
	"bytes"
	"encoding/json"
	"errors"
)

// decodeJSON decodes raw into v, as the SDK's data converter would, for the
// signals a workflow decodes itself (to record what it rejects).
func decodeJSON(raw json.RawMessage, v any) error {
	// See "Determinism" in the package comment.
	//workflowcheck:ignore
	return json.Unmarshal(raw, v)
}

// decodeStrictJSON decodes raw, one JSON value, into v and refuses a field v
// does not have: an Update's input, which can be refused, is read as the
// caller meant it or not at all (a misspelt "step" would otherwise release
// every parked step).
func decodeStrictJSON(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	// See "Determinism" in the package comment.
	//workflowcheck:ignore
	if err := dec.Decode(v); err != nil {
		return err
	}
	//workflowcheck:ignore
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}
