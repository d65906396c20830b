// Package temporalclient is the one place that builds a Temporal client. It
// follows Temporal's own configuration convention (go.temporal.io/sdk/contrib/envconfig):
// TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*,
// TEMPORAL_PROFILE and config files, so the same variables reach the dev
// server, a self-hosted cluster or Temporal Cloud.
package temporalclient

import (
	"context"
	"fmt"
	"log/slog"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	temporalenv "go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/log"

	"github.com/diditflow/diditflow/internal/contract"
)

// Options loads the client options from the environment. An unset
// TEMPORAL_ADDRESS means the local dev server on localhost:7233.
func Options(logger *slog.Logger) (client.Options, error) {
	opts, err := temporalenv.LoadDefaultClientOptions()
	if err != nil {
		return client.Options{}, fmt.Errorf("temporal client options: %w", err)
	}
	if opts.HostPort == "" {
		opts.HostPort = client.DefaultHostPort
	}
	opts.Logger = log.NewStructuredLogger(logger)
	return opts, nil
}

// Dial connects now and fails if Temporal is unreachable; workers use it.
// metrics, if not nil, receives the SDK's metrics.
func Dial(ctx context.Context, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	opts, err := Options(logger)
	if err != nil {
		return nil, err
	}
	if metrics != nil {
		opts.MetricsHandler = metrics
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("dial temporal at %s: %w", opts.HostPort, err)
	}
	return c, nil
}

// Lazy returns a client that connects on first use, so the receiver can
// start, answer 503 and report not-ready while Temporal is down.
func Lazy(logger *slog.Logger) (client.Client, error) {
	opts, err := Options(logger)
	if err != nil {
		return nil, err
	}
	c, err := client.NewLazyClient(opts)
	if err != nil {
		return nil, fmt.Errorf("temporal client for %s: %w", opts.HostPort, err)
	}
	return c, nil
}

// SessionStartOptions are the options of the SignalWithStart that hands a
// contract.SessionEvent to its session's workflow, starting a run if none is open:
// the receiver's, and reconciliation's for what the receiver missed.
func SessionStartOptions(sessionID, taskQueue string) client.StartWorkflowOptions {
	id := contract.SessionWorkflowID(sessionID)
	return client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// A closed session may be reopened (manual review, Kyc Expired),
		// so a later event starts a new run.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}
}
