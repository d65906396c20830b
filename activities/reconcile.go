package activities

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/time/rate"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
	"github.com/diditflow/diditflow/internal/temporalclient"
)

// ReconcileAPI is what reconciliation needs of Didit's API (didit/api.Client).
type ReconcileAPI interface {
	Enabled() bool
	Decision(ctx context.Context, sessionID string) (api.DecisionResult, error)
	Sessions(ctx context.Context, f api.SessionFilter, cursor string) (api.SessionPage, error)
	SessionDeliveries(ctx context.Context, sessionID string) ([]api.Delivery, error)
	Destinations(ctx context.Context) ([]api.Destination, error)
	DestinationDeliveries(ctx context.Context, destUUID string, f api.DeliveryFilter, cursor string) (api.DeliveryPage, error)
	DestinationDelivery(ctx context.Context, destUUID, deliveryUUID string) (api.Delivery, error)
}

// ReconcileStore is what reconciliation needs of the records.
type ReconcileStore interface {
	HeldEvents(ctx context.Context, refs []store.EventRef) (map[store.EventRef]bool, error)
	SessionStatuses(ctx context.Context, ids []string) (map[string]string, error)
	ErasedSessions(ctx context.Context, ids []string) (map[string]bool, error)
	SettledDeliveries(ctx context.Context, uuids []string) (map[string]bool, error)
	SettleDeliveries(ctx context.Context, ds []store.SettledDelivery) error
	PruneSettledDeliveries(ctx context.Context, before time.Time) (int64, error)
	StaleSessions(ctx context.Context, unchangedSince, now time.Time, limit int) ([]store.StaleSession, error)
	MarkStaleChecked(ctx context.Context, sessionID string, checks int, next, appliedAt time.Time) error
}

// Signaler hands an event to its session's workflow (client.Client).
type Signaler interface {
	SignalWithStartWorkflow(ctx context.Context, workflowID, signalName string, signalArg any,
		options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error)
}

