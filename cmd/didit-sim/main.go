// Command didit-sim plays Didit against a diditflow receiver: it sends signed
// session webhooks, one from a file or whole scenarios, and retries on 5xx the
// way Didit does. As Didit, it puts a decision only in webhooks of Approved,
// Declined, In Review and Abandoned; a receiver fetches the others' from
// Didit's API. With -didit-api pointing at the fake Didit (cmd/didit-fake,
// which `make run` starts), it first registers each delivery's session state
// there, so the fake's decision API answers what Didit's would.
//
//	go run ./cmd/didit-sim -scenario approved
//	go run ./cmd/didit-sim -scenario kyc-expired -didit-api http://127.0.0.1:8099 -didit-api-key dev-didit-api-key
//	go run ./cmd/didit-sim -scenario declined-aml -duplicate 3 -reorder
//	go run ./cmd/didit-sim -file didit/testdata/fixtures/status-updated-approved.json
//	go run ./cmd/didit-sim -scenario approved -sessions 100 -rate 20
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"

	"github.com/diditflow/diditflow/internal/harness/simulator"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "didit-sim:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	defaultSecret := "dev-secret-change-me"
	if s := os.Getenv("DIDIT_WEBHOOK_SECRETS"); s != "" {
		defaultSecret = strings.TrimSpace(strings.Split(s, ",")[0])
	}
	fs := flag.NewFlagSet("didit-sim", flag.ContinueOnError)
	var (
		url         = fs.String("url", "http://127.0.0.1:8080/webhooks/didit", "receiver endpoint")
		secret      = fs.String("secret", defaultSecret, "webhook secret to sign with (default: first of $DIDIT_WEBHOOK_SECRETS, else make run's)")
		wrongSecret = fs.Bool("wrong-secret", false, "sign with a secret the receiver does not know (expect 401)")
		scenario    = fs.String("scenario", "", "scenario: "+strings.Join(simulator.Scenarios(), ", "))
		file        = fs.String("file", "", "send one event read from this JSON file, for a fresh session")
		email       = fs.String("email", "user@example.com", "contact email put in decisions (empty: none)")
		duplicate   = fs.Int("duplicate", 1, "send every delivery this many times")
		reorder     = fs.Bool("reorder", false, "send each session's deliveries newest first")
		delay       = fs.Duration("delay", 0, "wait between a session's deliveries")
		sessions    = fs.Int("sessions", 1, "number of sessions")
		rate        = fs.Float64("rate", 0, "sessions started per second (0: all at once)")
		retries     = fs.String("retry-delays", "1m,4m", "waits before Didit's retries of a 5xx (comma-separated, empty: no retries)")
		diditAPI    = fs.String("didit-api", os.Getenv("DIDIT_API_URL"), "fake Didit (cmd/didit-fake) base URL to register each session with before its webhook (default $DIDIT_API_URL; empty: none)")
		diditKey    = fs.String("didit-api-key", os.Getenv("DIDIT_API_KEY"), "the fake Didit's x-api-key (default $DIDIT_API_KEY)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
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
	s := &simulator.Sender{URL: *url, Secret: *secret, RetryDelays: delays, Log: out}
	if *wrongSecret {
		s.Secret = "not-" + *secret
	}
	if *diditAPI != "" {
		s.Registry = simulator.HarnessAPI{URL: *diditAPI, Key: *diditKey}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := s.Run(ctx, simulator.Plan{Duplicate: *duplicate, Reorder: *reorder, Delay: *delay, Sessions: *sessions, Rate: *rate}, build)
	codes := make([]int, 0, len(res.ByStatus))
	for c := range res.ByStatus {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	fmt.Fprintf(out, "\n%d session(s), %d deliveries:", len(res.Sessions), res.Deliveries)
	for _, c := range codes {
		label := fmt.Sprint(c)
		if c == 0 {
			label = "error"
		}
		fmt.Fprintf(out, "  %s×%d", label, res.ByStatus[c])
	}
	if s.Registry != nil {
		fmt.Fprintf(out, "  (registered with %s: %d failed)", *diditAPI, res.RegistrationFailures)
	}
	fmt.Fprintln(out)
	if len(res.Sessions) == 1 {
		fmt.Fprintf(out, "workflow: didit-session-%s\n", res.Sessions[0])
	}
	return err
}
