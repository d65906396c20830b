package app

import (
	"context"
	"errors"
	"log/slog"

	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/kyc"
)

// Activities are the workflows' side effects: the accounts table.
type Activities struct {
	Accounts *Accounts
	Logger   *slog.Logger
}

// Verification is an account's verification, as Onboarding records it.
type Verification struct {
	AccountID string `json:"account_id"`
	Attempt   int    `json:"attempt"`
	SessionID string `json:"session_id"`
	URL       string `json:"url"`
}

// Outcome is a verification's outcome, for its account.
type Outcome struct {
	AccountID string      `json:"account_id"`
	Outcome   kyc.Outcome `json:"outcome"`
}

// Expiry is a verification not decided in time.
type Expiry struct {
	AccountID string `json:"account_id"`
	SessionID string `json:"session_id"`
}

// noAccountError is the type of the failure of an activity whose account
// is gone: retrying cannot bring it back.
const noAccountError = "NoAccount"

// RecordVerification records the account's verification: the account page
// shows its link.
func (a *Activities) RecordVerification(ctx context.Context, v Verification) error {
	return classify(a.Accounts.RecordVerification(ctx, v.AccountID, v.Attempt, v.SessionID, v.URL))
}

// Settle applies the verification's outcome to the account.
func (a *Activities) Settle(ctx context.Context, o Outcome) (Applied, error) {
	done, err := a.Accounts.Settle(ctx, o.AccountID, o.Outcome.SessionID, o.Outcome.Sequence, o.Outcome.Status)
	a.log(ctx, "outcome", done, "status", o.Outcome.Status, "sequence", o.Outcome.Sequence)
	return done, classify(err)
}

// Expire marks the account expired if it still waits for the verification.
func (a *Activities) Expire(ctx context.Context, e Expiry) (Applied, error) {
	done, err := a.Accounts.Expire(ctx, e.AccountID, e.SessionID)
	a.log(ctx, "expiry", done)
	return done, classify(err)
}

// ApplyEvent applies a hook's KYC event to its account, once per event.
func (a *Activities) ApplyEvent(ctx context.Context, e kyc.Event) (Applied, error) {
	done, err := a.Accounts.ApplyEvent(ctx, e)
	a.log(ctx, "kyc event", done, "kind", e.Kind, "status", e.Status, "sequence", e.Sequence, "key", e.Key)
	return done, classify(err)
}

// log logs what an activity did to an account, with attrs: identifiers
// and statuses, never a name or an address.
func (a *Activities) log(ctx context.Context, what string, done Applied, attrs ...any) {
	if a.Logger == nil || done.AccountID == "" {
		return
	}
	attrs = append(attrs, "account_id", done.AccountID, "from", done.From, "to", done.To)
	if done.Ignored != "" {
		attrs = append(attrs, "ignored", done.Ignored)
	}
	a.Logger.InfoContext(ctx, "applied "+what, attrs...)
}

// classify makes a missing account a non-retryable failure.
func classify(err error) error {
	if errors.Is(err, ErrNoAccount) {
		return temporal.NewNonRetryableApplicationError(err.Error(), noAccountError, err)
	}
	return err
}
