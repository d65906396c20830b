package didit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	// Digest is the SHA-256 of what the signature authenticated: the
	// body's canonical form after X-Signature or X-Signature-V2, so that
	// every encoding of one delivery has one digest, and the envelope
	// message after X-Signature-Simple. A receiver keys its replay cache on
	// it. It stays out of JSON: it only names a delivery on its way in.
	Digest [sha256.Size]byte `json:"-"`
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

	// macs keeps keyed HMAC states for the secrets, made on first use.
	macs macCache
}

// Verify authenticates body against the signature headers: X-Timestamp within
// the tolerance, then X-Signature, X-Signature-V2 and (if allowed)
// X-Signature-Simple against every secret in constant time, and finally the
// body's own timestamp equal to X-Timestamp, since only the body copy is signed.
//
// The two full-body schemes authenticate the same content, so trying the
// cheap raw HMAC before the canonical form changes the cost, not the verdict.
// Building the canonical form of an unauthenticated body costs memory and
// time in proportion to its size (see CanonicalLimit), whatever it holds.
//
// A verified body that is not a JSON object yields an error wrapping
// ErrNotDiditEvent rather than a verification error.
func (v *Verifier) Verify(body []byte, h Headers) (Proof, error) {
	c := newCanonicalizer()
	defer c.release()
	p, _, err := v.verify(c, body, h)
	return p, err
}

// verify is Verify, returning too the bytes the event is to be read from:
// the body's canonical form, in c's buffer. A signature authenticates the
// content of that form, not the body's bytes (X-Signature-V2 verifies
// every re-encoding of a delivery, such as "timestamp":1767225600.0 for
// 1767225600, or a member given twice), so reading the body itself could
// read what no signature covered; the canonical form reads as what was
// signed. The one exception is a body X-Signature authenticated byte for
// byte that has no canonical form (see rawOnly): its bytes are read.
func (v *Verifier) verify(c *canonicalizer, body []byte, h Headers) (Proof, []byte, error) {
	if !v.hasSecret() {
		return Proof{}, nil, ErrNoSecret
	}
	ts, err := v.checkTimestamp(h.Timestamp)
	if err != nil {
		return Proof{}, nil, err
	}
	sigs, err := parseSignatures(h, v.AllowSimple)
	if err != nil {
		return Proof{}, nil, err
	}

	scheme := Scheme(0)
	if sigs.has[SchemeRaw] && v.matches(sigs.mac[SchemeRaw], body) {
		scheme = SchemeRaw
	}
	if scheme == 0 && !sigs.has[SchemeV2] && !sigs.has[SchemeSimple] {
		return Proof{}, nil, ErrSignatureMismatch
	}
	canonical, err := c.canonical(body)
	switch {
	case err != nil && scheme == 0:
		// Not JSON Didit could have signed (or past CanonicalLimit):
		// nothing left to check it against.
		return Proof{}, nil, ErrSignatureMismatch
	case err != nil:
		return rawOnly(body, ts, err)
	}
	var envelope []byte
	if scheme == 0 && sigs.has[SchemeV2] && v.matches(sigs.mac[SchemeV2], canonical) {
		scheme = SchemeV2
	}
	if scheme == 0 && sigs.has[SchemeSimple] {
		var ok bool
		// Into the buffer for reordering, done with by now.
		if envelope, ok = simpleMessage(c.tmp[:0], canonical); ok {
			c.tmp = envelope
			if v.matches(sigs.mac[SchemeSimple], envelope) {
				scheme = SchemeSimple
			}
		}
	}
	if scheme == 0 {
		return Proof{}, nil, ErrSignatureMismatch
	}

	if canonical[0] != '{' {
		return Proof{}, nil, fmt.Errorf("%w: not a JSON object", ErrNotDiditEvent)
	}
	var tsText [20]byte
	if bodyTS, ok := topLevelMember(canonical, "timestamp"); !ok || string(bodyTS) != string(strconv.AppendInt(tsText[:0], ts, 10)) {
		return Proof{}, nil, ErrTimestampMismatch
	}
	p := Proof{Scheme: scheme, Timestamp: ts, EnvelopeOnly: scheme == SchemeSimple}
	if scheme == SchemeSimple {
		p.Digest = sha256.Sum256(envelope)
	} else {
		p.Digest = sha256.Sum256(canonical)
	}
	return p, canonical, nil
}

