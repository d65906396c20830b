package cases

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/internal/contract"
)

// ResolveTimeout bounds a resolve: the Update is answered once a worker has
// run the case's workflow task, within seconds when a worker polls.
const ResolveTimeout = time.Minute

// Request is a case's resolution as diditflow-admin resolve takes it.
type Request struct {
	CaseID   string
	Outcome  contract.Outcome
	Hits     HitOutcomes
	Note     string
	Reviewer string
}

// Check refuses, before anything is sent, what the case would refuse for
// its form: not a case ID, an unknown outcome, no reviewer. Whether the
// case holds the hits named, or is resolved already, is the case's to say.
func (r Request) Check() error {
	switch {
	case !strings.HasPrefix(r.CaseID, contract.AMLCaseWorkflowID("")) || len(r.CaseID) == len(contract.AMLCaseWorkflowID("")):
		return fmt.Errorf("%q is not an AML case ID (aml-case-<session_id>, as diditflow-admin cases lists them)", r.CaseID)
	case r.Outcome == "":
		return errors.New("--outcome is required: " + outcomes)
	case !r.Outcome.Valid():
		return fmt.Errorf("--outcome %q: want %s", r.Outcome, outcomes)
	case strings.TrimSpace(r.Reviewer) == "":
		return errors.New("--reviewer is required: who decided, recorded with the case")
	}
	return nil
}

const outcomes = "confirmed_match, false_positive or inconclusive"

// HitOutcomes are outcomes of single hits, by hit ID: the flag --hit
// <id>=<outcome>, repeated.
type HitOutcomes map[string]contract.Outcome

// String lists the outcomes as the flag takes them.
func (h HitOutcomes) String() string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(h)) {
		parts = append(parts, id+"="+string(h[id]))
	}
	return strings.Join(parts, " ")
}

// Set takes one <id>=<outcome>.
func (h HitOutcomes) Set(v string) error {
	id, o, ok := strings.Cut(v, "=")
	id = strings.TrimSpace(id)
	switch outcome := contract.Outcome(strings.TrimSpace(o)); {
	case !ok || id == "":
		return fmt.Errorf("%q is not <hit id>=<outcome>", v)
	case !outcome.Valid():
		return fmt.Errorf("hit %s: outcome %q: want %s", id, outcome, outcomes)
	case h[id] != "":
		return fmt.Errorf("hit %s is given twice", id)
	default:
		h[id] = outcome
	}
	return nil
}

// Updater sends a workflow an Update: client.Client does.
type Updater interface {
	UpdateWorkflow(ctx context.Context, opts client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error)
}

// Refused is the case's refusal of a resolution: its validator's reason.
type Refused struct {
	CaseID, Reason string
}

func (e *Refused) Error() string {
	return fmt.Sprintf("%s refused the resolution: %s", e.CaseID, e.Reason)
}

// Result is what the case recorded of a resolution.
type Result contract.ResolveResult

// Resolve sends r to its case as the resolve Update and waits until the
// case has taken it. A refusal is a *Refused.
func Resolve(ctx context.Context, u Updater, r Request) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, ResolveTimeout)
	defer cancel()
	res := contract.Resolution{Outcome: r.Outcome, Reviewer: strings.TrimSpace(r.Reviewer), Note: r.Note}
	if len(r.Hits) > 0 {
		res.Hits = r.Hits
	}
	var out Result
	h, err := u.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: r.CaseID, UpdateName: contract.ResolveSignal,
		Args: []any{res}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err == nil {
		err = h.Get(ctx, &out)
	}
	var app *temporal.ApplicationError
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &app) && app.Type() == contract.RefusedErrorType:
		return out, &Refused{CaseID: r.CaseID, Reason: app.Message()}
	case errors.As(err, &notFound):
		return out, fmt.Errorf("%s is not running: resolved already, or never opened (diditflow-admin case %s shows it): %w",
			r.CaseID, r.CaseID, err)
	case ctx.Err() != nil:
		return out, fmt.Errorf("%s did not answer within %s: is a worker running? The resolution may still be taken when one "+
			"polls; diditflow-admin case %s shows whether it was: %w", r.CaseID, ResolveTimeout, r.CaseID, err)
	}
	return out, fmt.Errorf("resolve %s: %w", r.CaseID, err)
}

// WriteText writes what the case recorded.
func (res Result) WriteText(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Resolved %s: %s\n", res.CaseID, res.Outcome)
	fmt.Fprintf(w, "  reviewer\t%s\n", res.Reviewer)
	if res.Identity != "" {
		fmt.Fprintf(w, "  sent by\t%s\n", res.Identity)
	}
	for _, id := range slices.Sorted(maps.Keys(res.Hits)) {
		fmt.Fprintf(w, "  hit %s\t%s\n", id, res.Hits[id])
	}
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(out, "Each hit's outcome is written back to Didit as its review status; the case's workflow completes.")
	return err
}

// WriteJSON writes what the case recorded as one JSON object.
func (res Result) WriteJSON(out io.Writer) error { return writeJSON(out, res) }
