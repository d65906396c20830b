package kyc

import (
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/internal/codec"
	"github.com/diditflow/diditflow/internal/config"
)

// ConfigureClient sets the data and failure converters of opts from
// PAYLOAD_ENCRYPTION_KEYS (and PAYLOAD_ENCRYPTION), exactly as diditflow's
// own processes do, so what a business's workflow and diditflow exchange is
// encrypted and readable by both: give the business's worker and clients
// the keys diditflow has. A data converter already in opts is kept, behind
// the encryption. Without keys it changes nothing. Use it for the client
// the business's worker is built on:
//
//	opts := client.Options{HostPort: "localhost:7233"}
//	if err := kyc.ConfigureClient(&opts); err != nil { ... }
//	c, err := client.Dial(opts)
func ConfigureClient(opts *client.Options) error {
	enc, err := config.LoadEncryption()
	if err != nil {
		return fmt.Errorf("kyc: %w", err)
	}
	if enc.PayloadEncryptionKeys == "" {
		return nil
	}
	c, err := codec.ParseKeys(enc.PayloadEncryptionKeys)
	if err != nil {
		return fmt.Errorf("kyc: PAYLOAD_ENCRYPTION_KEYS: %w", err)
	}
	opts.DataConverter, opts.FailureConverter = codec.Converters(opts.DataConverter, c, !enc.Off())
	return nil
}
