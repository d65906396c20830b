// Command worker runs diditflow's Temporal workflows and activities.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/diditflow/diditflow/internal/caller"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/notice"
	"github.com/diditflow/diditflow/internal/telemetry"
	"github.com/diditflow/diditflow/internal/temporalclient"
	"github.com/diditflow/diditflow/internal/workerapp"
)

func main() {
	printConfig := flag.Bool("config", false, "print the effective settings as NAME=value lines, secrets redacted, and exit")
	searchAttributes := flag.Bool("search-attributes", false, "print the search attributes the workflows upsert as Name=Type lines (types as the temporal CLI's search-attribute create --type takes them), and exit")
	previewNotices := flag.Bool("notices", false, "print every user notice as NOTICE_TEMPLATES (or the embedded templates) writes it, with sample variables, and exit; a broken template fails, naming its file")
	flag.Parse()
	var err error
	switch {
	case *printConfig:
		err = printSettings()
	case *previewNotices:
		err = printNotices(os.Stdout)
	case *searchAttributes:
		err = printSearchAttributes(os.Stdout)
	default:
		err = run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func printSettings() error {
	c, err := config.ReadWorker()
	if err != nil {
		return err
	}
	return config.Print(os.Stdout, c)
}

// printNotices previews the user notices the worker would send.
func printNotices(w io.Writer) error {
	c, err := config.ReadWorker()
	if err != nil {
		return err
	}
	t, err := notice.Load(c.NoticeTemplates)
	if err != nil {
		return err
	}
	return t.Preview(w)
}

// printSearchAttributes lists the contract's search attributes as Name=Type.
func printSearchAttributes(w io.Writer) error {
	for _, l := range contract.SearchAttributeTypes() {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return fmt.Errorf("print search attributes: %w", err)
		}
	}
	return nil
}

func run() error {
	cfg, err := config.LoadWorker()
	if err != nil {
		return err
	}
	log := cfg.Log.NewLogger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tracing, err := telemetry.Setup(ctx, "diditflow-worker", os.Getenv, log)
	if err != nil {
		return err
	}
	defer tracing.Close(log)
	metrics, metricsHandler := workerapp.NewMetrics(log)
	defer metrics.Close()
	callers := caller.New(caller.DefaultSize)
	tc, err := temporalclient.Dial(ctx, log, cfg.Encryption, temporalclient.Worker{
		Metrics: metricsHandler, Registry: metrics.Registry, AcceptPlaintext: cfg.AcceptPlaintext, Callers: callers,
	}, tracing.Interceptors...)
	if err != nil {
		return err
	}
	defer tc.Close()

	w, err := workerapp.New(ctx, tc, cfg, log, metrics, callers)
	if err != nil {
		return err
	}
	defer w.Close()
	// Without the schedule the worker still handles every webhook; it keeps
	// trying to set it up, and says so.
	go workerapp.SetUpSchedules(ctx, tc, cfg, log, 30*time.Second)
	if cfg.MetricsAddr != "" {
		go func() {
			// Without metrics the worker still does its job; say so loudly.
			if err := metrics.Serve(ctx, cfg.MetricsAddr, log); err != nil {
				log.Error("worker metrics unavailable", "addr", cfg.MetricsAddr, "error", err)
			}
		}()
	}
	log.Info("worker starting", "task_queue", cfg.TaskQueue)
	// Run stops polling on SIGINT/SIGTERM and waits for running tasks.
	if err := w.Run(worker.InterruptCh()); err != nil {
		return err
	}
	log.Info("worker stopped")
	return nil
}
