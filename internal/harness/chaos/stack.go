// Package chaos runs diditflow's whole stack as separate processes (Temporal
// dev server, worker, starter) with a real SMTP server and database, injects
// faults, and checks that every verified Didit event ends in the right
// record and the right notifications, exactly once per effect.
package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/smtptest"
	"github.com/diditflow/diditflow/internal/store"

	_ "modernc.org/sqlite" // for locking the SQLite file from outside
)

// Config describes the stack to run.
type Config struct {
	// Dir holds the binaries, the database, Temporal's state and the logs.
	Dir string
	// DatabaseURL is a postgres:// URL; empty means SQLite in Dir.
	DatabaseURL string
	Secret      string
	// StepBudget and IdleWindow tune the worker (STEP_RETRY_BUDGET,
	// SESSION_IDLE_WINDOW).
	StepBudget time.Duration
	IdleWindow time.Duration
	// Log receives the harness's progress lines.
	Log io.Writer
	// TemporalAddress, when set, is a running Temporal of make cluster's
	// kind (its services are processes of this machine) to use instead of
	// a dev server of the stack's own: "Temporal down" then freezes its
	// frontend processes (SIGSTOP) and thaws them (SIGCONT).
	TemporalAddress string
}

// Stack is a running diditflow deployment under test.
type Stack struct {
	cfg              Config
	dbURL            string
	httpPort, smtpAt string
	temporal         temporalServer
	worker, starter  *launch.Proc
	smtp             *smtptest.Server
	Client           client.Client
	Store            *store.Store

	// StarterQueue is the task queue the starter signals ("chaos", the
	// worker's, unless changed before a RestartStarter).
	StarterQueue string

	mu          sync.Mutex
	mails       []smtptest.Mail
	peakStarter int64
	peakWorker  int64
	secrets     string
}

// Start builds the binaries and starts every component.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	s := &Stack{cfg: cfg, secrets: cfg.Secret, StarterQueue: "chaos"}
	for _, p := range []*string{&s.httpPort, &s.smtpAt} {
		port, err := launch.FreePort()
		if err != nil {
			return nil, err
		}
		*p = port
	}
	s.dbURL = cfg.DatabaseURL
	if s.dbURL == "" {
		s.dbURL = filepath.Join(cfg.Dir, "records.db")
	}
	s.logf("building worker and starter")
	if err := launch.Build(ctx, cfg.Dir, "./worker", "./starter"); err != nil {
		return nil, err
	}
	if err := s.StartSMTP(); err != nil {
		return nil, err
	}
	if cfg.TemporalAddress != "" {
		s.temporal = &clusterTemporal{address: cfg.TemporalAddress}
	} else {
		dev, err := launch.StartDevServer(ctx, launch.DevServerConfig{Dir: cfg.Dir})
		if err != nil {
			return nil, err
		}
		s.temporal = dev
	}
	c, err := client.NewLazyClient(launch.WithCodec(client.Options{HostPort: s.TemporalAddress(), Logger: launch.SilentLogger()}))
	if err != nil {
		return nil, err
	}
	s.Client = c
	if err := s.StartWorker(ctx); err != nil {
		return nil, err
	}
	if err := s.StartStarter(ctx, cfg.Secret); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, s.dbURL, nil)
	if err != nil {
		return nil, err
	}
	s.Store = st
	return s, nil
}

// temporalServer is the Temporal a stack runs on: its own dev server, or
// make cluster's.
type temporalServer interface {
	Address() string
	Start(ctx context.Context) error
	Stop()
	Close()
}

// clusterTemporal is make cluster's Temporal, already running. Its outage
// is its frontend processes frozen: every call times out, as with the
// server down, and thawing them loses nothing (make cluster would restart
// a killed one on its own, at a moment the harness does not choose).
type clusterTemporal struct{ address string }

func (c *clusterTemporal) Address() string { return c.address }

func (c *clusterTemporal) signal(sig string) error {
	out, err := exec.Command("pkill", "-"+sig, "-f", "--", "--service frontend").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pkill -%s the cluster's frontend: %v: %s", sig, err, out)
	}
	return nil
}

func (c *clusterTemporal) Stop() { _ = c.signal("STOP") }

