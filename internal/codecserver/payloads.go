package codecserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

// requestError is a call refused for its body: the status and a short
// reason, written for the caller and the audit line. The reason never
// quotes the body (protojson's own errors do).
type requestError struct {
	status int
	reason string
}

func (e *requestError) Error() string { return e.reason }

// readPayloads reads r's body, at most limit bytes, checks that it is a
// Payloads message in JSON, {"payloads":[...]}, and puts it back as r's
// body for the SDK's handler, which parses it again. It returns how many
// payloads the body holds. An empty list may come as {}: that is how
// protobuf's JSON writes it.
func readPayloads(w http.ResponseWriter, r *http.Request, limit int64) (int, error) {
	if r.ContentLength > limit {
		return 0, &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", limit)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return 0, &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", limit)}
		}
		return 0, fmt.Errorf("read body: %w", err)
	}
	if !json.Valid(body) {
		return 0, &requestError{http.StatusBadRequest, "malformed JSON"}
	}
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return 0, &requestError{http.StatusBadRequest, `body is not a JSON object: want {"payloads":[...]}`}
	}
	var payloads commonpb.Payloads
	if err := protojson.Unmarshal(body, &payloads); err != nil {
		return 0, &requestError{http.StatusBadRequest,
			`body is not Temporal payloads: want {"payloads":[{"metadata":{...},"data":"<base64>"},...]}`}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return len(payloads.Payloads), nil
}

// The errors opaqueCodec answers with in place of the codec's.
var (
	errEncode = errors.New("the payload codec could not encode the payloads")
	errDecode = errors.New("the payload codec could not decode the payloads: encrypted with another key, or altered")
)

// opaqueCodec hides its codec's errors behind errEncode and errDecode: the
// SDK's handler sends an error's text to the caller, and a codec's error may
// quote the payload it failed on or name the keys it holds.
type opaqueCodec struct{ codec converter.PayloadCodec }

func (c opaqueCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out, err := c.codec.Encode(payloads)
	if err != nil {
		return nil, errEncode
	}
	return out, nil
}

func (c opaqueCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out, err := c.codec.Decode(payloads)
	if err != nil {
		return nil, errDecode
	}
	return out, nil
}
