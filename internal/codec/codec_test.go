package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"github.com/diditflow/diditflow/internal/contract"
)

const sentinel = "sentinel-user@example.com"

func key(t testing.TB, id string) string {
	t.Helper()
	k, err := GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustParse(t testing.TB, spec string) *Codec {
	t.Helper()
	c, err := ParseKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	c := mustParse(t, key(t, "k1"))
	dc := c.DataConverter()
	p, err := dc.ToPayload(map[string]string{"email": sentinel})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.Data, []byte(sentinel)) || string(p.Metadata[converter.MetadataEncoding]) != Encoding ||
		string(p.Metadata[MetadataKeyID]) != "k1" {
		t.Fatalf("encoded payload = %v", p)
	}
	var back map[string]string
	if err := dc.FromPayload(p, &back); err != nil || back["email"] != sentinel {
		t.Fatalf("decoded %v, %v", back, err)
	}
	again, _ := dc.ToPayload(map[string]string{"email": sentinel})
	if bytes.Equal(again.Data, p.Data) {
		t.Fatal("two encryptions of one value are equal: the nonce is not fresh")
	}
}

func TestRotation(t *testing.T) {
	old, fresh := key(t, "2026-01"), key(t, "2026-06")
	before := mustParse(t, old)
	enc, err := before.Encode([]*commonpb.Payload{plain("written before the rotation")})
	if err != nil {
		t.Fatal(err)
	}
	after := mustParse(t, fresh+","+old)
	if after.EncryptingKeyID() != "2026-06" {
		t.Fatalf("encrypting key %q, want the first listed", after.EncryptingKeyID())
	}
	dec, err := after.Decode(enc)
	if err != nil || string(dec[0].Data) != "written before the rotation" {
		t.Fatalf("old payload after rotation: %v, %v", dec, err)
	}
	now, _ := after.Encode([]*commonpb.Payload{plain("x")})
	if string(now[0].Metadata[MetadataKeyID]) != "2026-06" {
		t.Fatal("the new key does not encrypt")
	}
	if _, err := before.Decode(now); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "2026-06") {
		t.Fatalf("a codec without the new key: %v, want ErrUnknownKey naming it", err)
	}
}

func TestWrongKeyAndTampering(t *testing.T) {
	spec := key(t, "k1")
	c := mustParse(t, spec)
	enc, err := c.Encode([]*commonpb.Payload{plain(sentinel)})
	if err != nil {
		t.Fatal(err)
	}
	other := mustParse(t, key(t, "k1")) // another key under the same id
	if _, err := other.Decode(enc); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("another key: %v, want ErrDecrypt", err)
	}
	for name, mutate := range map[string]func(p *commonpb.Payload){
		"flipped bit": func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 1 },
		"cut":         func(p *commonpb.Payload) { p.Data = p.Data[:10] },
		"no key id":   func(p *commonpb.Payload) { delete(p.Metadata, MetadataKeyID) },
		"relabelled":  func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("k2") },
	} {
		t.Run(name, func(t *testing.T) {
			p := proto.Clone(enc[0]).(*commonpb.Payload)
			mutate(p)
			two := mustParse(t, spec+","+key(t, "k2"))
			_, err := two.Decode([]*commonpb.Payload{p})
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Decode = %v, want ErrDecrypt", err)
			}
			if strings.Contains(err.Error(), sentinel) {
				t.Fatal("the error quotes the payload")
			}
		})
	}
}

func TestUnencryptedPassesThrough(t *testing.T) {
	c := mustParse(t, key(t, "k1"))
	json, err := converter.GetDefaultDataConverter().ToPayload("written before encryption")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := c.DataConverter().FromPayload(json, &got); err != nil || got != "written before encryption" {
		t.Fatalf("unencrypted payload: %q, %v", got, err)
	}
}

