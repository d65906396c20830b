package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/diditflow/diditflow/kyc"

	// Registers the "sqlite" database/sql driver (pure Go).
	_ "modernc.org/sqlite"
)

// Status is where an account stands.
type Status string

// The statuses of an account.
const (
	// Pending: signed up, verifying.
	Pending Status = "pending"
	// Active: verified.
	Active Status = "active"
	// Rejected: the verification was declined, abandoned, or expired at Didit.
	Rejected Status = "rejected"
	// Expired: the user did not finish within VerificationWindow.
	Expired Status = "expired"
	// Closed: active, then declined by a later review.
	Closed Status = "closed"
	// Frozen: compliance confirmed an AML match. Nothing but compliance,
	// outside this app, unfreezes an account.
	Frozen Status = "frozen"
	// Reverify: Didit's KYC expired; the user is asked to verify again.
	Reverify Status = "reverify"
)

// CanVerifyAgain reports whether the user may start a new verification.
func (s Status) CanVerifyAgain() bool { return s == Reverify || s == Expired }

// after is where an account in status s goes when its current session
// takes kycStatus: the business's rules, one place.
func (s Status) after(kycStatus kyc.Status) Status {
	switch {
	case kycStatus == kyc.Approved && s != Frozen:
		return Active
	case kycStatus == kyc.Declined && s == Active:
		return Closed
	case kycStatus == kyc.Declined && (s == Pending || s == Reverify || s == Expired):
		return Rejected
	case (kycStatus == kyc.Abandoned || kycStatus == kyc.Expired) && (s == Pending || s == Expired):
		return Rejected
	case kycStatus == kyc.KycExpired && s == Active:
		return Reverify
	}
	return s
}

// Account is a user's account.
type Account struct {
	ID     string
	Name   string
	Email  string
	Status Status
	// Attempt numbers the account's verifications, from 1; 0 before the
	// first is recorded.
	Attempt int
	// SessionID and VerificationURL are the current verification's Didit
	// session and hosted page; empty until recorded.
	SessionID       string
	VerificationURL string
	// LastSequence is the Sequence of the last status change of the
	// current session applied to the account: older ones are ignored.
	LastSequence int64
	CreatedAt    time.Time
}

// Applied is what a status change or a KYC event did to an account.
type Applied struct {
	AccountID string `json:"account_id"`
	From      Status `json:"from"`
	To        Status `json:"to"`
	// Ignored says why the event changed nothing, if it was ignored.
	Ignored string `json:"ignored,omitempty"`
}

// ErrNoAccount is the error of a lookup of an account that does not exist.
var ErrNoAccount = errors.New("no such account")

// Accounts is the app's accounts table, in SQLite.
type Accounts struct {
	db *sql.DB
}

const schema = `
CREATE TABLE IF NOT EXISTS accounts (
	id               TEXT PRIMARY KEY,
	name             TEXT NOT NULL,
	email            TEXT NOT NULL,
	status           TEXT NOT NULL,
	attempt          INTEGER NOT NULL DEFAULT 0,
	session_id       TEXT NOT NULL DEFAULT '',
	verification_url TEXT NOT NULL DEFAULT '',
	last_seq         INTEGER NOT NULL DEFAULT 0,
	created_at       INTEGER NOT NULL
);
-- One row per KYC event applied, keyed by kyc.Event.Key: a retried hook
-- answers what the first try did.
CREATE TABLE IF NOT EXISTS applied_events (
	key         TEXT PRIMARY KEY,
	account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	sequence    INTEGER NOT NULL,
	from_status TEXT NOT NULL,
	to_status   TEXT NOT NULL,
	ignored     TEXT NOT NULL DEFAULT '',
	applied_at  INTEGER NOT NULL
);`

// OpenAccounts opens (and creates, with its directory) the SQLite file at
// path.
func OpenAccounts(ctx context.Context, path string) (*Accounts, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("open accounts %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Read-then-write transactions take the write lock up front.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open accounts %s: %w", path, err)
	}
	// One writer at a time in SQLite: this process's wait in database/sql.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open accounts %s: %w", path, err)
	}
	return &Accounts{db: db}, nil
}

