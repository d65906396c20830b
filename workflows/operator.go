package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/internal/contract"
)

// Operators act on a workflow by signal or by Temporal Update of the same
// name and input: retry, skip and acknowledge here, resolve in aml.go. A
// signal is taken whatever it says, and one that cannot act is only logged
// (or listed, for resolve); an Update answers. Its validator refuses what
// is malformed, incomplete or has nothing to act on, and the refusal
// reaches the caller without entering the history; an accepted Update
// returns what it did, and the caller's Temporal identity is recorded
// beside the operator or reviewer it names.

// Callers tells the Temporal identity of the client that sent an Update, by
// the Update's ID, as the worker received the request. The SDK does not
// tell workflow code (workflow.UpdateInfo has the ID and name only); the
// worker's Callers reads the requests it polls (internal/caller).
type Callers interface {
	Identity(updateID string) string
}

// updateCaller is the side effect that records an Update's caller, so a
// replay reads it from the history rather than from the worker.
type updateCaller struct {
	UpdateID string `json:"update_id"`
	Identity string `json:"identity"`
}

// callerIdentity is the Temporal identity of the client that sent the
// Update being handled: best effort, "" when the worker has no note of it
// (a worker without Callers, or one that took over the run after the
// Update was accepted).
func (w *Workflows) callerIdentity(ctx workflow.Context) string {
	info := workflow.GetCurrentUpdateInfo(ctx)
	if info == nil {
		return ""
	}
	var c updateCaller
	err := workflow.SideEffect(ctx, func(workflow.Context) any {
		c := updateCaller{UpdateID: info.ID}
		if w.Callers != nil {
			c.Identity = w.Callers.Identity(info.ID)
		}
		return c
	}).Get(&c)
	if err != nil {
		return ""
	}
	return c.Identity
}

// setOperatorUpdates registers the retry, skip and acknowledge Updates of a
// workflow whose parked steps are st and whose flags are fl.
func (w *Workflows) setOperatorUpdates(ctx workflow.Context, st *steps, fl *flags) error {
	for _, name := range []string{contract.RetrySignal, contract.SkipSignal} {
		release := func(ctx workflow.Context, raw json.RawMessage) (contract.ActionResult, error) {
			action, _ := operatorAction(raw)
			identity := w.callerIdentity(ctx)
			released := st.release(ctx, name, action, identity)
			workflow.GetLogger(ctx).Info("operator update", "update", name, "released", len(released))
			return contract.ActionResult{Action: name, Steps: released, Operator: action.Operator, Identity: identity}, nil
		}
		validate := func(raw json.RawMessage) error {
			action, err := operatorAction(raw)
			switch {
			case err != nil:
				return err
			case action.Flag != "":
				return refusal(`"flag" names what an acknowledge clears; %s takes "step"`, name)
			case len(st.releasable(action.Step)) > 0:
				return nil
			case action.Step != "":
				return refusal("nothing to %s: no step named %q is parked (the state query lists the parked steps)", name, action.Step)
			}
			return refusal("nothing to %s: no step is parked", name)
		}
		if err := workflow.SetUpdateHandlerWithOptions(ctx, name, release,
			workflow.UpdateHandlerOptions{Validator: validate}); err != nil {
			return err
		}
	}
	acknowledge := func(ctx workflow.Context, raw json.RawMessage) (contract.ActionResult, error) {
		action, _ := operatorAction(raw)
		identity := w.callerIdentity(ctx)
		cleared := fl.clear(ctx, action, identity)
		return contract.ActionResult{Action: contract.AcknowledgeSignal, Flags: cleared, Operator: action.Operator, Identity: identity}, nil
	}
	validate := func(raw json.RawMessage) error {
		action, err := operatorAction(raw)
		switch {
		case err != nil:
			return err
		case action.Step != "":
			return refusal(`"step" names what a retry or skip releases; acknowledge takes "flag"`)
		case slices.ContainsFunc(*fl.list, func(f Flag) bool { return f.matches(action.Flag) }):
			return nil
		case action.Flag != "":
			return refusal("nothing to acknowledge: no flag is of kind or id %q (the state query lists the flags)", action.Flag)
		}
		if len(*fl.parked) > 0 {
			return refusal("nothing to acknowledge: no flag is raised (a parked step takes retry or skip)")
		}
		return refusal("nothing to acknowledge: no flag is raised")
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, contract.AcknowledgeSignal, acknowledge,
		workflow.UpdateHandlerOptions{Validator: validate})
}

