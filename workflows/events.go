package workflows

import (
	"cmp"
	"slices"
	"strconv"

	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
)

// Bounds on a session's state and history, whatever arrives.
const (
	// maxSeen is how many event keys a run remembers to drop redeliveries
	// without an activity; an older key redelivered is recognised by the
	// records (RecordResult.Duplicate) and changes nothing.
	maxSeen = 2000
	// maxHistory is how many entries of History the state keeps.
	maxHistory = 200
	// maxHistoryLength continues a run as new once its history is this long,
	// whatever the server suggests (it suggests at a few thousand events).
	maxHistoryLength = 2000
	// maxRecordBatch is the most events one record activity takes.
	maxRecordBatch = 100
	// maxCarried is the most unhandled events a run hands to the next one;
	// more are handled before it continues as new.
	maxCarried = 100
	// maxOverdueBatches is the most batches a run handles once it must
	// continue as new; then it carries what waits, however much, so a
	// flood cannot keep it from continuing.
	maxOverdueBatches = 4
)

// orderTime is when an event happened, as far as its signature proves:
// Didit's created_at for a fully signed event; for one that only
// X-Signature-Simple verified, whose created_at is not signed, the signed
// timestamp, which is never before it. One rule for both kinds, so an older
// signed event cannot move the record back past an envelope-only one, nor
// the other way round. Because a resent old event is signed anew, an
// envelope-only event is moreover never applied to an earlier stage
// (RecordInput.EnvelopeOnly).
func orderTime(se contract.SessionEvent) int64 {
	if se.Proof.EnvelopeOnly {
		return se.Event.Timestamp
	}
	return se.Event.CreatedAt
}

func compareOrder(a, b contract.SessionEvent) int {
	if c := cmp.Compare(orderTime(a), orderTime(b)); c != 0 {
		return c
	}
	return cmp.Compare(a.Event.Status.Rank(), b.Event.Status.Rank())
}

// handle handles what arrived in one workflow task: redeliveries are
// dropped, the rest recorded in event-time order, in batches, and followed
// by their side effects.
func (s *session) handle(batch []contract.SessionEvent) {
	slices.SortStableFunc(batch, compareOrder)
	var fresh []contract.SessionEvent
	for _, se := range batch {
		key := se.Event.Key()
		if s.seen(key) {
			s.remember(historyEntry(se, "duplicate"))
			continue
		}
		s.see(key)
		fresh = append(fresh, se)
	}
	fresh = s.fetchDecisions(fresh)
	for len(fresh) > 0 {
		chunk := fresh[:min(len(fresh), maxRecordBatch)]
		fresh = fresh[len(chunk):]
		s.record(chunk)
	}
	s.upsertSearchAttributes()
	s.handled += len(batch)
	if s.mustContinueAsNew() {
		s.overdue++
	}
}

// record records a chunk of fresh events in one step and applies each. A
// chunk the operator gives up, which one bad event can cause, is tried
// event by event, so only the bad one is skipped.
func (s *session) record(chunk []contract.SessionEvent) {
	ins := make([]activities.RecordInput, len(chunk))
	for i, se := range chunk {
		ev := se.Event
		hits := ev.Decision.AMLHits()
		ins[i] = activities.RecordInput{
			SessionID: ev.SessionID, EventKey: ev.Key(), WebhookType: ev.WebhookType, Status: ev.Status,
			EventCreatedAt: orderTime(se), VendorData: ev.VendorData, AMLHits: len(hits), AMLMaxRisk: maxRisk(hits),
			EnvelopeOnly: se.Proof.EnvelopeOnly, Unannounced: len(s.settings.Hooks) > 0,
		}
		if !se.Proof.EnvelopeOnly || s.batch.verified[ev.Key()] {
			ins[i].ContactEmail = ev.Decision.ContactEmail()
		}
	}
	name := "record event " + ins[0].EventKey
	if len(ins) > 1 {
		name = "record events " + ins[0].EventKey + " and " + strconv.Itoa(len(ins)-1) + " more"
	}
	var results []activities.RecordResult
	if s.steps.runLocal(s.ctx, name, acts.RecordEvents, ins, &results) && len(results) == len(chunk) {
		for i, se := range chunk {
			s.apply(se, results[i])
		}
		return
	}
	if len(chunk) == 1 {
		s.remember(historyEntry(chunk[0], "skipped"))
		return
	}
	for i, se := range chunk {
		var res activities.RecordResult
		if !s.steps.runLocal(s.ctx, "record event "+ins[i].EventKey, acts.RecordVerification, ins[i], &res) {
			s.remember(historyEntry(se, "skipped"))
			continue
		}
		s.apply(se, res)
	}
}

