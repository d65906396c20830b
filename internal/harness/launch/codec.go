package launch

import (
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/internal/codec"
)

// PayloadKeys is the PAYLOAD_ENCRYPTION_KEYS of the stacks tests start, so
// their histories are encrypted as in production. It protects nothing: it
// is in the source, derived as base64(sha256("diditflow harness payload
// key")), and also decrypts the recorded replay histories made with it.
const PayloadKeys = "harness:X6GlX+ygP6kCoq059an51BH1l7ZlaWWztDOHnB77gsg="

// Codec is the payload codec of PayloadKeys.
func Codec() *codec.Codec {
	c, err := codec.ParseKeys(PayloadKeys)
	if err != nil {
		panic("launch.PayloadKeys: " + err.Error())
	}
	return c
}

// WithCodec sets the data and failure converters of PayloadKeys on opts: a
// test's client reads what the stack's processes encrypted, and clear
// payloads (a stack started without keys) pass through.
func WithCodec(opts client.Options) client.Options {
	opts.DataConverter = Codec().DataConverter()
	opts.FailureConverter = codec.FailureConverter(opts.DataConverter)
	return opts
}
