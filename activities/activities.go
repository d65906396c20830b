package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/pii"
	"github.com/diditflow/diditflow/internal/store"
)

// Store is what the activities need of the records database.
type Store interface {
	RecordEvent(ctx context.Context, e store.EventRecord) (store.RecordResult, error)
	SetNeedsAttention(ctx context.Context, sessionID string, v bool) error
	ClaimNotification(ctx context.Context, sessionID, kind, recipientHash string) (store.Notification, bool, error)
	MarkNotificationSending(ctx context.Context, sessionID, kind string) error
	MarkNotificationInDoubt(ctx context.Context, sessionID, kind string) error
	MarkNotificationSent(ctx context.Context, sessionID, kind string) error
	MarkNotificationUndeliverable(ctx context.Context, sessionID, kind, detail string) error
	OpenAMLCase(ctx context.Context, c store.AMLCase) (bool, error)
	RecordAMLReminder(ctx context.Context, sessionID string, reminder int, escalated bool) error
	ResolveAMLCase(ctx context.Context, sessionID string, res store.Resolution) error
}

// Poster sends a JSON document to a webhook.
type Poster interface {
	Post(ctx context.Context, payload any) error
}

// Compliance is where AML cases are reported.
type Compliance struct {
	// Email receives every case notice; Escalation also receives the
	// reminders from the escalation threshold on. Either may be empty.
	Email      string
	Escalation string
	// Callback, if not nil, receives a JSON document per notice (COMPLIANCE_WEBHOOK_URL).
	Callback Poster
}

// Activities holds the dependencies of diditflow's activities. Register a
// *Activities with the worker; its exported methods are the activities.
type Activities struct {
	Store      Store
	Mailer     notify.Mailer
	Compliance Compliance
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics, if set, count outcomes.
	Metrics *Metrics
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Activities) log() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// RecordVerification records an event: an append-only event row, and a
// monotonic upsert of the session's record that never moves it backwards.
// Recording the same event key again is a no-op that reports Duplicate.
func (a *Activities) RecordVerification(ctx context.Context, in RecordInput) (RecordResult, error) {
	res, err := a.Store.RecordEvent(ctx, store.EventRecord{
		SessionID:       in.SessionID,
		EventKey:        in.EventKey,
		WebhookType:     string(in.WebhookType),
		Status:          string(in.Status),
		StatusRank:      in.Status.Rank(),
		EventCreatedAt:  in.EventCreatedAt,
		VendorData:      in.VendorData,
		AMLHits:         in.AMLHits,
		AMLMaxRiskScore: in.AMLMaxRisk,
		ReceivedAt:      a.now(),
	})
	if err != nil {
		return RecordResult{}, classify("record verification", err)
	}
	out := RecordResult{Duplicate: res.Duplicate, Applied: res.Applied,
		PreviousStatus: didit.Status(res.PreviousStatus), CurrentStatus: didit.Status(res.CurrentStatus)}
	a.Metrics.recorded(out)
	return out, nil
}

// SetNeedsAttention mirrors a workflow's needs-attention flag onto the record.
func (a *Activities) SetNeedsAttention(ctx context.Context, in AttentionInput) error {
	err := a.Store.SetNeedsAttention(ctx, in.SessionID, in.NeedsAttention)
	if errors.Is(err, store.ErrNotFound) {
		return nil // nothing recorded yet: the flag has nowhere to go
	}
	if err != nil {
		return classify("set needs attention", err)
	}
	return nil
}

// sendOnce sends one message at most once per (session, kind): claim, send,
// mark sent. A claim that is already sent or undeliverable skips the send.
//
// Mail cannot be handed over and recorded in one step, so a worker that dies
// in between leaves doubt. send marks the notification sending at the last
// moment before the server acknowledges (Message.Commit): a retry that finds
// it claimed knows nothing went out and sends; one that finds it sending
// does not send again and settles it as in doubt (almost certainly
// delivered). No message is ever sent twice; the rare one in doubt is
// reported for a person to check. The compliance webhook has no such hook:
// a lost answer to its POST means one more POST with the same case_id.
func (a *Activities) sendOnce(ctx context.Context, sessionID, kind, recipient string, send func(context.Context, func() error) error) (NoticeResult, error) {
	n, claimed, err := a.Store.ClaimNotification(ctx, sessionID, kind, pii.HashAddress(recipient))
	if err != nil {
		return "", classify("claim notification "+kind, err)
	}
	if !claimed {
		if n.State != store.NotificationSending {
			return AlreadySent, nil
		}
		if err := a.Store.MarkNotificationInDoubt(ctx, sessionID, kind); err != nil {
			return "", classify("mark notification "+kind+" in doubt", err)
		}
		a.log().WarnContext(ctx, "notification in doubt: an earlier attempt stopped after handing it over", "session_id", sessionID, "kind", kind)
		return InDoubt, nil
	}
	commit := func() error { return a.Store.MarkNotificationSending(ctx, sessionID, kind) }
	if err := send(ctx, commit); err != nil {
		if notify.IsRecipientRejected(err) {
			// The address is wrong, not the server: parking would hold the
			// session up for nothing an operator can fix here.
			if err := a.Store.MarkNotificationUndeliverable(ctx, sessionID, kind, "recipient rejected: "+err.Error()); err != nil {
				return "", classify("mark notification "+kind+" undeliverable", err)
			}
			return Undeliverable, nil
		}
		return "", classify("send notification "+kind, err)
	}
	if err := a.Store.MarkNotificationSent(ctx, sessionID, kind); err != nil {
		return "", classify("mark notification "+kind+" sent", err)
	}
	return Sent, nil
}

