package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/kelseyhightower/envconfig"

	"github.com/diditflow/diditflow/didit/api"
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

// app is the command, with what tests replace.
type app struct {
	stdout, stderr io.Writer
	// openSchedule connects to the worker's reconcile schedule; close
	// releases the connection.
	openSchedule func(ctx context.Context, log *slog.Logger) (s reconcileSchedule, close func(), err error)
	// openExecutions connects erase to Temporal; nil dials it as the
	// worker does (dialExecutions).
	openExecutions func(ctx context.Context, log *slog.Logger, cfg config.Worker) (e executions, close func(), err error)
}

// rotateFlags are rotate-secret's flags.
type rotateFlags struct {
	afterDeploy       bool
	finish            bool
	withoutReconcile  bool
	destination       string
	finishDestination string
	json              bool
}

// run runs the command line args and returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	fs, f := rotateFlagSet()
	usage := func(w io.Writer) {
		var defaults strings.Builder
		fs.SetOutput(&defaults)
		fs.PrintDefaults()
		fmt.Fprintf(w, usageText, defaults.String())
	}
	if len(args) == 0 {
		usage(a.stderr)
		return exitUsage
	}
	switch args[0] {
	case "erase":
		return a.erase(ctx, args[1:])
	case "rotate-secret":
	case "help", "-h", "-help", "--help":
		usage(a.stdout)
		return exitOK
	default:
		fmt.Fprintf(a.stderr, "diditflow-admin: unknown command %q\n\n", args[0])
		usage(a.stderr)
		return exitUsage
	}

	fs.SetOutput(io.Discard)
	if err := fs.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
		usage(a.stdout)
		return exitOK
	} else if err != nil {
		return a.usageError(err.Error())
	}
	if fs.NArg() > 0 {
		return a.usageError(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	step, err := f.step(a)
	if err != nil {
		return a.usageError(err.Error())
	}

	env, err := loadSettings()
	if err != nil {
		fmt.Fprintln(a.stderr, "diditflow-admin:", err)
		return exitFailure
	}
	out, err := step(ctx, env, env.logger(a.stderr))
	if err != nil {
		fmt.Fprintln(a.stderr, "diditflow-admin:", err)
		return exitFailure
	}
	if f.json {
		err = out.writeJSON(a.stdout)
	} else {
		err = out.writeText(a.stdout)
	}
	if err != nil {
		fmt.Fprintln(a.stderr, "diditflow-admin: writing the output:", err)
		return exitFailure
	}
	return exitOK
}

func (a *app) usageError(msg string) int {
	fmt.Fprintf(a.stderr, "diditflow-admin: %s\nRun 'diditflow-admin rotate-secret -h' for usage.\n", msg)
	return exitUsage
}

func rotateFlagSet() (*flag.FlagSet, *rotateFlags) {
	f := &rotateFlags{}
	fs := flag.NewFlagSet("rotate-secret", flag.ContinueOnError)
	fs.BoolVar(&f.afterDeploy, "after-deploy", false, "legacy step 2: trigger a run of the worker's reconcile schedule")
	fs.BoolVar(&f.finish, "finish", false, "legacy step 3: print how to drop the old secret (calls nothing)")
	fs.BoolVar(&f.withoutReconcile, "without-reconcile", false,
		"legacy step 1 without the reconcile schedule (an emergency:\nresend the failed deliveries from Didit's console instead)")
	fs.StringVar(&f.destination, "destination", "", "the `uuid` of the destination to rotate (step 1), or of the old one (step 2)")
	fs.StringVar(&f.finishDestination, "finish-destination", "",
		"destination step 2: the `uuid` of the new one; disables --destination's")
	fs.BoolVar(&f.json, "json", false, "print the outcome as a JSON object (the secret in \"secret\")")
	return fs, f
}

// stepFunc is one step of a rotation.
type stepFunc func(ctx context.Context, env settings, log *slog.Logger) (outcome, error)

// step picks the step the flags ask for, or says why they do not fit
// together (a usage error).
func (f *rotateFlags) step(a *app) (stepFunc, error) {
	modes := 0
	for _, on := range []bool{f.afterDeploy, f.finish, f.destination != "" || f.finishDestination != ""} {
		if on {
			modes++
		}
	}
	switch {
	case modes > 1:
		return nil, errors.New("--after-deploy, --finish and --destination are separate steps; give one")
	case f.withoutReconcile && modes > 0:
		return nil, errors.New("--without-reconcile belongs to the first legacy step (rotate-secret alone)")
	case f.finishDestination != "" && f.destination == "":
		return nil, errors.New("--finish-destination needs --destination <old-uuid>, the destination to disable")
	}
	for _, id := range []struct {
		flag  string
		value *string
	}{{"--destination", &f.destination}, {"--finish-destination", &f.finishDestination}} {
		if *id.value == "" {
			continue
		}
		if !isUUID(*id.value) {
			return nil, fmt.Errorf("%s %q is not a UUID (Didit's console shows each destination's)", id.flag, *id.value)
		}
		*id.value = strings.ToLower(*id.value)
	}
	switch {
	case f.finishDestination != "" && f.finishDestination == f.destination:
		return nil, errors.New("--finish-destination must name the new destination, not the old one again")
	case f.finishDestination != "":
		return func(ctx context.Context, env settings, log *slog.Logger) (outcome, error) {
			return finishDestination(ctx, env, log, f.destination, f.finishDestination)
		}, nil
	case f.destination != "":
		return func(ctx context.Context, env settings, log *slog.Logger) (outcome, error) {
			return rotateDestination(ctx, env, log, f.destination)
		}, nil
	case f.afterDeploy:
		return a.afterDeploy, nil
	case f.finish:
		return func(context.Context, settings, *slog.Logger) (outcome, error) { return finishLegacy(), nil }, nil
	}
	return func(ctx context.Context, env settings, log *slog.Logger) (outcome, error) {
		return a.rotateLegacy(ctx, env, log, !f.withoutReconcile)
	}, nil
}

// isUUID reports whether s is a hyphenated UUID, in either case.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F'):
			return false
		}
	}
	return true
}

