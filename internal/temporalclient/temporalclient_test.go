package temporalclient

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/diditflow/diditflow/internal/codec"
	"github.com/diditflow/diditflow/internal/config"
)

func TestLocal(t *testing.T) {
	for _, c := range []struct {
		addr  string
		tls   bool
		key   bool
		local bool
	}{
		{"localhost:7233", false, false, true},
		{"127.0.0.1:7233", false, false, true},
		{"[::1]:7233", false, false, true},
		{"127.0.0.1:7233", true, false, false},
		{"localhost:7233", false, true, false},
		{"temporal:7233", false, false, false},
		{"10.0.0.5:7233", false, false, false},
		{"my-ns.tmprl.cloud:7233", false, false, false},
		{":7233", false, false, false},
	} {
		if c.tls {
			t.Setenv("TEMPORAL_TLS", "true")
		}
		if c.key {
			t.Setenv("TEMPORAL_API_KEY", "a-key")
		}
		t.Setenv("TEMPORAL_ADDRESS", c.addr)
		loaded, err := Options(slog.New(slog.DiscardHandler), config.Encryption{PayloadEncryption: "off"})
		if err != nil {
			t.Fatal(err)
		}
		if got := Local(loaded); got != c.local {
			t.Errorf("Local(%s, tls %v, api key %v) = %v, want %v", c.addr, c.tls, c.key, got, c.local)
		}
		t.Setenv("TEMPORAL_TLS", "")
		t.Setenv("TEMPORAL_API_KEY", "")
	}
}

func TestEncryptionRules(t *testing.T) {
	key, err := codec.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		addr    string
		enc     config.Encryption
		wantErr string
		encrypt bool
		warn    string
	}{
		{"local without keys", "127.0.0.1:7233", config.Encryption{PayloadEncryption: "on"}, "", false, "development only"},
		{"remote without keys", "temporal.internal:7233", config.Encryption{PayloadEncryption: "on"}, "PAYLOAD_ENCRYPTION_KEYS is not set", false, ""},
		{"remote, turned off", "temporal.internal:7233", config.Encryption{PayloadEncryption: "off"}, "", false, "PAYLOAD_ENCRYPTION=off"},
		{"remote with keys", "temporal.internal:7233", config.Encryption{PayloadEncryption: "on", PayloadEncryptionKeys: key}, "", true, ""},
		{"off with keys decrypts only", "temporal.internal:7233", config.Encryption{PayloadEncryption: "off", PayloadEncryptionKeys: key}, "", false, "only decrypt"},
		{"a short key", "127.0.0.1:7233", config.Encryption{PayloadEncryption: "on", PayloadEncryptionKeys: "k1:AAAA"}, `"k1" is 3 bytes`, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("TEMPORAL_ADDRESS", c.addr)
			var logs bytes.Buffer
			opts, err := Options(slog.New(slog.NewTextHandler(&logs, nil)), c.enc)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Options = %v, want an error naming %q", err, c.wantErr)
				}
				if c.enc.PayloadEncryptionKeys == "" && !errors.Is(err, ErrNoKeys) {
					t.Fatalf("error %v is not ErrNoKeys", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.warn != "" && !strings.Contains(logs.String(), c.warn) {
				t.Fatalf("logs %q lack %q", logs.String(), c.warn)
			}
			if strings.Contains(logs.String(), key[3:]) {
				t.Fatal("a key is logged")
			}
			if opts.DataConverter == nil {
				if c.encrypt || c.enc.PayloadEncryptionKeys != "" {
					t.Fatal("no data converter")
				}
				return
			}
			p, err := opts.DataConverter.ToPayload("someone@example.com")
			if err != nil {
				t.Fatal(err)
			}
			encrypted := string(p.Metadata["encoding"]) == codec.Encoding
			if encrypted != c.encrypt {
				t.Fatalf("payload encoding %q, want encrypted %v", p.Metadata["encoding"], c.encrypt)
			}
			if opts.FailureConverter == nil {
				t.Fatal("no failure converter")
			}
		})
	}
}

// A worker's client with keys refuses to decode a clear payload, unless
// PAYLOAD_ENCRYPTION_ACCEPT_PLAINTEXT says so (with a warning); without
// keys, or with encryption off, it decodes it as any client does.
func TestWorkerRefusesPlaintextWithKeys(t *testing.T) {
	key, err := codec.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:7233")
	clear, err := converter.GetDefaultDataConverter().ToPayload("forged")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		enc     config.Encryption
		accept  bool
		refused bool
		warn    string
	}{
		{"keys", config.Encryption{PayloadEncryption: "on", PayloadEncryptionKeys: key}, false, true, ""},
		{"keys, accepting plaintext", config.Encryption{PayloadEncryption: "on", PayloadEncryptionKeys: key}, true, false, "PAYLOAD_ENCRYPTION_ACCEPT_PLAINTEXT=true"},
		{"keys, encryption off", config.Encryption{PayloadEncryption: "off", PayloadEncryptionKeys: key}, false, false, ""},
		{"no keys", config.Encryption{PayloadEncryption: "on"}, false, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			reg := prometheus.NewRegistry()
			opts, err := WorkerOptions(slog.New(slog.NewTextHandler(&logs, nil)), c.enc, Worker{Registry: reg, AcceptPlaintext: c.accept})
			if err != nil {
				t.Fatal(err)
			}
			dc := opts.DataConverter
			if dc == nil {
				dc = converter.GetDefaultDataConverter()
			}
			var got string
			err = dc.FromPayload(clear, &got)
			if refused := errors.Is(err, codec.ErrPlaintext); refused != c.refused || !refused && (err != nil || got != "forged") {
				t.Fatalf("decoding a clear payload: %q, %v; want refused %v", got, err, c.refused)
			}
			if guarded := len(opts.Interceptors) == 1; guarded != c.refused {
				t.Fatalf("%d interceptors, want the guard %v", len(opts.Interceptors), c.refused)
			}
			if c.warn != "" && !strings.Contains(logs.String(), c.warn) {
				t.Fatalf("logs %q lack %q", logs.String(), c.warn)
			}
		})
	}
}

// The namespace is TEMPORAL_NAMESPACE's, or the SDK's default one: the
// worker's metrics are labelled with it.
func TestNamespace(t *testing.T) {
	for env, want := range map[string]string{"": client.DefaultNamespace, "kyc-prod": "kyc-prod"} {
		t.Setenv("TEMPORAL_NAMESPACE", env)
		if got, err := Namespace(); err != nil || got != want {
			t.Errorf("TEMPORAL_NAMESPACE=%q: %q, %v; want %q", env, got, err, want)
		}
	}
}
