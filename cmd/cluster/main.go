// Command cluster runs diditflow on Temporal's real multi-service server
// (make cluster): frontend, history, matching and worker as four processes
// on PostgreSQL, two diditflow workers and two starters sharing one
// PostgreSQL records database. It creates what is missing (databases,
// schemas, namespace, search attributes) and reuses what is there, restarts
// a process that dies, and on SIGINT or SIGTERM stops everything it started.
//
// It is a development and test rig on one machine, not a deployment: no TLS,
// no authorization, every port on 127.0.0.1.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kelseyhightower/envconfig"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/diditflow/diditflow/internal/codec"
	"github.com/diditflow/diditflow/internal/contract"
)

// Config is the cluster's settings, from the environment.
type Config struct {
	// DatabaseURL is the PostgreSQL server the cluster's databases live on;
	// its path is ignored: the cluster uses databases of its own names.
	DatabaseURL string `envconfig:"CLUSTER_DATABASE_URL" default:"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"`
	// Prefix names the databases: <prefix>_temporal, <prefix>_visibility and
	// <prefix>_records. Never "temporal", which another install may own.
	Prefix string `envconfig:"CLUSTER_DATABASE_PREFIX" default:"diditflow_cluster"`
	// Dir holds the configuration, logs, binaries and outbox.
	Dir string `envconfig:"CLUSTER_DIR" default:".data/cluster"`
	// ServerBin is the directory with Temporal's server and sql tool
	// (make cluster-bin); CLI is the temporal CLI (make bin/temporal).
	ServerBin string `envconfig:"CLUSTER_SERVER_BIN" default:"bin/cluster-v1.32.0"`
	CLI       string `envconfig:"TEMPORAL_CLI" default:"bin/temporal"`
	// Shards is the history shard count, fixed when the database is created.
	Shards int `envconfig:"CLUSTER_HISTORY_SHARDS" default:"4"`
	// Workers and Starters are how many diditflow processes of each run.
	Workers  int `envconfig:"CLUSTER_WORKERS" default:"2"`
	Starters int `envconfig:"CLUSTER_STARTERS" default:"2"`
	// WebhookSecrets is given to the starters.
	WebhookSecrets string `envconfig:"DIDIT_WEBHOOK_SECRETS" default:"dev-secret-change-me"`
}

// service is one of Temporal's four, with its ports.
type service struct {
	name                                   string
	grpc, membership, http, pprof, metrics int
}

// The frontend on Temporal's usual 7233; each service its own pprof and
// metrics ports.
var services = []service{
	{"history", 7234, 6934, 0, 7937, 8001},
	{"matching", 7235, 6935, 0, 7938, 8002},
	{"frontend", 7233, 6933, 7243, 7936, 8000},
	{"worker", 7239, 6939, 0, 7939, 8003},
}

