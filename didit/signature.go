package didit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Header names of a Didit session webhook (SPEC §1.1).
const (
	HeaderSignature       = "X-Signature"
	HeaderSignatureV2     = "X-Signature-V2"
	HeaderSignatureSimple = "X-Signature-Simple"
	HeaderTimestamp       = "X-Timestamp"
	// HeaderTestWebhook marks console test deliveries, but it is not signed:
	// see Event.ConsoleTest.
	HeaderTestWebhook = "X-Didit-Test-Webhook"
)

// DefaultTolerance is how far X-Timestamp may be from now, in either
// direction, before a delivery is refused as a replay (SPEC §1.6).
const DefaultTolerance = 300 * time.Second

// Verification errors. Each names the check that failed so callers can log
// the reason; none of them should be shown to the sender.
var (
	ErrNoSecret           = errors.New("didit: no webhook secret configured")
	ErrMissingTimestamp   = errors.New("didit: missing X-Timestamp header")
	ErrInvalidTimestamp   = errors.New("didit: X-Timestamp is not a decimal Unix time")
	ErrTimestampTooOld    = errors.New("didit: X-Timestamp is older than the tolerance")
	ErrTimestampInFuture  = errors.New("didit: X-Timestamp is further in the future than the tolerance")
	ErrTimestampMismatch  = errors.New("didit: body timestamp does not equal X-Timestamp")
	ErrNoSignature        = errors.New("didit: no usable signature header")
	ErrMalformedSignature = errors.New("didit: signature header is not 64 hex characters")
	ErrSignatureMismatch  = errors.New("didit: no signature matches any configured secret")
)

// Scheme is one of Didit's three signature schemes.
type Scheme uint8

const (
	// SchemeRaw is X-Signature: HMAC of the exact request body.
	SchemeRaw Scheme = iota + 1
	// SchemeV2 is X-Signature-V2: HMAC of the canonical JSON (see Canonical).
	SchemeV2
	// SchemeSimple is X-Signature-Simple: HMAC of four envelope fields only.
	SchemeSimple
)

// SourceAPI is the Proof.Source of an event read from Didit's API, over TLS
// under diditflow's API key, rather than received signed: a delivery's
// body read back by reconciliation, or a decision fetched from Didit.
const SourceAPI = "didit_api"

func (s Scheme) String() string {
	switch s {
	case SchemeRaw:
		return "raw"
	case SchemeV2:
		return "v2"
	case SchemeSimple:
		return "simple"
	}
	return "none"
}

