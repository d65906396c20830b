// Package launch starts the real components that diditflow's tests, chaos
// runs and benchmarks run against: the Temporal dev server from the pinned
// CLI in ./bin (make builds it), diditflow's own binaries as processes, and
// free loopback ports for them. It is the harness's only launcher.
package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/log"
)

// RepoRoot is the module root above the working directory: tests run in
// their package's folder, commands from the root.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Path is RepoRoot joined with elem, for tests that read the repository's
// files (fixtures, recorded histories, docs); it fails t when there is none.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

// TemporalCLI returns the path of the temporal CLI: $TEMPORAL_CLI, or
// bin/temporal at the repository root. It never downloads one.
func TemporalCLI() (string, error) {
	if p := os.Getenv("TEMPORAL_CLI"); p != "" {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", "temporal")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no temporal CLI at %s: run `make bin/temporal` (or `make test`): %w", p, err)
	}
	return p, nil
}

// FreePort returns a loopback TCP port that nothing listens on now, and
// that it has not returned before in this process.
func FreePort() (string, error) {
	handedOut.mu.Lock()
	defer handedOut.mu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// The kernel may hand the same ephemeral port out again once it is
		// closed; two of a test's servers must not get it.
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return strconv.Itoa(port), nil
		}
	}
	return "", errors.New("no free port that this process has not handed out already")
}

// handedOut holds the ports FreePort returned.
var handedOut = struct {
	mu    sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Port is FreePort for tests: it fails t instead of returning an error.
func Port(t testing.TB) string {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Build compiles the module's packages (import paths or ./dirs) into dir.
func Build(ctx context.Context, dir string, pkgs ...string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + string(os.PathSeparator)}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %v: %s", pkgs, err, out)
	}
	return nil
}

// WaitFor polls cond every 100 ms until it holds, ctx ends or limit passes.
// The limit bounds a wait; it never measures speed.
func WaitFor(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", limit, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
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

// SilentLogger is a Temporal SDK logger that reports nothing: for clients
// that are expected to retry against a server a test has stopped.
func SilentLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.DiscardHandler))
}

// SilentServer listens on a loopback port, accepts connections and never
// answers, like a hung server, until the test ends. accepted receives once
// per connection taken, as long as the test reads it (it never blocks the
// server).
func SilentServer(t testing.TB) (addr string, accepted <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					_ = c.Close()
				}
				return
			}
			conns = append(conns, c)
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
	return l.Addr().String(), ch
}
