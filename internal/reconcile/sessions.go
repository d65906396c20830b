package reconcile

import (
	"cmp"
	"context"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
)

// MaxStaleWait is the longest wait between two checks of a stale session.
const MaxStaleWait = 7 * 24 * time.Hour

// Sessions reads one page of the sessions created in the window and brings
// up to date every one we have never seen or hold in another status,
// through its decision. With the legacy webhook it first feeds the
// session's failed deliveries (one call for all of them), as Deliveries
// does per destination, and reads the decision only when they do not bring
// the session's status. An erased session is left as it is: reading its
// deliveries or its decision would bring back what was erased.
func (e *Engine) Sessions(ctx context.Context, in SessionsStep) (StepResult, error) {
	s := e.newStep()
	if err := s.call(ctx); err != nil {
		return s.res, err
	}
	from, to := dayFilter(in.From, in.To)
	page, err := e.API.Sessions(ctx, api.SessionFilter{DateFrom: from, DateTo: to, Limit: in.PageSize}, in.Cursor)
	e.called("sessions", err)
	if err != nil {
		return s.res, err
	}
	s.res.Next = page.Next
	ids := make([]string, 0, len(page.Results))
	for _, row := range page.Results {
		ids = append(ids, row.SessionID)
	}
	ours, err := e.Store.SessionStatuses(ctx, ids)
	if err != nil {
		return s.res, err
	}
	erased, err := e.Store.ErasedSessions(ctx, ids)
	if err != nil {
		return s.res, err
	}
	for _, row := range page.Results {
		s.res.Examined++
		have, seen := ours[row.SessionID]
		switch {
		case !didit.ValidSessionID(row.SessionID) || !row.Status.Known():
			// Not a session Didit could name, or a status we do not know:
			// nothing to repair (a session ID names workflows and records,
			// so one of another form is never used).
			continue
		case erased[row.SessionID]:
			if have != string(row.Status) {
				e.log().DebugContext(ctx, "reconcile: an erased session is behind Didit; left unread", "session_id", row.SessionID)
			}
			continue
		case !seen && row.Status == didit.StatusNotStarted:
			// Created, never opened: no event was missed.
			continue
		case seen && have == string(row.Status):
			continue
		}
		if in.Legacy {
			brought, err := s.feedSessionDeliveries(ctx, row)
			if err != nil {
				return s.res, err
			}
			if brought {
				continue
			}
		}
		if err := s.repairByDecision(ctx, row.SessionID, have, false); err != nil {
			return s.res, err
		}
	}
	e.count(PathSessions, s.res)
	return s.res, nil
}

// feedSessionDeliveries feeds a session's failed deliveries (legacy webhook)
// and reports whether one of them brings the session's listed status.
func (s *step) feedSessionDeliveries(ctx context.Context, row api.SessionRow) (bool, error) {
	e := s.e
	if err := s.call(ctx); err != nil {
		return false, err
	}
	all, err := e.API.SessionDeliveries(ctx, row.SessionID)
	e.called("session_deliveries", err)
	if err != nil {
		if api.KindOf(err) == api.KindNotFound {
			s.res.Errors++
			return false, nil
		}
		return false, err
	}
	r := &listedReader{bodies: map[string]api.Delivery{}, status: row.Status}
	var failed []api.DeliveryRow
	for _, d := range all {
		if d.Delivered() || d.UUID == "" {
			continue
		}
		r.bodies[d.UUID] = d
		dr := d.DeliveryRow
		if dr.SessionID == "" {
			dr.SessionID = row.SessionID
		}
		failed = append(failed, dr)
	}
	fed := s.res.Repaired
	err = s.settle(ctx, failed, r)
	// Only an event fed now can bring the status: one settled earlier did
	// not, or the session would not be behind.
	return r.brings && s.res.Repaired > fed, err
}

// listedReader hands out the deliveries a session's list brought, at no
// further call, and notes whether one of them brings the session's status.
type listedReader struct {
	bodies map[string]api.Delivery
	status didit.Status
	brings bool
}

func (r *listedReader) read(_ context.Context, row api.DeliveryRow) (api.Delivery, error) {
	d := r.bodies[row.UUID]
	if ev, err := didit.ParseEvent(d.RequestBody); err == nil && ev.Status == r.status {
		r.brings = true
	}
	return d, nil
}

