package didit

import "testing"

// The largest wire-exact fixture (an AML hit with its full decision).
const benchFixture = "status-updated-declined-aml-hit.json"

func benchVerify(b *testing.B, pick func(Headers) Headers) {
	body := readFixture(b, benchFixture)
	all, err := Signer{Secret: fixtureSecret}.Sign(body)
	if err != nil {
		b.Fatal(err)
	}
	h := pick(all)
	v := fixtureVerifier()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(body, h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRaw(b *testing.B) {
	benchVerify(b, func(h Headers) Headers { return Headers{Signature: h.Signature, Timestamp: h.Timestamp} })
}

func BenchmarkVerifyV2(b *testing.B) {
	benchVerify(b, func(h Headers) Headers { return Headers{SignatureV2: h.SignatureV2, Timestamp: h.Timestamp} })
}

func BenchmarkVerifySimple(b *testing.B) {
	benchVerify(b, func(h Headers) Headers { return Headers{SignatureSimple: h.SignatureSimple, Timestamp: h.Timestamp} })
}

// BenchmarkVerifyForged is the worst rejection: a fresh timestamp and three
// well-formed but wrong signatures, so every scheme is computed.
func BenchmarkVerifyForged(b *testing.B) {
	body := readFixture(b, benchFixture)
	forged := "0000000000000000000000000000000000000000000000000000000000000000"
	h := Headers{Signature: forged, SignatureV2: forged, SignatureSimple: forged, Timestamp: "1767225600"}
	v := fixtureVerifier()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(body, h); err == nil {
			b.Fatal("forged delivery verified")
		}
	}
}

func BenchmarkCanonical(b *testing.B) {
	body := readFixture(b, benchFixture)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonical(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEvent(b *testing.B) {
	body := readFixture(b, benchFixture)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEvent(body); err != nil {
			b.Fatal(err)
		}
	}
}
