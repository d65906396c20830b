// Package codec encrypts every Temporal payload diditflow writes (workflow
// and activity inputs and results, signals, queries, memos, failure messages
// and stack traces) with AES-256-GCM, so a history read without the keys holds
// no personal data. It is a converter.PayloadCodec: the starter, the worker,
// the admin command and cmd/codec-server share it through DataConverter and
// FailureConverter.
//
// Keys come as a list of "id:base64(32 bytes)": the first encrypts, every one
// decrypts, so a new key is rolled out by putting it first and the old one is
// dropped once nothing it encrypted is still read.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"github.com/diditflow/diditflow/internal/contract"
)

const (
	// Encoding names an encrypted payload in its "encoding" metadata.
	Encoding = "binary/diditflow-aes256gcm"
	// MetadataKeyID is the metadata entry naming the key a payload was
	// encrypted with, so any listed key can decrypt it after a rotation.
	MetadataKeyID = "encryption-key-id"
	// KeySize is the length of an AES-256 key.
	KeySize = 32
)

// ErrDecrypt is the error of a payload that does not decrypt: tampered, cut,
// or encrypted under another key of the same id.
var ErrDecrypt = errors.New("payload does not decrypt")

// ErrUnknownKey is the error of a payload encrypted with a key not listed.
var ErrUnknownKey = errors.New("payload encrypted with a key not configured")

// ErrPlaintext is the error of a payload that is not encrypted, decoded by
// Strict: only a holder of the keys writes encrypted payloads, so one
// without encryption may come from anyone who reaches Temporal.
var ErrPlaintext = errors.New("payload not encrypted")

// Codec is the AES-256-GCM payload codec.
type Codec struct {
	encryptID string
	keys      map[string]cipher.AEAD
	ids       []string
}

var _ converter.PayloadCodec = (*Codec)(nil)

// ParseKeys builds a Codec from the PAYLOAD_ENCRYPTION_KEYS format, a comma
// list of id:base64 where each key is 32 bytes. Errors name the key id and
// the problem, never the key material.
func ParseKeys(spec string) (*Codec, error) {
	c := &Codec{keys: map[string]cipher.AEAD{}}
	for i, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, encoded, ok := strings.Cut(item, ":")
		if !ok || id == "" {
			return nil, fmt.Errorf("encryption key %d: want id:base64(32 bytes)", i+1)
		}
		if !validID(id) {
			return nil, fmt.Errorf("encryption key %d: id %q: use letters, digits, '.', '_' or '-'", i+1, id)
		}
		if _, dup := c.keys[id]; dup {
			return nil, fmt.Errorf("encryption key id %q listed twice", id)
		}
		raw, err := decodeKey(encoded)
		if err != nil {
			return nil, fmt.Errorf("encryption key %q: not base64", id)
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("encryption key %q is %d bytes, want %d (AES-256)", id, len(raw), KeySize)
		}
		aead, err := newAEAD(raw)
		if err != nil {
			return nil, fmt.Errorf("encryption key %q: %w", id, err)
		}
		c.keys[id] = aead
		c.ids = append(c.ids, id)
	}
	if len(c.ids) == 0 {
		return nil, errors.New("no encryption key: want id:base64(32 bytes)[,id:base64...]")
	}
	c.encryptID = c.ids[0]
	return c, nil
}

// GenerateKey returns a new random key in the PAYLOAD_ENCRYPTION_KEYS format.
func GenerateKey(id string) (string, error) {
	if !validID(id) {
		return "", fmt.Errorf("key id %q: use letters, digits, '.', '_' or '-'", id)
	}
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(raw), nil
}

// EncryptingKeyID is the id of the key new payloads are encrypted with.
func (c *Codec) EncryptingKeyID() string { return c.encryptID }

// KeyIDs lists the configured key ids, the encrypting one first.
func (c *Codec) KeyIDs() []string { return slices.Clone(c.ids) }

// Encode encrypts each payload, metadata included, under the first key. The
// key id is also the additional data of the seal, so a payload cannot be
// passed off as encrypted under another listed key.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.keys[c.encryptID]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		sealed := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(sealed); err != nil {
			return nil, fmt.Errorf("encrypt payload: nonce: %w", err)
		}
		sealed = aead.Seal(sealed, sealed, plain, []byte(c.encryptID))
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataKeyID:              []byte(c.encryptID),
			},
			Data: sealed,
		}
	}
	return out, nil
}

// Decode decrypts the payloads this codec encrypted and passes any other
// through unchanged: histories written before encryption was turned on
// still read and replay.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		plain, err := c.open(p)
		if err != nil {
			return nil, err
		}
		out[i] = plain
	}
	return out, nil
}

