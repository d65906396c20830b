package cases

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"time"

	"github.com/diditflow/diditflow/internal/admin"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
)

// Usage is diditflow-admin's help for cases, case and resolve; the flags of
// the command asked about go where its %s is.
const Usage = `Usage: diditflow-admin cases [--limit n] [--json]
       diditflow-admin case <case-id> [--json]
       diditflow-admin resolve <case-id> --outcome <outcome> --reviewer <who>
                               [--hit <hit-id>=<outcome> ...] [--note <text>] [--json]

Compliance's AML cases, read from the records (DATABASE_URL), never from
Temporal's payloads:
  cases    the open cases, oldest first: age, reminders, escalated (the
           reminders reached AML_ESCALATE_AFTER), hits reviewed (a final
           review status in Didit: Confirmed Match, False Positive,
           Inconclusive) x of y, and whether an operator is needed
  case     one case's hits: id, name, datasets, match and risk scores,
           Didit's review status. The records keep no names: they are read
           from Didit's API (DIDIT_API_KEY) when shown, and kept nowhere
  resolve  resolve a case through its resolve Update, with an outcome
           (confirmed_match, false_positive, inconclusive), per hit if need
           be, and who decided; prints what the case recorded, or why it
           refused. Each hit's outcome is written back to Didit.

Flags:
%s
Environment: the worker's. DATABASE_URL; DIDIT_API_URL and DIDIT_API_KEY
(case); the Temporal variables and PAYLOAD_ENCRYPTION* (resolve); LOG_LEVEL,
LOG_FORMAT (logs on stderr).

Exit status: 0 done, 1 failed or refused by the case, 2 usage error.
`

// Command is one of the compliance commands, as its command line gave it.
type Command struct {
	// Name is cases, case or resolve.
	Name  string
	JSON  bool
	Limit int
	// Request is the resolution (resolve) and the case (case, resolve).
	Request Request
}

// Output is what a command prints.
type Output interface {
	WriteText(io.Writer) error
	WriteJSON(io.Writer) error
}

// OpenUpdater connects to Temporal for resolve; close ends the connection.
type OpenUpdater func(ctx context.Context, log *slog.Logger, cfg config.Worker) (u Updater, close func(), err error)

// FlagSet returns the flags of the command name, which fill the Command.
func FlagSet(name string) (*flag.FlagSet, *Command) {
	c := &Command{Name: name, Limit: DefaultLimit, Request: Request{Hits: HitOutcomes{}}}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.BoolVar(&c.JSON, "json", false, "print a JSON object")
	switch name {
	case "cases":
		fs.IntVar(&c.Limit, "limit", c.Limit, "list at most `n` cases, the oldest")
	case "resolve":
		fs.Func("outcome", "the case's `outcome`: "+outcomes, func(v string) error {
			c.Request.Outcome = contract.Outcome(v)
			return nil
		})
		fs.Var(c.Request.Hits, "hit", "a hit's own `id=outcome` (repeat the flag); the others take --outcome")
		fs.StringVar(&c.Request.Note, "note", "", "why, for the record (`text`)")
		fs.StringVar(&c.Request.Reviewer, "reviewer", "", "`who` decided (required): recorded, beside this command's Temporal identity")
	}
	return fs, c
}

// Check refuses a command line that cannot run: a usage error.
func (c *Command) Check() error {
	switch {
	case c.Name == "cases" && c.Limit < 1:
		return errors.New("--limit must be at least 1")
	case c.Name != "cases" && c.Request.CaseID == "":
		return errors.New("give the case ID first: diditflow-admin " + c.Name + " aml-case-<session_id>")
	case c.Name == "resolve":
		return c.Request.Check()
	}
	return nil
}

// Run runs the command on cfg's records, Didit's API (case) and, for
// resolve, the Temporal open connects to (nil: DialUpdater).
func (c *Command) Run(ctx context.Context, log *slog.Logger, cfg config.Worker, open OpenUpdater) (Output, error) {
	if c.Name == "resolve" {
		if open == nil {
			open = DialUpdater
		}
		u, closeFn, err := open(ctx, log, cfg)
		if err != nil {
			return nil, err
		}
		defer closeFn()
		return Resolve(ctx, u, c.Request)
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if c.Name == "cases" {
		return List(ctx, st, c.Limit, time.Now())
	}
	var names Names
	switch d, err := admin.DiditClient(cfg.DiditAPIURL, cfg.DiditAPIKey); {
	case errors.Is(err, admin.ErrNoAPIKey):
	case err != nil:
		return nil, err
	default:
		names = d
	}
	return Show(ctx, st, names, c.Request.CaseID)
}

// DialUpdater connects to Temporal as the worker of cfg does
// (admin.DialTemporal), as admin.Identity.
func DialUpdater(ctx context.Context, log *slog.Logger, cfg config.Worker) (Updater, func(), error) {
	t, err := admin.DialTemporal(ctx, log, cfg.Encryption)
	if err != nil {
		return nil, nil, err
	}
	return t.Client, t.Client.Close, nil
}
