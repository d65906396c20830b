package workflows

import (
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
)

// needsDecision reports whether the event's effects need a decision it does
// not carry: one only X-Signature-Simple vouches for, one that did not
// parse, or none for a status that notifies the user (Kyc Expired and
// Resubmitted come without one, and need an address the run may not hold).
func (s *session) needsDecision(se contract.SessionEvent, batchEmail bool) bool {
	ev := se.Event
	if se.Proof.EnvelopeOnly || ev.DecisionError != "" {
		return true
	}
	if ev.Decision != nil || noticeFor(ev.Status) == "" {
		return false
	}
	switch ev.Status {
	case didit.StatusResubmitted, didit.StatusKycExpired:
		return s.state.ContactEmail == "" && !batchEmail
	}
	return true
}

// carriesEmail reports whether an event brings a trustworthy address: a
// fully signed event with a decision that names one.
func carriesEmail(se contract.SessionEvent) bool {
	return !se.Proof.EnvelopeOnly && se.Event.Decision.ContactEmail() != ""
}

// batchDecisions is what a batch's decision fetch decided about its events,
// by event key; apply reads it.
type batchDecisions struct {
	// verified events carry the fetched decision instead of their own.
	verified map[string]bool
	// superseded events are of another status than the fetched decision:
	// kept in the run's history only, never recorded; the event made from
	// the fetched decision carries the effects.
	superseded map[string]bool
	// missing events needed a decision that could not be fetched: why.
	missing map[string]string
}

// fetchDecisions fetches the session's decision, once per batch, if any
// fresh event needs it, and returns the events to record: fresh, enriched,
// and possibly one more made from the fetched decision. An event of the
// fetched status takes the fetched decision; one of another status is
// superseded (kept in the run's history only) and the event made from the
// fetched decision, ordered at Didit's answer, carries the effects; a
// decision that cannot be fetched is flagged.
func (s *session) fetchDecisions(fresh []contract.SessionEvent) []contract.SessionEvent {
	s.batch = batchDecisions{}
	// An address in the same batch (Approved, then Kyc Expired, sent
	// together) serves the notices of the events without one.
	batchEmail := slices.ContainsFunc(fresh, carriesEmail)
	var needs []int
	for i, se := range fresh {
		if s.needsDecision(se, batchEmail) {
			needs = append(needs, i)
		}
	}
	if len(needs) == 0 {
		return fresh
	}
	var got activities.FetchedDecision
	if s.state.Erased {
		// Known from an earlier batch: not even asked of the activity,
		// which would answer the same from the records.
		got.Missing = activities.DecisionErased
	} else {
		ctx := s.ctx
		if q := s.settings.DiditAPIQueue; q != "" {
			ctx = workflow.WithTaskQueue(ctx, q)
		}
		if !s.steps.run(ctx, "fetch decision", acts.FetchDecision, s.state.SessionID, &got) {
			got.Missing = "skipped"
		}
	}
	s.batch = batchDecisions{verified: map[string]bool{}, superseded: map[string]bool{}, missing: map[string]string{}}
	if got.Missing == activities.DecisionErased {
		s.erased()
	}
	if got.Decision == nil {
		for _, i := range needs {
			s.batch.missing[fresh[i].Event.Key()] = missingReason(got.Missing)
		}
		if got.Missing == activities.DecisionNotFound || got.Missing == activities.DecisionRefused {
			// Worth a look whatever the events still manage without it.
			s.flags.raise(s.ctx, FlagDecisionUnavailable, "the session's decision could not be fetched: "+missingReason(got.Missing))
		}
		return fresh
	}
	d := got.Decision
	if email := d.ContactEmail(); email != "" {
		s.state.ContactEmail = email
	}
	other := false
	for _, i := range needs {
		se := &fresh[i]
		key := se.Event.Key()
		if d.Status != se.Event.Status {
			// Didit says otherwise: the event is kept in the run's history
			// only, never recorded, so it cannot move the record (Approved
			// and Declined share a rank) nor mail anyone.
			s.batch.superseded[key] = true
			other = true
			continue
		}
		fetched := *d
		se.Event.Decision, se.Event.DecisionError = &fetched, ""
		se.Event.VendorData = d.VendorData
		s.batch.verified[key] = true
	}
	if other {
		fresh = slices.DeleteFunc(fresh, func(se contract.SessionEvent) bool {
			if s.batch.superseded[se.Event.Key()] {
				s.remember(historyEntry(se, "superseded"))
				return true
			}
			return false
		})
		fe := contract.DecisionEvent(s.state.SessionID, d, got.At, workflow.Now(s.ctx))
		if key := fe.Event.Key(); !s.seen(key) {
			s.see(key)
			fresh = append(fresh, fe)
			slices.SortStableFunc(fresh, compareOrder)
		}
	}
	return fresh
}

func missingReason(missing string) string {
	switch missing {
	case activities.DecisionNoKey:
		return "no DIDIT_API_KEY is configured"
	case activities.DecisionNotFound:
		return "Didit has no such session for our API key (404)"
	case activities.DecisionRefused:
		return "Didit refused our API key or the call (401/403/4xx)"
	case activities.DecisionErased:
		return "the session was erased, so its decision is not asked for"
	case "skipped":
		return "an operator skipped the fetch"
	}
	return "unknown (" + missing + ")"
}
