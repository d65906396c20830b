// Command didit-fake runs a fake of Didit's management and decision API
// (package internal/harness/fakedidit) for manual runs against a local
// diditflow. It serves /v3/... with Didit's manners (401 without the API key,
// optional 429s, HTML 404s, delivery log, resend, AML hit review write-back)
// and delivers webhooks to -receiver signed with -secret.
//
//	go run ./cmd/didit-fake
//	go run ./cmd/didit-fake -addr 127.0.0.1:8099 -rate-limit-every 5 -retry-delays 2s,5s
//	curl -H 'x-api-key: dev-didit-api-key' http://127.0.0.1:8099/v3/webhook/destinations/
//
// Point diditflow's Didit API base URL (DIDIT_API_URL) at http://<addr>. It
// starts with no sessions; a harness in another process registers them
// through the harness-only POST /_harness/sessions/ (same x-api-key), as
// didit-sim does with -didit-api http://<addr> -didit-api-key <key>, so the
// decision API knows each session before its webhook reaches diditflow.
//
//	curl -H 'x-api-key: dev-didit-api-key' -d '{"session_id":"<uuid>","status":"In Progress"}' http://127.0.0.1:8099/_harness/sessions/
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/diditflow/diditflow/internal/harness/fakedidit"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

func main() {
	if err := run(); err != nil {
		slog.Error("didit-fake failed", "err", err)
		os.Exit(1)
	}
}

func run() error {
	defaultSecret := "dev-secret-change-me"
	if s := os.Getenv("DIDIT_WEBHOOK_SECRETS"); s != "" {
		defaultSecret = strings.TrimSpace(strings.Split(s, ",")[0])
	}
	var (
		addr      = flag.String("addr", "127.0.0.1:8099", "address to listen on")
		key       = flag.String("key", "dev-didit-api-key", "the accepted x-api-key")
		receiver  = flag.String("receiver", "http://127.0.0.1:8080/webhooks/didit", "default destination's webhook URL")
		secret    = flag.String("secret", defaultSecret, "webhook secret (default: first of $DIDIT_WEBHOOK_SECRETS, else make run's)")
		rateEvery = flag.Int("rate-limit-every", 0, "answer 429 to every Nth API request (0: never)")
		retries   = flag.String("retry-delays", "1m,4m", "waits before each delivery retry (comma-separated, empty: no retries)")
	)
	flag.Parse()
	delays, err := simulator.ParseDelays(*retries)
	if err != nil {
		return err
	}
	srv := fakedidit.New(fakedidit.Options{
		Key: *key, ReceiverURL: *receiver, Secret: *secret,
		RetryDelays: delays, RateLimitEvery: *rateEvery,
	})
	url, err := srv.Start(*addr)
	if err != nil {
		return err
	}
	slog.Info("didit-fake listening", "url", url, "api", url+"/v3")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	<-ctx.Done()
	return srv.Close()
}