// Strict decodes what its keys encrypted and refuses anything else: a
// plain payload, one whose metadata merely names no encoding, and a list
// with one plain payload among encrypted ones; its error quotes no data.
func TestStrictRefusesPlaintext(t *testing.T) {
	c := mustParse(t, key(t, "k1"))
	s := Strict(c)
	enc, err := s.Encode([]*commonpb.Payload{plain(sentinel)})
	if err != nil {
		t.Fatal(err)
	}
	if dec, err := s.Decode(enc); err != nil || string(dec[0].Data) != sentinel {
		t.Fatalf("an encrypted payload: %v, %v", dec, err)
	}
	if dec, err := s.Decode(nil); err != nil || len(dec) != 0 {
		t.Fatalf("no payload (a bare signal): %v, %v", dec, err)
	}
	for name, ps := range map[string][]*commonpb.Payload{
		"plain JSON":      {plain(sentinel)},
		"no metadata":     {{Data: []byte(sentinel)}},
		"one plain among": {enc[0], plain(sentinel)},
	} {
		_, err := s.Decode(ps)
		if !errors.Is(err, ErrPlaintext) || strings.Contains(err.Error(), sentinel) {
			t.Errorf("%s: %v, want ErrPlaintext without the data", name, err)
		}
	}
	// The lenient codec still passes them through (replay, the admin command).
	if _, err := c.Decode([]*commonpb.Payload{plain(sentinel)}); err != nil {
		t.Fatalf("Codec.Decode of a plain payload: %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	short := "k:" + base64.StdEncoding.EncodeToString(make([]byte, 16))
	good := key(t, "k")
	for spec, want := range map[string]string{
		"":                                   "no encryption key",
		"   ,  ":                             "no encryption key",
		"nokey":                              "want id:base64",
		":" + good[2:]:                       "want id:base64",
		"k:not base64!":                      `"k": not base64`,
		short:                                `"k" is 16 bytes, want 32`,
		good + "," + good:                    `"k" listed twice`,
		"bad id:" + good[2:]:                 `id "bad id"`,
		"k:" + strings.Repeat("A", 43) + "=": "",
	} {
		_, err := ParseKeys(spec)
		if want == "" {
			if err != nil {
				t.Errorf("ParseKeys(%q) = %v", spec, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKeys(%q) = %v, want %q", spec, err, want)
		}
		if err != nil && len(spec) > 20 && strings.Contains(err.Error(), spec[2:22]) {
			t.Errorf("ParseKeys error %q quotes the key", err)
		}
	}
}

// TestFailuresAreEncoded: an activity error that quotes an address is not
// readable in the failure Temporal stores, and decodes back.
func TestFailuresAreEncoded(t *testing.T) {
	c := mustParse(t, key(t, "k1"))
	fc := FailureConverter(c.DataConverter())
	f := fc.ErrorToFailure(temporal.NewApplicationError("mail to "+sentinel+" refused", "Permanent"))
	raw, err := proto.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(sentinel)) {
		t.Fatal("the stored failure quotes the address")
	}
	if back := fc.FailureToError(f); !strings.Contains(back.Error(), sentinel) {
		t.Fatalf("decoded failure = %v", back)
	}
}

func plain(s string) *commonpb.Payload {
	return &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingBinary)}, Data: []byte(s)}
}

// BenchmarkEncode measures the cost of encryption per payload of the size
// of a session's typical activity input (about 1 KB).
func BenchmarkEncode(b *testing.B) {
	for _, size := range []int{256, 1024, 16 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			c := mustParse(b, key(b, "k1"))
			p := []*commonpb.Payload{{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("json/plain")}, Data: bytes.Repeat([]byte("a"), size)}}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Encode(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{256, 1024, 16 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			c := mustParse(b, key(b, "k1"))
			enc, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("json/plain")}, Data: bytes.Repeat([]byte("a"), size)}})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func sizeName(n int) string { return strconv.Itoa(n) + "B" }

// TestRefusalsStayReadable: an Update's refusal, which answers its caller
// and is never recorded, keeps its message readable to the UI and the CLI.
func TestRefusalsStayReadable(t *testing.T) {
	c := mustParse(t, key(t, "k1"))
	fc := FailureConverter(c.DataConverter())
	f := fc.ErrorToFailure(temporal.NewApplicationError("nothing to retry: no step is parked", contract.RefusedErrorType))
	if f.GetMessage() != "nothing to retry: no step is parked" || f.GetEncodedAttributes() != nil {
		t.Fatalf("the refusal's failure = %v, want its message in clear", f)
	}
	if back := fc.FailureToError(f); !strings.Contains(back.Error(), "no step is parked") {
		t.Fatalf("decoded refusal = %v", back)
	}
}
