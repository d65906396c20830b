package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/diditflow/diditflow/internal/admin/erasure"
	"github.com/diditflow/diditflow/internal/config"
)

const eraseUsageText = `Usage: diditflow-admin erase (--session <id> | --vendor-data <ref>) [flags]

Erases a user's personal data, for one session or every session of the
business's user reference (vendor_data):
  - in the records, the contact address, vendor_data, recipient hashes,
    attention texts and the AML cases' reviewers and notes (statuses,
    events and decisions' facts stay, without them); the session stays
    erased: Didit's later events are recorded without personal data, mail
    no one and fetch nothing from Didit;
  - the Temporal executions of the session and of its AML cases, listed
    again after deleting them until none is left (a delivery that lands
    meanwhile starts one);
  - the session's mails in the local outbox (OUTBOX_DIR, when SMTP_URL is
    unset: mail sent over SMTP is with its recipients);
  - with --didit, Didit's own copy of the session.
It prints what it removed, in counts; never the data. Session ids are
those Didit sends: at most 64 letters, digits, '-' and '_'.

A session is left whole while an AML case record of it is within
AML_RECORD_RETENTION (anti-money-laundering rules may require keeping it even
against an erasure request; --include-aml when they do not), and while an
execution of it runs (--terminate ends it first). Running erase again is safe:
it finishes what a failed step left.

Flags:
%s
Environment: the worker's. DATABASE_URL, SMTP_URL and OUTBOX_DIR; the Temporal
variables and PAYLOAD_ENCRYPTION*; DIDIT_API_URL and DIDIT_API_KEY (--didit);
LOG_LEVEL, LOG_FORMAT (logs on stderr).

Exit status: 0 erased (or nothing found), 1 something was left (the report
says what and why), 2 usage error.
`

func eraseFlagSet() (*flag.FlagSet, *erasure.Request, *bool) {
	r := &erasure.Request{}
	fs := flag.NewFlagSet("erase", flag.ContinueOnError)
	fs.StringVar(&r.Session, "session", "", "the Didit session `id` to erase")
	fs.StringVar(&r.VendorData, "vendor-data", "", "erase every session whose record holds this `reference` (vendor_data)")
	fs.BoolVar(&r.Terminate, "terminate", false, "terminate a running execution of the session or its AML cases, then delete it")
	fs.BoolVar(&r.Didit, "didit", false, "also ask Didit to delete its copy (DELETE /v3/session/{id}/delete/; needs DIDIT_API_KEY)")
	fs.BoolVar(&r.IncludeAML, "include-aml", false, "also erase AML case records still within AML_RECORD_RETENTION")
	asJSON := fs.Bool("json", false, "print the report as a JSON object")
	return fs, r, asJSON
}

// erase runs the erase command line args and returns the exit code.
func (a *app) erase(ctx context.Context, args []string) int {
	fs, req, asJSON := eraseFlagSet()
	if ok, code := a.parse(fs, args, func(w io.Writer) { printUsage(w, eraseUsageText, fs) }, "erase"); !ok {
		return code
	}
	if err := req.Check(); err != nil {
		return a.usageError("erase", err.Error())
	}
	cfg, err := config.LoadWorker()
	if err != nil {
		fmt.Fprintln(a.stderr, "diditflow-admin erase:", err)
		return exitFailure
	}
	rep, err := erasure.Run(ctx, cfg, logger(cfg.Log, a.stderr), *req, a.openExecutions)
	if err != nil {
		fmt.Fprintln(a.stderr, "diditflow-admin erase:", err)
		return exitFailure
	}
	if *asJSON {
		err = rep.WriteJSON(a.stdout)
	} else {
		err = rep.WriteText(a.stdout)
	}
	if err != nil {
		fmt.Fprintln(a.stderr, "diditflow-admin erase: writing the report:", err)
		return exitFailure
	}
	if !rep.Complete() {
		return exitFailure
	}
	return exitOK
}