// rawOnly is verify's answer for a body X-Signature authenticated byte for
// byte that has no canonical form (why says why): JSON nested deeper than
// MaxDepth, or a lone surrogate, which Python's ensure_ascii=True writes as
// an escape (and which X-Signature-V2, over UTF-8, could not have signed).
// Those bytes are what Didit signed, so the event is read from them, and
// their digest names the delivery; anything else is not a Didit event.
func rawOnly(body []byte, ts int64, why error) (Proof, []byte, error) {
	var envelope struct {
		Timestamp json.Number `json:"timestamp"`
	}
	if len(body) == 0 || body[0] != '{' || json.Unmarshal(body, &envelope) != nil {
		return Proof{}, nil, fmt.Errorf("%w: %w", ErrNotDiditEvent, why)
	}
	if string(envelope.Timestamp) != strconv.FormatInt(ts, 10) {
		return Proof{}, nil, ErrTimestampMismatch
	}
	return Proof{Scheme: SchemeRaw, Timestamp: ts, Digest: sha256.Sum256(body)}, body, nil
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
		v.macs.sum(&got, secret, msg)
		if hmac.Equal(want[:], got[:]) {
			ok = true
		}
	}
	return ok
}

// sum is the HMAC-SHA256 of msg under secret, for signing.
func sum(secret string, msg []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(msg)
	return m.Sum(nil)
}

// macCache keeps a Verifier's keyed HMAC states, a pool per secret: a state
// is reset, not keyed anew, for each verification, which a flood of forged
// deliveries asks for several times a request (every scheme under every
// secret). The zero value is ready; it must not be copied after first use.
type macCache struct {
	mu    sync.RWMutex
	pools map[string]*sync.Pool
}

// maxPooledSecrets bounds the secrets a Verifier keeps states for: a
// receiver has one or two (during a rotation); one whose Secrets keep
// changing hashes past the bound without a pool.
const maxPooledSecrets = 8

// macState is a keyed HMAC and the array its sum is written to.
type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// sum writes the HMAC-SHA256 of msg under secret into out.
func (c *macCache) sum(out *[sha256.Size]byte, secret string, msg []byte) {
	pool := c.pool(secret)
	if pool == nil {
		copy(out[:], sum(secret, msg))
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

// pool returns the pool of HMAC states keyed with secret, nil past
// maxPooledSecrets.
func (c *macCache) pool(secret string) *sync.Pool {
	c.mu.RLock()
	p, ok := c.pools[secret]
	c.mu.RUnlock()
	if ok {
		return p
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pools[secret]; ok {
		return p
	}
	if len(c.pools) >= maxPooledSecrets {
		return nil
	}
	if c.pools == nil {
		c.pools = map[string]*sync.Pool{}
	}
	key := []byte(secret)
	p = &sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, key)} }}
	c.pools[secret] = p
	return p
}

// simpleMessage appends to msg "{timestamp}:{session_id}:{status}:{webhook_type}"
// (SPEC §1.5) read from a canonical form, each value as Python's str()
// renders it.
func simpleMessage(msg, canonical []byte) ([]byte, bool) {
	for i, name := range [...]string{"timestamp", "session_id", "status", "webhook_type"} {
		if i > 0 {
			msg = append(msg, ':')
		}
		value, ok := topLevelMember(canonical, name)
		if !ok {
			continue // Python's data.get(name, "") gives the empty string
		}
		switch value[0] {
		case '"':
			msg = appendDecoded(msg, value, 0)
		case 'n':
			msg = append(msg, "None"...)
		case 't':
			msg = append(msg, "True"...)
		case 'f':
			msg = append(msg, "False"...)
		case '{', '[':
			return nil, false
		default:
			msg = append(msg, value...)
		}
	}
	return msg, true
}

// Signer produces Didit's three signature headers for a body, for tests,
// the simulator and other tools. It signs with the body's own timestamp.
type Signer struct {
	Secret string
}

// Sign returns the headers Didit would send with body. The body must be a
// JSON object with an integer "timestamp" member, which becomes X-Timestamp.
func (s Signer) Sign(body []byte) (Headers, error) {
	c := newCanonicalizer()
	defer c.release()
	canonical, err := c.canonical(body)
	if err != nil {
		return Headers{}, err
	}
	ts, ok := topLevelMember(canonical, "timestamp")
	if !ok || ts[0] < '0' || ts[0] > '9' {
		return Headers{}, errors.New("didit: body has no timestamp to sign")
	}
	v2 := hex.EncodeToString(sum(s.Secret, canonical))
	timestamp := string(ts)
	simple, _ := simpleMessage(nil, canonical)
	return Headers{
		Signature:       hex.EncodeToString(sum(s.Secret, body)),
		SignatureV2:     v2,
		SignatureSimple: hex.EncodeToString(sum(s.Secret, simple)),
		Timestamp:       timestamp,
	}, nil
}
