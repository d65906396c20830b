package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/notice"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/pii"
	"github.com/diditflow/diditflow/internal/store"
)

// Store is what the activities need of the records database.
type Store interface {
	RecordEvent(ctx context.Context, e store.EventRecord) (store.RecordResult, error)
	RecordEvents(ctx context.Context, events []store.EventRecord) ([]store.RecordResult, error)
	ContactAddress(ctx context.Context, sessionID string) (string, error)
	Erased(ctx context.Context, sessionID string) (bool, error)
	SetAttention(ctx context.Context, sessionID string, needs bool, attention string) error
	SetCaseAttention(ctx context.Context, caseID string, needs bool, attention string) error
	ClaimNotification(ctx context.Context, sessionID, kind, recipientHash string) (store.Notification, bool, error)
	ClaimUserNotification(ctx context.Context, sessionID, kind, recipientHash string) (store.Notification, bool, error)
	MarkNotificationSending(ctx context.Context, sessionID, kind string, refused ...store.RefusedRecipient) error
	MarkNotificationNotSent(ctx context.Context, sessionID, kind, detail string) error
	MarkNotificationInDoubt(ctx context.Context, sessionID, kind string) error
	MarkNotificationSent(ctx context.Context, sessionID, kind string, refused ...store.RefusedRecipient) error
	MarkNotificationUndeliverable(ctx context.Context, sessionID, kind, detail string, refused ...store.RefusedRecipient) error
	OpenAMLCase(ctx context.Context, c store.AMLCase) (bool, error)
	AMLCases(ctx context.Context, sessionID string) ([]store.AMLCase, error)
	RecordAMLReminder(ctx context.Context, caseID string, reminder int, escalated bool) error
	ResolveAMLCase(ctx context.Context, caseID string, res store.Resolution, reviews ...contract.HitReview) error
	RecordHitReviews(ctx context.Context, caseID string, reviews []contract.HitReview) ([]contract.HitReview, error)
	RecordReviewChange(ctx context.Context, sessionID, caseID, eventKey string, reviews []contract.HitReview, at time.Time) (store.ReviewChange, error)
	PurgeClosedSessions(ctx context.Context, closedBefore time.Time, limit int) (store.PurgeResult, error)
	PurgeClosedAMLCases(ctx context.Context, resolvedBefore time.Time, limit int) (store.PurgeResult, error)
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
	// Notices writes the user notices; nil writes the embedded templates.
	Notices *notice.Templates
	// UserNoticesOff leaves the user's mail to the business
	// (USER_NOTICES=off): NotifyUser sends and records nothing and answers
	// Disabled. Records, AML cases and compliance mail are unchanged.
	UserNoticesOff bool
	// Didit is Didit's API, for what webhooks do not carry; nil or without
	// a key, the API features are off.
	Didit DiditAPI
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

func (a *Activities) notices() *notice.Templates {
	if a.Notices != nil {
		return a.Notices
	}
	return notice.Embedded()
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
	res, err := a.Store.RecordEvent(ctx, in.record(a.now()))
	if err != nil {
		return RecordResult{}, classify("record verification", err)
	}
	out := recordResult(res)
	a.Metrics.recorded(out)
	return out, nil
}

func (in RecordInput) record(receivedAt time.Time) store.EventRecord {
	return store.EventRecord{
		SessionID:       in.SessionID,
		EventKey:        in.EventKey,
		WebhookType:     string(in.WebhookType),
		Status:          string(in.Status),
		StatusRank:      in.Status.Rank(),
		EventCreatedAt:  in.EventCreatedAt,
		VendorData:      in.VendorData,
		AMLHits:         in.AMLHits,
		AMLMaxRiskScore: in.AMLMaxRisk,
		ReceivedAt:      receivedAt,
		ForwardOnly:     in.EnvelopeOnly,
		ContactEmail:    in.ContactEmail,
		Unannounced:     in.Unannounced,
	}
}

func recordResult(r store.RecordResult) RecordResult {
	return RecordResult{Duplicate: r.Duplicate, Applied: r.Applied,
		PreviousStatus: didit.Status(r.PreviousStatus), CurrentStatus: didit.Status(r.CurrentStatus), Erased: r.Erased,
		Sequence: r.Sequence, StatusSequence: r.StatusSequence, Announced: r.Announced}
}

// recordTimeout bounds the write that records how a send ended. It runs even
// when the activity's context was cancelled meanwhile: a notice whose
// refusal goes unrecorded is stuck sending, and so settles in doubt.
const recordTimeout = 10 * time.Second

// delivery is what sendOnce hands its transport for one attempt: the hooks
// of notify.Message.
type delivery struct {
	// commit marks the notification sending (notify.Message.Commit).
	commit func() error
	// refused learns the recipients refused for good (notify.Message.Refused).
	refused func([]notify.Refusal)
}

// outcome is where one notification stands after sendOnce.
type outcome struct {
	result NoticeResult
	// delivered: a recipient got the message (or, in doubt, most likely did).
	delivered bool
	// refused: a recipient was refused for good.
	refused bool
}

// sendOnce sends one message at most once per (session, kind): claim, send,
// mark sent. A claim that is already sent or undeliverable skips the send.
//
// Mail cannot be handed over and recorded in one step, so a worker that dies
// in between leaves doubt. send marks the notification sending at the last
// moment before the handover (Message.Commit: before SMTP's final ".", before
// the outbox's rename). A retry that finds it claimed knows nothing went out
// and sends; one that finds it sending does not send again and settles it as
// in doubt (almost certainly delivered). No message is ever sent twice; the
// rare one in doubt is reported for a person to check.
//
// A reply is definitive, so a send that fails after the commit with an error
// proving the message was not delivered (notify.NotDelivered: a 4xx or 5xx
// to the final ".", the "." never written) puts the notification back to
// claimed, and the next attempt, Temporal's retry or an operator's, sends it.
// Only a send that fails without such proof (notify.ErrUnconfirmed: no reply
// after the ".") leaves it sending. Recipients refused for good (5xx to RCPT)
// while others accepted are recorded and the result is PartlySent; when all
// were refused it is Undeliverable.
//
// The compliance webhook has no such hook: a lost answer to its POST means
// one more POST with the same case_id.
func (a *Activities) sendOnce(ctx context.Context, audience, sessionID, kind, recipient string, send func(context.Context, delivery) error) (outcome, error) {
	n, claimed, err := a.claim(ctx, audience, sessionID, kind, recipient)
	if errors.Is(err, store.ErrErased) {
		return outcome{result: Withheld}, nil
	}
	if err != nil {
		return outcome{}, classify("claim notification "+kind, err)
	}
	if !claimed {
		switch n.State {
		case store.NotificationSending:
			if err := a.Store.MarkNotificationInDoubt(ctx, sessionID, kind); err != nil {
				return outcome{}, classify("mark notification "+kind+" in doubt", err)
			}
			a.Metrics.recipientsRefused(audience, len(n.Refused))
			a.log().WarnContext(ctx, "notification in doubt: an earlier attempt handed it over and got no reply",
				"session_id", sessionID, "kind", kind, "refused", len(n.Refused))
			return outcome{result: InDoubt, delivered: true, refused: len(n.Refused) > 0}, nil
		case store.NotificationUndeliverable:
			return outcome{result: AlreadySent, refused: true}, nil
		}
		if len(n.Refused) > 0 {
			// Answer a retry as the first attempt was answered.
			return outcome{result: PartlySent, delivered: true, refused: true}, nil
		}
		return outcome{result: AlreadySent, delivered: true}, nil
	}

	var (
		committed bool
		refused   []store.RefusedRecipient
	)
	err = send(ctx, delivery{
		refused: func(rs []notify.Refusal) {
			refused = refused[:0]
			for _, r := range rs {
				refused = append(refused, store.RefusedRecipient{RecipientHash: r.RecipientHash,
					Code: r.Code, Enhanced: r.Enhanced, Text: r.Text})
			}
		},
		commit: func() error {
			committed = true
			return a.Store.MarkNotificationSending(ctx, sessionID, kind, refused...)
		},
	})
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	switch {
	case err == nil:
		if err := a.Store.MarkNotificationSent(rctx, sessionID, kind, refused...); err != nil {
			return outcome{}, classify("mark notification "+kind+" sent", err)
		}
		if len(refused) == 0 {
			return outcome{result: Sent, delivered: true}, nil
		}
		a.Metrics.recipientsRefused(audience, len(refused))
		a.log().WarnContext(ctx, "notification partly sent: the mail server refused some recipients for good",
			"session_id", sessionID, "kind", kind, "refused", len(refused), "recipient_hashes", hashes(refused))
		return outcome{result: PartlySent, delivered: true, refused: true}, nil

	case !committed && notify.IsRecipientRejected(err):
		// Every address is wrong, not the server: parking would hold the
		// session up for nothing an operator can fix here.
		if err := a.Store.MarkNotificationUndeliverable(rctx, sessionID, kind, "recipient rejected: "+err.Error(), refused...); err != nil {
			return outcome{}, classify("mark notification "+kind+" undeliverable", err)
		}
		a.Metrics.recipientsRefused(audience, max(len(refused), 1))
		a.log().WarnContext(ctx, "notification undeliverable: the mail server refused every recipient",
			"session_id", sessionID, "kind", kind, "recipient_hashes", hashes(refused))
		return outcome{result: Undeliverable, refused: true}, nil

	case committed && !notify.NotDelivered(err):
		// The message may be with the server: it stays sending, and the
		// retry settles it in doubt instead of sending it twice.
		a.log().WarnContext(ctx, "notification handed over without a reply; the next attempt settles it in doubt",
			"session_id", sessionID, "kind", kind, "error", pii.RedactAddresses(err.Error()))
		return outcome{}, classify("send notification "+kind+": handed over, no reply", err)

	case committed:
		// Refused with a reply, or never complete at the server: the next
		// attempt must send it, so it goes back to claimed.
		if rerr := a.Store.MarkNotificationNotSent(rctx, sessionID, kind, err.Error()); rerr != nil {
			a.log().ErrorContext(ctx, "notification not sent, and that could not be recorded; the next attempt will settle it in doubt",
				"session_id", sessionID, "kind", kind, "error", pii.RedactAddresses(rerr.Error()))
			return outcome{}, classify("mark notification "+kind+" not sent", fmt.Errorf("%w (after: %s)", rerr, err.Error()))
		}
	}
	return outcome{}, classify("send notification "+kind, err)
}

func hashes(refused []store.RefusedRecipient) []string {
	out := make([]string, 0, len(refused))
	for _, r := range refused {
		out = append(out, r.RecipientHash)
	}
	return out
}

// claim claims a notification; the user's is refused once their session
// is erased, even by an erasure that came after NotifyUser looked.
func (a *Activities) claim(ctx context.Context, audience, sessionID, kind, recipient string) (store.Notification, bool, error) {
	if audience == "user" {
		return a.Store.ClaimUserNotification(ctx, sessionID, kind, pii.HashAddress(recipient))
	}
	return a.Store.ClaimNotification(ctx, sessionID, kind, pii.HashAddress(recipient))
}

// undeliverable records a user notice that has no recipient, once.
func (a *Activities) undeliverable(ctx context.Context, sessionID, kind, detail string) (NoticeResult, error) {
	_, claimed, err := a.claim(ctx, "user", sessionID, kind, "")
	if errors.Is(err, store.ErrErased) {
		return Withheld, nil
	}
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
