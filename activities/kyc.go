package activities

import (
	"context"
	"errors"
	"log/slog"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
	"github.com/diditflow/diditflow/internal/temporalclient"
	"github.com/diditflow/diditflow/kyc"
)

// KYCAPI is what the businesses' calls need of Didit's API (api.Client).
type KYCAPI interface {
	Enabled() bool
	CreateSession(ctx context.Context, s api.NewSession) (api.CreatedSession, error)
	Decision(ctx context.Context, sessionID string) (api.DecisionResult, error)
}

// KYCStore is what they need of the records.
type KYCStore interface {
	StatusOf(ctx context.Context, sessionID string) (store.SessionStatus, error)
	Session(ctx context.Context, sessionID string) (store.SessionRecord, error)
	Erased(ctx context.Context, sessionID string) (bool, error)
	MarkAnnounced(ctx context.Context, sessionID string, seq int64) error
	ResolutionSequence(ctx context.Context, caseID string) (int64, error)
}

// Temporal is what they need of Temporal (client.Client): subscribers are
// signalled, hooks started.
type Temporal interface {
	Signaler
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
	ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow any, args ...any) (client.WorkflowRun, error)
}

// KYC holds the activities that serve the businesses' workflows (package
// kyc) on diditflow's task queues, and those that tell them of a session's
// events: its subscribers' updates and its hooks.
type KYC struct {
	API      KYCAPI
	Store    KYCStore
	Temporal Temporal
	// TaskQueue is the session workflows' queue, where a subscription
	// starts a run.
	TaskQueue string
	// WorkflowID is the Didit workflow of a request that names none
	// (DIDIT_WORKFLOW_ID).
	WorkflowID string
	Metrics    *Metrics
	Logger     *slog.Logger
}