func (c *clusterTemporal) Start(ctx context.Context) error {
	if err := c.signal("CONT"); err != nil {
		return err
	}
	return launch.WaitFor(ctx, time.Minute, "the cluster's frontend", func() bool {
		conn, err := net.DialTimeout("tcp", c.address, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
}

// Close leaves the cluster running, thawed.
func (c *clusterTemporal) Close() { _ = c.signal("CONT") }

// TemporalAddress is the Temporal frontend.
func (s *Stack) TemporalAddress() string { return s.temporal.Address() }

// BaseURL is the starter's address.
func (s *Stack) BaseURL() string { return "http://127.0.0.1:" + s.httpPort }

// WebhookURL is the starter's webhook endpoint.
func (s *Stack) WebhookURL() string { return s.BaseURL() + "/webhooks/didit" }

func (s *Stack) logf(format string, args ...any) {
	if s.cfg.Log != nil {
		fmt.Fprintf(s.cfg.Log, "chaos: "+format+"\n", args...)
	}
}

// StartTemporal restarts the dev server on its port and state file.
func (s *Stack) StartTemporal(ctx context.Context) error { return s.temporal.Start(ctx) }

// StopTemporal stops the dev server (its state survives on disk).
func (s *Stack) StopTemporal() { s.temporal.Stop() }

func (s *Stack) workerEnv() []string {
	return []string{
		"TEMPORAL_ADDRESS=" + s.TemporalAddress(), "TEMPORAL_NAMESPACE=default", "TEMPORAL_TASK_QUEUE=chaos",
		"DATABASE_URL=" + s.dbURL, "SMTP_URL=smtp://127.0.0.1:" + s.smtpAt + "?starttls=off",
		"COMPLIANCE_EMAIL=compliance@example.com", "LOG_FORMAT=json", "LOG_LEVEL=warn",
		"SESSION_IDLE_WINDOW=" + s.cfg.IdleWindow.String(), "STEP_RETRY_BUDGET=" + s.cfg.StepBudget.String(),
		// Short next to the step budget, so a brief outage is retried, not parked.
		"MAIL_BREAKER_OPEN_TIMEOUT=3s",
		"METRICS_ADDR=127.0.0.1:0",
		"PAYLOAD_ENCRYPTION_KEYS=" + launch.PayloadKeys,
	}
}

// StartWorker starts a worker process.
func (s *Stack) StartWorker(ctx context.Context) error {
	p, err := launch.Start(filepath.Join(s.cfg.Dir, "worker"), nil, s.workerEnv(), filepath.Join(s.cfg.Dir, "worker.log"))
	if err != nil {
		return err
	}
	s.worker = p
	return nil
}

// KillWorker SIGKILLs the worker, as a crash or an OOM kill would.
func (s *Stack) KillWorker() {
	s.notePeak()
	s.worker.Stop(syscall.SIGKILL)
}

// StartStarter starts the receiver with the given DIDIT_WEBHOOK_SECRETS and
// waits until it is ready.
func (s *Stack) StartStarter(ctx context.Context, secrets string) error {
	env := []string{"TEMPORAL_ADDRESS=" + s.TemporalAddress(), "TEMPORAL_TASK_QUEUE=" + s.StarterQueue, "HTTP_ADDR=127.0.0.1:" + s.httpPort,
		"DIDIT_WEBHOOK_SECRETS=" + secrets, "LOG_FORMAT=json", "LOG_LEVEL=error", "SIGNAL_TIMEOUT=2s", "STARTER_METRICS_ADDR=127.0.0.1:0",
		"PAYLOAD_ENCRYPTION_KEYS=" + launch.PayloadKeys}
	p, err := launch.Start(filepath.Join(s.cfg.Dir, "starter"), nil, env, filepath.Join(s.cfg.Dir, "starter.log"))
	if err != nil {
		return err
	}
	s.starter = p
	s.secrets = secrets
	return launch.WaitFor(ctx, time.Minute, "starter", func() bool {
		resp, err := http.Get(s.BaseURL() + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// RestartStarter replaces the starter with one holding other secrets.
func (s *Stack) RestartStarter(ctx context.Context, secrets string) error {
	s.notePeak()
	s.starter.Stop(syscall.SIGTERM)
	return s.StartStarter(ctx, secrets)
}

// StartSMTP (re)starts the mail server on its fixed port.
func (s *Stack) StartSMTP() error {
	srv, err := smtptest.Start("127.0.0.1:" + s.smtpAt)
	if err != nil {
		return err
	}
	srv.OnMail(func(m smtptest.Mail) {
		s.mu.Lock()
		s.mails = append(s.mails, m)
		s.mu.Unlock()
	})
	s.smtp = srv
	return nil
}

// StopSMTP takes the mail server down.
func (s *Stack) StopSMTP() { _ = s.smtp.Close() }

// Mails is every message the mail server accepted, across restarts.
func (s *Stack) Mails() []smtptest.Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtptest.Mail(nil), s.mails...)
}

// BlockDatabase makes the database unavailable for d: for SQLite another
// connection holds an exclusive lock; for PostgreSQL the cluster is stopped.
func (s *Stack) BlockDatabase(ctx context.Context, d time.Duration) error {
	if strings.HasPrefix(s.dbURL, "postgres") {
		return s.stopPostgres(ctx, d)
	}
	db, err := sql.Open("sqlite", "file:"+s.dbURL+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		return fmt.Errorf("lock sqlite: %w", err)
	}
	s.logf("database locked for %s", d)
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	_, err = conn.ExecContext(context.Background(), "ROLLBACK")
	s.logf("database unlocked")
	return err
}

func (s *Stack) stopPostgres(ctx context.Context, d time.Duration) error {
	versions, err := filepath.Glob("/etc/postgresql/*")
	if err != nil || len(versions) == 0 {
		return fmt.Errorf("no PostgreSQL cluster to stop: %v", err)
	}
	version := filepath.Base(versions[0])
	ctl := func(action string) error {
		out, err := exec.CommandContext(ctx, "pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action).CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_ctlcluster %s: %v: %s", action, err, out)
		}
		return nil
	}
	if err := ctl("stop"); err != nil {
		return err
	}
	s.logf("PostgreSQL stopped for %s", d)
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	err = ctl("start")
	s.logf("PostgreSQL started")
	return err
}

// notePeak samples the peak resident memory of the starter and the worker.
func (s *Stack) notePeak() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.starter != nil {
		s.peakStarter = max(s.peakStarter, s.starter.PeakKB())
	}
	if s.worker != nil {
		s.peakWorker = max(s.peakWorker, s.worker.PeakKB())
	}
}

// Peaks returns the highest resident memory (KiB) seen of starter and worker.
func (s *Stack) Peaks() (starter, worker int64) {
	s.notePeak()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakStarter, s.peakWorker
}

// Close stops everything.
func (s *Stack) Close() {
	s.notePeak()
	for _, p := range []*launch.Proc{s.starter, s.worker} {
		if p != nil {
			p.Stop(syscall.SIGTERM)
		}
	}
	if s.temporal != nil {
		s.temporal.Close()
	}
	if s.smtp != nil {
		s.StopSMTP()
	}
	if s.Store != nil {
		s.Store.Close()
	}
	if s.Client != nil {
		s.Client.Close()
	}
}
