// Command onboarding is an example business app on diditflow's package kyc:
// a signup page whose accounts open once Didit verifies their user. It runs
// its own Temporal worker (task queue onboarding) beside diditflow, and its
// web pages; README.md runs it next to `make run`.
//
//	HOOK_WORKFLOWS=OnKYCEvent@onboarding make run
//	PAYLOAD_ENCRYPTION_KEYS="$(cat .data/payload-keys)" go run ./examples/onboarding
//
// The Temporal connection follows Temporal's environment convention
// (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, ...; the local dev server by
// default); PAYLOAD_ENCRYPTION_KEYS are diditflow's payload keys.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/diditflow/diditflow/examples/onboarding/app"
	"github.com/diditflow/diditflow/kyc"
)

func main() {
	addr := flag.String("addr", cmp.Or(os.Getenv("ONBOARDING_ADDR"), "127.0.0.1:3000"), "where the pages listen (ONBOARDING_ADDR)")
	publicURL := flag.String("public-url", os.Getenv("ONBOARDING_PUBLIC_URL"), "the pages' address as browsers reach it (ONBOARDING_PUBLIC_URL); default http://<addr>")
	db := flag.String("db", cmp.Or(os.Getenv("ONBOARDING_DB"), ".data/onboarding.db"), "the accounts' SQLite file (ONBOARDING_DB)")
	queue := flag.String("task-queue", app.DefaultTaskQueue, "the app's own task queue: HOOK_WORKFLOWS names it")
	kycQueue := flag.String("kyc-task-queue", kyc.DefaultTaskQueue, "diditflow's task queue (its TEMPORAL_TASK_QUEUE)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger, *addr, cmp.Or(*publicURL, "http://"+*addr), *db, *queue, *kycQueue); err != nil {
		logger.Error("onboarding stopped", "error", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger, addr, publicURL, db, queue, kycQueue string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return err
	}
	opts.Logger = log.NewStructuredLogger(logger)
	if err := kyc.ConfigureClient(&opts); err != nil {
		return err
	}
	if os.Getenv("PAYLOAD_ENCRYPTION_KEYS") == "" {
		logger.Warn("PAYLOAD_ENCRYPTION_KEYS is unset: a diditflow with payload keys refuses this app's requests " +
			"(make run keeps its key in .data/payload-keys)")
	}
	c, err := client.Dial(opts)
	if err != nil {
		return fmt.Errorf("connect to Temporal: %w", err)
	}
	defer c.Close()

	a, err := app.New(ctx, app.Config{DB: db, Temporal: c, TaskQueue: queue, KYCQueue: kycQueue, PublicURL: publicURL, Logger: logger})
	if err != nil {
		return err
	}
	defer a.Close()

	w := worker.New(c, queue, worker.Options{})
	a.Register(w)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start the worker: %w", err)
	}
	defer w.Stop()

	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	logger.Info("onboarding is up", "pages", publicURL, "task_queue", queue, "kyc_task_queue", kycQueue, "accounts", db)
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
