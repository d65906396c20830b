package activities

import (
	"context"
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/kyc"
)

// Hook is a business's workflow diditflow starts on each of a session's
// events (HOOK_WORKFLOWS=WorkflowType@TaskQueue), with one kyc.Event.
type Hook struct {
	WorkflowType string `json:"workflow_type"`
	TaskQueue    string `json:"task_queue"`
}

// Announcement is what a session workflow tells the businesses' workflows
// in one go: its subscribers' updates, and the events its hooks start on.
type Announcement struct {
	SessionID string             `json:"session_id"`
	Updates   []SubscriberUpdate `json:"updates,omitempty"`
	// Hooks are started once for each of Events.
	Hooks  []Hook      `json:"hooks,omitempty"`
	Events []kyc.Event `json:"events,omitempty"`
	// Announced, once every hook is started, is recorded as the highest
	// status change announced (store.MarkAnnounced): a redelivery of its
	// event is then not announced again.
	Announced int64 `json:"announced,omitempty"`
}

// SubscriberUpdate is what one subscriber is to be told: the changes the
// session workflow knows it was not told, in order.
type SubscriberUpdate struct {
	WorkflowID string       `json:"workflow_id"`
	RunID      string       `json:"run_id"`
	Changes    []kyc.Change `json:"changes,omitempty"`
	// Refused, instead, tells a workflow its subscription was refused, and
	// why (kyc.Update.Refused).
	Refused string `json:"refused,omitempty"`
}

// AnnounceResult is what came of an announcement.
type AnnounceResult struct {
	// Status is where the records said the session stood when the
	// subscribers were told.
	Status SessionSnapshot `json:"status"`
	// Updates are, in the order of Announcement.Updates, what each
	// subscriber was told.
	Updates []UpdateResult `json:"updates,omitempty"`
}

// SessionSnapshot is where a session stands as its records say.
type SessionSnapshot struct {
	Status   didit.Status `json:"status,omitempty"`
	Sequence int64        `json:"sequence"`
	// At is when the change that set Status happened (Unix seconds).
	At int64 `json:"at,omitempty"`
}

// UpdateResult is what one subscriber was told.
type UpdateResult struct {
	// Told is the Sequence of the last change told; -1 when there was
	// nothing to tell (a session never recorded).
	Told int64 `json:"told"`
	// Decided: a change told was decided (kyc.Decided); the subscriber
	// waits no more.
	Decided bool `json:"decided,omitempty"`
	// Gone: the subscriber's run is closed (it completed, continued as new
	// and subscribes again, or was terminated); it is dropped.
	Gone bool `json:"gone,omitempty"`
}

// Announce tells each subscriber its update and starts each hook on each
// event, for a session workflow, as a local activity. An update ends with
// where the records say the session stands whenever they are ahead of the
// workflow (a run that recorded nothing yet knows nothing), so a subscriber
// is told the truth as of now, which every later change, recorded by the
// run that announces, follows. A failure fails the attempt, to be retried
// whole: a subscriber drops a change it was told before (by its Sequence),
// and Temporal refuses to start a hook a second time (kyc.HookWorkflowID,
// reject-duplicate).
func (k *KYC) Announce(ctx context.Context, in Announcement) (AnnounceResult, error) {
	st, err := k.Store.StatusOf(ctx, in.SessionID)
	if err != nil {
		return AnnounceResult{}, classify("read the session's status", err)
	}
	res := AnnounceResult{Status: SessionSnapshot{Status: didit.Status(st.Status), Sequence: st.Sequence, At: st.At}}
	current := kyc.Change{Sequence: st.Sequence, Status: didit.Status(st.Status), At: time.Unix(st.At, 0).UTC()}
	var errs []error
	for _, u := range in.Updates {
		changes := u.Changes
		if n := len(changes); st.Status != "" && (n == 0 || changes[n-1].Sequence < st.Sequence) {
			changes = append(changes, current)
		}
		r := UpdateResult{Told: -1}
		if u.Refused != "" {
			changes = nil
		}
		if len(changes) > 0 || u.Refused != "" {
			r, err = k.tell(ctx, in.SessionID, u, changes)
			if err != nil {
				errs = append(errs, err)
			}
		}
		res.Updates = append(res.Updates, r)
	}
	if len(in.Events) > 0 && len(in.Hooks) > 0 {
		if err := k.startHooks(ctx, in.SessionID, in.Hooks, in.Events); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		k.log().WarnContext(ctx, "announcement failed; retried", "session_id", in.SessionID, "error", err)
		return AnnounceResult{}, temporal.NewApplicationError("announce: "+err.Error(), "Temporal")
	}
	if in.Announced > 0 {
		if err := k.Store.MarkAnnounced(ctx, in.SessionID, in.Announced); err != nil {
			return AnnounceResult{}, classify("mark announced", err)
		}
	}
	return res, nil
}

