package launch

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/internal/contract"
)

// DevServerConfig describes a Temporal dev server to run.
type DevServerConfig struct {
	// Dir holds the server's state file and its log.
	Dir string
	// Port and UIPort are the frontend and UI ports; empty picks free ones.
	Port, UIPort string
	// LogLevel is the server's own (default "error").
	LogLevel string
	// UI serves the web UI on UIPort; off (headless) by default.
	UI bool
	// CodecEndpoint, when set, is the codec server the UI decodes
	// payloads with (--ui-codec-endpoint).
	CodecEndpoint string
}

// DevServer is `temporal server start-dev` run from the pinned CLI, with
// diditflow's search attributes registered. Its state lives in a file, so a
// Stop and a Start keep every workflow, as a real server's restart would.
type DevServer struct {
	cfg    DevServerConfig
	cli    string
	proc   *Proc
	health client.Client
}

// StartDevServer starts a dev server and waits until it serves.
func StartDevServer(ctx context.Context, cfg DevServerConfig) (*DevServer, error) {
	cli, err := TemporalCLI()
	if err != nil {
		return nil, err
	}
	for _, p := range []*string{&cfg.Port, &cfg.UIPort} {
		if *p == "" {
			if *p, err = FreePort(); err != nil {
				return nil, err
			}
		}
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "error"
	}
	d := &DevServer{cfg: cfg, cli: cli}
	if d.health, err = client.NewLazyClient(client.Options{HostPort: d.Address(), Logger: SilentLogger()}); err != nil {
		return nil, err
	}
	if err := d.Start(ctx); err != nil {
		d.health.Close()
		return nil, err
	}
	return d, nil
}

// Address is the frontend's host:port.
func (d *DevServer) Address() string { return net.JoinHostPort("127.0.0.1", d.cfg.Port) }

// UIAddress is the web UI's host:port.
func (d *DevServer) UIAddress() string { return net.JoinHostPort("127.0.0.1", d.cfg.UIPort) }

// LogPath is the server's log file.
func (d *DevServer) LogPath() string { return filepath.Join(d.cfg.Dir, "temporal.log") }

// Start (re)starts the server on its ports and state file and waits until
// it answers health checks.
func (d *DevServer) Start(ctx context.Context) error {
	args := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", d.cfg.Port, "--ui-port", d.cfg.UIPort,
		"--db-filename", filepath.Join(d.cfg.Dir, "temporal.db"), "--log-level", d.cfg.LogLevel}
	if !d.cfg.UI {
		args = append(args, "--headless")
	}
	if d.cfg.CodecEndpoint != "" {
		args = append(args, "--ui-codec-endpoint", d.cfg.CodecEndpoint)
	}
	for _, sa := range contract.SearchAttributeTypes() {
		args = append(args, "--search-attribute", sa)
	}
	p, err := Start(d.cli, args, nil, d.LogPath())
	if err != nil {
		return err
	}
	d.proc = p
	err = WaitFor(ctx, 2*time.Minute, "the Temporal dev server", func() bool {
		select {
		case <-p.Done():
			return true
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := d.health.CheckHealth(cctx, &client.CheckHealthRequest{})
		return err == nil
	})
	select {
	case <-p.Done():
		return fmt.Errorf("%s exited at start (log in %s)", d.cli, d.LogPath())
	default:
	}
	if err != nil {
		return fmt.Errorf("%w (log in %s)", err, d.LogPath())
	}
	return nil
}

// Stop stops the server; its state stays on disk for a later Start.
func (d *DevServer) Stop() {
	if d.proc != nil {
		d.proc.Stop(syscall.SIGTERM)
	}
}

// Close stops the server for good.
func (d *DevServer) Close() {
	d.Stop()
	d.health.Close()
}

var (
	sharedOnce   sync.Once
	shared       *DevServer
	sharedClient client.Client
	sharedErr    error
)

// ExternalTemporalEnv names a running Temporal frontend (host:port) for the
// tests to use instead of a dev server of their own: make test-cluster
// points it at make cluster's.
const ExternalTemporalEnv = "TEST_TEMPORAL_ADDRESS"

// external is the frontend ExternalTemporalEnv names, if any.
var external string

// Temporal returns a client of a dev server shared by the package's tests,
// starting it on first use, or of the server ExternalTemporalEnv names.
// Call StopTemporal from TestMain.
func Temporal(t testing.TB) client.Client {
	t.Helper()
	sharedOnce.Do(func() {
		if external = os.Getenv(ExternalTemporalEnv); external != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sharedClient, sharedErr = client.DialContext(ctx, WithCodec(client.Options{HostPort: external, Logger: QuietLogger()}))
			return
		}
		dir, err := os.MkdirTemp("", "diditflow-temporal-")
		if err != nil {
			sharedErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if shared, sharedErr = StartDevServer(ctx, DevServerConfig{Dir: dir, LogLevel: "warn"}); sharedErr != nil {
			return
		}
		sharedClient, sharedErr = client.DialContext(ctx, WithCodec(client.Options{HostPort: shared.Address(), Logger: QuietLogger()}))
	})
	if sharedErr != nil {
		Unavailable(t, "temporal dev server", sharedErr)
	}
	return sharedClient
}

// TemporalAddress is the shared server's frontend host:port.
func TemporalAddress(t testing.TB) string {
	Temporal(t)
	if external != "" {
		return external
	}
	return shared.Address()
}

// StopTemporal stops the shared dev server if it was started and removes
// its state.
func StopTemporal() {
	if sharedClient != nil {
		sharedClient.Close()
	}
	if shared != nil {
		shared.Close()
		os.RemoveAll(shared.cfg.Dir)
	}
}

// UnreachableTemporal is a real lazy client pointed at a port where nothing
// listens: every call fails as it would with Temporal down.
func UnreachableTemporal(t testing.TB) client.Client {
	t.Helper()
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:" + Port(t), Logger: QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// DialTemporal connects to the frontend at addr with the harness's codec,
// closed at the end of the test.
func DialTemporal(t testing.TB, addr string) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, WithCodec(client.Options{HostPort: addr, Logger: QuietLogger()}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