// repairByDecision reads a session's decision and, if its status is not
// the one we hold (or, with reviews, a hit of an open AML case has another
// review status than the records hold), feeds the event it stands for,
// ordered at Didit's answer.
func (s *step) repairByDecision(ctx context.Context, sessionID, have string, reviews bool) error {
	e := s.e
	if err := s.call(ctx); err != nil {
		return err
	}
	got, err := e.API.Decision(ctx, sessionID)
	e.called("decision", err)
	if err != nil {
		if itemFailed(err) {
			s.res.Errors++
			e.log().WarnContext(ctx, "reconcile: a session's decision could not be read; skipped", "session_id", sessionID,
				"error_kind", api.KindOf(err).String(), "error", err)
			return nil
		}
		return err
	}
	d := got.Decision
	if !d.Status.Known() || got.Date.IsZero() {
		// Without Didit's Date the decision cannot be ordered against the
		// webhooks: the worker's clock is not Didit's.
		s.res.Errors++
		e.called("decision", &api.Error{Kind: api.KindMalformed})
		e.log().WarnContext(ctx, "reconcile: a session's decision is unusable (unknown status or no Date); skipped", "session_id", sessionID)
		return nil
	}
	if string(d.Status) == have {
		if !reviews {
			return nil
		}
		missed, err := s.missedReview(ctx, sessionID, &d)
		if err != nil || !missed {
			return err
		}
	}
	if d.SessionID == "" {
		d.SessionID = sessionID
	}
	// A second before Didit's answer: it loses every tie to a webhook of
	// the same second, which shows that state or a newer one.
	at := got.Date.Unix() - 1
	if err := e.feed(ctx, contract.DecisionEvent(sessionID, &d, at, e.now().UTC())); err != nil {
		return err
	}
	s.res.Repaired++
	e.log().InfoContext(ctx, "reconcile: session brought up to date from its decision", "session_id", sessionID,
		"from_status", have, "status", string(d.Status))
	return nil
}

// missedReview reports whether a decision shows a hit of one of the
// session's open AML cases with another review status than the records
// hold: a review in Didit's console whose webhook was lost.
func (s *step) missedReview(ctx context.Context, sessionID string, d *didit.Decision) (bool, error) {
	hits := d.ScreenedHits()
	if len(hits) == 0 {
		return false, nil
	}
	held, err := s.e.Store.OpenCaseReviews(ctx, sessionID)
	if err != nil {
		return false, err
	}
	for _, h := range hits {
		if have, ok := held[h.ID]; ok && have != cmp.Or(h.ReviewStatus, didit.ReviewUnreviewed) {
			s.e.log().InfoContext(ctx, "reconcile: a hit review of an open AML case was missed", "session_id", sessionID)
			return true, nil
		}
	}
	return false, nil
}

// Stale checks up to Limit sessions our records show in a status that is
// not final, or with an open AML case, and that have not moved for
// StaleAfter, against their decision: a review in Didit's console whose
// webhook was lost is found so.
// Each check doubles the session's wait before the next, up to
// MaxStaleWait; an event that moves the session resets it.
func (e *Engine) Stale(ctx context.Context, in StaleStep) (StepResult, error) {
	s := e.newStep()
	now := e.now()
	stale, err := e.Store.StaleSessions(ctx, now.Add(-in.StaleAfter), now, in.Limit)
	if err != nil {
		return s.res, err
	}
	for _, ss := range stale {
		s.res.Examined++
		if err := s.repairByDecision(ctx, ss.SessionID, ss.Status, true); err != nil {
			return s.res, err
		}
		checks := ss.Checks + 1
		// Conditional on the session not having moved meanwhile (the repair
		// may be recorded already): its new status starts a fresh backoff.
		if err := e.Store.MarkStaleChecked(ctx, ss.SessionID, checks, now.Add(StaleWait(in.StaleAfter, checks)), ss.UpdatedAt); err != nil {
			return s.res, err
		}
	}
	if len(stale) == in.Limit {
		s.res.Next = "more"
	}
	e.count(PathStale, s.res)
	return s.res, nil
}

// StaleWait is how long a stale session waits after its n-th check:
// StaleAfter doubled n times, at most MaxStaleWait.
func StaleWait(staleAfter time.Duration, n int) time.Duration {
	w := staleAfter
	for range n {
		if w >= MaxStaleWait/2 {
			return MaxStaleWait
		}
		w *= 2
	}
	return min(w, MaxStaleWait)
}
