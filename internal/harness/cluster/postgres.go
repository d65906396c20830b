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

	"github.com/jackc/pgx/v5"
)

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