// apply follows one recorded event: the state, the flags, and the side
// effects its status change or its AML hits call for.
func (s *session) apply(se contract.SessionEvent, res activities.RecordResult) {
	ev := se.Event
	key := ev.Key()
	outcome := "stale"
	switch {
	case res.Duplicate:
		// Recorded before: by an attempt whose answer was lost, or by an
		// earlier run. What it did then still counts below.
		outcome = "duplicate"
	case res.Applied:
		outcome = "applied"
	}
	s.remember(historyEntry(se, outcome))
	workflow.GetLogger(s.ctx).Info("event recorded", "event_key", key, "webhook_type", ev.WebhookType,
		"status", ev.Status, "outcome", outcome)
	if res.CurrentStatus != "" {
		s.state.Status = res.CurrentStatus
	}
	if res.Erased {
		s.erased()
	}
	s.learn(se, res)
	current := res.Applied && res.CurrentStatus == ev.Status
	if s.batch.superseded[key] {
		// The fetched decision, of a later status, carries the effects.
		return
	}
	if (se.Proof.EnvelopeOnly || ev.DecisionError != "") && !s.batch.verified[key] {
		// Without a trustworthy decision there is no address to notify and
		// no AML result to act on: the status stands, its effects wait for
		// an event that confirms it.
		reason := "decision of event " + key + " is unusable (" + unusableReason(se) + ")"
		if why, ok := s.batch.missing[key]; ok {
			reason += " and could not be fetched: " + why
		}
		s.flags.raise(s.ctx, FlagUnusableDecision, reason+"; check the session in Didit's console")
		if res.StatusChanged(ev.Status) {
			s.state.Unconfirmed = true
		}
		return
	}
	if current && ev.VendorData != "" && !s.state.Erased {
		s.state.VendorData = ev.VendorData
	}
	if email := ev.Decision.ContactEmail(); email != "" && (current || s.state.ContactEmail == "") && !s.state.Erased {
		s.state.ContactEmail = email
	}
	hits := ev.Decision.AMLHits()
	if len(hits) > 0 {
		s.state.AMLHit = true
	}
	s.queueCases(ev, hits, orderTime(se))
	s.noteReviews(se)
	confirmed := s.state.Unconfirmed && res.CurrentStatus == ev.Status
	if current {
		s.state.Unconfirmed = false
	}
	if res.StatusChanged(ev.Status) || confirmed {
		s.state.Unconfirmed = false
		s.queueNotice(ev, key)
	}
}

func unusableReason(se contract.SessionEvent) string {
	if se.Proof.EnvelopeOnly {
		return "only X-Signature-Simple verified"
	}
	return "unreadable decision"
}

func maxRisk(hits []didit.AMLHit) *float64 {
	var max *float64
	for _, h := range hits {
		if h.RiskScore != nil && (max == nil || *h.RiskScore > *max) {
			v := *h.RiskScore
			max = &v
		}
	}
	return max
}

// seen reports whether the run remembers handling the event key.
func (s *session) seen(key string) bool {
	if s.seenKeys == nil {
		s.seenKeys = make(map[string]bool, len(s.state.Seen))
		for _, k := range s.state.Seen {
			s.seenKeys[k] = true
		}
	}
	return s.seenKeys[key]
}

// see remembers an event key, forgetting the oldest past maxSeen.
func (s *session) see(key string) {
	s.seen(key) // builds the index
	s.seenKeys[key] = true
	s.state.Seen = append(s.state.Seen, key)
	if over := len(s.state.Seen) - maxSeen; over > 0 {
		for _, k := range s.state.Seen[:over] {
			delete(s.seenKeys, k)
		}
		s.state.Seen = slices.Delete(s.state.Seen, 0, over)
	}
}

// remember appends to History, forgetting the oldest past maxHistory.
func (s *session) remember(e HandledEvent) {
	s.state.History = append(s.state.History, e)
	if over := len(s.state.History) - maxHistory; over > 0 {
		s.state.History = slices.Delete(s.state.History, 0, over)
		s.state.Forgotten += over
	}
}

func historyEntry(se contract.SessionEvent, outcome string) HandledEvent {
	ev := se.Event
	return HandledEvent{Key: ev.Key(), WebhookType: ev.WebhookType, Status: ev.Status, CreatedAt: orderTime(se), Outcome: outcome}
}
