// Command bench measures diditflow's webhook path against the raw Temporal
// SignalWithStart round trip on the same dev server, in one run, and prints
// one table (make bench). With -write it also writes docs/BENCHMARKS.md.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/diditflow/diditflow/internal/bench"
	"github.com/diditflow/diditflow/internal/chaos"
)

func main() {
	step := flag.Duration("step", 5*time.Second, "duration of each load level")
	levels := flag.String("concurrency", "1,4,16,64", "load levels (concurrent clients)")
	sessions := flag.Int("sessions", 200, "sessions for the end-to-end measurement")
	write := flag.Bool("write", false, "write the table to docs/BENCHMARKS.md")
	flag.Parse()
	if err := run(*step, *levels, *sessions, *write); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(step time.Duration, levels string, sessions int, write bool) error {
	var conc []int
	for _, f := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-concurrency: %q", f)
		}
		conc = append(conc, n)
	}
	dir, err := os.MkdirTemp("", "diditflow-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	repo, _ := os.Getwd()
	cli := os.Getenv("TEMPORAL_CLI")
	if cli == "" {
		cli = filepath.Join(repo, "bin", "temporal")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	const secret = "bench-secret"
	s, err := chaos.Start(ctx, chaos.Config{Dir: dir, Repo: repo, TemporalCLI: cli, Secret: secret,
		StepBudget: time.Minute, IdleWindow: 3 * time.Second, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := bench.Run(ctx, s, secret, bench.Options{Repo: repo, Concurrency: conc, Step: step, E2ESessions: sessions, Log: os.Stderr})
	if err != nil {
		return err
	}
	var table bytes.Buffer
	res.Print(&table)
	machine := fmt.Sprintf("%s/%s, %d CPUs, %s; Temporal dev server from bin/temporal (CLI v1.5.1, server 1.29.1, SQLite); starter, worker and load generator on the same machine",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Printf("\n%s\n%s\n\n%s", time.Now().UTC().Format(time.RFC3339), machine, table.String())
	if !write {
		return nil
	}
	doc := fmt.Sprintf(benchDoc, time.Now().UTC().Format("2006-01-02"), machine,
		fmt.Sprintf("go run ./cmd/bench -step %s -concurrency %s -sessions %d -write", step, levels, sessions), table.String())
	return os.WriteFile(filepath.Join(repo, "docs", "BENCHMARKS.md"), []byte(doc), 0o644)
}

const benchDoc = "# Benchmarks\n\n" +
	"Measured on %s. Machine: %s.\n\n" +
	"Reproduce with `make bench` (which runs `%s`).\n\n" +
	"Raw SWS is a plain SDK client calling `SignalWithStartWorkflow` with the same payload and\n" +
	"options the starter uses; ingest is signed deliveries for distinct sessions posted to the\n" +
	"starter, which verifies them and makes the same call. Both run against the same dev server,\n" +
	"level by level, with no worker polling their task queue. Forged deliveries carry a fresh\n" +
	"timestamp and wrong X-Signature and X-Signature-V2, so the starter computes both before\n" +
	"refusing. End to end runs the worker: two deliveries per session, timed until every record\n" +
	"is Approved and every approval mail reached the SMTP server.\n\n" +
	"```\n%s```\n"