// MarshalText lets a Scheme travel as its name in JSON and logs.
func (s Scheme) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (s *Scheme) UnmarshalText(b []byte) error {
	// "none" is the zero Scheme, which MarshalText writes too.
	for _, c := range []Scheme{0, SchemeRaw, SchemeV2, SchemeSimple} {
		if string(b) == c.String() {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("didit: unknown signature scheme %q", b)
}

// Headers are the signature headers of one delivery.
type Headers struct {
	Signature       string
	SignatureV2     string
	SignatureSimple string
	Timestamp       string
}

// HeadersFrom reads the signature headers from an HTTP request's headers.
func HeadersFrom(h http.Header) Headers {
	return Headers{
		Signature:       h.Get(HeaderSignature),
		SignatureV2:     h.Get(HeaderSignatureV2),
		SignatureSimple: h.Get(HeaderSignatureSimple),
		Timestamp:       h.Get(HeaderTimestamp),
	}
}

// Set writes the non-empty headers onto h.
func (hs Headers) Set(h http.Header) {
	for name, v := range map[string]string{
		HeaderSignature:       hs.Signature,
		HeaderSignatureV2:     hs.SignatureV2,
		HeaderSignatureSimple: hs.SignatureSimple,
		HeaderTimestamp:       hs.Timestamp,
	} {
		if v != "" {
			h.Set(name, v)
		}
	}
}

// Proof is what a successful Verify established about a delivery.
type Proof struct {
	// Scheme is the first scheme that verified; none (and left out of the
	// JSON, which workers of earlier releases could not read) for an event
	// from Source.
	Scheme Scheme `json:"scheme,omitzero"`
	// Source, when no signature was checked, says where the event came
	// from instead: SourceAPI.
	Source string `json:"source,omitempty"`
	// Timestamp is the signed Unix time (X-Timestamp, equal to the body's).
	Timestamp int64 `json:"timestamp"`
	// EnvelopeOnly is set when only X-Signature-Simple verified: then only
	// timestamp, session_id, status and webhook_type are authentic, and
	// decision, vendor_data, metadata and event_id must not be trusted.
	EnvelopeOnly bool `json:"envelope_only,omitempty"`
}

// Verifier checks Didit's signatures. The zero value refuses everything
// (no secrets); set Secrets to the active webhook secrets, several while a
// secret is being rotated.
type Verifier struct {
	// Secrets are the webhook secrets, used as UTF-8 bytes (never decoded).
	Secrets []string
	// Tolerance bounds |now - X-Timestamp|; zero means DefaultTolerance.
	Tolerance time.Duration
	// AllowSimple accepts X-Signature-Simple when no full-body scheme
	// verified; such deliveries are marked EnvelopeOnly.
	AllowSimple bool
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Verify authenticates body against the signature headers: X-Timestamp within
// the tolerance, then X-Signature, X-Signature-V2 and (if allowed)
// X-Signature-Simple against every secret in constant time, and finally the
// body's own timestamp equal to X-Timestamp, since only the body copy is signed.
//
// The two full-body schemes authenticate the same bytes, so trying the cheap
// raw HMAC before the canonical form changes the cost, not the verdict.
//
// A verified body that is not a JSON object yields an error wrapping
// ErrNotDiditEvent rather than a verification error.
func (v *Verifier) Verify(body []byte, h Headers) (Proof, error) {
	if !v.hasSecret() {
		return Proof{}, ErrNoSecret
	}
	ts, err := v.checkTimestamp(h.Timestamp)
	if err != nil {
		return Proof{}, err
	}
	sigs, err := parseSignatures(h, v.AllowSimple)
	if err != nil {
		return Proof{}, err
	}

	scheme := Scheme(0)
	var doc *document
	if sigs.has[SchemeRaw] && v.matches(sigs.mac[SchemeRaw], body) {
		scheme = SchemeRaw
	}
	if scheme == 0 && (sigs.has[SchemeV2] || sigs.has[SchemeSimple]) {
		doc = newDocument()
		defer doc.release()
		if doc.parse(body) != nil {
			doc = nil
		}
	}
	if scheme == 0 && doc != nil && sigs.has[SchemeV2] {
		doc.out = doc.write(doc.out[:0], 0, false)
		if v.matches(sigs.mac[SchemeV2], doc.out) {
			scheme = SchemeV2
		}
	}
	if scheme == 0 && doc != nil && sigs.has[SchemeSimple] {
		// The canonical form is done with: its buffer takes the message.
		var ok bool
		if doc.out, ok = doc.simpleMessage(doc.out[:0]); ok && v.matches(sigs.mac[SchemeSimple], doc.out) {
			scheme = SchemeSimple
		}
	}
	if scheme == 0 {
		return Proof{}, ErrSignatureMismatch
	}

	if doc != nil && doc.nodes[0].kind != kindObject {
		return Proof{}, fmt.Errorf("%w: not a JSON object", ErrNotDiditEvent)
	}
	var bodyTS []byte
	var found bool
	if doc != nil {
		bodyTS, found = doc.numberMember("timestamp")
	} else if bodyTS, found, err = scanNumber(body, "timestamp"); err != nil {
		return Proof{}, fmt.Errorf("%w: %w", ErrNotDiditEvent, err)
	}
	var tsText [20]byte
	if !found || string(bodyTS) != string(strconv.AppendInt(tsText[:0], ts, 10)) {
		return Proof{}, ErrTimestampMismatch
	}
	return Proof{Scheme: scheme, Timestamp: ts, EnvelopeOnly: scheme == SchemeSimple}, nil
}

func (v *Verifier) checkTimestamp(header string) (int64, error) {
	if header == "" {
		return 0, ErrMissingTimestamp
	}
	if len(header) > 18 {
		return 0, ErrInvalidTimestamp
	}
	var ts int64
	for i := 0; i < len(header); i++ {
		c := header[i]
		if c < '0' || c > '9' {
			return 0, ErrInvalidTimestamp
		}
		ts = ts*10 + int64(c-'0')
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tolerance := v.Tolerance
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	age := now().Unix() - ts
	switch {
	case age > int64(tolerance/time.Second):
		return 0, ErrTimestampTooOld
	case -age > int64(tolerance/time.Second):
		return 0, ErrTimestampInFuture
	}
	return ts, nil
}

type signatures struct {
	has [SchemeSimple + 1]bool
	mac [SchemeSimple + 1][sha256.Size]byte
}

// parseSignatures decodes the signature headers. A header that is present but
// not 64 hex characters fails the whole delivery: Didit never sends one, so it
// means tampering or a broken proxy.
func parseSignatures(h Headers, allowSimple bool) (signatures, error) {
	var s signatures
	for scheme, value := range [...]string{SchemeRaw: h.Signature, SchemeV2: h.SignatureV2, SchemeSimple: h.SignatureSimple} {
		if value == "" {
			continue
		}
		if len(value) != hex.EncodedLen(sha256.Size) {
			return s, ErrMalformedSignature
		}
		if _, err := hex.Decode(s.mac[scheme][:], []byte(value)); err != nil {
			return s, ErrMalformedSignature
		}
		s.has[scheme] = Scheme(scheme) != SchemeSimple || allowSimple
	}
	if !s.has[SchemeRaw] && !s.has[SchemeV2] && !s.has[SchemeSimple] {
		return s, ErrNoSignature
	}
	return s, nil
}

// hasSecret reports whether any secret is usable. An empty secret is never
// one: anybody can sign with it.
func (v *Verifier) hasSecret() bool {
	for _, s := range v.Secrets {
		if s != "" {
			return true
		}
	}
	return false
}

func (v *Verifier) matches(want [sha256.Size]byte, msg []byte) bool {
	ok := false
	for _, secret := range v.Secrets {
		if secret == "" {
			continue
		}
		// Every secret is tried, so the time taken does not reveal which one
		// (or whether any) matched.
		var got [sha256.Size]byte
		sumInto(&got, secret, msg)
		if hmac.Equal(want[:], got[:]) {
			ok = true
		}
	}
	return ok
}

func sum(secret string, msg []byte) []byte {
	var out [sha256.Size]byte
	sumInto(&out, secret, msg)
	return out[:]
}

// sumInto writes the HMAC-SHA256 of msg under secret into out, with a
// pooled HMAC state for the secret: a keyed state is reset, not allocated,
// for each verification (a flood of forged deliveries makes several per
// request: every scheme under every configured secret).
func sumInto(out *[sha256.Size]byte, secret string, msg []byte) {
	pool := macPool(secret)
	if pool == nil {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(msg)
		copy(out[:], m.Sum(nil))
		return
	}
	m := pool.Get().(*macState)
	m.h.Reset()
	m.h.Write(msg)
	// Summed into the pooled state's own array, which the hash may keep
	// hold of: out, on the caller's stack, never escapes.
	copy(out[:], m.h.Sum(m.sum[:0]))
	pool.Put(m)
}

// macState is a keyed HMAC and the array its sum is written to.
type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// maxPooledSecrets bounds the secrets macPool keeps states for: a starter
// has one or two (during a rotation); a process that meets many (a test
// signing with random ones) hashes the rest without a pool.
const maxPooledSecrets = 8

var macPools struct {
	mu    sync.RWMutex
	pools map[string]*sync.Pool
}

// macPool returns the pool of HMAC states keyed with secret, nil past
// maxPooledSecrets.
func macPool(secret string) *sync.Pool {
	macPools.mu.RLock()
	p, ok := macPools.pools[secret]
	macPools.mu.RUnlock()
	if ok {
		return p
	}
	macPools.mu.Lock()
	defer macPools.mu.Unlock()
	if p, ok := macPools.pools[secret]; ok {
		return p
	}
	if len(macPools.pools) >= maxPooledSecrets {
		return nil
	}
	if macPools.pools == nil {
		macPools.pools = map[string]*sync.Pool{}
	}
	key := []byte(secret)
	p = &sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, key)} }}
	macPools.pools[secret] = p
	return p
}

