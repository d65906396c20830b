// Command diditflow-admin runs operator procedures against Didit and
// diditflow. rotate-secret rotates Didit's webhook secret without losing a
// delivery (internal/admin/rotation); erase removes a user's personal data
// (internal/admin/erasure); cases, case and resolve are compliance's view
// of the AML cases and its resolutions (internal/admin/cases). Each prints
// what it did and what comes next.
//
//	diditflow-admin rotate-secret                      # legacy webhook: rotate now
//	diditflow-admin rotate-secret --after-deploy       # then trigger a reconcile run
//	diditflow-admin rotate-secret --finish             # then drop the old secret
//	diditflow-admin rotate-secret --destination <uuid> # webhook destination: gap-free
//	diditflow-admin erase --session <id>               # a user's personal data
//	diditflow-admin cases                              # the open AML cases
//	diditflow-admin case <case-id>                     # one case's hits
//	diditflow-admin resolve <case-id> --outcome false_positive --reviewer <who>
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kelseyhightower/envconfig"

	"github.com/diditflow/diditflow/internal/admin/cases"
	"github.com/diditflow/diditflow/internal/admin/erasure"
	"github.com/diditflow/diditflow/internal/admin/rotation"
	"github.com/diditflow/diditflow/internal/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usageText = `Usage: diditflow-admin rotate-secret [flags]
       diditflow-admin erase [flags]   (a user's personal data; erase -h)
       diditflow-admin cases | case <case-id> | resolve <case-id> [flags]
                                       (the AML cases; cases -h)

Rotates Didit's webhook secret without losing a delivery. Run the steps in
order; each prints the next one.

Legacy webhook config (Didit rotates its secret at once, with no overlap):
  rotate-secret                  1. rotate; print the new secret, once
  rotate-secret --after-deploy   2. once every starter has <new>,<old>:
                                    trigger a reconcile run for the gap
  rotate-secret --finish         3. print how to drop the old secret

Webhook destination (no gap: old and new deliver side by side):
  rotate-secret --destination <uuid>
                                 1. create a copy of the destination on a
                                    new secret; print that secret, once
  rotate-secret --destination <old-uuid> --finish-destination <new-uuid>
                                 2. once every starter has <new>,<old>:
                                    disable the old destination

Flags:
%s
Environment:
  DIDIT_API_KEY       Didit API key; needed by the steps that call Didit
  DIDIT_API_URL       Didit's API (default https://verification.didit.me)
  TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*,
  TEMPORAL_PROFILE    the worker's Temporal (legacy steps 1 and 2)
  LOG_LEVEL, LOG_FORMAT
                      logs, on stderr (default info, json)

Exit status: 0 done, 1 failed, 2 usage error.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := (&app{stdout: os.Stdout, stderr: os.Stderr}).run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// app is the command, with what tests replace.
type app struct {
	stdout, stderr io.Writer
	// openSchedule and openExecutions connect to Temporal; nil dials it as
	// the worker does.
	openSchedule   func(ctx context.Context, log *slog.Logger) (s rotation.Schedule, close func(), err error)
	openExecutions erasure.OpenExecutions
	openUpdater    cases.OpenUpdater
}

// run runs the command line args and returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	fs, req, asJSON := rotateFlagSet()
	usage := func(w io.Writer) { printUsage(w, usageText, fs) }
	if len(args) == 0 {
		usage(a.stderr)
		return exitUsage
	}
	switch args[0] {
	case "erase":
		return a.erase(ctx, args[1:])
	case "cases", "case", "resolve":
		return a.compliance(ctx, args[0], args[1:])
	case "rotate-secret":
	case "help", "-h", "-help", "--help":
		usage(a.stdout)
		return exitOK
	default:
		fmt.Fprintf(a.stderr, "diditflow-admin: unknown command %q\n\n", args[0])
		usage(a.stderr)
		return exitUsage
	}

	if ok, code := a.parse(fs, args[1:], usage, "rotate-secret"); !ok {
		return code
	}
	if err := req.Check(); err != nil {
		return a.usageError("rotate-secret", err.Error())
	}
	var env rotation.Settings
	if err := loadSettings(&env); err != nil {
		fmt.Fprintln(a.stderr, "diditflow-admin:", err)
		return exitFailure
	}
	r := &rotation.Rotator{Settings: env, OpenSchedule: a.openSchedule, Log: logger(env.Log, a.stderr)}
	out, err := r.Run(ctx, *req)
	if err != nil {
		fmt.Fprintln(a.stderr, "diditflow-admin:", err)
		return exitFailure
	}
	if *asJSON {
		err = out.WriteJSON(a.stdout)
	} else {
		err = out.WriteText(a.stdout)
	}
	if err != nil {
		fmt.Fprintln(a.stderr, "diditflow-admin: writing the output:", err)
		return exitFailure
	}
	return exitOK
}

// parse parses a subcommand's args into fs; when ok is false the command
// ends with code (help asked for, or a usage error).
func (a *app) parse(fs *flag.FlagSet, args []string, usage func(io.Writer), cmd string) (ok bool, code int) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		usage(a.stdout)
		return false, exitOK
	} else if err != nil {
		return false, a.usageError(cmd, err.Error())
	}
	if fs.NArg() > 0 {
		return false, a.usageError(cmd, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	return true, 0
}

func (a *app) usageError(cmd, msg string) int {
	prefix := "diditflow-admin"
	if cmd != "rotate-secret" {
		prefix += " " + cmd
	}
	fmt.Fprintf(a.stderr, "%s: %s\nRun 'diditflow-admin %s -h' for usage.\n", prefix, msg, cmd)
	return exitUsage
}

// printUsage writes text with fs's flags where its %s is.
func printUsage(w io.Writer, text string, fs *flag.FlagSet) {
	var defaults strings.Builder
	fs.SetOutput(&defaults)
	fs.PrintDefaults()
	fmt.Fprintf(w, text, defaults.String())
}

func rotateFlagSet() (*flag.FlagSet, *rotation.Request, *bool) {
	r := &rotation.Request{}
	fs := flag.NewFlagSet("rotate-secret", flag.ContinueOnError)
	fs.BoolVar(&r.AfterDeploy, "after-deploy", false, "legacy step 2: trigger a run of the worker's reconcile schedule")
	fs.BoolVar(&r.Finish, "finish", false, "legacy step 3: print how to drop the old secret (calls nothing)")
	fs.BoolVar(&r.WithoutReconcile, "without-reconcile", false,
		"legacy step 1 without the reconcile schedule (an emergency:\nresend the failed deliveries from Didit's console instead)")
	fs.StringVar(&r.Destination, "destination", "", "the `uuid` of the destination to rotate (step 1), or of the old one (step 2)")
	fs.StringVar(&r.FinishDestination, "finish-destination", "",
		"destination step 2: the `uuid` of the new one; disables --destination's")
	asJSON := fs.Bool("json", false, "print the outcome as a JSON object (the secret in \"secret\")")
	return fs, r, asJSON
}

func loadSettings(s *rotation.Settings) error {
	if err := envconfig.Process("", s); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if s.Log.Format != "json" && s.Log.Format != "text" {
		return fmt.Errorf("LOG_FORMAT must be json or text, got %q", s.Log.Format)
	}
	return nil
}

// logger is l's logger, on w: the human output has stdout.
func logger(l config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.Level}
	if l.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
