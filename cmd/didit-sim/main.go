// Command didit-sim plays Didit against a diditflow receiver: it sends signed
// session webhooks, one from a file or whole scenarios, and retries on 5xx the
// way Didit does.
//
//	go run ./cmd/didit-sim -scenario approved
//	go run ./cmd/didit-sim -scenario declined-aml -duplicate 3 -reorder
//	go run ./cmd/didit-sim -file didit/testdata/fixtures/status-updated-approved.json
//	go run ./cmd/didit-sim -scenario approved -sessions 100 -rate 20
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"

	"github.com/diditflow/diditflow/internal/harness/simulator"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "didit-sim:", err)
		os.Exit(1)
	}
}

func run() error {
	defaultSecret := "dev-secret-change-me"
	if s := os.Getenv("DIDIT_WEBHOOK_SECRETS"); s != "" {
		defaultSecret = strings.TrimSpace(strings.Split(s, ",")[0])
	}
	var (
		url         = flag.String("url", "http://127.0.0.1:8080/webhooks/didit", "receiver endpoint")
		secret      = flag.String("secret", defaultSecret, "webhook secret to sign with (default: first of $DIDIT_WEBHOOK_SECRETS, else make run's)")
		wrongSecret = flag.Bool("wrong-secret", false, "sign with a secret the receiver does not know (expect 401)")
		scenario    = flag.String("scenario", "", "scenario: "+strings.Join(simulator.Scenarios(), ", "))
		file        = flag.String("file", "", "send one event read from this JSON file, for a fresh session")
		email       = flag.String("email", "user@example.com", "contact email put in decisions (empty: none)")
		duplicate   = flag.Int("duplicate", 1, "send every delivery this many times")
		reorder     = flag.Bool("reorder", false, "send each session's deliveries newest first")
		delay       = flag.Duration("delay", 0, "wait between a session's deliveries")
		sessions    = flag.Int("sessions", 1, "number of sessions")
		rate        = flag.Float64("rate", 0, "sessions started per second (0: all at once)")
		retries     = flag.String("retry-delays", "1m,4m", "waits before Didit's retries of a 5xx (comma-separated, empty: no retries)")
	)
	flag.Parse()
	if (*scenario == "") == (*file == "") {
		return fmt.Errorf("give -scenario or -file (scenarios: %s)", strings.Join(simulator.Scenarios(), ", "))
	}
	delays, err := simulator.ParseDelays(*retries)
	if err != nil {
		return err
	}
	opts := simulator.Options{Email: *email}
	build := func() ([]simulator.Delivery, error) { return simulator.Build(*scenario, opts) }
	if *file != "" {
		raw, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		build = func() ([]simulator.Delivery, error) {
			d, err := simulator.FromFile(raw, opts)
			return []simulator.Delivery{d}, err
		}
	}
	s := &simulator.Sender{URL: *url, Secret: *secret, RetryDelays: delays, Log: os.Stdout}
	if *wrongSecret {
		s.Secret = "not-" + *secret
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := s.Run(ctx, simulator.Plan{Duplicate: *duplicate, Reorder: *reorder, Delay: *delay, Sessions: *sessions, Rate: *rate}, build)
	codes := make([]int, 0, len(res.ByStatus))
	for c := range res.ByStatus {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	fmt.Printf("\n%d session(s), %d deliveries:", len(res.Sessions), res.Deliveries)
	for _, c := range codes {
		label := fmt.Sprint(c)
		if c == 0 {
			label = "error"
		}
		fmt.Printf("  %s×%d", label, res.ByStatus[c])
	}
	fmt.Println()
	if len(res.Sessions) == 1 {
		fmt.Printf("workflow: didit-session-%s\n", res.Sessions[0])
	}
	return err
}
