package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
)

// Outcome is how a failed delivery was settled, as the records keep it
// (store.SettledDelivery.Outcome).
type Outcome string

const (
	// Held: we hold its event.
	Held Outcome = "held"
	// Fed: its body went to the session.
	Fed Outcome = "fed"
	// Unusable: not a session event, a console test, or gone.
	Unusable Outcome = "unusable"
	// Erased: of an erased session, never read.
	Erased Outcome = "erased"
)

// Deliveries reads one page of a destination's deliveries (newest first)
// and feeds the event of every failed one we do not hold into its session.
// The list rows carry no event_id, so a failed delivery is read in full
// once; it is then settled in the records, and later runs skip it without
// a call.
//
// The event is fed from the delivered body rather than by asking Didit to
// resend it: the body comes over TLS from Didit's API under our key, which
// authenticates it as well as a signature would; it needs no write from
// Didit's smaller budget, no working route from Didit to the receiver (the
// thing that just failed), and no secret still valid (a delivery signed with
// a rotated secret would fail again); and the step knows at once that the
// event reached its session.
func (e *Engine) Deliveries(ctx context.Context, in DeliveriesStep) (StepResult, error) {
	s := e.newStep()
	if err := s.call(ctx); err != nil {
		return s.res, err
	}
	from, to := dayFilter(in.From, in.To)
	page, err := e.API.DestinationDeliveries(ctx, in.Destination,
		api.DeliveryFilter{DateFrom: from, DateTo: to, Limit: in.PageSize}, in.Cursor)
	e.called("destination_deliveries", err)
	if err != nil {
		return s.res, err
	}
	s.res.Next = page.Next
	var failed []api.DeliveryRow
	for _, row := range page.Results {
		at, ok := deliveryTime(row.CreatedAt)
		if ok && at.Before(in.From) {
			// Newest first: the rest of the list is older than the window.
			s.res.Next = ""
			break
		}
		s.res.Examined++
		if !row.Delivered() && row.UUID != "" {
			failed = append(failed, row)
		}
	}
	if err := s.settle(ctx, failed, newDestinationReader(s, in.Destination, failed)); err != nil {
		return s.res, err
	}
	e.count(PathDeliveries, s.res)
	return s.res, nil
}

// reader reads a failed delivery in full, its body included.
type reader interface {
	read(ctx context.Context, row api.DeliveryRow) (api.Delivery, error)
}

// destinationReader reads the failed deliveries of a destination's page. A
// session with several failed rows on the page (Didit's retries of one
// event, a session's events during an outage) has its delivery list read
// once instead (GET /v3/session/{id}/webhooks/ carries every attempt with
// its body); a row the list lacks, or a key that may not read it, falls
// back to reading the one delivery.
type destinationReader struct {
	step *step
	dest string
	// perSession counts the page's failed rows by session.
	perSession map[string]int
	// lists are the delivery lists read, by session, by delivery UUID; a
	// session whose list could not be read maps to nil.
	lists map[string]map[string]api.Delivery
	// listsRefused: the key may not read delivery lists, so none is asked.
	listsRefused bool
}

func newDestinationReader(s *step, dest string, failed []api.DeliveryRow) *destinationReader {
	r := &destinationReader{step: s, dest: dest, perSession: map[string]int{}, lists: map[string]map[string]api.Delivery{}}
	for _, row := range failed {
		r.perSession[row.SessionID]++
	}
	return r
}

func (r *destinationReader) read(ctx context.Context, row api.DeliveryRow) (api.Delivery, error) {
	e := r.step.e
	if sid := row.SessionID; didit.ValidSessionID(sid) && r.perSession[sid] > 1 && !r.listsRefused {
		list, read := r.lists[sid]
		if !read {
			var err error
			if list, err = r.list(ctx, sid); err != nil {
				return api.Delivery{}, err
			}
			r.lists[sid] = list
		}
		if d, ok := list[row.UUID]; ok {
			return d, nil
		}
	}
	if err := r.step.call(ctx); err != nil {
		return api.Delivery{}, err
	}
	d, err := e.API.DestinationDelivery(ctx, r.dest, row.UUID)
	e.called("delivery", err)
	return d, err
}

// list reads a session's delivery list, by delivery UUID; nil when the
// session has none Didit will show.
func (r *destinationReader) list(ctx context.Context, sessionID string) (map[string]api.Delivery, error) {
	e := r.step.e
	if err := r.step.call(ctx); err != nil {
		return nil, err
	}
	all, err := e.API.SessionDeliveries(ctx, sessionID)
	e.called("session_deliveries", err)
	switch {
	case err == nil:
		list := make(map[string]api.Delivery, len(all))
		for _, d := range all {
			list[d.UUID] = d
		}
		return list, nil
	case api.KindOf(err) == api.KindCredentials:
		// A scoped key without sessions:read: one by one.
		r.listsRefused = true
	case !itemFailed(err):
		return nil, err
	}
	return nil, nil
}

