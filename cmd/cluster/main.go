// Command cluster runs diditflow on Temporal's real multi-service server
// (make cluster; internal/harness/cluster) until SIGINT or SIGTERM, then
// stops everything it started. Its settings are CLUSTER_* (cluster.Config).
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kelseyhightower/envconfig"

	"github.com/diditflow/diditflow/internal/harness/cluster"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var cfg cluster.Config
	err := envconfig.Process("", &cfg)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err = cluster.Run(ctx, log, cfg)
		stop()
	}
	if err != nil {
		log.Error("cluster failed", "error", err)
		os.Exit(1)
	}
}
