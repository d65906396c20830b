// Package didit verifies and reads the webhooks Didit (didit.me) sends when
// a KYC verification session changes. It uses the standard library only and
// knows nothing of what is done with an event.
//
// Didit signs every delivery three ways (SPEC §1): X-Signature over the raw
// body, X-Signature-V2 over a canonical re-serialisation of it (which
// survives a proxy that re-encodes JSON), and X-Signature-Simple over four
// envelope fields (off unless Verifier.AllowSimple), each an HMAC-SHA256
// under the webhook secret, with X-Timestamp bounding replays. One call
// verifies a delivery and parses its event:
//
//	v := &didit.Verifier{Secrets: []string{secret}}
//	ev, proof, err := v.ConstructEvent(body, didit.HeadersFrom(r.Header))
//
// The event is read from what the signature authenticated (the canonical
// form), never from bytes no signature covered, and proof.Digest names the
// delivery whatever its encoding, for deduplication. An error wrapping
// ErrNotDiditEvent is an authentic body that is not a session event (answer
// 400); any other error is a delivery to refuse as unauthentic (401: Didit
// retries only 5xx, so neither is retried). Refusing a forged body costs at
// most a few times its size in memory, whatever it holds (CanonicalLimit).
//
// A receiver should answer 2xx only once the event is durably held (a
// queue, a workflow), and 5xx when it cannot be, so that Didit retries.
// Event.Key dedupes redeliveries; Event.Authenticated keeps only the fields
// an X-Signature-Simple proof covers. Signer produces the headers, for
// tests and simulators. The client for Didit's REST API is package
// didit/api.
package didit