// settings are the command's environment. The Temporal connection is read
// by internal/temporalclient, as the worker reads it.
type settings struct {
	DiditAPIURL string `envconfig:"DIDIT_API_URL" default:"https://verification.didit.me"`
	DiditAPIKey string `envconfig:"DIDIT_API_KEY" secret:"true"`
	Log         config.Log
}

func loadSettings() (settings, error) {
	var s settings
	if err := envconfig.Process("", &s); err != nil {
		return settings{}, fmt.Errorf("config: %w", err)
	}
	if s.Log.Format != "json" && s.Log.Format != "text" {
		return settings{}, fmt.Errorf("LOG_FORMAT must be json or text, got %q", s.Log.Format)
	}
	return s, nil
}

// logger is config.Log's logger, on w: the human output has stdout.
func (s settings) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.Log.Level}
	if s.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// errNoAPIKey is the answer to a Didit step run without DIDIT_API_KEY.
var errNoAPIKey = errors.New("DIDIT_API_KEY is not set: this step calls Didit's API. Set it to an API key of the " +
	"application (Didit console, API & Webhooks) that may read and write webhooks")

// didit returns the client of Didit's API, or why there is none.
func (s settings) didit() (*api.Client, error) {
	if strings.TrimSpace(s.DiditAPIKey) == "" {
		return nil, errNoAPIKey
	}
	c, err := api.New(api.Config{BaseURL: s.DiditAPIURL, Key: strings.TrimSpace(s.DiditAPIKey)})
	if err != nil {
		return nil, fmt.Errorf("DIDIT_API_URL %q: must be an absolute http(s) URL such as %s", s.DiditAPIURL, api.DefaultBaseURL)
	}
	return c, nil
}