func (c *Codec) open(p *commonpb.Payload) (*commonpb.Payload, error) {
	id := string(p.Metadata[MetadataKeyID])
	if id == "" {
		return nil, fmt.Errorf("%w: the payload names no key id", ErrDecrypt)
	}
	aead, ok := c.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w: key id %q (configured: %s)", ErrUnknownKey, id, strings.Join(c.ids, ", "))
	}
	if len(p.Data) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: key id %q: %d bytes, too short", ErrDecrypt, id, len(p.Data))
	}
	nonce, sealed := p.Data[:aead.NonceSize()], p.Data[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, sealed, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("%w: key id %q: authentication failed (tampered, or another key under this id)", ErrDecrypt, id)
	}
	var decoded commonpb.Payload
	if err := proto.Unmarshal(plain, &decoded); err != nil {
		return nil, fmt.Errorf("%w: key id %q: not a payload", ErrDecrypt, id)
	}
	return &decoded, nil
}

// DataConverter is Temporal's default data converter with this codec.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// Converters are the data and failure converters of a client whose
// payloads c encrypts: base (nil for Temporal's default) behind c's codec,
// or, when encrypt is false (PAYLOAD_ENCRYPTION=off), behind a codec that
// only decrypts what c's keys encrypted. diditflow's processes and a
// business's client (kyc.ConfigureClient) set these same converters.
func Converters(base converter.DataConverter, c *Codec, encrypt bool) (converter.DataConverter, converter.FailureConverter) {
	if base == nil {
		base = converter.GetDefaultDataConverter()
	}
	var pc converter.PayloadCodec = c
	if !encrypt {
		pc = DecryptOnly(c)
	}
	dc := converter.NewCodecDataConverter(base, pc)
	return dc, FailureConverter(dc)
}

// FailureConverter encodes failures' messages and stack traces with the
// data converter, so an error that quotes an address is not readable in a
// history either. A validator's refusal of an Update (an application error
// of type contract.RefusedErrorType) stays readable: it answers its caller,
// the Temporal UI and CLI show it as it is, it is never recorded in a
// history, and it is worded to hold no personal data.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return failureConverter{
		FailureConverter: temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
			DataConverter:          dc,
			EncodeCommonAttributes: true,
		}),
		clear: temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc}),
	}
}

type failureConverter struct {
	converter.FailureConverter
	clear converter.FailureConverter
}

func (f failureConverter) ErrorToFailure(err error) *failurepb.Failure {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == contract.RefusedErrorType {
		return f.clear.ErrorToFailure(err)
	}
	return f.FailureConverter.ErrorToFailure(err)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if raw, err := base64.StdEncoding.DecodeString(s); err == nil {
		return raw, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Strict is c for a worker that trusts nothing unencrypted: Decode refuses
// a payload c did not encrypt with ErrPlaintext, naming only its encoding.
// The error is a plain one, not a converter.WorkflowTaskFailureError, so a
// workflow whose input it refuses fails its run rather than retrying its
// task forever. Histories written before encryption was turned on no longer
// decode with it: a worker keeps c until their runs have closed.
func Strict(c *Codec) converter.PayloadCodec { return strict{c} }

type strict struct{ c *Codec }

func (s strict) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return s.c.Encode(payloads)
}

func (s strict) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	for _, p := range payloads {
		if enc := string(p.GetMetadata()[converter.MetadataEncoding]); enc != Encoding {
			return nil, fmt.Errorf("%w: encoding %q, want %s", ErrPlaintext, truncate(enc, 64), Encoding)
		}
	}
	out, err := s.c.Decode(payloads)
	if errors.Is(err, ErrUnknownKey) {
		// A key this worker lacks is no forgery: a new key deployed to the
		// starters before the workers. The workflow task fails, and
		// Temporal retries it until a worker with the key takes it, rather
		// than the run failing over a genuine start or activity result.
		return nil, converter.NewWorkflowTaskFailureError(err)
	}
	return out, err
}

// truncate keeps a metadata value quoted in an error short: it is written
// by whoever sent the payload.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// DecryptOnly is c for a deployment that turned encryption off: it still
// decrypts what c's keys encrypted, and encrypts nothing.
func DecryptOnly(c *Codec) converter.PayloadCodec { return decryptOnly{c} }

type decryptOnly struct{ c *Codec }

func (d decryptOnly) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return payloads, nil
}

func (d decryptOnly) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return d.c.Decode(payloads)
}