// undeliverable records a notification that has no recipient, once.
func (a *Activities) undeliverable(ctx context.Context, sessionID, kind, detail string) (NoticeResult, error) {
	_, claimed, err := a.Store.ClaimNotification(ctx, sessionID, kind, pii.HashAddress(""))
	if err != nil {
		return "", classify("claim notification "+kind, err)
	}
	if !claimed {
		return AlreadySent, nil
	}
	if err := a.Store.MarkNotificationUndeliverable(ctx, sessionID, kind, detail); err != nil {
		return "", classify("mark notification "+kind+" undeliverable", err)
	}
	a.log().WarnContext(ctx, "notification undeliverable", "session_id", sessionID, "kind", kind, "reason", detail)
	return Undeliverable, nil
}

// NotifyUser tells the verified user about their session, once per kind.
// Without an address the notice is recorded as undeliverable.
func (a *Activities) NotifyUser(ctx context.Context, in UserNotice) (NoticeResult, error) {
	d, err := a.notifyUser(ctx, in)
	if err == nil {
		a.Metrics.notified("user", d)
		a.log().InfoContext(ctx, "user notified", "session_id", in.SessionID, "kind", in.Kind, "result", d)
	}
	return d, err
}

func (a *Activities) notifyUser(ctx context.Context, in UserNotice) (NoticeResult, error) {
	kind := "user:" + string(in.Kind)
	if in.Email == "" {
		return a.undeliverable(ctx, in.SessionID, kind, "no contact email in the decision")
	}
	msg, err := userMessage(in)
	if err != nil {
		return "", classify("compose notification "+kind, err)
	}
	return a.sendOnce(ctx, in.SessionID, kind, in.Email, func(ctx context.Context, commit func() error) error {
		msg.Commit = commit
		return a.Mailer.Send(ctx, msg)
	})
}

// NotifyCompliance reports an AML case to compliance: by email and, when
// configured, to the compliance webhook, each at most once per notice.
func (a *Activities) NotifyCompliance(ctx context.Context, in ComplianceNotice) (NoticeResult, error) {
	name := "opened"
	if in.Reminder > 0 {
		name = fmt.Sprintf("reminder-%d", in.Reminder)
	}
	result := NotConfigured
	var to []string
	if a.Compliance.Email != "" {
		to = append(to, a.Compliance.Email)
	}
	if in.Escalate && a.Compliance.Escalation != "" {
		to = append(to, a.Compliance.Escalation)
	}
	if len(to) > 0 {
		msg := complianceMessage(in, name, to)
		d, err := a.sendOnce(ctx, in.Case.SessionID, "compliance:"+name+":email", strings.Join(to, ","),
			func(ctx context.Context, commit func() error) error {
				msg.Commit = commit
				return a.Mailer.Send(ctx, msg)
			})
		if err != nil {
			return "", err
		}
		result = d
	}
	if a.Compliance.Callback != nil {
		d, err := a.sendOnce(ctx, in.Case.SessionID, "compliance:"+name+":webhook", "compliance-webhook",
			func(ctx context.Context, _ func() error) error {
				return a.Compliance.Callback.Post(ctx, complianceDocument(in, name))
			})
		if err != nil {
			return "", err
		}
		result = d
	}
	a.Metrics.notified("compliance", result)
	a.log().InfoContext(ctx, "compliance notified", "session_id", in.Case.SessionID, "notice", name,
		"escalated", in.Escalate, "result", result)
	return result, nil
}

// OpenAMLCase records the case; opening it again changes nothing.
func (a *Activities) OpenAMLCase(ctx context.Context, c AMLCase) (bool, error) {
	hits := make([]store.AMLHit, 0, len(c.Hits))
	for _, h := range c.Hits {
		hits = append(hits, store.AMLHit{ID: h.ID, Datasets: h.Datasets, MatchScore: value(h.MatchScore),
			RiskScore: value(h.RiskScore), ReviewStatus: h.ReviewStatus})
	}
	created, err := a.Store.OpenAMLCase(ctx, store.AMLCase{SessionID: c.SessionID, OpenedAt: a.now(), Hits: hits})
	if err != nil {
		return false, classify("open AML case", err)
	}
	return created, nil
}

// RecordAMLReminder records that a reminder went out.
func (a *Activities) RecordAMLReminder(ctx context.Context, in ReminderInput) error {
	if err := a.Store.RecordAMLReminder(ctx, in.SessionID, in.Reminder, in.Escalated); err != nil {
		return classify("record AML reminder", err)
	}
	return nil
}

// ResolveAMLCase records compliance's verdict.
func (a *Activities) ResolveAMLCase(ctx context.Context, in ResolveInput) error {
	err := a.Store.ResolveAMLCase(ctx, in.SessionID, store.Resolution{
		Outcome: in.Resolution.Outcome, Reviewer: in.Resolution.Reviewer,
		Note: in.Resolution.Note, ResolvedAt: a.now(),
	})
	if err != nil {
		return classify("resolve AML case", err)
	}
	return nil
}

func value(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// classify turns an error into what Temporal should do with it: retry
// (transient: connections, timeouts, a busy database, an open circuit) or
// stop (non-retryable: the input or the recipient is wrong). The message is
// scrubbed of addresses, since failures are kept in workflow histories.
func classify(op string, err error) error {
	msg := op + ": " + pii.RedactAddresses(err.Error())
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound),
		notify.IsPermanent(err):
		return temporal.NewNonRetryableApplicationError(msg, "Permanent", nil)
	default:
		return temporal.NewApplicationError(msg, "Transient")
	}
}
