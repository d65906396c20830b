// Package temporalclient is the one place that builds a Temporal client. It
// follows Temporal's own configuration convention (go.temporal.io/sdk/contrib/envconfig):
// TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*,
// TEMPORAL_PROFILE and config files, so the same variables reach the dev
// server, a self-hosted cluster or Temporal Cloud.
package temporalclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	temporalenv "go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/caller"
	"github.com/diditflow/diditflow/internal/codec"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/untrusted"
)

// Options loads the client options from the environment, with the payload
// codec enc configures. An unset TEMPORAL_ADDRESS means the local dev server
// on localhost:7233.
func Options(logger *slog.Logger, enc config.Encryption) (client.Options, error) {
	opts, _, err := options(logger, enc)
	return opts, err
}

// options is Options and the codec that encrypts the client's payloads, nil
// when none does.
func options(logger *slog.Logger, enc config.Encryption) (client.Options, *codec.Codec, error) {
	opts, err := temporalenv.LoadDefaultClientOptions()
	if err != nil {
		return client.Options{}, nil, fmt.Errorf("temporal client options: %w", err)
	}
	if opts.HostPort == "" {
		opts.HostPort = client.DefaultHostPort
	}
	opts.Logger = log.NewStructuredLogger(logger)
	c, err := withEncryption(&opts, enc, logger)
	if err != nil {
		return client.Options{}, nil, err
	}
	return opts, c, nil
}

// Namespace is the namespace a client of this environment works in, as
// the SDK resolves it: TEMPORAL_NAMESPACE or the profile's, else the
// default one.
func Namespace() (string, error) {
	opts, err := temporalenv.LoadDefaultClientOptions()
	if err != nil {
		return "", fmt.Errorf("temporal client options: %w", err)
	}
	if opts.Namespace == "" {
		return client.DefaultNamespace, nil
	}
	return opts.Namespace, nil
}

// ErrNoKeys is the error of a client that would write personal data in
// clear to a Temporal that is not local.
var ErrNoKeys = errors.New("PAYLOAD_ENCRYPTION_KEYS is not set")

// withEncryption sets the data and failure converters of the codec enc
// configures and returns it if it encrypts. Without keys, payloads go in
// clear only to a local Temporal (Local) or when PAYLOAD_ENCRYPTION=off says
// so; both are logged.
func withEncryption(opts *client.Options, enc config.Encryption, logger *slog.Logger) (*codec.Codec, error) {
	if enc.PayloadEncryptionKeys == "" {
		switch {
		case enc.Off():
			logger.Warn("payload encryption is off (PAYLOAD_ENCRYPTION=off): Temporal histories hold personal data in clear",
				"temporal_address", opts.HostPort)
			return nil, nil
		case Local(*opts):
			logger.Warn("payload encryption is off: no PAYLOAD_ENCRYPTION_KEYS, and Temporal is local (development only)",
				"temporal_address", opts.HostPort)
			return nil, nil
		}
		return nil, fmt.Errorf("%w and Temporal at %s is not local (a remote host, TLS or an API key): "+
			"give id:base64(32 bytes) keys, or set PAYLOAD_ENCRYPTION=off to write personal data to it in clear", ErrNoKeys, opts.HostPort)
	}
	c, err := codec.ParseKeys(enc.PayloadEncryptionKeys)
	if err != nil {
		return nil, fmt.Errorf("PAYLOAD_ENCRYPTION_KEYS: %w", err)
	}
	encrypting := c
	if enc.Off() {
		encrypting = nil
		logger.Warn("payload encryption is off (PAYLOAD_ENCRYPTION=off): new payloads go in clear; the keys only decrypt",
			"key_ids", strings.Join(c.KeyIDs(), ","))
	} else {
		logger.Info("payload encryption on", "encrypting_key_id", c.EncryptingKeyID(), "key_ids", strings.Join(c.KeyIDs(), ","))
	}
	opts.DataConverter, opts.FailureConverter = codec.Converters(nil, c, !enc.Off())
	return encrypting, nil
}

