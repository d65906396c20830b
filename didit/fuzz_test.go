package didit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func addFixtureSeeds(f *testing.F, add func(body []byte)) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fixtures", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		add(body)
	}
}

// FuzzCanonical checks that the serialiser never panics and that its output
// is a fixed point: canonical JSON re-canonicalises to itself, and the wire
// form canonicalises to the same bytes as the input.
func FuzzCanonical(f *testing.F) {
	addFixtureSeeds(f, func(b []byte) { f.Add(b) })
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.Input))
	}
	f.Add([]byte(`{"a":[1.0,-0,1e400,"\ud800"]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		once, err := Canonical(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("error %v does not wrap ErrInvalidJSON", err)
			}
			return
		}
		twice, err := Canonical(once)
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("not a fixed point:\n once %q\ntwice %q (%v)", once, twice, err)
		}
		wire, err := Wire(in)
		if err != nil {
			t.Fatalf("Canonical accepted what Wire refused: %v", err)
		}
		fromWire, err := Canonical(wire)
		if err != nil || !bytes.Equal(fromWire, once) {
			t.Fatalf("wire form canonicalises differently:\n%q\n%q (%v)", fromWire, once, err)
		}
	})
}

// FuzzVerify checks that verification never panics on arbitrary bodies and
// headers, that arbitrary input never verifies, and that whatever the Signer
// signs verifies.
func FuzzVerify(f *testing.F) {
	addFixtureSeeds(f, func(b []byte) {
		h, _ := Signer{Secret: fixtureSecret}.Sign(b)
		f.Add(b, h.Signature, h.SignatureV2, h.SignatureSimple, "1767225600")
	})
	f.Add([]byte(`{"timestamp":1767225600}`), "", "", "", "1767225600")
	f.Add([]byte(`{}`), "zz", "", "", "-1")
	f.Fuzz(func(t *testing.T, body []byte, raw, v2, simple, ts string) {
		v := fixtureVerifier()
		got, err := v.Verify(body, Headers{Signature: raw, SignatureV2: v2, SignatureSimple: simple, Timestamp: ts})
		if err == nil && got.Scheme == 0 {
			t.Fatal("verified without a scheme")
		}

		signed, err := Signer{Secret: fixtureSecret}.Sign(body)
		if err != nil {
			return
		}
		if signed.Timestamp != "1767225600" {
			return // outside the fixed clock's tolerance, or not an integer
		}
		if _, err := v.Verify(body, signed); err != nil && !errors.Is(err, ErrNotDiditEvent) {
			t.Fatalf("Signer output does not verify: %v", err)
		}
	})
}