// tell signals one subscriber its changes.
func (k *KYC) tell(ctx context.Context, sessionID string, u SubscriberUpdate, changes []kyc.Change) (UpdateResult, error) {
	err := k.Temporal.SignalWorkflow(ctx, u.WorkflowID, u.RunID, contract.UpdateSignal(sessionID),
		kyc.Update{SessionID: sessionID, Changes: changes, Refused: u.Refused})
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		k.Metrics.subscriberUpdate("gone")
		return UpdateResult{Told: -1, Gone: true}, nil
	case err != nil:
		k.Metrics.subscriberUpdate("failed")
		return UpdateResult{}, err
	}
	k.Metrics.subscriberUpdate("sent")
	if len(changes) == 0 {
		return UpdateResult{Told: -1}, nil
	}
	r := UpdateResult{Told: changes[len(changes)-1].Sequence}
	for _, c := range changes {
		r.Decided = r.Decided || kyc.Decided(c.Status)
	}
	return r, nil
}

// startHooks starts every hook on every event, with the vendor_data the
// records hold now: none for an erased session.
func (k *KYC) startHooks(ctx context.Context, sessionID string, hooks []Hook, events []kyc.Event) error {
	rec, err := k.Store.Session(ctx, sessionID)
	if err != nil {
		return classify("read the session's vendor_data", err)
	}
	var errs []error
	for _, e := range events {
		e.VendorData = rec.VendorData
		for _, h := range hooks {
			errs = append(errs, k.startHook(ctx, h, e))
		}
	}
	return errors.Join(errs...)
}

// startHook starts one hook on one event, once: its ID derives from the
// event, and Temporal refuses a second start of it, running or closed.
func (k *KYC) startHook(ctx context.Context, h Hook, e kyc.Event) error {
	id := kyc.HookWorkflowID(h.WorkflowType, e)
	_, err := k.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                h.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, h.WorkflowType, e)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case err == nil:
		k.Metrics.hookStart("started")
		k.log().InfoContext(ctx, "hook started", "workflow_id", id, "task_queue", h.TaskQueue, "kind", e.Kind, "sequence", e.Sequence)
		return nil
	case errors.As(err, &started):
		k.Metrics.hookStart("duplicate")
		return nil
	}
	k.Metrics.hookStart("failed")
	return err
}

// CaseHooks starts the hooks on an AML case's resolution.
type CaseHooks struct {
	Hooks     []Hook             `json:"hooks"`
	SessionID string             `json:"session_id"`
	Case      kyc.CaseResolution `json:"case"`
	// At is when the case was resolved.
	At time.Time `json:"at"`
}

// StartCaseHooks starts the hooks on an AML case's resolution: the
// resolution takes the session's next number (once: asked again, the same
// one), and the event the session's status then.
func (k *KYC) StartCaseHooks(ctx context.Context, in CaseHooks) error {
	seq, err := k.Store.ResolutionSequence(ctx, in.Case.CaseID)
	if err != nil {
		return classify("number the resolution", err)
	}
	rec, err := k.Store.Session(ctx, in.SessionID)
	if err != nil {
		return classify("read the session", err)
	}
	e := kyc.Event{Kind: kyc.AMLCaseResolved, Key: contract.HookEventKey(in.SessionID, seq), SessionID: in.SessionID,
		VendorData: rec.VendorData, Status: didit.Status(rec.Status), At: in.At, Sequence: seq, Case: &in.Case}
	var errs []error
	for _, h := range in.Hooks {
		errs = append(errs, k.startHook(ctx, h, e))
	}
	if err := errors.Join(errs...); err != nil {
		return temporal.NewApplicationError("start hooks: "+err.Error(), "Temporal")
	}
	return nil
}