// Local reports whether opts dial a Temporal on this machine in the clear:
// a loopback host (or localhost) with neither TLS nor credentials, as the
// dev server is. Any API key or TLS setting means not local, wherever it dials.
func Local(opts client.Options) bool {
	if opts.Credentials != nil || opts.ConnectionOptions.TLS != nil {
		return false
	}
	host, _, err := net.SplitHostPort(opts.HostPort)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Worker is what a worker's client adds to the others'.
type Worker struct {
	// Metrics, if not nil, receives the SDK's metrics.
	Metrics client.MetricsHandler
	// Registry, if not nil, receives the count of refused payloads
	// (untrusted.Guard).
	Registry prometheus.Registerer
	// AcceptPlaintext (PAYLOAD_ENCRYPTION_ACCEPT_PLAINTEXT) trusts
	// unencrypted payloads although keys are configured, for the migration
	// of a deployment to encryption.
	AcceptPlaintext bool
	// Callers, if not nil, notes who sent each Update the worker receives,
	// for the workflows to record (workflows.Workflows.Callers).
	Callers *caller.Identities
}

// Dial connects now and fails if Temporal is unreachable; workers use it.
// With keys configured and encryption on, the client refuses what reaches
// it unencrypted (untrusted.Guard) unless w.AcceptPlaintext says otherwise;
// interceptors (tracing) see every call the client and its workers make.
func Dial(ctx context.Context, logger *slog.Logger, enc config.Encryption, w Worker, interceptors ...interceptor.ClientInterceptor) (client.Client, error) {
	opts, err := WorkerOptions(logger, enc, w)
	if err != nil {
		return nil, err
	}
	opts.Interceptors = append(opts.Interceptors, interceptors...)
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("dial temporal at %s: %w", opts.HostPort, err)
	}
	return tc, nil
}

// WorkerOptions are Options with what w adds: the SDK's metrics, the note
// of Updates' callers and, with
// keys configured and encryption on, the guard against unencrypted payloads
// (its converters and its interceptor) unless w.AcceptPlaintext.
func WorkerOptions(logger *slog.Logger, enc config.Encryption, w Worker) (client.Options, error) {
	opts, c, err := options(logger, enc)
	if err != nil {
		return client.Options{}, err
	}
	if w.Metrics != nil {
		opts.MetricsHandler = w.Metrics
	}
	if w.Callers != nil {
		opts.ConnectionOptions.DialOptions = append(opts.ConnectionOptions.DialOptions, w.Callers.DialOption())
	}
	if c == nil {
		return opts, nil
	}
	if w.AcceptPlaintext {
		logger.Warn("PAYLOAD_ENCRYPTION_ACCEPT_PLAINTEXT=true: the worker trusts unencrypted workflow inputs, signals and Updates, " +
			"which anyone who reaches Temporal can send; set it back once the runs started before encryption have closed")
		return opts, nil
	}
	g := untrusted.New(c, logger, w.Registry)
	opts.DataConverter = g.DataConverter()
	opts.FailureConverter = g.FailureConverter(opts.DataConverter)
	// Before the tracing interceptors: a refused signal reaches none of them.
	opts.Interceptors = append(opts.Interceptors, g)
	logger.Info("unencrypted workflow inputs, signals and Updates are refused")
	return opts, nil
}

// Lazy returns a client that connects on first use, so the receiver can
// start, answer 503 and report not-ready while Temporal is down.
func Lazy(logger *slog.Logger, enc config.Encryption, interceptors ...interceptor.ClientInterceptor) (client.Client, error) {
	opts, err := Options(logger, enc)
	if err != nil {
		return nil, err
	}
	opts.Interceptors = append(opts.Interceptors, interceptors...)
	c, err := client.NewLazyClient(opts)
	if err != nil {
		return nil, fmt.Errorf("temporal client for %s: %w", opts.HostPort, err)
	}
	return c, nil
}

// SessionStartOptions are the options of the SignalWithStart that hands a
// contract.SessionEvent to its session's workflow, starting a run if none is open:
// the receiver's, and reconciliation's for what the receiver missed.
//
// A run it starts begins with the search attributes of the event's status,
// no AML hit and nothing needing attention, which the workflow would
// otherwise write in its first task: the workflow writes only what its
// state makes different (an open run ignores them).
func SessionStartOptions(sessionID string, status didit.Status, taskQueue string) client.StartWorkflowOptions {
	id := contract.SessionWorkflowID(sessionID)
	return client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(contract.StatusKey.ValueSet(string(status)),
			contract.AMLHitKey.ValueSet(false), contract.NeedsAttentionKey.ValueSet(false)),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// A closed session may be reopened (manual review, Kyc Expired),
		// so a later event starts a new run.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}
}
