package didit

import (
	"strings"
	"testing"
)

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
	forged := "0000000000000000000000000000000000000000000000000000000000000000"
	benchRefused(b, readFixture(b, benchFixture), Headers{Signature: forged, SignatureV2: forged, SignatureSimple: forged, Timestamp: "1767225600"})
}

func benchRefused(b *testing.B, body []byte, h Headers) {
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

// hostileBody is a body of n bytes at most: a JSON array of item, repeated.
func hostileBody(item string, n int) []byte {
	body := make([]byte, 0, n)
	body = append(body, '[')
	for len(body)+len(item)+1 < n {
		if len(body) > 1 {
			body = append(body, ',')
		}
		body = append(body, item...)
	}
	return append(body, ']')
}

// benchForgedV2 refuses body signed with a made-up X-Signature-V2 and a
// current X-Timestamp, the cheapest forgery that makes the verifier build
// the canonical form: what refusing it costs is what anyone can make the
// receiver spend, without a secret.
func benchForgedV2(b *testing.B, body []byte) {
	benchRefused(b, body, Headers{SignatureV2: "0000000000000000000000000000000000000000000000000000000000000000", Timestamp: "1767225600"})
}

// BenchmarkVerifyForgedHugeFloats: 1 MB of 1e308, each a whole float that
// Python prints as 309 digits.
func BenchmarkVerifyForgedHugeFloats(b *testing.B) { benchForgedV2(b, hostileBody("1e308", 1<<20)) }

// BenchmarkVerifyForgedTinyValues: 1 MB of [1,1,1,...], the most values a
// megabyte holds.
func BenchmarkVerifyForgedTinyValues(b *testing.B) { benchForgedV2(b, hostileBody("1", 1<<20)) }

// BenchmarkVerifyForgedShapes refuses each of hostileShapes, a megabyte
// each: the time and memory anyone can make the receiver spend per request.
func BenchmarkVerifyForgedShapes(b *testing.B) {
	for name, body := range hostileShapes(1 << 20) {
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) { benchForgedV2(b, body) })
	}
}
