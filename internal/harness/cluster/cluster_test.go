package cluster

import (
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A setting the cluster cannot run with is refused before anything is
// created: a prefix that could name another install's databases, or more
// processes than there are ports for.
func TestRunRefusesSettingsItCannotRunWith(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Prefix: "temporal", Workers: 2, Starters: 2}, "CLUSTER_DATABASE_PREFIX"},
		{Config{Prefix: `x"; DROP DATABASE postgres; --`, Workers: 2, Starters: 2}, "CLUSTER_DATABASE_PREFIX"},
		{Config{Prefix: "diditflow_cluster", Workers: 5, Starters: 2}, "CLUSTER_WORKERS"},
		{Config{Prefix: "diditflow_cluster", Workers: 1, Starters: 0}, "CLUSTER_STARTERS"},
	} {
		tc.cfg.Dir = filepath.Join(t.TempDir(), "cluster")
		err := Run(t.Context(), slog.New(slog.DiscardHandler), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.cfg, err, tc.want)
		}
		if _, err := os.Stat(tc.cfg.Dir); !os.IsNotExist(err) {
			t.Errorf("%+v: the cluster's directory was created", tc.cfg)
		}
	}
}

// Each service's configuration is the one cluster on the prefixed
// databases, with that service's own ports.
func TestConfigsGiveEachServiceItsPorts(t *testing.T) {
	cfg := Config{Prefix: "df_test", Dir: t.TempDir(), Shards: 4}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	db, _ := url.Parse("postgres://app:s3cret@db.example:6543/ignored")
	if err := writeConfigs(cfg, db); err != nil {
		t.Fatal(err)
	}
	for _, s := range services {
		b, err := os.ReadFile(filepath.Join(cfg.Dir, "config", s.name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		yaml := string(b)
		for _, want := range []string{
			"databaseName: df_test_temporal", "databaseName: df_test_visibility", `connectAddr: "db.example:6543"`,
			`password: "s3cret"`, "numHistoryShards: 4", "rpcAddress: \"127.0.0.1:7233\"",
			"port: " + strconv.Itoa(s.pprof), "listenAddress: \"127.0.0.1:" + strconv.Itoa(s.metrics) + "\"",
		} {
			if !strings.Contains(yaml, want) {
				t.Errorf("%s.yaml lacks %q", s.name, want)
			}
		}
	}
}
