package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/internal/store"
)

// NotifyUser tells the verified user about their session, once per notice:
// per Key, or per kind when Key is empty. Without an address the notice is
// recorded as undeliverable. The user of an erased session is told nothing,
// and nothing is recorded about it (Withheld): the records ask after every
// workflow that queued the notice, even one that predates the erasure. With
// user notices off nothing is sent or recorded either (Disabled), before
// the records are asked for anything, so a notice waiting for an address
// does not wait for mail that will not be sent.
func (a *Activities) NotifyUser(ctx context.Context, in UserNotice) (NoticeResult, error) {
	if a.UserNoticesOff {
		a.Metrics.notified("user", Disabled)
		a.log().InfoContext(ctx, "user notice not sent: USER_NOTICES=off leaves the user's mail to the business",
			"session_id", in.SessionID, "kind", in.Kind, "notification", in.notificationKind())
		return Disabled, nil
	}
	erased, err := a.Store.Erased(ctx, in.SessionID)
	if err != nil {
		return "", classify("read whether the session was erased", err)
	}
	if erased {
		a.Metrics.notified("user", Withheld)
		a.log().InfoContext(ctx, "user notice withheld: the session was erased", "session_id", in.SessionID,
			"kind", in.Kind, "notification", in.notificationKind())
		return Withheld, nil
	}
	d, err := a.notifyUser(ctx, in)
	if err == nil {
		a.Metrics.notified("user", d)
		a.log().InfoContext(ctx, "user notified", "session_id", in.SessionID, "kind", in.Kind,
			"notification", in.notificationKind(), "result", d)
	}
	return d, err
}

func (a *Activities) notifyUser(ctx context.Context, in UserNotice) (NoticeResult, error) {
	kind := in.notificationKind()
	if in.Email == "" && in.FromRecords {
		email, err := a.Store.ContactAddress(ctx, in.SessionID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", classify("read contact address", err)
		}
		if email == "" && in.WaitForAddress {
			return "", noContactAddress(in)
		}
		in.Email = email
	}
	if in.Email == "" {
		return a.undeliverable(ctx, in.SessionID, kind, "no contact email in the decision or the records")
	}
	msg, err := userMessage(a.notices(), in)
	if err != nil {
		return "", classify("compose notification "+kind, err)
	}
	o, err := a.sendOnce(ctx, "user", in.SessionID, kind, in.Email, func(ctx context.Context, d delivery) error {
		msg.Commit, msg.Refused = d.commit, d.refused
		return a.Mailer.Send(ctx, msg)
	})
	return o.result, err
}

// ErrTypeNoContactAddress is the failure type of a notice whose session has
// no recorded address yet: retried, as a late event may bring one.
const ErrTypeNoContactAddress = "NoContactAddress"

func noContactAddress(in UserNotice) error {
	msg := "no contact address on record for the session yet: Didit sent this " + string(in.Kind) +
		" event without a decision and no earlier event gave one"
	if in.NoDecision != "" {
		msg += "; its decision could not be fetched: " + in.NoDecision
	}
	return temporal.NewApplicationError(msg, ErrTypeNoContactAddress)
}

// NotifyCompliance reports an AML case to compliance: by email and, when
// configured, to the compliance webhook, each at most once per notice. Each
// address is a recipient of its own: one the mail server refuses for good is
// dropped and recorded, the others still get the notice, and the result is
// PartlySent. Every notice (each reminder) tries every configured address
// again.
func (a *Activities) NotifyCompliance(ctx context.Context, in ComplianceNotice) (NoticeResult, error) {
	name := "opened"
	if in.Reminder > 0 {
		name = fmt.Sprintf("reminder-%d", in.Reminder)
	}
	var to []string
	if a.Compliance.Email != "" {
		to = append(to, a.Compliance.Email)
	}
	if in.Escalate && a.Compliance.Escalation != "" {
		to = append(to, a.Compliance.Escalation)
	}
	// A follow-up case's notices are its own, not its first case's.
	kind := "compliance:" + caseScope(in.Case) + name
	var outcomes []outcome
	if len(to) > 0 {
		msg := complianceMessage(in, name, to)
		o, err := a.sendOnce(ctx, "compliance", in.Case.SessionID, kind+":email", strings.Join(to, ","),
			func(ctx context.Context, d delivery) error {
				msg.Commit, msg.Refused = d.commit, d.refused
				return a.Mailer.Send(ctx, msg)
			})
		if err != nil {
			return "", err
		}
		outcomes = append(outcomes, o)
	}
	if a.Compliance.Callback != nil {
		o, err := a.sendOnce(ctx, "compliance", in.Case.SessionID, kind+":webhook", "compliance-webhook",
			func(ctx context.Context, _ delivery) error {
				return a.Compliance.Callback.Post(ctx, complianceDocument(in, name))
			})
		if err != nil {
			return "", err
		}
		outcomes = append(outcomes, o)
	}
	result := combine(outcomes)
	a.Metrics.notified("compliance", result)
	a.log().InfoContext(ctx, "compliance notified", "session_id", in.Case.SessionID, "case_id", in.Case.ID(), "notice", name,
		"escalated", in.Escalate, "result", result)
	return result, nil
}

// combine is the result of a notice sent by several channels (mail, the
// compliance webhook): reached by some and refused by others is PartlySent,
// refused by all is Undeliverable.
func combine(outcomes []outcome) NoticeResult {
	switch len(outcomes) {
	case 0:
		return NotConfigured
	case 1:
		return outcomes[0].result
	}
	var delivered, refused, inDoubt bool
	allAlready := true
	for _, o := range outcomes {
		delivered = delivered || o.delivered
		refused = refused || o.refused
		inDoubt = inDoubt || o.result == InDoubt
		allAlready = allAlready && o.result == AlreadySent
	}
	switch {
	case refused && delivered:
		return PartlySent
	case refused:
		return Undeliverable
	case inDoubt:
		return InDoubt
	case allAlready:
		return AlreadySent
	default:
		return Sent
	}
}