// Close closes the database.
func (a *Accounts) Close() error { return a.db.Close() }

// Create adds a pending account and returns it. Its ID is random: it is
// the account page's address and the Didit session's vendor_data.
func (a *Accounts) Create(ctx context.Context, name, email string) (Account, error) {
	acct := Account{ID: strings.ToLower(rand.Text()), Name: name, Email: email, Status: Pending, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	_, err := a.db.ExecContext(ctx, `INSERT INTO accounts (id, name, email, status, created_at) VALUES (?, ?, ?, ?, ?)`,
		acct.ID, acct.Name, acct.Email, acct.Status, acct.CreatedAt.Unix())
	if err != nil {
		return Account{}, fmt.Errorf("create account: %w", err)
	}
	return acct, nil
}

// Delete removes an account (one whose onboarding could not start).
func (a *Accounts) Delete(ctx context.Context, id string) error {
	if _, err := a.db.ExecContext(ctx, `DELETE FROM accounts WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete account %s: %w", id, err)
	}
	return nil
}

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Get returns the account, or ErrNoAccount.
func (a *Accounts) Get(ctx context.Context, id string) (Account, error) { return get(ctx, a.db, id) }

func get(ctx context.Context, q queryer, id string) (Account, error) {
	var (
		acct    Account
		created int64
	)
	err := q.QueryRowContext(ctx, `SELECT id, name, email, status, attempt, session_id, verification_url, last_seq, created_at
		FROM accounts WHERE id = ?`, id).Scan(&acct.ID, &acct.Name, &acct.Email, &acct.Status, &acct.Attempt,
		&acct.SessionID, &acct.VerificationURL, &acct.LastSequence, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("account %s: %w", id, ErrNoAccount)
	}
	if err != nil {
		return Account{}, fmt.Errorf("account %s: %w", id, err)
	}
	acct.CreatedAt = time.Unix(created, 0).UTC()
	return acct, nil
}

// RecordVerification makes session the account's current verification,
// numbered attempt: the account is pending again, and the session's status
// changes are applied from its first. Recorded again, or older than the
// account's current one, it changes nothing.
func (a *Accounts) RecordVerification(ctx context.Context, id string, attempt int, sessionID, verificationURL string) error {
	res, err := a.db.ExecContext(ctx, `UPDATE accounts SET attempt = ?, session_id = ?, verification_url = ?, status = ?, last_seq = 0
		WHERE id = ? AND attempt < ?`, attempt, sessionID, verificationURL, Pending, id, attempt)
	if err != nil {
		return fmt.Errorf("record verification of account %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := a.Get(ctx, id); err != nil {
			return fmt.Errorf("record verification: %w", err)
		}
	}
	return nil
}

// Settle applies the status change numbered seq of the account's session:
// one older than the last applied, or of another session than the
// account's current one, changes nothing. Applying it twice changes
// nothing twice.
func (a *Accounts) Settle(ctx context.Context, id, sessionID string, seq int64, status kyc.Status) (Applied, error) {
	return a.inTx(ctx, func(tx *sql.Tx) (Applied, error) {
		acct, err := get(ctx, tx, id)
		if err != nil {
			return Applied{}, err
		}
		return settle(ctx, tx, acct, sessionID, seq, status)
	})
}

func settle(ctx context.Context, tx *sql.Tx, acct Account, sessionID string, seq int64, status kyc.Status) (Applied, error) {
	done := Applied{AccountID: acct.ID, From: acct.Status, To: acct.Status}
	switch {
	case sessionID != acct.SessionID:
		done.Ignored = "not the account's current verification"
		return done, nil
	case seq <= acct.LastSequence:
		done.Ignored = fmt.Sprintf("older than the change applied last (%d)", acct.LastSequence)
		return done, nil
	}
	done.To = acct.Status.after(status)
	_, err := tx.ExecContext(ctx, `UPDATE accounts SET status = ?, last_seq = ? WHERE id = ?`, done.To, seq, acct.ID)
	return done, err
}

// Expire marks the account expired if it is still pending on session,
// whose outcome did not come in time; an account that moved on stays.
func (a *Accounts) Expire(ctx context.Context, id, sessionID string) (Applied, error) {
	return a.inTx(ctx, func(tx *sql.Tx) (Applied, error) {
		acct, err := get(ctx, tx, id)
		if err != nil {
			return Applied{}, err
		}
		done := Applied{AccountID: id, From: acct.Status, To: acct.Status}
		if acct.Status != Pending || acct.SessionID != sessionID {
			done.Ignored = "no longer waiting for that verification"
			return done, nil
		}
		done.To = Expired
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET status = ? WHERE id = ?`, Expired, id)
		return done, err
	})
}

