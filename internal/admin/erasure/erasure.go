// Package erasure removes a user's personal data from everything diditflow
// keeps, on request: the procedure behind diditflow-admin erase. For each
// session it blanks the records' personal fields (the session stays
// erased: later events are recorded without them), deletes the Temporal
// executions of the session and its AML cases, removes its mails from the
// local outbox and, when asked, has Didit delete its copy. It reports what
// it removed in counts, never the data.
package erasure

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/admin"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/store"
)

// Request is what to erase, as an erase command line asks for it.
type Request struct {
	// Session is the Didit session id to erase; VendorData erases every
	// session whose record holds that reference instead.
	Session, VendorData string
	// Terminate ends a running execution of the session or its AML cases,
	// then deletes it; without it, a session with one running is left.
	Terminate bool
	// Didit asks Didit to delete its copy of each session too.
	Didit bool
	// IncludeAML erases AML case records still within AML_RECORD_RETENTION.
	IncludeAML bool
}

// Check says why the request names no session, or one Didit cannot have
// sent (a usage error).
func (r Request) Check() error {
	switch {
	case (r.Session == "") == (r.VendorData == ""):
		return errors.New("give one of --session <id> and --vendor-data <ref>")
	case r.Session != "" && !didit.ValidSessionID(r.Session):
		return fmt.Errorf("--session %q is not a Didit session id (at most 64 letters, digits, '-' and '_')", r.Session)
	}
	return nil
}

// OpenExecutions connects to Temporal; close releases the connection.
type OpenExecutions func(ctx context.Context, log *slog.Logger, cfg config.Worker) (e Executions, close func(), err error)

// Run connects to what the worker of cfg uses (its records, its outbox,
// Temporal through open, nil dialling it as the worker does, and, for
// req.Didit, Didit's API) and erases the sessions req names (req.Check has
// passed). The error is for what kept it from starting; what a session's
// erasure left is in its report.
func Run(ctx context.Context, cfg config.Worker, log *slog.Logger, req Request, open OpenExecutions) (Report, error) {
	e := &eraser{terminate: req.Terminate, includeAML: req.IncludeAML, log: log}
	if req.Didit {
		if strings.TrimSpace(cfg.DiditAPIKey) == "" {
			return Report{}, errors.New("--didit needs DIDIT_API_KEY: an API key of the application that may delete sessions")
		}
		c, err := admin.DiditClient(cfg.DiditAPIURL, cfg.DiditAPIKey)
		if err != nil {
			return Report{}, err
		}
		e.didit = c
	}
	if cfg.SMTPURL == "" {
		e.outboxDir = cfg.OutboxDir
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return Report{}, fmt.Errorf("open the records (DATABASE_URL): %w", err)
	}
	defer st.Close()
	e.records = st
	if open == nil {
		open = DialExecutions
	}
	ex, closeTemporal, err := open(ctx, log, cfg)
	if err != nil {
		return Report{}, err
	}
	defer closeTemporal()
	e.temporal = ex

	rep := Report{ByVendorData: req.VendorData != "", SMTP: cfg.SMTPURL != ""}
	ids := []string{req.Session}
	if req.VendorData != "" {
		if ids, err = st.SessionsByVendorData(ctx, req.VendorData); err != nil {
			return Report{}, err
		}
		log.InfoContext(ctx, "sessions found by vendor_data", "sessions", len(ids))
	}
	for _, id := range ids {
		if !didit.ValidSessionID(id) {
			// A record from before the receiver checked session ids.
			rep.Sessions = append(rep.Sessions, SessionReport{SessionID: id, Left: []string{
				"nothing erased: not a session id Didit sends (at most 64 letters, digits, '-' and '_'); " +
					"erase its record and executions by hand"}})
			continue
		}
		rep.Sessions = append(rep.Sessions, e.erase(ctx, id))
	}
	return rep, nil
}

// eraser erases sessions, one at a time.
type eraser struct {
	records *store.Store
	// outboxDir is the worker's outbox; "" when mail goes over SMTP.
	outboxDir string
	temporal  Executions
	// didit, if set, is asked to delete its copy of each session.
	didit interface {
		DeleteSession(ctx context.Context, sessionID string) error
	}
	terminate, includeAML bool
	log                   *slog.Logger
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
func (e *eraser) erase(ctx context.Context, sessionID string) SessionReport {
	rep := SessionReport{SessionID: sessionID}
	leave := func(format string, args ...any) SessionReport {
		rep.Left = append(rep.Left, fmt.Sprintf(format, args...))
		return rep
	}
	retained, err := e.records.RetainedAMLCases(ctx, sessionID)
	if err != nil {
		return leave("nothing erased: reading its AML cases failed: %v", err)
	}
	if len(retained) > 0 && !e.includeAML {
		return leave("nothing erased: %s within AML_RECORD_RETENTION (%s), which anti-money-laundering rules may "+
			"require keeping even against an erasure request; give --include-aml if none does", admin.Plural(len(retained), "AML case record"),
			strings.Join(retained, ", "))
	}
	runs, err := e.executions(ctx, sessionID, nil)
	if err != nil {
		return leave("nothing erased: %v", err)
	}
	if running := runningIDs(runs); len(running) > 0 && !e.terminate {
		return leave("nothing erased: %s running (%s); give --terminate to end it, or wait until it completes",
			admin.Plural(len(running), "execution"), strings.Join(running, ", "))
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
				"Didit stops delivering to the session (--didit deletes its copy)", admin.Plural(len(runs), "execution"),
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
			leave("Didit: %v", admin.DiditFailure("deleting its copy", err))
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
func (e *eraser) executions(ctx context.Context, sessionID string, handled map[string]bool) ([]Execution, error) {
	ids, err := e.workflowIDs(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	var runs []Execution
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
func (e *eraser) remove(ctx context.Context, runs []Execution, handled map[string]bool, rep *SessionReport) string {
	if running := runningIDs(runs); len(running) > 0 && !e.terminate {
		// Only a run started meanwhile: the first listing refused to start.
		return fmt.Sprintf("Temporal: %s started while erase ran (%s); its records are erased, but give --terminate "+
			"to end and delete it", admin.Plural(len(running), "execution"), strings.Join(running, ", "))
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
func runningIDs(runs []Execution) []string {
	return workflowIDsOf(slices.DeleteFunc(slices.Clone(runs), func(r Execution) bool { return !r.Running }))
}

// workflowIDsOf are the workflow IDs of runs, each once.
func workflowIDsOf(runs []Execution) []string {
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