// starterPorts are the starters' HTTP ports; starterMetrics and
// workerMetrics their metrics listeners' (each process its own, since the
// defaults would collide on one machine).
var (
	starterPorts   = []int{8080, 8090, 8100, 8110}
	starterMetrics = []int{9191, 9192, 9193, 9194}
	workerMetrics  = []int{9091, 9092, 9093, 9094}
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("cluster failed", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	var cfg Config
	if err := envconfig.Process("", &cfg); err != nil {
		return err
	}
	if cfg.Workers < 1 || cfg.Workers > len(workerMetrics) || cfg.Starters < 1 || cfg.Starters > len(starterPorts) {
		return fmt.Errorf("CLUSTER_WORKERS and CLUSTER_STARTERS must be 1 to %d", len(starterPorts))
	}
	if cfg.Prefix == "temporal" || !validName(cfg.Prefix) {
		return fmt.Errorf("CLUSTER_DATABASE_PREFIX %q: letters, digits and _ only, and not temporal", cfg.Prefix)
	}
	for _, p := range []*string{&cfg.Dir, &cfg.ServerBin, &cfg.CLI} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	for _, sub := range []string{"config", "logs", "bin", "outbox"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, sub), 0o755); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	db, err := url.Parse(cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("CLUSTER_DATABASE_URL: %w", err)
	}
	for _, bin := range []string{filepath.Join(cfg.ServerBin, "server"), filepath.Join(cfg.ServerBin, "sql"), cfg.CLI} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%s is missing: make cluster builds it (make cluster-bin, make bin/temporal)", bin)
		}
	}
	if err := setupDatabases(ctx, log, cfg, db); err != nil {
		return err
	}
	if err := writeConfigs(cfg, db); err != nil {
		return err
	}
	log.Info("building the worker and the starter")
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(cfg.Dir, "bin")+"/", "./worker", "./starter")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v: %s", err, out)
	}
	keys, err := payloadKeys(filepath.Dir(cfg.Dir))
	if err != nil {
		return err
	}

	sup := &supervisor{log: log, logs: filepath.Join(cfg.Dir, "logs")}
	defer sup.stopAll()
	for i, s := range services {
		sup.start(ctx, "temporal-"+s.name, filepath.Join(cfg.ServerBin, "server"),
			[]string{"--config-file", filepath.Join(cfg.Dir, "config", s.name+".yaml"), "--allow-no-auth", "start", "--service", s.name}, nil)
		if i == 0 {
			// The first service writes the cluster's metadata into a new
			// database; the others, started together with it, would race it
			// and fail once.
			if err := waitListening(ctx, fmt.Sprintf("127.0.0.1:%d", s.membership)); err != nil {
				return err
			}
		}
	}
	frontend := fmt.Sprintf("127.0.0.1:%d", services[2].grpc)
	if err := waitHealthy(ctx, frontend); err != nil {
		return err
	}
	if err := register(ctx, log, cfg.CLI, frontend); err != nil {
		return err
	}

	records := *db
	records.Path = "/" + cfg.Prefix + "_records"
	common := []string{
		"TEMPORAL_ADDRESS=" + frontend, "TEMPORAL_NAMESPACE=default",
		"DATABASE_URL=" + records.String(), "PAYLOAD_ENCRYPTION_KEYS=" + keys, "LOG_FORMAT=json",
	}
	for i := range cfg.Workers {
		sup.start(ctx, fmt.Sprintf("worker-%d", i+1), filepath.Join(cfg.Dir, "bin", "worker"), nil, append([]string{
			fmt.Sprintf("METRICS_ADDR=127.0.0.1:%d", workerMetrics[i]),
			"OUTBOX_DIR=" + filepath.Join(cfg.Dir, "outbox"),
		}, common...))
	}
	for i := range cfg.Starters {
		sup.start(ctx, fmt.Sprintf("starter-%d", i+1), filepath.Join(cfg.Dir, "bin", "starter"), nil, append([]string{
			fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", starterPorts[i]),
			fmt.Sprintf("STARTER_METRICS_ADDR=127.0.0.1:%d", starterMetrics[i]),
			"DIDIT_WEBHOOK_SECRETS=" + cfg.WebhookSecrets,
		}, common...))
	}
	printSummary(cfg, frontend, records.Redacted())
	<-ctx.Done()
	log.Info("stopping every process")
	return nil
}

func validName(s string) bool {
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// setupDatabases creates the cluster's databases when missing and brings
// Temporal's two schemas to the versions the sql tool embeds; each step is
// a no-op on a second run.
func setupDatabases(ctx context.Context, log *slog.Logger, cfg Config, db *url.URL) error {
	conn, err := pgx.Connect(ctx, db.String())
	if err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", db.Redacted(), err)
	}
	defer conn.Close(ctx)
	for _, suffix := range []string{"temporal", "visibility", "records"} {
		name := cfg.Prefix + "_" + suffix
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			log.Info("database exists, reused", "database", name)
			continue
		}
		// The name is validated (validName), so it can be quoted as is.
		if _, err := conn.Exec(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
			return fmt.Errorf("create database %s: %w", name, err)
		}
		log.Info("database created", "database", name)
	}
	host, port := db.Hostname(), db.Port()
	if port == "" {
		port = "5432"
	}
	password, _ := db.User.Password()
	for suffix, schema := range map[string]string{"temporal": "postgresql/v12/temporal", "visibility": "postgresql/v12/visibility"} {
		name := cfg.Prefix + "_" + suffix
		base := []string{"--plugin", "postgres12", "--ep", host, "-p", port, "-u", db.User.Username(), "--db", name}
		var version string
		dbConn, err := pgx.Connect(ctx, withDatabase(db, name))
		if err != nil {
			return err
		}
		err = dbConn.QueryRow(ctx, "SELECT curr_version FROM schema_version LIMIT 1").Scan(&version)
		dbConn.Close(ctx)
		if err != nil {
			// No versioning tables yet: a new database.
			if err := sqlTool(ctx, cfg, password, append(base, "setup-schema", "-v", "0.0")...); err != nil {
				return err
			}
		}
		if err := sqlTool(ctx, cfg, password, append(base, "update-schema", "-s", schema)...); err != nil {
			return err
		}
		log.Info("schema up to date", "database", name, "schema", schema, "was", version)
	}
	return nil
}