// Reconciler holds the reconcile activities: each reads one page of a Didit
// list, compares it with the records, and feeds what diditflow missed into
// its session's workflow, through the same SignalWithStart and the same
// dedupe as a webhook. They return counts and cursors, never what Didit sent.
//
// A reconcile run executes its steps one after another, so Limiter (the
// reconcile share of Didit's per-key budget) bounds every worker's calls
// together.
type Reconciler struct {
	API      ReconcileAPI
	Store    ReconcileStore
	Temporal Signaler
	// TaskQueue is the session workflows' queue.
	TaskQueue string
	// Limiter paces the Didit calls; nil does not pace them.
	Limiter *rate.Limiter
	Metrics *Metrics
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// How a failed delivery was settled.
const (
	settledHeld     = "held"     // we hold its event
	settledFed      = "fed"      // its body went to the session
	settledUnusable = "unusable" // not a session event, a console test, or gone
	settledErased   = "erased"   // of an erased session: never read
)

// MaxStaleWait is the longest wait between two checks of a stale session.
const MaxStaleWait = 7 * 24 * time.Hour

// ReconcileTargets is which destinations a run reads the deliveries of.
type ReconcileTargets struct {
	// Enabled is false when no API key is configured: the run does nothing.
	Enabled bool `json:"enabled"`
	// Destinations are UUIDs; none means the legacy single webhook, whose
	// deliveries are read per session.
	Destinations []string `json:"destinations,omitempty"`
}

// DeliveriesStep reads one page of a destination's deliveries.
type DeliveriesStep struct {
	Destination string    `json:"destination"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	// Cursor is the page to read: "" the first, else a previous step's Next.
	Cursor   string `json:"cursor,omitempty"`
	PageSize int    `json:"page_size"`
}

// SessionsStep reads one page of the sessions created in the window.
type SessionsStep struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Cursor   string    `json:"cursor,omitempty"`
	PageSize int       `json:"page_size"`
	// Legacy reads the deliveries of each session behind (no destination
	// to read them from).
	Legacy bool `json:"legacy,omitempty"`
}

// StaleStep checks the sessions whose status has not moved for StaleAfter.
type StaleStep struct {
	StaleAfter time.Duration `json:"stale_after"`
	Limit      int           `json:"limit"`
}

// StepResult is what one step did, in counts.
type StepResult struct {
	// Examined counts list rows looked at; Repaired the events fed into
	// sessions; Held the failed deliveries whose event we already held.
	Examined int `json:"examined"`
	Repaired int `json:"repaired"`
	Held     int `json:"held,omitempty"`
	// Errors counts items skipped for an error no retry fixes (404, an
	// unusable body); Calls the Didit calls made.
	Errors int `json:"errors,omitempty"`
	Calls  int `json:"calls"`
	// Next is the cursor of the next page; "" when the list is done.
	Next string `json:"next,omitempty"`
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// call paces one Didit call and counts it.
func (r *Reconciler) call(ctx context.Context, res *StepResult) error {
	res.Calls++
	activity.RecordHeartbeat(ctx, res.Calls)
	if r.Limiter == nil {
		return nil
	}
	return r.Limiter.Wait(ctx)
}

// outcome counts a call's result by class, as FetchDecision does.
func (r *Reconciler) outcome(call string, err error) {
	result := "ok"
	if err != nil {
		result = api.KindOf(err).String()
	}
	if r.Metrics != nil {
		r.Metrics.apiCalls.WithLabelValues(call, result).Inc()
	}
}

// stepError turns a Didit error that stops a step into the activity's
// failure: refused credentials fail for good (the run ends and says so),
// anything else is retried, a 429 after Didit's Retry-After.
func stepError(err error) error {
	var e *api.Error
	if errors.As(err, &e) && e.Kind == api.KindCredentials {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeDiditCredentials, nil)
	}
	return apiRetryError(err)
}

// itemFailed reports whether an error reading one item (a delivery, a
// decision) is that item's alone, so the step counts it and goes on: a 404,
// an answer that is not the documented JSON or over the size cap, another
// 4xx. Credentials, 429 and 5xx concern every item and fail the step.
func itemFailed(err error) bool {
	switch api.KindOf(err) {
	case api.KindNotFound, api.KindMalformed, api.KindRequest:
		return true
	}
	return false
}

// ErrTypeDiditCredentials is the failure type of a step Didit refused our
// API key for (401/403).
const ErrTypeDiditCredentials = "DiditAPIcredentials"

// ReconcileTargets lists the destinations to read: the configured one, or
// every enabled destination.
func (r *Reconciler) ReconcileTargets(ctx context.Context, configured string) (ReconcileTargets, error) {
	if r.API == nil || !r.API.Enabled() {
		r.log().WarnContext(ctx, "reconcile: Didit API off (DIDIT_API_KEY unset), nothing to do")
		return ReconcileTargets{}, nil
	}
	if configured != "" {
		r.log().InfoContext(ctx, "reconcile: reading the deliveries of the configured destination", "destination", configured)
		return ReconcileTargets{Enabled: true, Destinations: []string{configured}}, nil
	}
	var res StepResult
	if err := r.call(ctx, &res); err != nil {
		return ReconcileTargets{}, err
	}
	dests, err := r.API.Destinations(ctx)
	r.outcome("destinations", err)
	if err != nil && api.KindOf(err) != api.KindNotFound {
		return ReconcileTargets{}, stepError(err)
	}
	out := ReconcileTargets{Enabled: true}
	for _, d := range dests {
		// Another webhook_version is another payload shape, meant for
		// another consumer: not ours to parse as v3.
		if d.Enabled && (d.WebhookVersion == "" || d.WebhookVersion == "v3") {
			out.Destinations = append(out.Destinations, d.UUID)
		}
	}
	if len(out.Destinations) == 0 {
		r.log().InfoContext(ctx, "reconcile: no enabled webhook destination; reading deliveries per session (legacy webhook)")
	} else {
		r.log().InfoContext(ctx, "reconcile: reading the deliveries of every enabled destination", "destinations", out.Destinations)
	}
	return out, nil
}

// ReconcileDeliveries reads one page of a destination's deliveries (newest
// first) and feeds the event of every failed one we do not hold into its
// session. The list rows carry no event_id, so a failed delivery is read in
// full once; it is then settled in the records, and later runs skip it
// without a call.
//
// The event is fed from the delivered body rather than by asking Didit to
// resend it: the body comes over TLS from Didit's API under our key, which
// authenticates it as well as a signature would; it needs no write from
// Didit's smaller budget, no working route from Didit to the receiver (the
// thing that just failed), and no secret still valid (a delivery signed with
// a rotated secret would fail again); and the step knows at once that the
// event reached its session.
func (r *Reconciler) ReconcileDeliveries(ctx context.Context, in DeliveriesStep) (StepResult, error) {
	var res StepResult
	if err := r.call(ctx, &res); err != nil {
		return res, err
	}
	from, to := dayFilter(in.From, in.To)
	page, err := r.API.DestinationDeliveries(ctx, in.Destination,
		api.DeliveryFilter{DateFrom: from, DateTo: to, Limit: in.PageSize}, in.Cursor)
	r.outcome("destination_deliveries", err)
	if err != nil {
		return res, stepError(err)
	}
	res.Next = page.Next
	var failed []api.DeliveryRow
	for _, row := range page.Results {
		at, ok := deliveryTime(row.CreatedAt)
		if ok && at.Before(in.From) {
			// Newest first: the rest of the list is older than the window.
			res.Next = ""
			break
		}
		res.Examined++
		if !row.Delivered() && row.UUID != "" {
			failed = append(failed, row)
		}
	}
	err = r.settleFailed(ctx, &res, failed, r.deliveryReader(ctx, &res, in.Destination, failed))
	if err != nil {
		return res, err
	}
	r.count("deliveries", res)
	return res, nil
}

// deliveryReader reads failed deliveries in full for settleFailed. A
// session with several failed rows on the page (Didit's retries of one
// event, a session's events during an outage) has its delivery list read
// once instead (GET /v3/session/{id}/webhooks/ carries every attempt with
// its body); a row the list lacks, or a key that may not read it, falls
// back to reading the one delivery.
func (r *Reconciler) deliveryReader(ctx context.Context, res *StepResult, dest string, failed []api.DeliveryRow) func(api.DeliveryRow) (api.Delivery, error) {
	perSession := map[string]int{}
	for _, row := range failed {
		perSession[row.SessionID]++
	}
	lists := map[string]map[string]api.Delivery{}
	listsRefused := false
	return func(row api.DeliveryRow) (api.Delivery, error) {
		if sid := row.SessionID; didit.ValidSessionID(sid) && perSession[sid] > 1 && !listsRefused {
			list, read := lists[sid]
			if !read {
				if err := r.call(ctx, res); err != nil {
					return api.Delivery{}, err
				}
				all, err := r.API.SessionDeliveries(ctx, sid)
				r.outcome("session_deliveries", err)
				switch {
				case err == nil:
					list = make(map[string]api.Delivery, len(all))
					for _, d := range all {
						list[d.UUID] = d
					}
				case api.KindOf(err) == api.KindCredentials:
					// A scoped key without sessions:read: one by one.
					listsRefused = true
				case !itemFailed(err):
					return api.Delivery{}, err
				}
				lists[sid] = list
			}
			if d, ok := list[row.UUID]; ok {
				return d, nil
			}
		}
		if err := r.call(ctx, res); err != nil {
			return api.Delivery{}, err
		}
		d, err := r.API.DestinationDelivery(ctx, dest, row.UUID)
		r.outcome("delivery", err)
		return d, err
	}
}

// dayFilter is the window as the lists' date filters take it: whole days,
// one more on each side, since Didit does not say in which time zone it
// cuts them. The rows are then cut at the window exactly.
func dayFilter(from, to time.Time) (time.Time, time.Time) {
	return from.Add(-24 * time.Hour), to.Add(24 * time.Hour)
}

// settleFailed reads each failed delivery not yet settled (with read),
// feeds its event if we do not hold it, and settles the page's deliveries
// in one write, after their events reached their sessions.
func (r *Reconciler) settleFailed(ctx context.Context, res *StepResult, failed []api.DeliveryRow,
	read func(api.DeliveryRow) (api.Delivery, error)) (err error) {
	if len(failed) == 0 {
		return nil
	}
	uuids := make([]string, len(failed))
	for i, row := range failed {
		uuids[i] = row.UUID
	}
	settled, err := r.Store.SettledDeliveries(ctx, uuids)
	if err != nil {
		return err
	}
	// An erased session's deliveries are not read: their bodies hold what
	// was erased.
	var sessions []string
	for _, row := range failed {
		if row.SessionID != "" && !slices.Contains(sessions, row.SessionID) {
			sessions = append(sessions, row.SessionID)
		}
	}
	erased, err := r.Store.ErasedSessions(ctx, sessions)
	if err != nil {
		return err
	}
	var done []store.SettledDelivery
	defer func() {
		// What was fed is settled even when a later row fails the step.
		if len(done) > 0 {
			err = errors.Join(err, r.Store.SettleDeliveries(ctx, done))
		}
	}()
	// Didit logs each attempt: the three failed attempts of one event are
	// fed once.
	fed := map[store.EventRef]bool{}
	for _, row := range failed {
		if settled[row.UUID] {
			continue
		}
		settled[row.UUID] = true
		if erased[row.SessionID] {
			r.log().InfoContext(ctx, "reconcile: a failed delivery of an erased session settled unread", "delivery", row.UUID,
				"session_id", row.SessionID)
			done = append(done, store.SettledDelivery{UUID: row.UUID, SessionID: row.SessionID, Outcome: settledErased})
			continue
		}
		d, err := read(row)
		outcome := ""
		switch {
		case itemFailed(err):
			// Gone, or an answer no retry will change: settled, so it does
			// not stop every later run at the same place.
			r.log().WarnContext(ctx, "reconcile: a failed delivery could not be read; skipped", "delivery", row.UUID,
				"session_id", row.SessionID, "error_kind", api.KindOf(err).String(), "error", err)
			outcome = settledUnusable
		case err != nil:
			return stepError(err)
		default:
			if outcome, err = r.feedBody(ctx, d.RequestBody, fed); err != nil {
				return err
			}
		}
		switch outcome {
		case settledFed:
			res.Repaired++
		case settledHeld:
			res.Held++
		case settledUnusable:
			res.Errors++
		}
		done = append(done, store.SettledDelivery{UUID: row.UUID, SessionID: row.SessionID, Outcome: outcome})
	}
	return nil
}

// feedBody hands a delivered body's event to its session unless we hold it
// already or fed it in this step. The body is personal data: it is parsed,
// never logged.
func (r *Reconciler) feedBody(ctx context.Context, body []byte, fed map[store.EventRef]bool) (string, error) {
	ev, err := didit.ParseEvent(body)
	if err == nil && !isV3(body) {
		err = errors.New("not a webhook_version v3 body")
	}
	if err != nil || ev.SessionID == "" || ev.ConsoleTest() || !ev.WebhookType.Known() {
		// What the receiver would have refused, acknowledged as a test or
		// ignored (an unhandled webhook_type).
		r.log().WarnContext(ctx, "reconcile: a failed delivery holds no session event we handle; skipped", "reason", reasonOf(err),
			"webhook_type", string(ev.WebhookType))
		return settledUnusable, nil
	}
	ref := store.EventRef{SessionID: ev.SessionID, EventKey: ev.Key()}
	if fed[ref] {
		return settledHeld, nil
	}
	held, err := r.Store.HeldEvents(ctx, []store.EventRef{ref})
	if err != nil {
		return "", err
	}
	if held[ref] {
		return settledHeld, nil
	}
	se := contract.SessionEvent{Event: ev, Proof: didit.Proof{Source: didit.SourceAPI, Timestamp: ev.Timestamp}, ReceivedAt: r.now().UTC()}
	if err := r.signal(ctx, se); err != nil {
		return "", err
	}
	fed[ref] = true
	r.log().InfoContext(ctx, "reconcile: missed event fed from Didit's delivery log", "session_id", ev.SessionID,
		"event_id", ev.EventID, "webhook_type", string(ev.WebhookType), "status", string(ev.Status))
	return settledFed, nil
}

func reasonOf(err error) string {
	if err == nil {
		return "no session, a console test or an unhandled webhook_type"
	}
	return err.Error()
}

// isV3 reports whether a body is of webhook_version v3 (or names none).
func isV3(body []byte) bool {
	var v struct {
		Version string `json:"webhook_version"`
	}
	return json.Unmarshal(body, &v) == nil && (v.Version == "" || v.Version == "v3")
}

// signal is the receiver's SignalWithStart, for an event the receiver missed.
func (r *Reconciler) signal(ctx context.Context, se contract.SessionEvent) error {
	// The business's metadata stays out of Temporal, as the receiver keeps it.
	se.Event.Metadata = nil
	sid := se.Event.SessionID
	_, err := r.Temporal.SignalWithStartWorkflow(ctx, contract.SessionWorkflowID(sid), contract.EventSignal, se,
		temporalclient.SessionStartOptions(sid, se.Event.Status, r.TaskQueue), contract.SessionWorkflowType, contract.SessionStart{SessionID: sid})
	return err
}

// ReconcileSessions reads one page of the sessions created in the window and
// brings up to date every one we have never seen or hold in another status,
// through its decision. With the legacy webhook it first feeds the session's
// failed deliveries (one call for all of them), as ReconcileDeliveries does
// per destination, and reads the decision only when they do not bring the
// session's status. An erased session is left as it is: reading its
// deliveries or its decision would bring back what was erased.
func (r *Reconciler) ReconcileSessions(ctx context.Context, in SessionsStep) (StepResult, error) {
	var res StepResult
	if err := r.call(ctx, &res); err != nil {
		return res, err
	}
	from, to := dayFilter(in.From, in.To)
	page, err := r.API.Sessions(ctx, api.SessionFilter{DateFrom: from, DateTo: to, Limit: in.PageSize}, in.Cursor)
	r.outcome("sessions", err)
	if err != nil {
		return res, stepError(err)
	}
	res.Next = page.Next
	ids := make([]string, 0, len(page.Results))
	for _, row := range page.Results {
		ids = append(ids, row.SessionID)
	}
	ours, err := r.Store.SessionStatuses(ctx, ids)
	if err != nil {
		return res, err
	}
	erased, err := r.Store.ErasedSessions(ctx, ids)
	if err != nil {
		return res, err
	}
	for _, row := range page.Results {
		res.Examined++
		have, seen := ours[row.SessionID]
		switch {
		case !didit.ValidSessionID(row.SessionID) || !row.Status.Known():
			// Not a session Didit could name, or a status we do not know:
			// nothing to repair (a session ID names workflows and records,
			// so one of another form is never used).
			continue
		case erased[row.SessionID]:
			if have != string(row.Status) {
				r.log().DebugContext(ctx, "reconcile: an erased session is behind Didit; left unread", "session_id", row.SessionID)
			}
			continue
		case !seen && row.Status == didit.StatusNotStarted:
			// Created, never opened: no event was missed.
			continue
		case seen && have == string(row.Status):
			continue
		}
		if in.Legacy {
			brought, err := r.feedSessionDeliveries(ctx, &res, row)
			if err != nil {
				return res, err
			}
			if brought {
				continue
			}
		}
		if err := r.repairByDecision(ctx, &res, row.SessionID, have); err != nil {
			return res, err
		}
	}
	r.count("sessions", res)
	return res, nil
}

// feedSessionDeliveries feeds a session's failed deliveries (legacy webhook)
// and reports whether one of them brings the session's listed status.
func (r *Reconciler) feedSessionDeliveries(ctx context.Context, res *StepResult, row api.SessionRow) (bool, error) {
	if err := r.call(ctx, res); err != nil {
		return false, err
	}
	all, err := r.API.SessionDeliveries(ctx, row.SessionID)
	r.outcome("session_deliveries", err)
	if err != nil {
		if api.KindOf(err) == api.KindNotFound {
			res.Errors++
			return false, nil
		}
		return false, stepError(err)
	}
	bodies := map[string]api.Delivery{}
	var failed []api.DeliveryRow
	for _, d := range all {
		if d.Delivered() || d.UUID == "" {
			continue
		}
		bodies[d.UUID] = d
		dr := d.DeliveryRow
		if dr.SessionID == "" {
			dr.SessionID = row.SessionID
		}
		failed = append(failed, dr)
	}
	// The list brought the bodies: settling them costs no further call.
	var brought bool
	fed := res.Repaired
	err = r.settleFailed(ctx, res, failed, func(d api.DeliveryRow) (api.Delivery, error) {
		dl := bodies[d.UUID]
		if ev, err := didit.ParseEvent(dl.RequestBody); err == nil && ev.Status == row.Status {
			brought = true
		}
		return dl, nil
	})
	// Only an event fed now can bring the status: one settled earlier did
	// not, or the session would not be behind.
	return brought && res.Repaired > fed, err
}

// repairByDecision reads a session's decision and, if its status is not
// the one we hold, feeds the event it stands for, ordered at Didit's answer.
func (r *Reconciler) repairByDecision(ctx context.Context, res *StepResult, sessionID, have string) error {
	if err := r.call(ctx, res); err != nil {
		return err
	}
	got, err := r.API.Decision(ctx, sessionID)
	r.outcome("decision", err)
	if err != nil {
		if itemFailed(err) {
			res.Errors++
			r.log().WarnContext(ctx, "reconcile: a session's decision could not be read; skipped", "session_id", sessionID,
				"error_kind", api.KindOf(err).String(), "error", err)
			return nil
		}
		return stepError(err)
	}
	d := got.Decision
	if !d.Status.Known() || got.Date.IsZero() {
		// Without Didit's Date the decision cannot be ordered against the
		// webhooks: the worker's clock is not Didit's.
		res.Errors++
		r.outcome("decision", &api.Error{Kind: api.KindMalformed})
		r.log().WarnContext(ctx, "reconcile: a session's decision is unusable (unknown status or no Date); skipped", "session_id", sessionID)
		return nil
	}
	if string(d.Status) == have {
		return nil
	}
	if d.SessionID == "" {
		d.SessionID = sessionID
	}
	// A second before Didit's answer: it loses every tie to a webhook of
	// the same second, which shows that state or a newer one.
	at := got.Date.Unix() - 1
	if err := r.signal(ctx, contract.DecisionEvent(sessionID, &d, at, r.now().UTC())); err != nil {
		return err
	}
	res.Repaired++
	r.log().InfoContext(ctx, "reconcile: session brought up to date from its decision", "session_id", sessionID,
		"from_status", have, "status", string(d.Status))
	return nil
}

// ReconcileStale checks up to Limit sessions our records show in a status
// that is not final and that has not moved for StaleAfter, against their
// decision. Each check doubles the session's wait before the next, up to
// MaxStaleWait; an event that moves the session resets it.
func (r *Reconciler) ReconcileStale(ctx context.Context, in StaleStep) (StepResult, error) {
	var res StepResult
	now := r.now()
	stale, err := r.Store.StaleSessions(ctx, now.Add(-in.StaleAfter), now, in.Limit)
	if err != nil {
		return res, err
	}
	for _, ss := range stale {
		res.Examined++
		if err := r.repairByDecision(ctx, &res, ss.SessionID, ss.Status); err != nil {
			return res, err
		}
		checks := ss.Checks + 1
		// Conditional on the session not having moved meanwhile (the repair
		// may be recorded already): its new status starts a fresh backoff.
		if err := r.Store.MarkStaleChecked(ctx, ss.SessionID, checks, now.Add(StaleWait(in.StaleAfter, checks)), ss.UpdatedAt); err != nil {
			return res, err
		}
	}
	if len(stale) == in.Limit {
		res.Next = "more"
	}
	r.count("stale", res)
	return res, nil
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

// ReconcileSummary is a run's totals.
type ReconcileSummary struct {
	Examined map[string]int `json:"examined,omitempty"`
	Repaired map[string]int `json:"repaired,omitempty"`
	Errors   int            `json:"errors,omitempty"`
	Calls    int            `json:"calls"`
	// Result is ok, off (no API key), capped (a path reached
	// RECONCILE_MAX_CALLS and the next run goes on) or failed (a step gave
	// up: the run went on with the next path, or ended if Didit refused
	// the key).
	Result string `json:"result"`
	// Capped lists the paths that reached their cap.
	Capped []string `json:"capped,omitempty"`
	// Failure is why steps gave up, by path.
	Failure string `json:"failure,omitempty"`
}

// ReconcileFinish is a finished run's totals, and the time before which
// settled deliveries are never read again.
type ReconcileFinish struct {
	Summary     ReconcileSummary `json:"summary"`
	PruneBefore time.Time        `json:"prune_before"`
}

// ReconcileFinished prunes settled deliveries older than any window will
// read again, then counts the run and logs its totals.
func (r *Reconciler) ReconcileFinished(ctx context.Context, in ReconcileFinish) error {
	sum := in.Summary
	if r.Store != nil && sum.Result != "off" {
		// A failed prune is only a bigger table: the run still counts.
		if n, err := r.Store.PruneSettledDeliveries(ctx, in.PruneBefore); err != nil {
			r.log().WarnContext(ctx, "reconcile: pruning settled deliveries failed", "error", err)
		} else if n > 0 {
			r.log().InfoContext(ctx, "reconcile: pruned settled deliveries", "rows", n)
		}
	}
	if r.Metrics != nil {
		r.Metrics.reconcileRuns.WithLabelValues(sum.Result).Inc()
	}
	level := slog.LevelInfo
	if sum.Result == "failed" {
		level = slog.LevelError
	}
	r.log().Log(ctx, level, "reconcile run finished", "result", sum.Result, "calls", sum.Calls,
		"examined", sum.Examined, "repaired", sum.Repaired, "errors", sum.Errors, "capped", sum.Capped, "failure", sum.Failure)
	return nil
}

func (r *Reconciler) count(path string, res StepResult) {
	if r.Metrics == nil {
		return
	}
	r.Metrics.reconcileExamined.WithLabelValues(path).Add(float64(res.Examined))
	r.Metrics.reconcileRepaired.WithLabelValues(path).Add(float64(res.Repaired))
}

// deliveryTime parses a delivery's created_at (ISO 8601, as Didit's API
// writes it).
func deliveryTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
