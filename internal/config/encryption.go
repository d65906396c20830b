package config

import (
	"fmt"

	"github.com/kelseyhightower/envconfig"
)

// Encryption configures the payload codec (internal/codec) of every Temporal
// client diditflow builds: the starter's, the worker's and the admin
// command's, which must share the keys.
type Encryption struct {
	// PayloadEncryption is "on" (the default) or "off". On without keys is
	// refused unless Temporal is local (internal/temporalclient decides);
	// off with keys still decrypts what they encrypted, and encrypts nothing.
	PayloadEncryption string `envconfig:"PAYLOAD_ENCRYPTION" default:"on"`
	// PayloadEncryptionKeys is a comma list of id:base64(32 bytes): the
	// first encrypts, every one decrypts.
	PayloadEncryptionKeys string `envconfig:"PAYLOAD_ENCRYPTION_KEYS" secret:"true"`
}

// Off reports whether encryption was turned off.
func (e Encryption) Off() bool { return e.PayloadEncryption == "off" }

func (e Encryption) validate() error {
	if e.PayloadEncryption != "on" && e.PayloadEncryption != "off" {
		return fmt.Errorf("PAYLOAD_ENCRYPTION must be on or off, got %q", e.PayloadEncryption)
	}
	return nil
}

// LoadEncryption reads the payload codec's settings alone, for commands
// that reach Temporal without being the starter or the worker.
func LoadEncryption() (Encryption, error) {
	var e Encryption
	if err := envconfig.Process("", &e); err != nil {
		return Encryption{}, fmt.Errorf("config: %w", err)
	}
	return e, e.validate()
}