func withDatabase(db *url.URL, name string) string {
	u := *db
	u.Path = "/" + name
	return u.String()
}

func sqlTool(ctx context.Context, cfg Config, password string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(cfg.ServerBin, "sql"), args...)
	cmd.Env = append(os.Environ(), "SQL_PASSWORD="+password)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sql %s: %v: %s", strings.Join(args, " "), err, lastLines(out, 5))
	}
	return nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// writeConfigs writes one server configuration per service: the same
// cluster, with that service's own pprof and metrics ports.
func writeConfigs(cfg Config, db *url.URL) error {
	host, port := db.Hostname(), db.Port()
	if port == "" {
		port = "5432"
	}
	password, _ := db.User.Password()
	dynamic := filepath.Join(cfg.Dir, "config", "dynamicconfig.yaml")
	if err := os.WriteFile(dynamic, []byte(dynamicConfig), 0o644); err != nil {
		return err
	}
	var rpc strings.Builder
	for _, s := range services {
		fmt.Fprintf(&rpc, "  %s:\n    rpc:\n      grpcPort: %d\n      membershipPort: %d\n      bindOnIP: 127.0.0.1\n", s.name, s.grpc, s.membership)
		if s.http != 0 {
			fmt.Fprintf(&rpc, "      httpPort: %d\n", s.http)
		}
	}
	for _, s := range services {
		store := func(name string, conns int) string {
			return fmt.Sprintf("    %s:\n      sql:\n        pluginName: postgres12\n        databaseName: %s\n        connectAddr: %q\n        connectProtocol: tcp\n        user: %q\n        password: %q\n        maxConns: %d\n        maxIdleConns: %d\n        maxConnLifetime: 1h\n",
				name, cfg.Prefix+"_"+name, net.JoinHostPort(host, port), db.User.Username(), password, conns, conns)
		}
		yaml := fmt.Sprintf(serverConfig, cfg.Shards, store("temporal", 20), store("visibility", 4),
			s.pprof, s.metrics, rpc.String(), services[2].grpc, services[2].http, dynamic)
		if err := os.WriteFile(filepath.Join(cfg.Dir, "config", s.name+".yaml"), []byte(yaml), 0o600); err != nil {
			return err
		}
	}
	return nil
}

const serverConfig = `log:
  stdout: true
  level: warn
persistence:
  defaultStore: temporal
  visibilityStore: visibility
  numHistoryShards: %d
  datastores:
%s%sglobal:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  pprof:
    port: %d
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "127.0.0.1:%d"
services:
%sclusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:%d"
      httpAddress: "127.0.0.1:%d"
dcRedirectionPolicy:
  policy: noop
archival:
  history:
    state: disabled
  visibility:
    state: disabled
dynamicConfigClient:
  filepath: %q
  pollInterval: 10s
`

// dynamicConfig: search attributes usable as soon as they are registered.
const dynamicConfig = `system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
`