// settle reads each failed delivery not yet settled (with r), feeds its
// event if we do not hold it, and settles the deliveries in one write,
// after their events reached their sessions.
func (s *step) settle(ctx context.Context, failed []api.DeliveryRow, r reader) (err error) {
	if len(failed) == 0 {
		return nil
	}
	e := s.e
	uuids := make([]string, len(failed))
	for i, row := range failed {
		uuids[i] = row.UUID
	}
	settled, err := e.Store.SettledDeliveries(ctx, uuids)
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
	erased, err := e.Store.ErasedSessions(ctx, sessions)
	if err != nil {
		return err
	}
	var done []store.SettledDelivery
	defer func() {
		// What was fed is settled even when a later row fails the step.
		if len(done) > 0 {
			err = errors.Join(err, e.Store.SettleDeliveries(ctx, done))
		}
	}()
	for _, row := range failed {
		if settled[row.UUID] {
			continue
		}
		settled[row.UUID] = true
		outcome, err := s.settleOne(ctx, row, erased[row.SessionID], r)
		if err != nil {
			return err
		}
		switch outcome {
		case Fed:
			s.res.Repaired++
		case Held:
			s.res.Held++
		case Unusable:
			s.res.Errors++
		}
		done = append(done, store.SettledDelivery{UUID: row.UUID, SessionID: row.SessionID, Outcome: string(outcome)})
	}
	return nil
}

// settleOne reads one failed delivery and feeds its event, unless its
// session was erased.
func (s *step) settleOne(ctx context.Context, row api.DeliveryRow, erased bool, r reader) (Outcome, error) {
	if erased {
		s.e.log().InfoContext(ctx, "reconcile: a failed delivery of an erased session settled unread", "delivery", row.UUID,
			"session_id", row.SessionID)
		return Erased, nil
	}
	d, err := r.read(ctx, row)
	switch {
	case itemFailed(err):
		// Gone, or an answer no retry will change: settled, so it does
		// not stop every later run at the same place.
		s.e.log().WarnContext(ctx, "reconcile: a failed delivery could not be read; skipped", "delivery", row.UUID,
			"session_id", row.SessionID, "error_kind", api.KindOf(err).String(), "error", err)
		return Unusable, nil
	case err != nil:
		return "", err
	}
	return s.feedBody(ctx, d.RequestBody)
}

// feedBody hands a delivered body's event to its session unless we hold it
// already or the step fed it. The body is personal data: it is parsed,
// never logged.
func (s *step) feedBody(ctx context.Context, body []byte) (Outcome, error) {
	e := s.e
	ev, err := didit.ParseEvent(body)
	if err == nil && !isV3(body) {
		err = errors.New("not a webhook_version v3 body")
	}
	if err != nil || ev.SessionID == "" || ev.ConsoleTest() || !ev.WebhookType.Known() {
		// What the receiver would have refused, acknowledged as a test or
		// ignored (an unhandled webhook_type).
		e.log().WarnContext(ctx, "reconcile: a failed delivery holds no session event we handle; skipped", "reason", reasonOf(err),
			"webhook_type", string(ev.WebhookType))
		return Unusable, nil
	}
	ref := store.EventRef{SessionID: ev.SessionID, EventKey: ev.Key()}
	if s.fed[ref] {
		return Held, nil
	}
	held, err := e.Store.HeldEvents(ctx, []store.EventRef{ref})
	if err != nil {
		return "", err
	}
	if held[ref] {
		return Held, nil
	}
	se := contract.SessionEvent{Event: ev, Proof: didit.Proof{Source: didit.SourceAPI, Timestamp: ev.Timestamp}, ReceivedAt: e.now().UTC()}
	if err := e.feed(ctx, se); err != nil {
		return "", err
	}
	s.fed[ref] = true
	e.log().InfoContext(ctx, "reconcile: missed event fed from Didit's delivery log", "session_id", ev.SessionID,
		"event_id", ev.EventID, "webhook_type", string(ev.WebhookType), "status", string(ev.Status))
	return Fed, nil
}

// feed hands an event the receiver missed to its session.
func (e *Engine) feed(ctx context.Context, se contract.SessionEvent) error {
	// The business's metadata stays out of Temporal, as the receiver keeps it.
	se.Event.Metadata = nil
	return e.Feed.Feed(ctx, se)
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
