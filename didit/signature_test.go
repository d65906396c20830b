package didit

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	fixtureSecret = "test-secret-do-not-use"
	fixtureTime   = 1767225600
)

type fixtureSignatures struct {
	RawBodyIsWireExact bool   `json:"raw_body_is_wire_exact"`
	Timestamp          int64  `json:"timestamp"`
	XSignature         string `json:"x_signature"`
	XSignatureV2       string `json:"x_signature_v2"`
	XSignatureSimple   string `json:"x_signature_simple"`
}

func loadSignatures(t testing.TB) map[string]fixtureSignatures {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "fixtures", "signatures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sigs map[string]fixtureSignatures
	if err := json.Unmarshal(raw, &sigs); err != nil {
		t.Fatal(err)
	}
	if len(sigs) < 7 {
		t.Fatalf("signatures.json lists %d fixtures, want 7", len(sigs))
	}
	return sigs
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func fixedClock(unix int64) func() time.Time {
	return func() time.Time { return time.Unix(unix, 0) }
}

func fixtureVerifier() *Verifier {
	return &Verifier{Secrets: []string{fixtureSecret}, AllowSimple: true, Now: fixedClock(fixtureTime)}
}

func TestFixturesVerifyUnderEachScheme(t *testing.T) {
	for name, sig := range loadSignatures(t) {
		body := readFixture(t, name)
		ts := "1767225600"
		schemes := []struct {
			scheme  Scheme
			headers Headers
			want    bool
		}{
			{SchemeRaw, Headers{Signature: sig.XSignature, Timestamp: ts}, sig.RawBodyIsWireExact},
			{SchemeV2, Headers{SignatureV2: sig.XSignatureV2, Timestamp: ts}, true},
			{SchemeSimple, Headers{SignatureSimple: sig.XSignatureSimple, Timestamp: ts}, true},
		}
		for _, s := range schemes {
			t.Run(name+"/"+s.scheme.String(), func(t *testing.T) {
				got, err := fixtureVerifier().Verify(body, s.headers)
				if !s.want {
					if !errors.Is(err, ErrSignatureMismatch) {
						t.Fatalf("Verify = %v, %v; want ErrSignatureMismatch", got, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.Scheme != s.scheme || got.Timestamp != fixtureTime || got.EnvelopeOnly != (s.scheme == SchemeSimple) {
					t.Fatalf("Verify = %+v", got)
				}
			})
		}
		t.Run(name+"/all", func(t *testing.T) {
			h := Headers{Signature: sig.XSignature, SignatureV2: sig.XSignatureV2, SignatureSimple: sig.XSignatureSimple, Timestamp: ts}
			got, err := fixtureVerifier().Verify(body, h)
			if err != nil {
				t.Fatal(err)
			}
			if got.EnvelopeOnly {
				t.Fatal("a full-body scheme verified, but the event is marked envelope-only")
			}
			want := SchemeRaw
			if !sig.RawBodyIsWireExact {
				want = SchemeV2
			}
			if got.Scheme != want {
				t.Fatalf("scheme = %v, want %v", got.Scheme, want)
			}
		})
	}
}

func TestSignerReproducesFixtureSignatures(t *testing.T) {
	for name, sig := range loadSignatures(t) {
		if !sig.RawBodyIsWireExact {
			continue
		}
		got, err := Signer{Secret: fixtureSecret}.Sign(readFixture(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := Headers{Signature: sig.XSignature, SignatureV2: sig.XSignatureV2, SignatureSimple: sig.XSignatureSimple, Timestamp: "1767225600"}
		if got != want {
			t.Errorf("%s: Sign =\n%+v\nwant\n%+v", name, got, want)
		}
	}
}

func TestWireReproducesFixtureBodies(t *testing.T) {
	for name, sig := range loadSignatures(t) {
		body := readFixture(t, name)
		got, err := Wire(body)
		if err != nil {
			t.Fatal(err)
		}
		want := body
		if !sig.RawBodyIsWireExact {
			want = readFixture(t, strings.Replace(name, ".reencoded", "", 1))
		}
		if string(got) != string(want) {
			t.Errorf("%s: Wire differs from the bytes Didit sends", name)
		}
	}
}

// signedFixture returns the approved fixture with all three headers.
func signedFixture(t testing.TB) ([]byte, Headers) {
	t.Helper()
	body := readFixture(t, "status-updated-approved.json")
	h, err := Signer{Secret: fixtureSecret}.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	return body, h
}

func TestVerifyRejects(t *testing.T) {
	body, good := signedFixture(t)
	other, err := Signer{Secret: "another-secret"}.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	tampered := []byte(strings.Replace(string(body), `"status":"Approved","timestamp"`, `"status":"Declined","timestamp"`, 1))
	tamperedDecision := []byte(strings.Replace(string(body), `"live"`, `"sandbox"`, 1))
	fullBodyOnly := &Verifier{Secrets: []string{fixtureSecret}, Now: fixedClock(fixtureTime)}
	shifted := []byte(strings.Replace(string(body), `"timestamp":1767225600`, `"timestamp":1767225601`, 1))
	shiftedHeaders, _ := Signer{Secret: fixtureSecret}.Sign(shifted)
	noTS := []byte(strings.Replace(string(body), `"timestamp":1767225600,`, ``, 1))
	noTSSignature := hex.EncodeToString(sum(fixtureSecret, noTS))
	with := func(mut func(*Headers)) Headers { h := good; mut(&h); return h }

	cases := []struct {
		name    string
		v       *Verifier
		body    []byte
		headers Headers
		want    error
	}{
		{"tampered body", fullBodyOnly, tamperedDecision, good, ErrSignatureMismatch},
		{"tampered status", fixtureVerifier(), tampered, good, ErrSignatureMismatch},
		{"tampered decision passes simple only", fixtureVerifier(), tamperedDecision,
			Headers{SignatureSimple: good.SignatureSimple, Timestamp: good.Timestamp}, nil},
		{"tampered status, simple only", fixtureVerifier(), tampered,
			Headers{SignatureSimple: good.SignatureSimple, Timestamp: good.Timestamp}, ErrSignatureMismatch},
		{"wrong secret", fixtureVerifier(), body, other, ErrSignatureMismatch},
		{"no secrets", &Verifier{Now: fixedClock(fixtureTime)}, body, good, ErrNoSecret},
		{"only an empty secret", &Verifier{Secrets: []string{""}, Now: fixedClock(fixtureTime)}, body, good, ErrNoSecret},
		{"stale", &Verifier{Secrets: []string{fixtureSecret}, Now: fixedClock(fixtureTime + 301)}, body, good, ErrTimestampTooOld},
		{"future", &Verifier{Secrets: []string{fixtureSecret}, Now: fixedClock(fixtureTime - 301)}, body, good, ErrTimestampInFuture},
		{"edge of window, old", &Verifier{Secrets: []string{fixtureSecret}, Now: fixedClock(fixtureTime + 300)}, body, good, nil},
		{"edge of window, future", &Verifier{Secrets: []string{fixtureSecret}, Now: fixedClock(fixtureTime - 300)}, body, good, nil},
		{"custom tolerance", &Verifier{Secrets: []string{fixtureSecret}, Tolerance: time.Minute, Now: fixedClock(fixtureTime + 61)}, body, good, ErrTimestampTooOld},
		{"header/body timestamp mismatch", fixtureVerifier(), body, with(func(h *Headers) { h.Timestamp = "1767225601" }), ErrTimestampMismatch},
		{"body timestamp differs, signed", fixtureVerifier(), shifted, with(func(h *Headers) {
			h.Signature, h.SignatureV2, h.SignatureSimple = shiftedHeaders.Signature, shiftedHeaders.SignatureV2, shiftedHeaders.SignatureSimple
		}), ErrTimestampMismatch},
		{"body without timestamp", fixtureVerifier(), noTS, Headers{Signature: noTSSignature, Timestamp: good.Timestamp}, ErrTimestampMismatch},
		{"missing timestamp", fixtureVerifier(), body, with(func(h *Headers) { h.Timestamp = "" }), ErrMissingTimestamp},
		{"timestamp with sign", fixtureVerifier(), body, with(func(h *Headers) { h.Timestamp = "+1767225600" }), ErrInvalidTimestamp},
		{"timestamp in ms", fixtureVerifier(), body, with(func(h *Headers) { h.Timestamp = "1767225600000" }), ErrTimestampInFuture},
		{"timestamp not a number", fixtureVerifier(), body, with(func(h *Headers) { h.Timestamp = "2026-01-01T00:00:00Z" }), ErrInvalidTimestamp},
		{"timestamp overflow", fixtureVerifier(), body, with(func(h *Headers) { h.Timestamp = "99999999999999999999999" }), ErrInvalidTimestamp},
		{"missing signatures", fixtureVerifier(), body, Headers{Timestamp: good.Timestamp}, ErrNoSignature},
		{"simple only, simple disabled", &Verifier{Secrets: []string{fixtureSecret}, Now: fixedClock(fixtureTime)}, body,
			Headers{SignatureSimple: good.SignatureSimple, Timestamp: good.Timestamp}, ErrNoSignature},
		{"malformed: short", fixtureVerifier(), body, with(func(h *Headers) { h.Signature = good.Signature[:63] }), ErrMalformedSignature},
		{"malformed: not hex", fixtureVerifier(), body, with(func(h *Headers) { h.SignatureV2 = strings.Repeat("z", 64) }), ErrMalformedSignature},
		{"malformed: sha256= prefix", fixtureVerifier(), body, with(func(h *Headers) { h.Signature = "sha256=" + good.Signature }), ErrMalformedSignature},
		{"malformed: base64", fixtureVerifier(), body, with(func(h *Headers) { h.SignatureSimple = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=" }), ErrMalformedSignature},
		{"uppercase hex accepted", fixtureVerifier(), body, with(func(h *Headers) { h.Signature = strings.ToUpper(h.Signature) }), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.v.Verify(c.body, c.headers)
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("Verify error = %v, want %v", err, c.want)
			}
		})
	}
}

func TestVerifyAcceptsAnyConfiguredSecret(t *testing.T) {
	body, h := signedFixture(t)
	for _, secrets := range [][]string{
		{fixtureSecret, "new-secret"},
		{"new-secret", fixtureSecret},
	} {
		v := &Verifier{Secrets: secrets, Now: fixedClock(fixtureTime)}
		if _, err := v.Verify(body, h); err != nil {
			t.Errorf("secrets %q: %v", secrets, err)
		}
	}
	v := &Verifier{Secrets: []string{"new-secret"}, Now: fixedClock(fixtureTime)}
	if _, err := v.Verify(body, h); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("after the old secret is removed: %v, want ErrSignatureMismatch", err)
	}
}

func TestVerifyNonEventBody(t *testing.T) {
	for _, body := range []string{`not json {"timestamp":1767225600}`, `[1767225600]`, `{"timestamp":1767225600`} {
		h := Headers{Signature: hex.EncodeToString(sum(fixtureSecret, []byte(body))), Timestamp: "1767225600"}
		_, err := fixtureVerifier().Verify([]byte(body), h)
		if !errors.Is(err, ErrNotDiditEvent) {
			t.Errorf("%q: %v, want ErrNotDiditEvent", body, err)
		}
	}
}

func TestHeadersRoundTrip(t *testing.T) {
	_, h := signedFixture(t)
	hdr := http.Header{}
	h.Set(hdr)
	if got := HeadersFrom(hdr); got != h {
		t.Fatalf("HeadersFrom(Set(h)) = %+v, want %+v", got, h)
	}
	if hdr.Get("x-signature-v2") != h.SignatureV2 {
		t.Fatal("header names must be case-insensitive")
	}
}

func TestSchemeText(t *testing.T) {
	for _, s := range []Scheme{SchemeRaw, SchemeV2, SchemeSimple} {
		b, _ := s.MarshalText()
		var back Scheme
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%v round-trips to %v, %v", s, back, err)
		}
	}
	var s Scheme
	if err := s.UnmarshalText([]byte("sha1")); err == nil {
		t.Error("unknown scheme accepted")
	}
}

func TestVerifiedNonObjectIsNotAnEvent(t *testing.T) {
	body := []byte(`[1767225600]`)
	canonical, err := Canonical(body)
	if err != nil {
		t.Fatal(err)
	}
	h := Headers{SignatureV2: hex.EncodeToString(sum(fixtureSecret, canonical)), Timestamp: "1767225600"}
	if _, err := fixtureVerifier().Verify(body, h); !errors.Is(err, ErrNotDiditEvent) {
		t.Fatalf("V2-verified array: %v, want ErrNotDiditEvent", err)
	}
}

// The HMAC states are pooled per secret of a Verifier: verifications
// running at once, under secrets that match and secrets that do not, each
// get their own verdict, and secrets past the pool's bound verify as well.
func TestConcurrentVerificationsUnderSeveralSecrets(t *testing.T) {
	body, h := signedFixture(t)
	var others []string
	for i := range 2 * maxPooledSecrets {
		others = append(others, fmt.Sprintf("other-secret-%d", i))
	}
	// The fixture's secret last, past the bound: hashed without a pool.
	good := &Verifier{Secrets: append(slices.Clone(others), fixtureSecret), Now: fixedClock(fixtureTime)}
	bad := &Verifier{Secrets: others, Now: fixedClock(fixtureTime)}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := good.Verify(body, h); err != nil {
					t.Errorf("with the secret: %v", err)
				}
				if _, err := bad.Verify(body, h); !errors.Is(err, ErrSignatureMismatch) {
					t.Errorf("without it: %v, want ErrSignatureMismatch", err)
				}
			}
		})
	}
	wg.Wait()
	if n := len(good.macs.pools); n != maxPooledSecrets {
		t.Errorf("%d secrets pooled, want the bound, %d", n, maxPooledSecrets)
	}
}