// payloadKeys returns make run's development payload key, creating it when
// missing (the same file scripts/run.sh uses), unless the environment
// gives keys.
func payloadKeys(dataDir string) (string, error) {
	if k := os.Getenv("PAYLOAD_ENCRYPTION_KEYS"); k != "" {
		return k, nil
	}
	path := filepath.Join(dataDir, "payload-keys")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	key, err := codec.GenerateKey("dev-" + time.Now().UTC().Format("20060102"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", err
	}
	return key, nil
}

func waitListening(ctx context.Context, address string) error {
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if c, err := net.DialTimeout("tcp", address, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after 2 minutes (see the logs)", address)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func waitHealthy(ctx context.Context, address string) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		// Silent: the frontend is polled until it answers.
		c, err := client.Dial(client.Options{HostPort: address, Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
		if err == nil {
			_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the frontend at %s is not healthy after 3 minutes: %w (see the logs)", address, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// register creates the namespace and the search attributes, tolerating
// both already being there.
func register(ctx context.Context, log *slog.Logger, cli, address string) error {
	cmd := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, cli, append(args, "--address", address)...).CombinedOutput()
		return string(out), err
	}
	// The frontend may answer before the namespace service is ready.
	for attempt := 1; ; attempt++ {
		out, err := cmd("operator", "namespace", "create", "--namespace", "default", "--retention", "72h")
		if err == nil || strings.Contains(out, "already") {
			break
		}
		if attempt == 30 {
			return fmt.Errorf("namespace default: %s", lastLines([]byte(out), 2))
		}
		time.Sleep(2 * time.Second)
	}
	for _, sa := range contract.SearchAttributeTypes() {
		name, typ, _ := strings.Cut(sa, "=")
		out, err := cmd("operator", "search-attribute", "create", "--namespace", "default", "--name", name, "--type", typ)
		if err != nil && !strings.Contains(out, "already") {
			return fmt.Errorf("search attribute %s: %v: %s", name, err, lastLines([]byte(out), 2))
		}
	}
	log.Info("namespace and search attributes registered", "namespace", "default")
	return nil
}

func printSummary(cfg Config, frontend, records string) {
	fmt.Printf("\ndiditflow on Temporal's multi-service server (v1.32.0), every port on 127.0.0.1:\n")
	for _, s := range services {
		fmt.Printf("  temporal %-9s grpc %d  membership %d  pprof %d  metrics :%d/metrics\n", s.name, s.grpc, s.membership, s.pprof, s.metrics)
	}
	for i := range cfg.Workers {
		fmt.Printf("  worker-%d           metrics http://127.0.0.1:%d/metrics\n", i+1, workerMetrics[i])
	}
	for i := range cfg.Starters {
		fmt.Printf("  starter-%d          http://127.0.0.1:%d/webhooks/didit  metrics http://127.0.0.1:%d/metrics\n", i+1, starterPorts[i], starterMetrics[i])
	}
	fmt.Printf("  records            %s\n  logs               %s\n", records, filepath.Join(cfg.Dir, "logs"))
	fmt.Printf("Reach it with TEMPORAL_ADDRESS=%s (temporal workflow list --address %s); Ctrl-C stops everything.\n\n", frontend, frontend)
}

// supervisor runs processes, restarts one that exits while the cluster
// runs, and stops them all, the last started first.
type supervisor struct {
	log  *slog.Logger
	logs string
	mu   sync.Mutex
	// procs in start order.
	procs []*supervised
}

type supervised struct {
	name     string
	mu       sync.Mutex
	cmd      *exec.Cmd
	stopping bool
	done     chan struct{} // closed when the supervising goroutine ends
}

func (s *supervisor) start(ctx context.Context, name, bin string, args, env []string) {
	p := &supervised{name: name, done: make(chan struct{})}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	go func() {
		defer close(p.done)
		for restarts := 0; ; restarts++ {
			f, err := os.OpenFile(filepath.Join(s.logs, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				s.log.Error("log file", "process", name, "error", err)
				return
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), env...)
			cmd.Stdout, cmd.Stderr = f, f
			// Its own process group: Ctrl-C reaches the supervisor, which
			// stops the processes in order.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			p.mu.Lock()
			if p.stopping {
				p.mu.Unlock()
				f.Close()
				return
			}
			err = cmd.Start()
			p.cmd = cmd
			p.mu.Unlock()
			if err != nil {
				f.Close()
				s.log.Error("start failed", "process", name, "error", err)
				return
			}
			s.log.Info("started", "process", name, "pid", cmd.Process.Pid, "restarts", restarts)
			err = cmd.Wait()
			f.Close()
			p.mu.Lock()
			stopping := p.stopping
			p.mu.Unlock()
			if stopping || ctx.Err() != nil {
				return
			}
			s.log.Warn("process exited; restarting it in 2s", "process", name, "error", err, "log", f.Name())
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
}

// stopAll sends SIGTERM to each process, last started first, and SIGKILL
// to one still running after 20 s.
func (s *supervisor) stopAll() {
	s.mu.Lock()
	procs := s.procs
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		p.mu.Lock()
		p.stopping = true
		cmd := p.cmd
		p.mu.Unlock()
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			if cmd != nil && cmd.Process != nil {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
			<-p.done
		}
		s.log.Info("stopped", "process", p.name)
	}
}
