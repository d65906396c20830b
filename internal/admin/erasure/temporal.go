package erasure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/internal/admin"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
)

// Execution is one run of a workflow.
type Execution struct {
	WorkflowID, RunID string
	Running           bool
}

// Executions is what erasure needs of Temporal.
type Executions interface {
	// Runs lists every run of a workflow ID, running or closed.
	Runs(ctx context.Context, workflowID string) ([]Execution, error)
	// CaseIDs lists the IDs of the workflows whose ID starts with the
	// session's first AML case's (contract.AMLCaseWorkflowID).
	CaseIDs(ctx context.Context, sessionID string) ([]string, error)
	Terminate(ctx context.Context, r Execution, reason string) error
	// Delete deletes a closed run's execution and history; deleted is false
	// when Temporal no longer had it.
	Delete(ctx context.Context, r Execution) (deleted bool, err error)
}

// DialExecutions connects to Temporal as the worker of cfg does.
func DialExecutions(ctx context.Context, log *slog.Logger, cfg config.Worker) (Executions, func(), error) {
	t, err := admin.DialTemporal(ctx, log, cfg.Encryption)
	if err != nil {
		return nil, nil, err
	}
	return temporalExecutions{c: t.Client, namespace: t.Namespace}, t.Client.Close, nil
}

// temporalExecutions is Executions on a Temporal client.
type temporalExecutions struct {
	c         client.Client
	namespace string
}

func (t temporalExecutions) list(ctx context.Context, query string) ([]*workflowservice.ListWorkflowExecutionsResponse, error) {
	var pages []*workflowservice.ListWorkflowExecutionsResponse
	var token []byte
	for {
		cctx, cancel := context.WithTimeout(ctx, admin.TemporalTimeout)
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
func (t temporalExecutions) Runs(ctx context.Context, workflowID string) ([]Execution, error) {
	query, err := listQuery("=", workflowID)
	if err != nil {
		return nil, err
	}
	pages, err := t.list(ctx, query)
	if err != nil {
		return nil, err
	}
	var runs []Execution
	seen := map[string]bool{}
	add := func(id, runID string, status enumspb.WorkflowExecutionStatus) {
		if seen[runID] {
			return
		}
		seen[runID] = true
		runs = append(runs, Execution{WorkflowID: id, RunID: runID, Running: status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING})
	}
	for _, p := range pages {
		for _, x := range p.GetExecutions() {
			add(x.GetExecution().GetWorkflowId(), x.GetExecution().GetRunId(), x.GetStatus())
		}
	}
	cctx, cancel := context.WithTimeout(ctx, admin.TemporalTimeout)
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

func (t temporalExecutions) Terminate(ctx context.Context, r Execution, reason string) error {
	ctx, cancel := context.WithTimeout(ctx, admin.TemporalTimeout)
	defer cancel()
	err := t.c.TerminateWorkflow(ctx, r.WorkflowID, r.RunID, reason)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil // it closed meanwhile
	}
	return err
}

func (t temporalExecutions) Delete(ctx context.Context, r Execution) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, admin.TemporalTimeout)
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
