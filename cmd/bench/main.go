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
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/internal/harness/bench"
	"github.com/diditflow/diditflow/internal/harness/chaos"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

func main() {
	step := flag.Duration("step", 5*time.Second, "duration of each load level")
	levels := flag.String("concurrency", "1,4,16,64", "load levels (concurrent clients)")
	sessions := flag.Int("sessions", 200, "sessions for the end-to-end measurement")
	write := flag.Bool("write", false, "write the table to docs/BENCHMARKS.md")
	forgedOnly := flag.Bool("forged-only", false, "run only the forged flood against its anchors (no Temporal needed), print it and exit")
	clusterStarters := flag.String("cluster", "", "instead, measure make cluster's stack: its starters' webhook URLs, comma-separated (start it with SESSION_IDLE_WINDOW=2s)")
	rates := flag.String("rates", "5,10,20,40", "with -cluster: offered loads, sessions per second")
	label := flag.String("label", "make cluster", "with -cluster: the table's title")
	flag.Parse()
	if *clusterStarters != "" {
		if err := runCluster(*clusterStarters, *rates, *label, *step); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *forgedOnly {
		if err := runForged(*step, *levels); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*step, *levels, *sessions, *write); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// runForged floods the starter and its anchors at the highest -concurrency
// level. The starter's Temporal address is a closed port: refusals never
// reach Temporal.
func runForged(step time.Duration, levels string) error {
	conc, err := parseLevels(levels)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "diditflow-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	repo, err := launch.RepoRoot()
	if err != nil {
		return err
	}
	closed, err := launch.FreePort()
	if err != nil {
		return err
	}
	res, err := bench.Forged(context.Background(), "bench-secret", bench.ForgedOptions{Repo: repo, Dir: dir,
		TemporalAddress: "127.0.0.1:" + closed, Concurrency: slices.Max(conc), Step: step, Log: os.Stderr})
	if err != nil {
		return err
	}
	res.Print(os.Stdout)
	return nil
}

// runCluster offers rising loads to a running make cluster (Temporal at
// TEMPORAL_ADDRESS, default 127.0.0.1:7233).
func runCluster(starters, rates, label string, step time.Duration) error {
	var offered []float64
	for _, f := range strings.Split(rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("-rates: %q", f)
		}
		offered = append(offered, r)
	}
	address := os.Getenv("TEMPORAL_ADDRESS")
	if address == "" {
		address = "127.0.0.1:7233"
	}
	c, err := client.Dial(client.Options{HostPort: address, Logger: launch.QuietLogger()})
	if err != nil {
		return err
	}
	defer c.Close()
	secret := os.Getenv("DIDIT_WEBHOOK_SECRETS")
	if secret == "" {
		secret = "dev-secret-change-me"
	}
	levels, err := bench.Cluster(context.Background(), c, idleWindow, bench.ClusterOptions{
		Starters: strings.Split(starters, ","), Secret: strings.Split(secret, ",")[0], Rates: offered, Step: step, Log: os.Stderr})
	bench.PrintCluster(os.Stdout, label, levels)
	return err
}

func parseLevels(levels string) ([]int, error) {
	var conc []int
	for _, f := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-concurrency: %q", f)
		}
		conc = append(conc, n)
	}
	return conc, nil
}

func run(step time.Duration, levels string, sessions int, write bool) error {
	conc, err := parseLevels(levels)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "diditflow-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if _, err := launch.TemporalCLI(); err != nil {
		return err
	}
	repo, err := launch.RepoRoot()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	const secret = "bench-secret"
	s, err := chaos.Start(ctx, chaos.Config{Dir: dir, Secret: secret,
		StepBudget: time.Minute, IdleWindow: idleWindow, Log: os.Stderr,
		// make cluster's Temporal, if given (make bench TEMPORAL_ADDRESS=127.0.0.1:7233).
		TemporalAddress: os.Getenv("TEMPORAL_ADDRESS")})
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := bench.Run(ctx, s, secret, bench.Options{Repo: repo, Concurrency: conc, Step: step, E2ESessions: sessions, IdleWindow: idleWindow, Log: os.Stderr})
	if err != nil {
		return err
	}
	var table bytes.Buffer
	res.Print(&table)
	server := "Temporal dev server from bin/temporal (CLI v1.5.1, server 1.29.1, SQLite)"
	if a := os.Getenv("TEMPORAL_ADDRESS"); a != "" {
		server = "the Temporal at " + a + " (make cluster: server v1.32.0, four services on PostgreSQL)"
	}
	machine := fmt.Sprintf("%s/%s, %d CPUs, %s; %s; starter, worker and load generator on the same machine",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), server)
	fmt.Printf("\n%s\n%s\n\n%s", time.Now().UTC().Format(time.RFC3339), machine, table.String())
	if !write {
		return nil
	}
	generated := fmt.Sprintf(benchDoc, time.Now().UTC().Format("2006-01-02"), machine,
		fmt.Sprintf("go run ./cmd/bench -step %s -concurrency %s -sessions %d -write", step, levels, sessions), table.String())
	path := filepath.Join(repo, "docs", "BENCHMARKS.md")
	// Only the generated part between the markers is replaced; the analysis
	// written around it stays.
	doc := "# Benchmarks\n\n" + beginMark + generated + endMark
	if old, err := os.ReadFile(path); err == nil {
		if b, e := strings.Index(string(old), beginMark), strings.Index(string(old), endMark); b >= 0 && e > b {
			doc = string(old[:b]) + beginMark + generated + string(old[e:])
		}
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// idleWindow is the worker's SESSION_IDLE_WINDOW in the end-to-end
// measurement, and the lean no-op's.
const idleWindow = 2 * time.Second

const (
	beginMark = "<!-- generated by cmd/bench: begin -->\n"
	endMark   = "<!-- generated by cmd/bench: end -->\n"
)

const benchDoc = "Measured on %s. Machine: %s.\n\n" +
	"Reproduce with `make bench` (which runs `%s`).\n\n" +
	"Raw SWS is a plain SDK client calling `SignalWithStartWorkflow` with the same payload and\n" +
	"options the starter uses; ingest is signed deliveries for distinct sessions posted to the\n" +
	"starter, which verifies them and makes the same call. Both run against the same dev server,\n" +
	"level by level, with no worker polling their task queue. Forged deliveries carry a fresh\n" +
	"timestamp and wrong X-Signature and X-Signature-V2, so the starter computes both before\n" +
	"refusing. The forged flood runs the starter as its own process as configured by default\n" +
	"(info logs, two secrets) beside two anchors with the same client: a minimal stdlib verifier\n" +
	"(cmd/anchor: the timestamp and one raw-body HMAC) and a bare server that verifies nothing.\n" +
	"End to end runs the worker: two deliveries per session (In Progress, Approved), timed until\n" +
	"every record is Approved, every approval mail reached the SMTP server and every session\n" +
	"workflow completed (2 s idle window); beside it, interleaved A B B A on the same server, the\n" +
	"same sessions as raw SignalWithStart to a lean no-op workflow (internal/harness/bench/lean.go:\n" +
	"an upsert and a local activity per event, one for the notice, the idle timer; no codec).\n\n" +
	"```\n%s```\n"
