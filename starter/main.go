// Command starter is diditflow's webhook receiver: it verifies Didit's
// deliveries and signals one Temporal workflow per verification session.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/receiver"
	"github.com/diditflow/diditflow/internal/temporalclient"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "-healthcheck" {
		// For container health checks in images that have no curl.
		if err := receiver.Probe(os.Getenv("HTTP_ADDR")); err != nil {
			fmt.Fprintln(os.Stderr, "starter: unhealthy:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.LoadReceiver()
	if err != nil {
		return err
	}
	log := cfg.Log.NewLogger()
	gin.SetMode(gin.ReleaseMode)

	tc, err := temporalclient.Lazy(log)
	if err != nil {
		return err
	}
	defer tc.Close()

	rcv := receiver.New(tc, receiver.Config{
		Verifier:      &didit.Verifier{Secrets: cfg.WebhookSecrets, AllowSimple: cfg.AllowSimpleSignature},
		TaskQueue:     cfg.TaskQueue,
		MaxBodyBytes:  cfg.MaxBodyBytes,
		SignalTimeout: cfg.SignalTimeout,
		Logger:        log,
	})
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           rcv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("starter listening", "addr", cfg.HTTPAddr, "task_queue", cfg.TaskQueue,
		"secrets", len(cfg.WebhookSecrets), "simple_signature", cfg.AllowSimpleSignature)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("starter stopped")
	return nil
}
