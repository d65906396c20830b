package api

import (
	"bytes"
	"encoding/json"
	"errors"
)

// decodeObject decodes a JSON object body into out.
func decodeObject(op string, r response, out any) error {
	return decodeShape(op, r, '{', out)
}

// decodeArray decodes a JSON array body into out.
func decodeArray(op string, r response, out any) error {
	return decodeShape(op, r, '[', out)
}

// decodeShape decodes r's body into out, requiring that it starts with
// open. Failures are KindMalformed and never quote the body.
func decodeShape(op string, r response, open byte, out any) error {
	trimmed := bytes.TrimSpace(r.body)
	if len(trimmed) == 0 || trimmed[0] != open {
		return malformed(op, r.status, errors.New("unexpected JSON shape"))
	}
	if err := json.Unmarshal(trimmed, out); err != nil {
		return malformed(op, r.status, jsonReason(err))
	}
	return nil
}

// malformed is a KindMalformed error for a 2xx answer.
func malformed(op string, status int, err error) *Error {
	return &Error{Kind: KindMalformed, Op: op, Status: status, Err: err}
}

// jsonReason summarises a decoding error without quoting input: a syntax
// error's text can quote a character of the body, a type error's names only
// the field.
func jsonReason(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return errors.New("unexpected JSON type for field " + typeErr.Field)
	}
	return errors.New("invalid JSON")
}

// deliveryWire is a delivery as Didit sends it: request_header and
// request_body are JSON-encoded strings, or (leniently) plain JSON values.
type deliveryWire struct {
	DeliveryRow
	RequestHeader json.RawMessage `json:"request_header"`
	RequestBody   json.RawMessage `json:"request_body"`
}

// delivery reduces the wire form to a Delivery.
func (w deliveryWire) delivery() (Delivery, error) {
	d := Delivery{DeliveryRow: w.DeliveryRow}
	header, err := decodeHeader(w.RequestHeader)
	if err != nil {
		return Delivery{}, err
	}
	body, err := decodeSentBody(w.RequestBody)
	if err != nil {
		return Delivery{}, err
	}
	d.RequestHeader, d.RequestBody = header, body
	return d, nil
}

// decodeHeader reads request_header: a string holding a JSON object, or
// the object itself. Absent, null or "" is no header.
func decodeHeader(raw json.RawMessage) (map[string]string, error) {
	inner, err := unwrapString(raw)
	if err != nil || len(inner) == 0 {
		return nil, err
	}
	var header map[string]string
	if err := json.Unmarshal(inner, &header); err != nil {
		return nil, errors.New("request_header is not a JSON object of strings")
	}
	return header, nil
}

// decodeSentBody reads request_body: a string holding the body as sent, or
// a JSON value, kept as its JSON text. Absent or null is no body.
func decodeSentBody(raw json.RawMessage) ([]byte, error) {
	inner, err := unwrapString(raw)
	if err != nil || len(inner) == 0 {
		return nil, err
	}
	return bytes.Clone(inner), nil
}

// unwrapString returns the content of a JSON string, or raw itself when it
// is another JSON value, or nil for absent and null.
func unwrapString(raw json.RawMessage) ([]byte, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil
	}
	if trimmed[0] != '"' {
		return trimmed, nil
	}
	var s string
	if err := json.Unmarshal(trimmed, &s); err != nil {
		return nil, errors.New("invalid JSON string")
	}
	return []byte(s), nil
}

// decodeDelivery decodes one delivery object.
func decodeDelivery(op string, r response) (Delivery, error) {
	var w deliveryWire
	if err := decodeObject(op, r, &w); err != nil {
		return Delivery{}, err
	}
	d, err := w.delivery()
	if err != nil {
		return Delivery{}, malformed(op, r.status, err)
	}
	return d, nil
}
