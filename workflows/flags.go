package workflows

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/internal/contract"
)

// Flag kinds: why a workflow wants an operator without a step to retry or
// skip. A parked step is the other reason, kept in ParkedStep.
const (
	// FlagInDoubt: a notice was handed to the mail server, whose answer was
	// lost; someone should check it arrived.
	FlagInDoubt = "in_doubt"
	// FlagUndeliverable: a notice has no address, or every recipient refused it.
	FlagUndeliverable = "undeliverable"
	// FlagRecipientRefused: one compliance recipient refused a case notice;
	// the others got it.
	FlagRecipientRefused = "recipient_refused"
	// FlagUnusableDecision: an event whose decision cannot be trusted (only
	// X-Signature-Simple verified, or it did not parse).
	FlagUnusableDecision = "unusable_decision"
	// FlagDecisionUnavailable: an event needed the session's decision
	// (it carried none), and Didit's API could not give it.
	FlagDecisionUnavailable = "decision_unavailable"
	// FlagCaseNotOpened: Temporal refused to start an AML case.
	FlagCaseNotOpened = "case_not_opened"
	// FlagNotAnnounced: the businesses' workflows could not be told of the
	// session's events (hooks started, subscribers told) within the step
	// budget; the session keeps trying.
	FlagNotAnnounced = "not_announced"
)

// maxFlags bounds the flags a workflow keeps; identical ones are kept once.
const maxFlags = 50

// Flag is one reason for an operator to look at a workflow; an
// AcknowledgeSignal clears it.
type Flag struct {
	ID     int       `json:"id"`
	Kind   string    `json:"kind"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// flags is the one wiring of a workflow's flags and parked steps: the
// search attribute, the record (both through sync) and a metric change
// together, whatever raised or cleared them.
type flags struct {
	list      *[]Flag
	parked    *[]ParkedStep
	decisions *[]OperatorDecision
	// sync writes the search attribute and the record.
	sync func(ctx workflow.Context, needsAttention bool, reasons []string)
	// syncing counts the syncs under way.
	syncing int
}

func (f *flags) needsAttention() bool { return len(*f.parked) > 0 || len(*f.list) > 0 }

// reasons says why the workflow needs attention, one line each, without
// personal data: step names, kinds and the activities' scrubbed errors.
func (f *flags) reasons() []string {
	var out []string
	for _, p := range *f.parked {
		out = append(out, "parked: "+p.Step+": "+p.Error)
	}
	for _, fl := range *f.list {
		out = append(out, fl.Kind+": "+fl.Reason)
	}
	return out
}

// changed propagates the flags to the search attribute and the record.
func (f *flags) changed(ctx workflow.Context) {
	f.syncing++
	defer func() { f.syncing-- }()
	f.sync(ctx, f.needsAttention(), f.reasons())
}

// writing reports whether a change is being written to the record: a run
// that ended now would leave the record behind the workflow.
func (f *flags) writing() bool { return f.syncing > 0 }

// raise adds a flag, once per kind and reason.
func (f *flags) raise(ctx workflow.Context, kind, reason string) {
	if slices.ContainsFunc(*f.list, func(fl Flag) bool { return fl.Kind == kind && fl.Reason == reason }) {
		return
	}
	id := 1
	for _, fl := range *f.list {
		id = max(id, fl.ID+1)
	}
	*f.list = append(*f.list, Flag{ID: id, Kind: kind, Reason: reason, Since: workflow.Now(ctx)})
	if len(*f.list) > maxFlags {
		// Past the cap the oldest untrusted-decision flag goes first (one is
		// raised per such event); another kind only when there is none.
		i := slices.IndexFunc(*f.list, func(fl Flag) bool { return fl.Kind == FlagUnusableDecision })
		*f.list = slices.Delete(*f.list, max(i, 0), max(i, 0)+1)
	}
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"kind": kind}).Counter("diditflow_flags_raised").Inc(1)
	workflow.GetLogger(ctx).Warn("needs attention", "kind", kind, "reason", reason)
	f.changed(ctx)
}

// acknowledge clears the flags an operator's AcknowledgeSignal names and
// records the operator's answer.
func (f *flags) acknowledge(ctx workflow.Context, raw json.RawMessage) {
	logger := workflow.GetLogger(ctx)
	var action contract.OperatorAction
	if len(raw) > 0 && string(raw) != "null" {
		if err := decodeJSON(raw, &action); err != nil {
			logger.Warn("acknowledge ignored: input is not {\"flag\",\"operator\",\"note\"}", "error", err)
			return
		}
	}
	if len(f.clear(ctx, action, "")) == 0 {
		logger.Warn("acknowledge ignored: no matching flag", "flag", action.Flag)
	}
}

// matches reports whether an acknowledgement naming flag (a kind, an ID,
// or empty for every flag) clears fl.
func (fl Flag) matches(flag string) bool {
	return flag == "" || flag == fl.Kind || flag == strconv.Itoa(fl.ID)
}

// clear clears the flags action names, records the operator's answer with
// the caller's Temporal identity (empty for a signal), writes the change
// and returns the kinds of the flags cleared, one per flag.
func (f *flags) clear(ctx workflow.Context, action contract.OperatorAction, identity string) []string {
	var kept []Flag
	var cleared []string
	for _, fl := range *f.list {
		if !fl.matches(action.Flag) {
			kept = append(kept, fl)
			continue
		}
		cleared = append(cleared, fl.Kind)
		*f.decisions = append(*f.decisions, OperatorDecision{
			Step: fl.Kind + ": " + fl.Reason, Action: contract.AcknowledgeSignal,
			Operator: action.Operator, Identity: identity, Note: action.Note, At: workflow.Now(ctx),
		})
		workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"kind": fl.Kind}).Counter("diditflow_flags_cleared").Inc(1)
	}
	if len(cleared) == 0 {
		return nil
	}
	*f.list = kept
	if len(*f.decisions) > maxDecisions {
		*f.decisions = (*f.decisions)[len(*f.decisions)-maxDecisions:]
	}
	workflow.GetLogger(ctx).Info("flags acknowledged", "cleared", len(cleared), "flag", action.Flag)
	f.changed(ctx)
	return cleared
}
