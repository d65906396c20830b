package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Personal data in the records, and what becomes of it. A session's record,
// its events and its notifications stay for the audit trail (statuses, event
// keys, times, AML hit counts and scores, notification states); retention
// and erasure blank the fields that identify a person:
//
//   - verifications: contact_email (the user's address), vendor_data (the
//     business's reference for the user) and attention (the flags' reasons,
//     which quote mail servers' replies);
//   - notifications: recipient_hash (an unsalted SHA-256 of an address,
//     which anyone holding the address can match) and, in detail, the
//     refused recipients' hashes and the servers' texts about them (their
//     reply codes stay);
//   - aml_cases: reviewer (the compliance officer), reviewer_identity (the
//     Temporal identity that resolved the case, which may name a login),
//     note (free text about the user) and attention.
//
// AML cases keep theirs for their own, longer retention, and so does the
// vendor_data of their session: it says which customer a case was about.

// PurgeResult counts what one purge call did.
type PurgeResult struct {
	// Records is how many sessions (PurgeClosedSessions) or AML cases
	// (PurgeClosedAMLCases) the call purged; fewer than its limit means
	// none is left.
	Records int `json:"records"`
	// Notifications counts the notifications whose recipient data was
	// blanked.
	Notifications int `json:"notifications,omitempty"`
	// VendorDataHeld counts the sessions purged with their vendor_data kept,
	// because an AML case of theirs is within its own retention.
	VendorDataHeld int `json:"vendor_data_held,omitempty"`
	// VendorDataReleased counts the purged sessions whose vendor_data, held
	// for their AML cases, was blanked once the last of them was purged.
	VendorDataReleased int `json:"vendor_data_released,omitempty"`
}

// EraseResult counts what EraseSession removed. Erasing again finds nothing
// left: every count is zero, and Found still says whether there is a record.
type EraseResult struct {
	// Found is true when the session has a record; it stays, without its
	// personal fields.
	Found bool `json:"found"`
	// Fields counts the personal fields of the session record that held a
	// value (contact address, vendor_data, attention).
	Fields int `json:"fields"`
	// Notifications counts the notifications whose recipient data was removed.
	Notifications int `json:"notifications"`
	// AMLCases counts the AML case records whose reviewer, its identity,
	// note or attention was removed.
	AMLCases int `json:"aml_cases"`
}

// closedSessionsQuery selects, oldest first, the sessions not purged since
// their last event that are in a final status and have had no event since
// the first parameter (the second repeats it): the index
// verifications_unpurged serves it.
var closedSessionsQuery = `
	SELECT session_id FROM verifications
	WHERE purged_at IS NULL AND status IN (` + finalStatuses() + `)
	  AND applied_at < ?
	  AND NOT EXISTS (SELECT 1 FROM verification_events e
	                  WHERE e.session_id = verifications.session_id AND e.received_at >= ?)
	ORDER BY applied_at, session_id
	LIMIT ?`

// PurgeClosedSessions blanks the personal fields of at most limit closed
// sessions: in a final status (didit.Status.Final), with no event recorded
// since closedBefore, and not purged since their last event. Their
// vendor_data stays while an AML case of theirs is not purged. Purging is
// idempotent: a purged session is not looked at again until an event
// recorded later (which may bring personal data back) makes it due once it
// is closed again.
func (s *Store) PurgeClosedSessions(ctx context.Context, closedBefore time.Time, limit int) (PurgeResult, error) {
	if limit < 1 {
		return PurgeResult{}, fmt.Errorf("purge closed sessions: limit %d: %w", limit, ErrInvalid)
	}
	var res PurgeResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before := closedBefore.Unix()
		ids, err := collect(ctx, s, tx, closedSessionsQuery, []any{before, before, limit}, scanText)
		if err != nil {
			return err
		}
		res.Records = len(ids)
		now := s.clock().Unix()
		for chunk := range slices.Chunk(ids, lookupChunk) {
			in, args := placeholders(len(chunk), 1), stringArgs(chunk)
			_, err := tx.ExecContext(ctx, s.q(`
				UPDATE verifications SET contact_email = '', attention = '', purged_at = ?,
					vendor_data = CASE WHEN EXISTS (SELECT 1 FROM aml_cases c
					                                WHERE c.session_id = verifications.session_id AND c.purged_at IS NULL)
					                   THEN vendor_data ELSE '' END
				WHERE session_id IN (`+in+`)`), append([]any{now}, args...)...)
			if err != nil {
				return err
			}
			var held int
			err = tx.QueryRowContext(ctx, s.q(`
				SELECT COUNT(*) FROM verifications WHERE session_id IN (`+in+`) AND vendor_data <> ''`), args...).Scan(&held)
			if err != nil {
				return err
			}
			res.VendorDataHeld += held
			n, err := s.scrubNotifications(ctx, tx, chunk)
			if err != nil {
				return err
			}
			res.Notifications += n
		}
		return nil
	})
	if err != nil {
		return PurgeResult{}, fmt.Errorf("purge sessions closed before %s: %w", closedBefore.UTC().Format(time.RFC3339), err)
	}
	if res.Records > 0 {
		s.logger.InfoContext(ctx, "closed sessions purged", "sessions", res.Records,
			"notifications", res.Notifications, "vendor_data_held", res.VendorDataHeld)
	}
	return res, nil
}

