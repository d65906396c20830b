package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/store"
	"github.com/diditflow/diditflow/internal/temporalclient"
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

// eraseFlags are erase's flags.
type eraseFlags struct {
	session, vendorData          string
	terminate, didit, includeAML bool
	json                         bool
}

func eraseFlagSet() (*flag.FlagSet, *eraseFlags) {
	f := &eraseFlags{}
	fs := flag.NewFlagSet("erase", flag.ContinueOnError)
	fs.StringVar(&f.session, "session", "", "the Didit session `id` to erase")
	fs.StringVar(&f.vendorData, "vendor-data", "", "erase every session whose record holds this `reference` (vendor_data)")
	fs.BoolVar(&f.terminate, "terminate", false, "terminate a running execution of the session or its AML cases, then delete it")
	fs.BoolVar(&f.didit, "didit", false, "also ask Didit to delete its copy (DELETE /v3/session/{id}/delete/; needs DIDIT_API_KEY)")
	fs.BoolVar(&f.includeAML, "include-aml", false, "also erase AML case records still within AML_RECORD_RETENTION")
	fs.BoolVar(&f.json, "json", false, "print the report as a JSON object")
	return fs, f
}

// erase runs the erase command line args and returns the exit code.
func (a *app) erase(ctx context.Context, args []string) int {
	fs, f := eraseFlagSet()
	usage := func(w io.Writer) {
		var defaults strings.Builder
		fs.SetOutput(&defaults)
		fs.PrintDefaults()
		fmt.Fprintf(w, eraseUsageText, defaults.String())
	}
	usageError := func(msg string) int {
		fmt.Fprintf(a.stderr, "diditflow-admin erase: %s\nRun 'diditflow-admin erase -h' for usage.\n", msg)
		return exitUsage
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		usage(a.stdout)
		return exitOK
	} else if err != nil {
		return usageError(err.Error())
	}
	switch {
	case fs.NArg() > 0:
		return usageError(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case (f.session == "") == (f.vendorData == ""):
		return usageError("give one of --session <id> and --vendor-data <ref>")
	case f.session != "" && !didit.ValidSessionID(f.session):
		return usageError(fmt.Sprintf("--session %q is not a Didit session id (at most 64 letters, digits, '-' and '_')", f.session))
	}

	cfg, err := config.LoadWorker()
	if err != nil {
		fmt.Fprintln(a.stderr, "diditflow-admin erase:", err)
		return exitFailure
	}
	log := settings{Log: cfg.Log}.logger(a.stderr)
	rep, err := a.runErase(ctx, cfg, log, f)
	if err != nil {
		fmt.Fprintln(a.stderr, "diditflow-admin erase:", err)
		return exitFailure
	}
	if f.json {
		err = rep.writeJSON(a.stdout)
	} else {
		err = rep.writeText(a.stdout)
	}
	if err != nil {
		fmt.Fprintln(a.stderr, "diditflow-admin erase: writing the report:", err)
		return exitFailure
	}
	if !rep.complete() {
		return exitFailure
	}
	return exitOK
}

// runErase connects to what the worker uses and erases the sessions f names.
func (a *app) runErase(ctx context.Context, cfg config.Worker, log *slog.Logger, f *eraseFlags) (eraseReport, error) {
	e := &eraser{terminate: f.terminate, includeAML: f.includeAML, log: log}
	if f.didit {
		key := strings.TrimSpace(cfg.DiditAPIKey)
		if key == "" {
			return eraseReport{}, errors.New("--didit needs DIDIT_API_KEY: an API key of the application that may delete sessions")
		}
		c, err := api.New(api.Config{BaseURL: cfg.DiditAPIURL, Key: key})
		if err != nil {
			return eraseReport{}, fmt.Errorf("DIDIT_API_URL %q: must be an absolute http(s) URL such as %s", cfg.DiditAPIURL, api.DefaultBaseURL)
		}
		e.didit = c
	}
	if cfg.SMTPURL == "" {
		e.outboxDir = cfg.OutboxDir
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return eraseReport{}, fmt.Errorf("open the records (DATABASE_URL): %w", err)
	}
	defer st.Close()
	e.records = st
	open := a.openExecutions
	if open == nil {
		open = dialExecutions
	}
	ex, closeTemporal, err := open(ctx, log, cfg)
	if err != nil {
		return eraseReport{}, err
	}
	defer closeTemporal()
	e.temporal = ex

	rep := eraseReport{ByVendorData: f.vendorData != "", SMTP: cfg.SMTPURL != ""}
	ids := []string{f.session}
	if f.vendorData != "" {
		if ids, err = st.SessionsByVendorData(ctx, f.vendorData); err != nil {
			return eraseReport{}, err
		}
		log.InfoContext(ctx, "sessions found by vendor_data", "sessions", len(ids))
	}
	for _, id := range ids {
		if !didit.ValidSessionID(id) {
			// A record from before the receiver checked session ids.
			rep.Sessions = append(rep.Sessions, sessionReport{SessionID: id, Left: []string{
				"nothing erased: not a session id Didit sends (at most 64 letters, digits, '-' and '_'); " +
					"erase its record and executions by hand"}})
			continue
		}
		rep.Sessions = append(rep.Sessions, e.erase(ctx, id))
	}
	return rep, nil
}

// idChars reports whether s holds only [A-Za-z0-9_-]: nothing that could
// end a quoted value of a Temporal list query or change its meaning.
func idChars(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// listQuery is a Temporal list query on the workflow ID: op is = or
// STARTS_WITH, id a workflow ID made of a session id. An id with any other
// character is refused rather than quoted: no session id Didit sends has
// one, so refusing costs nothing, and the query never depends on escaping
// rules.
func listQuery(op, id string) (string, error) {
	if id == "" || !idChars(id) {
		return "", fmt.Errorf("workflow id %q is not made of a Didit session id; not listed", id)
	}
	return "WorkflowId " + op + " '" + id + "'", nil
}

// eraser erases sessions, one at a time.
type eraser struct {
	records *store.Store
	// outboxDir is the worker's outbox; "" when mail goes over SMTP.
	outboxDir string
	temporal  executions
	// didit, if set, is asked to delete its copy of each session.
	didit interface {
		DeleteSession(ctx context.Context, sessionID string) error
	}
	terminate, includeAML bool
	log                   *slog.Logger
}

// sessionReport is what the erasure of one session removed, in counts, and
// what it left and why.
type sessionReport struct {
	SessionID string `json:"session_id"`
	// Left says what was not removed and why; empty when the session is
	// erased.
	Left []string `json:"left,omitempty"`
	// Records is what the records lost; nil when they were not touched.
	Records    *store.EraseResult `json:"records,omitempty"`
	Mails      int                `json:"mails_removed"`
	Terminated int                `json:"executions_terminated"`
	Deleted    int                `json:"executions_deleted"`
	// Meanwhile counts the executions that started while erase ran (a
	// delivery of Didit's, a reconcile run), found when it listed the runs
	// again after deleting them.
	Meanwhile int `json:"executions_started_meanwhile,omitempty"`
	// Didit is "deleted", "not found", or empty when not asked.
	Didit string `json:"didit,omitempty"`
}

// maxListRounds bounds how often erase lists a session's executions again
// after deleting them: a delivery that lands meanwhile starts a run, which
// the next round finds; one that keeps landing leaves the session reported
// incomplete rather than erase looping.
const maxListRounds = 4

// erase erases one session. Before it touches anything it checks what
// would leave the session half erased (AML cases to keep, an execution
// running), and then leaves it whole. It erases the records first, so that
// from then on every run of the session, one that is still running or one
// a delivery starts meanwhile, records nothing personal and mails no one;
// then it terminates and deletes the executions, and lists them again
// until none is left. Each step is idempotent, so running erase again
// finishes what a failed one left.
func (e *eraser) erase(ctx context.Context, sessionID string) sessionReport {
	rep := sessionReport{SessionID: sessionID}
	leave := func(format string, args ...any) sessionReport {
		rep.Left = append(rep.Left, fmt.Sprintf(format, args...))
		return rep
	}
	retained, err := e.records.RetainedAMLCases(ctx, sessionID)
	if err != nil {
		return leave("nothing erased: reading its AML cases failed: %v", err)
	}
	if len(retained) > 0 && !e.includeAML {
		return leave("nothing erased: %s within AML_RECORD_RETENTION (%s), which anti-money-laundering rules may "+
			"require keeping even against an erasure request; give --include-aml if none does", plural(len(retained), "AML case record"),
			strings.Join(retained, ", "))
	}
	runs, err := e.executions(ctx, sessionID, nil)
	if err != nil {
		return leave("nothing erased: %v", err)
	}
	if running := runningIDs(runs); len(running) > 0 && !e.terminate {
		return leave("nothing erased: %s running (%s); give --terminate to end it, or wait until it completes",
			plural(len(running), "execution"), strings.Join(running, ", "))
	}

	res, err := e.records.EraseSession(ctx, sessionID)
	if err != nil {
		leave("records: %v", err)
	} else {
		rep.Records = &res
	}
	handled := map[string]bool{}
	for round := 1; len(runs) > 0; round++ {
		if round > 1 {
			rep.Meanwhile += len(runs)
		}
		if why := e.remove(ctx, runs, handled, &rep); why != "" {
			leave("%s", why)
			break
		}
		if runs, err = e.executions(ctx, sessionID, handled); err != nil {
			leave("Temporal: listing the executions again, after deleting them, failed: %v", err)
			break
		}
		if round == maxListRounds && len(runs) > 0 {
			leave("Temporal: %s started while erase ran (%s), more after each of %d rounds; run erase again once "+
				"Didit stops delivering to the session (--didit deletes its copy)", plural(len(runs), "execution"),
				strings.Join(workflowIDsOf(runs), ", "), maxListRounds)
			break
		}
	}
	if e.outboxDir != "" {
		n, err := e.removeMails(ctx, sessionID)
		rep.Mails = n
		if err != nil {
			leave("outbox: %v", err)
		}
	}
	if e.didit != nil {
		err := e.didit.DeleteSession(ctx, sessionID)
		switch {
		case err == nil:
			rep.Didit = "deleted"
		case api.KindOf(err) == api.KindNotFound:
			rep.Didit = "not found"
		case api.KindOf(err) == api.KindCredentials:
			leave("Didit refused DIDIT_API_KEY: the key may not delete sessions (a scoped key needs that right), "+
				"or this machine's IP address is not on its allow-list [%v]", err)
		default:
			leave("Didit: %v", diditFailure("deleting its copy", err))
		}
	}
	e.log.InfoContext(ctx, "session erased", "session_id", sessionID, "complete", len(rep.Left) == 0,
		"mails", rep.Mails, "executions_deleted", rep.Deleted, "executions_terminated", rep.Terminated,
		"executions_started_meanwhile", rep.Meanwhile, "didit", rep.Didit)
	return rep
}

// executions lists every run of the session's workflows that handled does
// not hold: the runs erase has deleted stay listed until the server has
// removed them in the background.
func (e *eraser) executions(ctx context.Context, sessionID string, handled map[string]bool) ([]execution, error) {
	ids, err := e.workflowIDs(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	var runs []execution
	for _, id := range ids {
		rs, err := e.temporal.Runs(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("listing the executions of %s failed: %w", id, err)
		}
		for _, r := range rs {
			if !handled[r.RunID] {
				e.log.DebugContext(ctx, "execution found", "workflow_id", r.WorkflowID, "run_id", r.RunID, "running", r.Running)
				runs = append(runs, r)
			}
		}
	}
	return runs, nil
}

// remove terminates the running ones of runs and deletes them all, and
// notes each in handled. It returns why it stopped, or "".
func (e *eraser) remove(ctx context.Context, runs []execution, handled map[string]bool, rep *sessionReport) string {
	if running := runningIDs(runs); len(running) > 0 && !e.terminate {
		// Only a run started meanwhile: the first listing refused to start.
		return fmt.Sprintf("Temporal: %s started while erase ran (%s); its records are erased, but give --terminate "+
			"to end and delete it", plural(len(running), "execution"), strings.Join(running, ", "))
	}
	var failed []string
	for _, r := range runs {
		if r.Running {
			if err := e.temporal.Terminate(ctx, r, "erased by diditflow-admin erase"); err != nil {
				failed = append(failed, fmt.Sprintf("terminating %s failed: %v", r.WorkflowID, err))
				continue
			}
			rep.Terminated++
		}
		deleted, err := e.temporal.Delete(ctx, r)
		if err != nil {
			failed = append(failed, fmt.Sprintf("deleting %s failed: %v", r.WorkflowID, err))
			continue
		}
		handled[r.RunID] = true
		if deleted {
			rep.Deleted++
		}
	}
	if len(failed) > 0 {
		return "Temporal: " + strings.Join(failed, "; ")
	}
	return ""
}

// runningIDs are the workflow IDs of the running ones of runs.
func runningIDs(runs []execution) []string {
	return workflowIDsOf(slices.DeleteFunc(slices.Clone(runs), func(r execution) bool { return !r.Running }))
}

// workflowIDsOf are the workflow IDs of runs, each once.
func workflowIDsOf(runs []execution) []string {
	var ids []string
	for _, r := range runs {
		if !slices.Contains(ids, r.WorkflowID) {
			ids = append(ids, r.WorkflowID)
		}
	}
	return ids
}

// workflowIDs are the workflows that ran the session: its session workflow
// and its AML cases, those the records hold and those Temporal lists. A
// listed ID that is also another recorded session's first case
// (aml-case-<session>-<n> for a session "<session>-<n>") is left to that one.
func (e *eraser) workflowIDs(ctx context.Context, sessionID string) ([]string, error) {
	ids := []string{contract.SessionWorkflowID(sessionID)}
	cases, err := e.records.AMLCases(ctx, sessionID)
	if err != nil {
		return nil, fmt.Errorf("reading its AML cases failed: %w", err)
	}
	for _, c := range cases {
		ids = append(ids, c.CaseID)
	}
	listed, err := e.temporal.CaseIDs(ctx, sessionID)
	if err != nil {
		return nil, fmt.Errorf("listing its AML case executions failed: %w", err)
	}
	for _, id := range listed {
		if slices.Contains(ids, id) || !contract.IsAMLCaseOf(sessionID, id) {
			continue
		}
		if id != contract.AMLCaseWorkflowID(sessionID) {
			if c, err := e.records.AMLCase(ctx, id); err == nil && c.SessionID != sessionID {
				continue
			}
			if _, err := e.records.Session(ctx, strings.TrimPrefix(id, contract.AMLCaseWorkflowID(""))); err == nil {
				continue
			}
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// removeMails removes the session's mails from the outbox: the .eml files
// whose Message-ID is that of a mail sent for one of the session's
// notifications (their kinds outlive the erasure), with whichever sender
// address they went out. A file name keeps only a lossy, truncated copy of
// the message's ID, but the Message-ID header is a hash of the whole of it.
func (e *eraser) removeMails(ctx context.Context, sessionID string) (int, error) {
	ns, err := e.records.Notifications(ctx, sessionID)
	if err != nil {
		return 0, err
	}
	var ids []string
	for _, n := range ns {
		if id, ok := activities.NotificationMessageID(sessionID, n.Kind); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	entries, err := os.ReadDir(e.outboxDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, entry := range entries {
		if !entry.Type().IsRegular() || !strings.HasSuffix(entry.Name(), ".eml") {
			continue
		}
		path := filepath.Join(e.outboxDir, entry.Name())
		messageID, from, err := mailIdentity(path)
		if err != nil {
			// Not a message the outbox wrote: none of the session's.
			e.log.DebugContext(ctx, "outbox file skipped", "file", entry.Name(), "error", err)
			continue
		}
		for _, id := range ids {
			if notify.MessageID(id, from) != messageID {
				continue
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, err
			}
			removed++
			break
		}
	}
	return removed, nil
}

// mailIdentity reads a message's Message-ID and its sender's address.
func mailIdentity(path string) (messageID, from string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	m, err := mail.ReadMessage(bufio.NewReader(f))
	if err != nil {
		return "", "", err
	}
	sender, err := mail.ParseAddress(m.Header.Get("From"))
	if err != nil {
		return "", "", err
	}
	return m.Header.Get("Message-ID"), sender.Address, nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// eraseReport is erase's whole output on stdout.
type eraseReport struct {
	// ByVendorData is true when the sessions were found by vendor_data,
	// which the report never shows.
	ByVendorData bool `json:"by_vendor_data"`
	// SMTP is true when the worker sends mail over SMTP: no outbox to clean.
	SMTP     bool            `json:"smtp,omitempty"`
	Sessions []sessionReport `json:"sessions"`
}

func (r eraseReport) complete() bool {
	for _, s := range r.Sessions {
		if len(s.Left) > 0 {
			return false
		}
	}
	return true
}

func (r eraseReport) writeJSON(w io.Writer) error {
	if r.Sessions == nil {
		r.Sessions = []sessionReport{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r eraseReport) writeText(w io.Writer) error {
	b := bufio.NewWriter(w)
	if len(r.Sessions) == 0 {
		if r.ByVendorData {
			writeWrapped(b, "No session record holds this vendor_data: nothing erased. A session erased or purged "+
				"before no longer holds it; erase it by --session <id> (a run that failed part way says which).", "", "")
		}
		return b.Flush()
	}
	for i, s := range r.Sessions {
		if i > 0 {
			b.WriteString("\n")
		}
		head := "Erased session " + s.SessionID + "."
		if len(s.Left) > 0 {
			head = "Session " + s.SessionID + " is not fully erased."
		}
		writeWrapped(b, head, "", "")
		for _, line := range s.lines(r.SMTP) {
			writeWrapped(b, line, "  - ", "    ")
		}
		for _, why := range s.Left {
			writeWrapped(b, "left: "+why, "  ! ", "    ")
		}
	}
	return b.Flush()
}

// lines are what was removed, one line per place.
func (s sessionReport) lines(smtp bool) []string {
	var out []string
	if rec := s.Records; rec != nil {
		switch {
		case !rec.Found:
			out = append(out, "records: no record of the session; it is marked erased, so that an event Didit sends "+
				"later is recorded without personal data")
		default:
			out = append(out, fmt.Sprintf("records: %s of the session, %s and %s blanked; statuses, events and decisions' facts kept",
				plural(rec.Fields, "personal field"), plural(rec.Notifications, "notification"), plural(rec.AMLCases, "AML case record")))
		}
	}
	switch {
	case smtp:
		out = append(out, "mail: sent over SMTP, so it is with its recipients; nothing kept locally")
	case s.Records != nil:
		out = append(out, fmt.Sprintf("outbox: %s removed", plural(s.Mails, "mail")))
	}
	if s.Records != nil || s.Deleted > 0 {
		line := fmt.Sprintf("Temporal: %s deleted", plural(s.Deleted, "execution"))
		if s.Terminated > 0 {
			line += fmt.Sprintf(" (%d terminated first)", s.Terminated)
		}
		if s.Meanwhile > 0 {
			line += fmt.Sprintf(", %d of them started while erase ran and found when it listed the runs again", s.Meanwhile)
		}
		if s.Deleted > 0 {
			line += "; the server removes their histories in the background"
		}
		out = append(out, line)
	}
	switch s.Didit {
	case "deleted":
		out = append(out, "Didit: its copy of the session deleted")
	case "not found":
		out = append(out, "Didit: has no such session (already deleted, or outside DIDIT_API_KEY's scope)")
	}
	return out
}

// execution is one run of a workflow.
type execution struct {
	WorkflowID, RunID string
	Running           bool
}

// executions is what erase needs of Temporal.
type executions interface {
	// Runs lists every run of a workflow ID, running or closed.
	Runs(ctx context.Context, workflowID string) ([]execution, error)
	// CaseIDs lists the IDs of the workflows whose ID starts with the
	// session's first AML case's (contract.AMLCaseWorkflowID).
	CaseIDs(ctx context.Context, sessionID string) ([]string, error)
	Terminate(ctx context.Context, r execution, reason string) error
	// Delete deletes a closed run's execution and history; deleted is false
	// when Temporal no longer had it.
	Delete(ctx context.Context, r execution) (deleted bool, err error)
}

// dialExecutions connects to Temporal as the worker does.
func dialExecutions(ctx context.Context, log *slog.Logger, cfg config.Worker) (executions, func(), error) {
	opts, err := temporalclient.Options(log, cfg.Encryption)
	if err != nil {
		return nil, nil, err
	}
	dialCtx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	c, err := client.DialContext(dialCtx, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("dial temporal at %s: %w (set TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE as for the worker)", opts.HostPort, err)
	}
	namespace := opts.Namespace
	if namespace == "" {
		namespace = client.DefaultNamespace
	}
	return temporalExecutions{c: c, namespace: namespace}, c.Close, nil
}

// temporalExecutions is executions on a Temporal client.
type temporalExecutions struct {
	c         client.Client
	namespace string
}

func (t temporalExecutions) list(ctx context.Context, query string) ([]*workflowservice.ListWorkflowExecutionsResponse, error) {
	var pages []*workflowservice.ListWorkflowExecutionsResponse
	var token []byte
	for {
		cctx, cancel := context.WithTimeout(ctx, temporalTimeout)
		resp, err := t.c.ListWorkflow(cctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: t.namespace, Query: query, PageSize: 100, NextPageToken: token})
		cancel()
		if err != nil {
			return nil, err
		}
		pages = append(pages, resp)
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return pages, nil
		}
	}
}

// Runs reads the runs from visibility, and the current run from the
// execution itself, which visibility may not show yet.
func (t temporalExecutions) Runs(ctx context.Context, workflowID string) ([]execution, error) {
	query, err := listQuery("=", workflowID)
	if err != nil {
		return nil, err
	}
	pages, err := t.list(ctx, query)
	if err != nil {
		return nil, err
	}
	var runs []execution
	seen := map[string]bool{}
	add := func(id, runID string, status enumspb.WorkflowExecutionStatus) {
		if seen[runID] {
			return
		}
		seen[runID] = true
		runs = append(runs, execution{WorkflowID: id, RunID: runID, Running: status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING})
	}
	for _, p := range pages {
		for _, x := range p.GetExecutions() {
			add(x.GetExecution().GetWorkflowId(), x.GetExecution().GetRunId(), x.GetStatus())
		}
	}
	cctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	d, err := t.c.DescribeWorkflow(cctx, workflowID, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
	case err != nil:
		return nil, err
	default:
		add(d.WorkflowExecution.ID, d.WorkflowExecution.RunID, d.Status)
	}
	return runs, nil
}

func (t temporalExecutions) CaseIDs(ctx context.Context, sessionID string) ([]string, error) {
	query, err := listQuery("STARTS_WITH", contract.AMLCaseWorkflowID(sessionID))
	if err != nil {
		return nil, err
	}
	pages, err := t.list(ctx, query)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, p := range pages {
		for _, x := range p.GetExecutions() {
			if id := x.GetExecution().GetWorkflowId(); !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

func (t temporalExecutions) Terminate(ctx context.Context, r execution, reason string) error {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	err := t.c.TerminateWorkflow(ctx, r.WorkflowID, r.RunID, reason)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil // it closed meanwhile
	}
	return err
}

func (t temporalExecutions) Delete(ctx context.Context, r execution) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	_, err := t.c.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
		Namespace:         t.namespace,
		WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: r.WorkflowID, RunId: r.RunID},
	})
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	return err == nil, err
}