// simpleMessage appends "{timestamp}:{session_id}:{status}:{webhook_type}"
// to msg from the body the way Python's str() renders each value (SPEC §1.5).
func (d *document) simpleMessage(msg []byte) ([]byte, bool) {
	for i, name := range [...]string{"timestamp", "session_id", "status", "webhook_type"} {
		if i > 0 {
			msg = append(msg, ':')
		}
		idx, ok := d.memberIndex(name)
		if !ok {
			continue // Python's data.get(name, "") gives the empty string
		}
		n := d.nodes[idx]
		switch n.kind {
		case kindString, kindNumber:
			msg = append(msg, n.text...)
		case kindNull:
			msg = append(msg, "None"...)
		case kindTrue:
			msg = append(msg, "True"...)
		case kindFalse:
			msg = append(msg, "False"...)
		default:
			return nil, false
		}
	}
	return msg, true
}

// memberIndex finds a top-level object member by name.
func (d *document) memberIndex(name string) (int32, bool) {
	root := d.nodes[0]
	if root.kind != kindObject {
		return 0, false
	}
	for _, idx := range d.kids[root.first : root.first+root.count] {
		if string(d.nodes[idx].key) == name {
			return idx, true
		}
	}
	return 0, false
}

// numberMember returns the canonical text of a top-level number member.
func (d *document) numberMember(name string) ([]byte, bool) {
	idx, ok := d.memberIndex(name)
	if !ok || d.nodes[idx].kind != kindNumber {
		return nil, false
	}
	return d.nodes[idx].text, true
}