// PurgeClosedAMLCases blanks the reviewer, its identity, note and attention of at most
// limit AML cases resolved before resolvedBefore and not purged yet, oldest
// first; an open case is never purged. A purged session whose last
// unpurged case this was loses the vendor_data held for it. Purging again
// changes nothing.
func (s *Store) PurgeClosedAMLCases(ctx context.Context, resolvedBefore time.Time, limit int) (PurgeResult, error) {
	if limit < 1 {
		return PurgeResult{}, fmt.Errorf("purge closed aml cases: limit %d: %w", limit, ErrInvalid)
	}
	var res PurgeResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var cases, sessions []string
		err := s.each(ctx, tx, `
			SELECT case_id, session_id FROM aml_cases
			WHERE purged_at IS NULL AND state = 'resolved' AND resolved_at < ?
			ORDER BY resolved_at, case_id
			LIMIT ?`, []any{resolvedBefore.Unix(), limit},
			func(rows *sql.Rows) error {
				var c, sid string
				if err := rows.Scan(&c, &sid); err != nil {
					return err
				}
				cases = append(cases, c)
				if !slices.Contains(sessions, sid) {
					sessions = append(sessions, sid)
				}
				return nil
			})
		if err != nil {
			return err
		}
		res.Records = len(cases)
		now := s.clock().Unix()
		for chunk := range slices.Chunk(cases, lookupChunk) {
			_, err := tx.ExecContext(ctx, s.q(`
				UPDATE aml_cases SET reviewer = '', reviewer_identity = '', note = '', attention = '', purged_at = ?
				WHERE case_id IN (`+placeholders(len(chunk), 1)+`)`), append([]any{now}, stringArgs(chunk)...)...)
			if err != nil {
				return err
			}
		}
		for chunk := range slices.Chunk(sessions, lookupChunk) {
			r, err := tx.ExecContext(ctx, s.q(`
				UPDATE verifications SET vendor_data = ''
				WHERE session_id IN (`+placeholders(len(chunk), 1)+`)
				  AND purged_at IS NOT NULL AND vendor_data <> ''
				  AND NOT EXISTS (SELECT 1 FROM aml_cases c
				                  WHERE c.session_id = verifications.session_id AND c.purged_at IS NULL)`),
				stringArgs(chunk)...)
			if err != nil {
				return err
			}
			n, err := r.RowsAffected()
			if err != nil {
				return err
			}
			res.VendorDataReleased += int(n)
		}
		return nil
	})
	if err != nil {
		return PurgeResult{}, fmt.Errorf("purge aml cases resolved before %s: %w", resolvedBefore.UTC().Format(time.RFC3339), err)
	}
	if res.Records > 0 {
		s.logger.InfoContext(ctx, "closed aml cases purged", "aml_cases", res.Records,
			"vendor_data_released", res.VendorDataReleased)
	}
	return res, nil
}

