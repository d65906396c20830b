// Package cluster runs diditflow on Temporal's real multi-service server
// (make cluster): frontend, history, matching and worker as four processes
// on PostgreSQL, diditflow's workers and starters sharing one PostgreSQL
// records database. It creates what is missing (databases, schemas,
// namespace, search attributes) and reuses what is there, restarts a
// process that dies, and stops everything it started when its context
// ends.
//
// It is a development and test rig on one machine, not a deployment: no
// TLS, no authorization, every port on 127.0.0.1.
package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

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

// Run brings the cluster up, builds and starts diditflow's processes on
// it, and keeps them running until ctx ends; then it stops everything it
// started.
func Run(ctx context.Context, log *slog.Logger, cfg Config) error {
	if err := cfg.check(); err != nil {
		return err
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

// check says which setting the cluster cannot run with.
func (c Config) check() error {
	if c.Workers < 1 || c.Workers > len(workerMetrics) || c.Starters < 1 || c.Starters > len(starterPorts) {
		return fmt.Errorf("CLUSTER_WORKERS and CLUSTER_STARTERS must be 1 to %d", len(starterPorts))
	}
	if c.Prefix == "temporal" || !validName(c.Prefix) {
		return fmt.Errorf("CLUSTER_DATABASE_PREFIX %q: lower-case letters, digits and _ only, and not temporal", c.Prefix)
	}
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
