// Command worker runs diditflow's Temporal workflows and activities.
package main

import (
	"context"
	"fmt"
	"os"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/temporalclient"
	"github.com/diditflow/diditflow/workflows"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.LoadWorker()
	if err != nil {
		return err
	}
	log := cfg.Log.NewLogger()
	tc, err := temporalclient.Dial(context.Background(), log)
	if err != nil {
		return err
	}
	defer tc.Close()

	w := worker.New(tc, cfg.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.VerificationSession, workflow.RegisterOptions{Name: workflows.SessionWorkflow})
	log.Info("worker starting", "task_queue", cfg.TaskQueue)
	// Run stops polling on SIGINT/SIGTERM and waits for running tasks.
	return w.Run(worker.InterruptCh())
}