func (k *KYC) log() *slog.Logger {
	if k.Logger != nil {
		return k.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// refusedError is the non-retryable failure kyc turns into a
// *kyc.RequestError.
func refusedError(status int, message string) error {
	return temporal.NewNonRetryableApplicationError(message, kyc.RequestErrorType, nil,
		kyc.RequestError{StatusCode: status, Message: message})
}

// CreateSession creates a Didit session for a business's workflow
// (kyc.StartVerification). A 429 or a 5xx fails the attempt for Temporal to
// retry (a 429 after Didit's Retry-After); a refusal is a *kyc.RequestError.
func (k *KYC) CreateSession(ctx context.Context, req kyc.Request) (kyc.Verification, error) {
	switch {
	case k.API == nil || !k.API.Enabled():
		k.Metrics.APICall("create_session", "no_key")
		return kyc.Verification{}, refusedError(0, "diditflow has no DIDIT_API_KEY: it cannot create Didit sessions")
	case req.VendorData == "":
		return kyc.Verification{}, refusedError(0, "vendor_data is required")
	}
	ns := api.NewSession{WorkflowID: req.WorkflowID, VendorData: req.VendorData, Callback: req.Callback,
		Metadata: req.Metadata, Language: req.Language, ContactDetails: req.ContactDetails, ExpectedDetails: req.ExpectedDetails}
	if ns.WorkflowID == "" {
		ns.WorkflowID = k.WorkflowID
	}
	if ns.WorkflowID == "" {
		return kyc.Verification{}, refusedError(0, "no Didit workflow: give Request.WorkflowID, or set diditflow's DIDIT_WORKFLOW_ID")
	}
	created, err := k.API.CreateSession(ctx, ns)
	if err != nil {
		kind := api.KindOf(err)
		k.Metrics.APICall("create_session", kind.String())
		k.log().WarnContext(ctx, "session creation failed", "error_kind", kind.String(), "error", err)
		var e *api.Error
		if errors.As(err, &e) && !e.Retryable() && e.Status >= 400 {
			return kyc.Verification{}, refusedError(e.Status, e.Detail)
		}
		return kyc.Verification{}, apiRetryError(err)
	}
	k.Metrics.APICall("create_session", "ok")
	k.log().InfoContext(ctx, "session created", "session_id", created.SessionID, "status", created.Status)
	return kyc.Verification{SessionID: created.SessionID, URL: created.URL, Status: created.Status}, nil
}

// checkSubscription refuses what no retry can fix.
func checkSubscription(sub kyc.Subscription) error {
	if !didit.ValidSessionID(sub.SessionID) || sub.WorkflowID == "" {
		return temporal.NewNonRetryableApplicationError("a subscription names a Didit session and a workflow", "InvalidSubscription", nil)
	}
	return nil
}

// Subscribe subscribes a business's workflow to a session
// (kyc.AwaitOutcome): it signals the session's workflow, starting a run if
// none is open (a session decided long ago then answers from its records).
func (k *KYC) Subscribe(ctx context.Context, sub kyc.Subscription) error {
	if err := checkSubscription(sub); err != nil {
		return err
	}
	return k.signalSession(ctx, "subscribe to session", sub.SessionID, contract.SubscribeSignal, sub)
}

// signalSession sends a session's workflow a signal, starting a run if none
// is open. The run it may start begins with the search attributes of where
// the records say the session stands, as a delivery's would.
func (k *KYC) signalSession(ctx context.Context, what, sessionID, signal string, arg any) error {
	st, err := k.Store.StatusOf(ctx, sessionID)
	if err != nil {
		return classify("read the session's status", err)
	}
	_, err = k.Temporal.SignalWithStartWorkflow(ctx, contract.SessionWorkflowID(sessionID), signal, arg,
		temporalclient.SessionStartOptions(sessionID, didit.Status(st.Status), k.TaskQueue),
		contract.SessionWorkflowType, contract.SessionStart{SessionID: sessionID})
	if err != nil {
		return temporal.NewApplicationError(what+": "+err.Error(), "Temporal")
	}
	return nil
}

// Unsubscribe ends a subscription. A session whose run is closed holds no
// subscriber: nothing to do.
func (k *KYC) Unsubscribe(ctx context.Context, sub kyc.Subscription) error {
	if err := checkSubscription(sub); err != nil {
		return err
	}
	err := k.Temporal.SignalWorkflow(ctx, contract.SessionWorkflowID(sub.SessionID), "", contract.UnsubscribeSignal, sub)
	var notFound *serviceerror.NotFound
	if err != nil && !errors.As(err, &notFound) {
		return temporal.NewApplicationError("unsubscribe from session: "+err.Error(), "Temporal")
	}
	return nil
}

// SessionDecision fetches a session's reduced decision for a business's
// workflow (kyc.Decision): status, the user's address, AML hits with their
// reviews. An erased session's decision is not asked of Didit: its status
// comes from the records, alone.
func (k *KYC) SessionDecision(ctx context.Context, in kyc.DecisionRequest) (kyc.SessionDecision, error) {
	erased, err := k.Store.Erased(ctx, in.SessionID)
	if err != nil {
		return kyc.SessionDecision{}, classify("read whether the session was erased", err)
	}
	if erased {
		st, err := k.Store.StatusOf(ctx, in.SessionID)
		if err != nil {
			return kyc.SessionDecision{}, classify("read the session's status", err)
		}
		return kyc.SessionDecision{SessionID: in.SessionID, Status: didit.Status(st.Status)}, nil
	}
	if k.API == nil || !k.API.Enabled() {
		k.Metrics.APICall("decision", "no_key")
		return kyc.SessionDecision{}, refusedError(0, "diditflow has no DIDIT_API_KEY: it cannot read Didit's decisions")
	}
	res, err := k.API.Decision(ctx, in.SessionID)
	if err != nil {
		kind := api.KindOf(err)
		k.Metrics.APICall("decision", kind.String())
		var e *api.Error
		if errors.As(err, &e) && !e.Retryable() && e.Status >= 400 {
			return kyc.SessionDecision{}, refusedError(e.Status, "Didit answered "+kind.String())
		}
		return kyc.SessionDecision{}, apiRetryError(err)
	}
	k.Metrics.APICall("decision", "ok")
	d := res.Decision
	out := kyc.SessionDecision{SessionID: in.SessionID, Status: d.Status, ContactEmail: d.ContactEmail()}
	for _, s := range d.AMLScreenings {
		for _, h := range s.Hits {
			out.AMLHits = append(out.AMLHits, kyc.AMLHit{ID: h.ID, NodeID: h.NodeID, Datasets: h.Datasets,
				MatchScore: h.MatchScore, RiskScore: h.RiskScore, ReviewStatus: h.ReviewStatus})
		}
	}
	return out, nil
}
