package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/diditflow/diditflow/didit"
)

// lookupChunk is how many keys or rows one query binds at most. At up to
// four values each that is 800 parameters, below SQLite's limit even before
// SQLite 3.32 raised it from 999.
const lookupChunk = 200

// EventRef names one event as the event log keys it: an event key is unique
// within its session only.
type EventRef struct {
	SessionID, EventKey string
}

// HeldEvents reports which of refs are in the event log: held refs map to
// true, the others are absent.
func (s *Store) HeldEvents(ctx context.Context, refs []EventRef) (map[EventRef]bool, error) {
	held := make(map[EventRef]bool)
	err := lookup(ctx, s, `
		SELECT session_id, event_key FROM verification_events
		WHERE (session_id, event_key) IN (VALUES %s)`,
		refs, func(r EventRef) []any { return []any{r.SessionID, r.EventKey} },
		func(rows *sql.Rows) error {
			var r EventRef
			if err := rows.Scan(&r.SessionID, &r.EventKey); err != nil {
				return err
			}
			held[r] = true
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("look up %d events: %w", len(refs), err)
	}
	return held, nil
}

// SessionStatuses returns the recorded status of each of ids that has a
// record; an id the store has never seen is absent.
func (s *Store) SessionStatuses(ctx context.Context, ids []string) (map[string]string, error) {
	statuses := make(map[string]string)
	err := lookup(ctx, s, `SELECT session_id, status FROM verifications WHERE session_id IN (%s)`,
		ids, bindOne, func(rows *sql.Rows) error {
			var id, status string
			if err := rows.Scan(&id, &status); err != nil {
				return err
			}
			statuses[id] = status
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("look up %d session statuses: %w", len(ids), err)
	}
	return statuses, nil
}

// ErasedSessions reports which of ids were erased (EraseSession): erased
// ones map to true, the others are absent. Reconciliation reads nothing
// from Didit for them.
func (s *Store) ErasedSessions(ctx context.Context, ids []string) (map[string]bool, error) {
	erased := make(map[string]bool)
	err := lookup(ctx, s, `SELECT session_id FROM verifications WHERE session_id IN (%s) AND erased_at IS NOT NULL`,
		ids, bindOne, func(rows *sql.Rows) error {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			erased[id] = true
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("look up which of %d sessions were erased: %w", len(ids), err)
	}
	return erased, nil
}

// SettledDelivery is a delivery Didit reports that reconciliation has dealt
// with, so that it is not looked at again.
type SettledDelivery struct {
	UUID      string
	SessionID string
	// Outcome is a short word the caller picks for what it made of the
	// delivery, such as "held", "fed" or "unusable".
	Outcome string
}

// SettledDeliveries reports which of uuids are settled: settled ones map to
// true, the others are absent.
func (s *Store) SettledDeliveries(ctx context.Context, uuids []string) (map[string]bool, error) {
	settled := make(map[string]bool)
	err := lookup(ctx, s, `SELECT delivery_uuid FROM reconciled_deliveries WHERE delivery_uuid IN (%s)`,
		uuids, bindOne, func(rows *sql.Rows) error {
			var uuid string
			if err := rows.Scan(&uuid); err != nil {
				return err
			}
			settled[uuid] = true
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("look up %d settled deliveries: %w", len(uuids), err)
	}
	return settled, nil
}

// SettleDeliveries records ds as settled, in one transaction. A delivery
// settled before keeps its first outcome and time, so a retry changes nothing.
func (s *Store) SettleDeliveries(ctx context.Context, ds []SettledDelivery) error {
	for _, d := range ds {
		if d.UUID == "" || d.Outcome == "" {
			return fmt.Errorf("settle delivery %q: uuid and outcome are required: %w", d.UUID, ErrInvalid)
		}
	}
	if len(ds) == 0 {
		return nil
	}
	now := s.clock().Unix()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for chunk := range slices.Chunk(ds, lookupChunk) {
			args := make([]any, 0, 4*len(chunk))
			for _, d := range chunk {
				args = append(args, d.UUID, d.SessionID, d.Outcome, now)
			}
			_, err := tx.ExecContext(ctx, s.q(`
				INSERT INTO reconciled_deliveries (delivery_uuid, session_id, outcome, settled_at)
				VALUES `+placeholders(len(chunk), 4)+`
				ON CONFLICT (delivery_uuid) DO NOTHING`), args...)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("settle %d deliveries: %w", len(ds), err)
	}
	return nil
}

// PruneSettledDeliveries forgets deliveries settled before before and
// returns how many it forgot.
func (s *Store) PruneSettledDeliveries(ctx context.Context, before time.Time) (int64, error) {
	r, err := s.db.ExecContext(ctx, s.q(`DELETE FROM reconciled_deliveries WHERE settled_at < ?`), before.Unix())
	if err != nil {
		return 0, fmt.Errorf("prune settled deliveries: %w", err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune settled deliveries: %w", err)
	}
	return n, nil
}

// StaleSession is an undecided session, or one with an open AML case, whose
// record has not moved for a while, for reconciliation to ask Didit about.
type StaleSession struct {
	SessionID string
	Status    string
	// Checks is how many checks in a row found the session unchanged.
	Checks int
	// UpdatedAt is when the event behind Status was applied. Unlike
	// SessionRecord.UpdatedAt, an operator flag does not move it.
	UpdatedAt time.Time
	// due is when the check fell due, which orders the list.
	due int64
}

// staleSessionsQuery selects the undecided sessions whose last applied event
// is older than the first parameter and whose next check is due by the
// second, in the order they fell due. The third parameter, the later of the
// two, repeats what the conditions imply so that the scan of the index
// verifications_stale stops at the first session not yet due. An erased
// session is never checked: its decision is not to be read again.
var staleSessionsQuery = `
	SELECT session_id, status, stale_checks, applied_at, COALESCE(next_check_at, applied_at) FROM verifications
	WHERE status NOT IN (` + finalStatuses() + `)
	  AND erased_at IS NULL
	  AND applied_at < ?
	  AND (next_check_at IS NULL OR next_check_at <= ?)
	  AND COALESCE(next_check_at, applied_at) <= ?
	ORDER BY COALESCE(next_check_at, applied_at), session_id
	LIMIT ?`

// staleCaseSessionsQuery selects, with the same conditions, the sessions in
// a final status that have an open AML case: a review in Didit's console
// whose webhook was lost leaves no other trace. Open cases are few, so the
// list starts from them (aml_cases_open).
var staleCaseSessionsQuery = `
	SELECT session_id, status, stale_checks, applied_at, COALESCE(next_check_at, applied_at) FROM verifications
	WHERE session_id IN (SELECT session_id FROM aml_cases WHERE state = 'open')
	  AND status IN (` + finalStatuses() + `)
	  AND erased_at IS NULL
	  AND applied_at < ?
	  AND (next_check_at IS NULL OR next_check_at <= ?)
	ORDER BY COALESCE(next_check_at, applied_at), session_id
	LIMIT ?`

// StaleSessions returns at most limit sessions that are not erased, have had
// no event applied since unchangedSince, are due for a check at now (never
// checked, or their next check is not after now), and are not final by
// didit.Status.Final or have an open AML case. The longest due come first,
// then by session ID.
func (s *Store) StaleSessions(ctx context.Context, unchangedSince, now time.Time, limit int) ([]StaleSession, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list stale sessions: limit %d: %w", limit, ErrInvalid)
	}
	horizon := max(unchangedSince.Unix(), now.Unix())
	var out []StaleSession
	scan := func(rows *sql.Rows) error {
		var (
			st      StaleSession
			applied int64
		)
		if err := rows.Scan(&st.SessionID, &st.Status, &st.Checks, &applied, &st.due); err != nil {
			return err
		}
		st.UpdatedAt = fromUnix(applied)
		out = append(out, st)
		return nil
	}
	err := s.each(ctx, s.db, staleSessionsQuery, []any{unchangedSince.Unix(), now.Unix(), horizon, limit}, scan)
	if err != nil {
		return nil, fmt.Errorf("list stale sessions: %w", err)
	}
	err = s.each(ctx, s.db, staleCaseSessionsQuery, []any{unchangedSince.Unix(), now.Unix(), limit}, scan)
	if err != nil {
		return nil, fmt.Errorf("list stale sessions with an open aml case: %w", err)
	}
	slices.SortFunc(out, func(a, b StaleSession) int {
		return cmp.Or(cmp.Compare(a.due, b.due), strings.Compare(a.SessionID, b.SessionID))
	})
	return out[:min(len(out), limit)], nil
}

// MarkStaleChecked records that reconciliation found a session unchanged
// for the checks-th time in a row and will not check it again before next.
// With a non-zero appliedAt (StaleSession.UpdatedAt) it changes nothing if
// an event was applied since: that event reset the backoff, and the check
// must not undo it. It returns ErrNotFound when the session has no record.
func (s *Store) MarkStaleChecked(ctx context.Context, sessionID string, checks int, next, appliedAt time.Time) error {
	if checks < 0 || next.IsZero() {
		return fmt.Errorf("mark stale check of %s: checks %d, next %v: %w", sessionID, checks, next, ErrInvalid)
	}
	if appliedAt.IsZero() {
		r, err := s.db.ExecContext(ctx, s.q(`
			UPDATE verifications SET stale_checks = ?, next_check_at = ? WHERE session_id = ?`),
			checks, next.Unix(), sessionID)
		return oneRow(r, err, "mark stale check of "+sessionID)
	}
	r, err := s.db.ExecContext(ctx, s.q(`
		UPDATE verifications SET stale_checks = ?, next_check_at = ? WHERE session_id = ? AND applied_at = ?`),
		checks, next.Unix(), sessionID, appliedAt.Unix())
	if err != nil {
		return fmt.Errorf("mark stale check of %s: %w", sessionID, err)
	}
	if n, err := r.RowsAffected(); err != nil || n > 0 {
		return err
	}
	if _, err := s.Session(ctx, sessionID); err != nil {
		return fmt.Errorf("mark stale check of %s: %w", sessionID, err)
	}
	return nil
}

// finalStatuses is the SQL list of the statuses didit.Status.Final calls
// final, in the order of the constants, which is how the index
// verifications_stale spells it.
func finalStatuses() string {
	var list []string
	for _, st := range []didit.Status{
		didit.StatusNotStarted, didit.StatusInProgress, didit.StatusAwaitingUser, didit.StatusInReview,
		didit.StatusApproved, didit.StatusDeclined, didit.StatusResubmitted, didit.StatusExpired,
		didit.StatusKycExpired, didit.StatusAbandoned,
	} {
		if st.Final() {
			list = append(list, "'"+strings.ReplaceAll(string(st), "'", "''")+"'")
		}
	}
	return strings.Join(list, ", ")
}

// lookup runs query once per chunk of keys, with the chunk's placeholders
// for the %s in it, and hands every row to scan. Each key binds the values
// bind returns, all keys the same number. No keys run no query.
func lookup[K any](ctx context.Context, s *Store, query string, keys []K, bind func(K) []any, scan func(*sql.Rows) error) error {
	for chunk := range slices.Chunk(keys, lookupChunk) {
		var args []any
		for _, k := range chunk {
			args = append(args, bind(k)...)
		}
		if err := s.each(ctx, s.db, fmt.Sprintf(query, placeholders(len(chunk), len(args)/len(chunk))), args, scan); err != nil {
			return err
		}
	}
	return nil
}

func bindOne(key string) []any { return []any{key} }

// placeholders writes n placeholders, "?, ?", or n rows of width of them,
// "(?, ?), (?, ?)".
func placeholders(n, width int) string {
	one := "?"
	if width > 1 {
		one = "(" + strings.Repeat("?, ", width-1) + "?)"
	}
	return strings.Repeat(one+", ", n-1) + one
}
