// Command chaos runs diditflow's stack as separate processes, injects faults
// (Temporal down, worker killed, database unavailable, SMTP down, duplicates
// and disorder, hostile input, secret rotation, a soak with random faults)
// and prints a table of what was sent, processed, lost and duplicated. It
// exits non-zero when anything was lost or duplicated.
//
//	go run ./cmd/chaos              # the full run (make chaos)
//	go run ./cmd/chaos -short       # the short run make test does
//	go run ./cmd/chaos -database-url postgres://postgres@127.0.0.1:5432/chaos?sslmode=disable
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/diditflow/diditflow/internal/harness/chaos"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

func main() {
	short := flag.Bool("short", false, "the short plan (under two minutes)")
	dbURL := flag.String("database-url", "", "PostgreSQL URL for the records (its cluster is stopped and started); empty: SQLite")
	soak := flag.Duration("soak", 0, "soak duration (default: the plan's)")
	rate := flag.Float64("rate", 0, "soak sessions per second (default: the plan's)")
	keep := flag.Bool("keep", false, "keep the work directory (logs, databases)")
	flag.Parse()

	plan := chaos.FullPlan
	if *short {
		plan = chaos.ShortPlan
	}
	if *soak > 0 {
		plan.Soak = *soak
	}
	if *rate > 0 {
		plan.SoakRate = *rate
	}
	os.Exit(run(plan, *dbURL, *keep))
}

func run(plan chaos.Plan, dbURL string, keep bool) int {
	dir, err := os.MkdirTemp("", "diditflow-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	if _, err := launch.TemporalCLI(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	s, err := chaos.Start(ctx, chaos.Config{
		Dir: dir, DatabaseURL: dbURL, Secret: "chaos-secret",
		StepBudget: 20 * time.Second, IdleWindow: 3 * time.Second, Log: os.Stderr,
		// make cluster's Temporal, if given (make chaos TEMPORAL_ADDRESS=127.0.0.1:7233).
		TemporalAddress: os.Getenv("TEMPORAL_ADDRESS"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	defer s.Close()
	res := chaos.Run(ctx, s, plan)
	fmt.Printf("\ndiditflow chaos run, %s, work dir %s\n\n", time.Since(start).Round(time.Second), dir)
	res.Print(os.Stdout)
	if !res.OK() {
		fmt.Println("\nFAILED: something was lost, duplicated or mishandled")
		return 1
	}
	fmt.Println("\nOK: nothing lost, nothing duplicated")
	return 0
}
