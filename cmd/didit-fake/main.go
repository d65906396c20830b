// Command didit-fake runs a fake of Didit's API and hosted verification
// pages (package internal/harness/fakedidit) for manual runs against a local
// diditflow. It serves /v3/... with Didit's manners (403 without the API key,
// 401 with a wrong one, optional 429s, HTML 404s, delivery log, resend, AML
// hit review write-back), creates sessions (POST /v3/session/, on the
// workflows of -workflows, at most -create-limit a minute) and serves each
// session's url, a page where a developer picks what the user does. It
// delivers webhooks to -receiver signed with -secret.
//
//	go run ./cmd/didit-fake
//	go run ./cmd/didit-fake -addr 127.0.0.1:8099 -rate-limit-every 5 -retry-delays 2s,5s
//	curl -H 'x-api-key: dev-didit-api-key' http://127.0.0.1:8099/v3/webhook/destinations/
//
// Point diditflow's Didit API base URL (DIDIT_API_URL) at http://<addr> and
// its DIDIT_WORKFLOW_ID at one of -workflows (by default $DIDIT_WORKFLOW_ID,
// else the fake's own workflow, which -config prints). A session created
// through the API is at http://<addr>/session/<token> (its url):
//
//	curl -H 'x-api-key: dev-didit-api-key' -H 'Content-Type: application/json' \
//	  -d '{"workflow_id":"<id>","vendor_data":"user-1"}' http://127.0.0.1:8099/v3/session/
//
// A harness in another process registers sessions of its own through the
// harness-only POST /_harness/sessions/ (same x-api-key), as didit-sim does
// with -didit-api http://<addr> -didit-api-key <key>, so the decision API
// knows each session before its webhook reaches diditflow.
//
//	curl -H 'x-api-key: dev-didit-api-key' -d '{"session_id":"<uuid>","status":"In Progress"}' http://127.0.0.1:8099/_harness/sessions/
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"

	"github.com/diditflow/diditflow/internal/harness/fakedidit"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

// uuidPattern is a workflow ID as Didit has them: a lowercase UUID.
var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

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
		addr        = flag.String("addr", "127.0.0.1:8099", "address to listen on")
		key         = flag.String("key", "dev-didit-api-key", "the accepted x-api-key")
		receiver    = flag.String("receiver", "http://127.0.0.1:8080/webhooks/didit", "default destination's webhook URL")
		secret      = flag.String("secret", defaultSecret, "webhook secret (default: first of $DIDIT_WEBHOOK_SECRETS, else make run's)")
		rateEvery   = flag.Int("rate-limit-every", 0, "answer 429 to every Nth API request (0: never)")
		retries     = flag.String("retry-delays", "1m,4m", "waits before each delivery retry (comma-separated, empty: no retries)")
		workflows   = flag.String("workflows", cmp.Or(os.Getenv("DIDIT_WORKFLOW_ID"), fakedidit.DefaultWorkflowID), "the published Didit workflows sessions are created on (comma-separated UUIDs; default: $DIDIT_WORKFLOW_ID, else the fake's own)")
		createLimit = flag.Int("create-limit", fakedidit.DiditCreateLimit, "session creations a minute before 429 (Didit's; negative: no limit)")
		pageURL     = flag.String("page-url", "", "base URL of the hosted pages in created sessions' url (default: the address the creation came to)")
		config      = flag.Bool("config", false, "print the effective settings (name=value) and exit")
	)
	flag.Parse()
	delays, err := simulator.ParseDelays(*retries)
	if err != nil {
		return err
	}
	ids := strings.Split(strings.ReplaceAll(*workflows, " ", ""), ",")
	for _, id := range ids {
		if !uuidPattern.MatchString(id) {
			return fmt.Errorf("-workflows: %q is not a workflow UUID", id)
		}
	}
	if *config {
		flag.VisitAll(func(f *flag.Flag) {
			if f.Name != "secret" && f.Name != "key" && f.Name != "config" {
				fmt.Printf("%s=%s\n", f.Name, f.Value)
			}
		})
		return nil
	}
	srv := fakedidit.New(fakedidit.Options{
		Key: *key, ReceiverURL: *receiver, Secret: *secret,
		RetryDelays: delays, RateLimitEvery: *rateEvery,
		Workflows: ids, CreateLimit: *createLimit, PageURL: *pageURL,
	})
	url, err := srv.Start(*addr)
	if err != nil {
		return err
	}
	slog.Info("didit-fake listening", "url", url, "api", url+"/v3", "workflows", strings.Join(ids, ","))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	<-ctx.Done()
	return srv.Close()
}