// EraseSession removes a session's personal data from the records, whatever
// its status and retention: the fields PurgeClosedSessions blanks, the
// vendor_data included, and those of every AML case of the session. The
// records stay, marked erased for good (erased_at): an event Didit sends
// later is recorded, for the audit trail, without its personal fields, and
// calls for no notice and no fetch of the decision (RecordResult.Erased,
// Erased). A session without a record gets one, with no status and no
// event, so that it stays erased when its first event comes. Deciding that
// no AML retention rule keeps the cases is the caller's: see
// RetainedAMLCases.
func (s *Store) EraseSession(ctx context.Context, sessionID string) (EraseResult, error) {
	if sessionID == "" {
		return EraseResult{}, fmt.Errorf("erase session: session id is required: %w", ErrInvalid)
	}
	var res EraseResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var email, vendorData, attention string
		err := tx.QueryRowContext(ctx, s.q(`
			SELECT contact_email, vendor_data, attention FROM verifications WHERE session_id = ?`), sessionID,
		).Scan(&email, &vendorData, &attention)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			res.Found = true
			for _, v := range []string{email, vendorData, attention} {
				if v != "" {
					res.Fields++
				}
			}
		}
		now := s.clock().Unix()
		if !res.Found {
			// Status '' ranks below every event, so the first one applies.
			_, err = tx.ExecContext(ctx, s.q(`
				INSERT INTO verifications (session_id, status, event_created_at, event_key, webhook_type,
				                           first_seen_at, updated_at, applied_at)
				VALUES (?, '', 0, '', '', ?, ?, ?)
				ON CONFLICT (session_id) DO NOTHING`), sessionID, now, now, now)
			if err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.q(`
			UPDATE verifications SET contact_email = '', vendor_data = '', attention = '', purged_at = ?, erased_at = ?
			WHERE session_id = ?`), now, now, sessionID)
		if err != nil {
			return err
		}
		if res.Notifications, err = s.scrubNotifications(ctx, tx, []string{sessionID}); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, s.q(`
			UPDATE aml_cases SET reviewer = '', reviewer_identity = '', note = '', attention = ''
			WHERE session_id = ? AND (reviewer <> '' OR reviewer_identity <> '' OR note <> '' OR attention <> '')`), sessionID)
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		if err != nil {
			return err
		}
		res.AMLCases = int(n)
		_, err = tx.ExecContext(ctx, s.q(`UPDATE aml_cases SET purged_at = ? WHERE session_id = ? AND purged_at IS NULL`),
			now, sessionID)
		return err
	})
	if err != nil {
		return EraseResult{}, fmt.Errorf("erase session %s: %w", sessionID, err)
	}
	s.logger.InfoContext(ctx, "session erased", "session_id", sessionID, "found", res.Found,
		"fields", res.Fields, "notifications", res.Notifications, "aml_cases", res.AMLCases)
	return res, nil
}

// SessionsByVendorData returns the sessions whose record holds vendorData
// (the business's reference for a user), first seen first. An erased or
// purged session no longer holds it.
func (s *Store) SessionsByVendorData(ctx context.Context, vendorData string) ([]string, error) {
	if vendorData == "" {
		return nil, fmt.Errorf("look up sessions by vendor_data: empty reference: %w", ErrInvalid)
	}
	ids, err := collect(ctx, s, s.db, `
		SELECT session_id FROM verifications WHERE vendor_data = ? ORDER BY first_seen_at, session_id`, []any{vendorData}, scanText)
	if err != nil {
		// The reference is personal data: the error does not quote it.
		return nil, fmt.Errorf("look up sessions by vendor_data: %w", err)
	}
	return ids, nil
}

// RetainedAMLCases returns the IDs of a session's AML cases that still keep
// their personal fields: open, or resolved and not yet purged by
// PurgeClosedAMLCases. Anti-money-laundering rules may require keeping them
// even against an erasure request.
func (s *Store) RetainedAMLCases(ctx context.Context, sessionID string) ([]string, error) {
	ids, err := collect(ctx, s, s.db, `
		SELECT case_id FROM aml_cases WHERE session_id = ? AND purged_at IS NULL ORDER BY opened_at, case_id`, []any{sessionID}, scanText)
	if err != nil {
		return nil, fmt.Errorf("list retained aml cases of %s: %w", sessionID, err)
	}
	return ids, nil
}

// scrubNotifications blanks the recipient data of the notifications of
// sessions and returns how many held some. A refusal in their detail keeps
// its reply codes only, so the record still says that, and how, a server
// refused.
func (s *Store) scrubNotifications(ctx context.Context, tx *sql.Tx, sessions []string) (int, error) {
	if len(sessions) == 0 {
		return 0, nil
	}
	type key struct{ session, kind, detail string }
	var found []key
	err := s.each(ctx, tx, `
		SELECT session_id, kind, detail FROM notifications
		WHERE session_id IN (`+placeholders(len(sessions), 1)+`) AND (recipient_hash <> '' OR detail LIKE '%sha256:%')`,
		stringArgs(sessions), func(rows *sql.Rows) error {
			var k key
			if err := rows.Scan(&k.session, &k.kind, &k.detail); err != nil {
				return err
			}
			found = append(found, k)
			return nil
		})
	if err != nil {
		return 0, err
	}
	for _, k := range found {
		_, err := tx.ExecContext(ctx, s.q(`
			UPDATE notifications SET recipient_hash = '', detail = ? WHERE session_id = ? AND kind = ?`),
			scrubDetail(k.detail), k.session, k.kind)
		if err != nil {
			return 0, err
		}
	}
	return len(found), nil
}

// scrubDetail drops the hashes and server texts of the refusals in a
// notification's detail, keeping their reply codes.
func scrubDetail(detail string) string {
	return refusedPattern.ReplaceAllStringFunc(detail, func(m string) string {
		g := refusedPattern.FindStringSubmatch(m)
		if g[3] != "" {
			return g[2] + " " + g[3]
		}
		return g[2]
	})
}

func stringArgs(values []string) []any {
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return args
}