// scanNumber is numberMember for a body that was not parsed into a tree: it
// skims the top-level object without building one, which keeps the raw
// scheme's path cheap. As in Python, the last duplicate member wins.
func scanNumber(body []byte, name string) ([]byte, bool, error) {
	d := document{src: body}
	d.skipSpace()
	if d.pos >= len(body) || body[d.pos] != '{' {
		return nil, false, d.errorf("not a JSON object")
	}
	var text []byte
	found := false
	err := d.members(0, '}', func() error {
		key, err := d.memberName()
		if err != nil {
			return err
		}
		if string(key) != name {
			return d.skip()
		}
		found = false
		if c := body[min(d.pos, len(body)-1)]; c != '-' && (c < '0' || c > '9') {
			return d.skip()
		}
		if text, err = d.number(); err != nil {
			return err
		}
		found = true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	d.skipSpace()
	if d.pos != len(body) {
		return nil, false, d.errorf("unexpected data after top-level value")
	}
	return text, found, nil
}

// skip passes over one value without recording or validating it: the body
// is already authenticated and ParseEvent reads it in full afterwards, so
// this only has to find where the value ends, and do it fast.
func (d *document) skip() error {
	depth := 0
	for d.pos < len(d.src) {
		switch d.src[d.pos] {
		case '"':
			if err := d.skipString(); err != nil {
				return err
			}
		case '{', '[':
			if depth++; depth > MaxDepth {
				return d.errorf("nesting deeper than %d", MaxDepth)
			}
			d.pos++
		case '}', ']':
			if depth == 0 {
				return nil
			}
			depth--
			d.pos++
		case ',':
			if depth == 0 {
				return nil
			}
			d.pos++
		default:
			d.pos++
		}
		if depth == 0 && d.pos < len(d.src) {
			switch d.src[d.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return nil
			}
		}
	}
	return d.errorf("unexpected end of input")
}

func (d *document) skipString() error {
	d.pos++
	for {
		i := bytes.IndexByte(d.src[d.pos:], '"')
		if i < 0 {
			return d.errorf("unterminated string")
		}
		d.pos += i + 1
		backslashes := 0
		for j := d.pos - 2; j >= 0 && d.src[j] == '\\'; j-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return nil
		}
	}
}

// Signer produces Didit's three signature headers for a body, for tests,
// the simulator and other tools. It signs with the body's own timestamp.
type Signer struct {
	Secret string
}

// Sign returns the headers Didit would send with body. The body must be a
// JSON object with an integer "timestamp" member, which becomes X-Timestamp.
func (s Signer) Sign(body []byte) (Headers, error) {
	var d document
	if err := d.parse(body); err != nil {
		return Headers{}, err
	}
	ts, ok := d.numberMember("timestamp")
	if !ok {
		return Headers{}, errors.New("didit: body has no timestamp to sign")
	}
	simple, _ := d.simpleMessage(nil)
	return Headers{
		Signature:       hex.EncodeToString(sum(s.Secret, body)),
		SignatureV2:     hex.EncodeToString(sum(s.Secret, d.write(nil, 0, false))),
		SignatureSimple: hex.EncodeToString(sum(s.Secret, simple)),
		Timestamp:       string(ts),
	}, nil
}
