// Command starter is diditflow's webhook receiver: it verifies Didit's
// deliveries and signals one Temporal workflow per verification session.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/receiver"
	"github.com/diditflow/diditflow/internal/telemetry"
	"github.com/diditflow/diditflow/internal/temporalclient"
)

func main() {
	healthcheck := flag.Bool("healthcheck", false, "ask the starter at HTTP_ADDR whether it is healthy, exit 0 if so (for container health checks in images without curl)")
	printConfig := flag.Bool("config", false, "print the effective settings as NAME=value lines, secrets redacted, and exit")
	flag.Parse()
	var err error
	switch {
	case *healthcheck:
		err = probe()
	case *printConfig:
		err = printSettings()
	default:
		err = run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(1)
	}
}

// probe reads only HTTP_ADDR, so it needs none of the other settings.
func probe() error {
	c, err := config.LoadHTTP()
	if err != nil {
		return err
	}
	if err := receiver.Probe(c.HTTPAddr); err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	return nil
}

func printSettings() error {
	c, err := config.ReadReceiver()
	if err != nil {
		return err
	}
	return config.Print(os.Stdout, c)
}

func run() error {
	cfg, err := config.LoadReceiver()
	if err != nil {
		return err
	}
	log := cfg.Log.NewLogger()
	gin.SetMode(gin.ReleaseMode)

	tracing, err := telemetry.Setup(context.Background(), "diditflow-starter", os.Getenv, log)
	if err != nil {
		return err
	}
	defer tracing.Close(log)
	tc, err := temporalclient.Lazy(log, cfg.Encryption, tracing.Interceptors...)
	if err != nil {
		return err
	}
	defer tc.Close()

	rcv := receiver.New(tc, receiver.Config{
		Verifier:        &didit.Verifier{Secrets: cfg.WebhookSecrets, AllowSimple: cfg.AllowSimpleSignature},
		TaskQueue:       cfg.TaskQueue,
		MaxBodyBytes:    cfg.MaxBodyBytes,
		SignalTimeout:   cfg.SignalTimeout,
		RequestTimeout:  cfg.RequestTimeout,
		Logger:          log,
		ReplayCacheSize: cfg.ReplayCacheSize,
		ReplayCacheTTL:  cfg.ReplayCacheTTL,
		RefusalLogRate:  cfg.LogRefusalsPerSecond,
		RefusalLogBurst: cfg.LogRefusalsBurst,
		TracerProvider:  tracing.TracerProvider(),
	})
	srv := &http.Server{
		Handler:           rcv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}

	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if cfg.MetricsAddr != "" {
		// Without metrics the starter still takes every delivery; say so.
		go func() {
			if err := receiver.ServeMetrics(ctx, cfg.MetricsAddr, rcv.MetricsHandler()); err != nil {
				log.Error("starter metrics unavailable", "addr", cfg.MetricsAddr, "error", err)
			}
		}()
	}
	log.Info("starter listening", "addr", l.Addr().String(), "task_queue", cfg.TaskQueue,
		"secrets", len(cfg.WebhookSecrets), "simple_signature", cfg.AllowSimpleSignature,
		"replay_cache_size", cfg.ReplayCacheSize, "replay_cache_ttl", cfg.ReplayCacheTTL.String(),
		"request_timeout", cfg.RequestTimeout.String(), "metrics_addr", cfg.MetricsAddr)
	if err := receiver.Serve(ctx, srv, l, cfg.ShutdownTimeout); err != nil {
		return err
	}
	log.Info("starter stopped")
	return nil
}