// ApplyEvent applies a KYC event to the account it names (VendorData),
// once per Event.Key: applied again, it answers what it did the first
// time. A status change goes as Settle says; an AML case resolved with a
// confirmed match, on any of the account's sessions and whatever its
// Sequence, freezes the account: nothing later undoes it, so its order
// does not matter.
func (a *Accounts) ApplyEvent(ctx context.Context, e kyc.Event) (Applied, error) {
	return a.inTx(ctx, func(tx *sql.Tx) (Applied, error) {
		var done Applied
		err := tx.QueryRowContext(ctx, `SELECT account_id, from_status, to_status, ignored FROM applied_events WHERE key = ?`, e.Key).
			Scan(&done.AccountID, &done.From, &done.To, &done.Ignored)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return done, err
		}
		acct, err := get(ctx, tx, e.VendorData)
		if errors.Is(err, ErrNoAccount) {
			// Another business's session, or an erased one.
			return Applied{Ignored: "no account of this app"}, nil
		}
		if err != nil {
			return Applied{}, err
		}
		switch e.Kind {
		case kyc.StatusChanged:
			done, err = settle(ctx, tx, acct, e.SessionID, e.Sequence, e.Status)
		case kyc.AMLCaseResolved:
			done, err = resolve(ctx, tx, acct, e.Case)
		default:
			done = Applied{AccountID: acct.ID, From: acct.Status, To: acct.Status, Ignored: "an event of kind " + string(e.Kind)}
		}
		if err != nil {
			return Applied{}, err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO applied_events (key, account_id, sequence, from_status, to_status, ignored, applied_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, e.Key, acct.ID, e.Sequence, done.From, done.To, done.Ignored, time.Now().Unix())
		return done, err
	})
}

// resolve freezes the account if compliance confirmed a match.
func resolve(ctx context.Context, tx *sql.Tx, acct Account, c *kyc.CaseResolution) (Applied, error) {
	done := Applied{AccountID: acct.ID, From: acct.Status, To: acct.Status}
	if !confirmed(c) {
		done.Ignored = "no confirmed match"
		return done, nil
	}
	done.To = Frozen
	_, err := tx.ExecContext(ctx, `UPDATE accounts SET status = ? WHERE id = ?`, Frozen, acct.ID)
	return done, err
}

// confirmed reports whether the case, or any of its hits, is a confirmed
// match.
func confirmed(c *kyc.CaseResolution) bool {
	if c == nil {
		return false
	}
	if c.Outcome == kyc.ConfirmedMatch {
		return true
	}
	for _, outcome := range c.Hits {
		if outcome == kyc.ConfirmedMatch {
			return true
		}
	}
	return false
}

// inTx runs f in a write transaction, committed if f succeeds.
func (a *Accounts) inTx(ctx context.Context, f func(*sql.Tx) (Applied, error)) (Applied, error) {
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return Applied{}, err
	}
	done, err := f(tx)
	if err != nil {
		_ = tx.Rollback()
		return Applied{}, err
	}
	return done, tx.Commit()
}