// operatorAction reads the input of a retry, skip or acknowledge Update,
// which, unlike the signal's, must name the operator: the caller's Temporal
// identity says which tool or login sent it, not who decided.
func operatorAction(raw json.RawMessage) (contract.OperatorAction, error) {
	var a contract.OperatorAction
	if len(raw) == 0 || string(raw) == "null" {
		return a, refusal(`input required: {"operator":"you@example.com","note":"why"}, with "step" (retry, skip) or "flag" (acknowledge) to act on one only`)
	}
	if err := decodeStrictJSON(raw, &a); err != nil {
		return a, refusal(`input is not {"operator","note","step","flag"}: %v`, err)
	}
	if strings.TrimSpace(a.Operator) == "" {
		return a, refusal(`"operator" is required: who decided`)
	}
	return a, nil
}

// refusal is a validator's answer to an Update it refuses. Its message
// stays readable (codec.FailureConverter): it quotes no personal data.
func refusal(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), contract.RefusedErrorType, nil)
}

// resolveUpdate is an AML case's resolve Update. Its validator refuses what
// a resolve signal would have listed under rejected, and any resolution
// once the case has one; an accepted resolution goes to the case's loop
// (accepted) as a signal's does, and the Update answers once the loop took
// it.
type resolveUpdate struct {
	accepted workflow.Channel
	// taken is set once the case took a resolution: a signal's, the
	// Update's or Didit's console's; byUpdate when it was the Update's.
	taken, byUpdate bool
}

func (w *Workflows) setResolveUpdate(ctx workflow.Context, state *CaseState) (*resolveUpdate, error) {
	u := &resolveUpdate{accepted: workflow.NewBufferedChannel(ctx, 1)}
	handle := func(ctx workflow.Context, raw json.RawMessage) (contract.ResolveResult, error) {
		res, _ := updateResolution(raw)
		res.Source, res.Identity = contract.FromDiditflow, w.callerIdentity(ctx)
		u.accepted.SendAsync(res)
		_ = workflow.Await(ctx, func() bool { return u.taken })
		if !u.byUpdate {
			return contract.ResolveResult{}, errors.New("the case was resolved first, by a resolve signal or by reviews in Didit's console")
		}
		c := state.Case
		hits := make(map[string]contract.Outcome, len(c.Hits))
		for _, h := range c.Hits {
			hits[h.ID] = res.HitOutcome(h.ID)
		}
		return contract.ResolveResult{CaseID: c.ID(), Hits: hits, Outcome: res.Outcome, Reviewer: res.Reviewer, Identity: res.Identity}, nil
	}
	validate := func(raw json.RawMessage) error {
		res, err := updateResolution(raw)
		if err != nil {
			return err
		}
		// The case as it stands: the hits' reviews in Didit's console too.
		if reason := invalidResolution(res, state.Case); reason != "" {
			return refusal("%s", reason)
		}
		if u.taken || u.accepted.Len() > 0 {
			return refusal("the case is already resolved")
		}
		return nil
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, contract.ResolveSignal, handle, workflow.UpdateHandlerOptions{Validator: validate})
	return u, err
}

// updateResolution reads the input of a resolve Update.
func updateResolution(raw json.RawMessage) (contract.Resolution, error) {
	var res contract.Resolution
	if len(raw) == 0 || string(raw) == "null" {
		return res, refusal(`input required: {"outcome":"false_positive","reviewer":"you@example.com","note":"why"}, with "hits" for outcomes of single hits`)
	}
	if err := decodeStrictJSON(raw, &res); err != nil {
		return res, refusal(`input is not {"outcome","reviewer","note","hits"}: %v`, err)
	}
	return res, nil
}
