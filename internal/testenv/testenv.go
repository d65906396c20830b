// Package testenv gives tests the real components diditflow runs on: a
// Temporal dev server started from the pinned CLI in ./bin (make builds it).
package testenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/diditflow/diditflow/workflows"
)

// TemporalCLI returns the path of the temporal CLI: $TEMPORAL_CLI, or bin/temporal
// at the repository root.
func TemporalCLI() (string, error) {
	if p := os.Getenv("TEMPORAL_CLI"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "bin", "temporal")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("no temporal CLI at %s: run `make bin/temporal` (or `make test`): %w", p, err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Unavailable skips the test, or fails it when CI=true, where every real
// component must be present and a skip would hide a missing test.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s unavailable under CI: %v", what, err)
	}
	t.Skipf("%s unavailable: %v", what, err)
}

// QuietLogger is a Temporal SDK logger that only reports errors.
func QuietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
}

var (
	devOnce   sync.Once
	devServer *testsuite.DevServer
	devErr    error
)

// Temporal returns a client of a dev server shared by the package's tests,
// starting it on first use. Call StopTemporal from TestMain.
func Temporal(t testing.TB) client.Client {
	t.Helper()
	devOnce.Do(func() { devServer, devErr = startDevServer() })
	if devErr != nil {
		Unavailable(t, "temporal dev server", devErr)
	}
	return devServer.Client()
}

// TemporalAddress is the shared dev server's frontend host:port.
func TemporalAddress(t testing.TB) string {
	Temporal(t)
	return devServer.FrontendHostPort()
}

// StopTemporal stops the shared dev server if it was started.
func StopTemporal() {
	if devServer != nil {
		_ = devServer.Stop()
	}
}

func startDevServer() (*testsuite.DevServer, error) {
	cli, err := TemporalCLI()
	if err != nil {
		return nil, err
	}
	logFile, err := os.CreateTemp("", "temporal-dev-*.log")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  cli,
		ClientOptions: &client.Options{Logger: QuietLogger()},
		LogLevel:      "warn",
		// The workflows upsert these; an unregistered one fails their tasks.
		SearchAttributes: workflows.SearchAttributes(),
		Stdout:           logFile,
		Stderr:           logFile,
	})
	if err != nil {
		return nil, fmt.Errorf("start %s (log in %s): %w", cli, logFile.Name(), err)
	}
	return srv, nil
}

// UnreachableTemporal is a real lazy client pointed at a port where nothing
// listens: every call fails as it would with Temporal down.
func UnreachableTemporal(t testing.TB) client.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := client.NewLazyClient(client.Options{HostPort: addr, Logger: QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
