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

	"go.temporal.io/sdk/client"
	temporalenv "go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/log"
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
