package workflows

import (
	"slices"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/kyc"
)

// kycActs, like acts, names the activities of the businesses' workflows.
var kycActs *activities.KYC

// maxChanges bounds the status changes the state keeps for the
// subscribers that were told an earlier one.
const maxChanges = 20

// learn follows a recorded event for the businesses' workflows: the state
// learns where the session stands (the number and time of the change that
// set its status), and a status change the event made is kept for the
// subscribers and queued for the hooks, once: a redelivery whose change
// was announced before (in an earlier run) is not announced again, while a
// first recording whose answer was lost is.
func (s *session) learn(se contract.SessionEvent, res activities.RecordResult) {
	switch {
	case res.Sequence > 0 && res.Sequence == res.StatusSequence:
		s.state.StatusSeq, s.state.StatusAt, s.state.Known = res.Sequence, orderTime(se), true
	case res.StatusSequence > s.state.StatusSeq:
		// A change this run did not record: when it happened, the next
		// announcement reads from the records.
		s.state.StatusSeq, s.state.Known = res.StatusSequence, false
	}
	if res.Sequence == 0 || (res.Duplicate && res.Announced) {
		return
	}
	ev := se.Event
	at := time.Unix(orderTime(se), 0).UTC()
	if n := len(s.state.Changes); n == 0 || s.state.Changes[n-1].Sequence < res.Sequence {
		s.state.Changes = append(s.state.Changes, kyc.Change{Sequence: res.Sequence, Status: ev.Status, At: at})
		if over := len(s.state.Changes) - maxChanges; over > 0 {
			s.state.Changes = slices.Delete(s.state.Changes, 0, over)
		}
	}
	if len(s.settings.Hooks) > 0 {
		s.state.Hooked = append(s.state.Hooked, kyc.Event{Kind: kyc.StatusChanged, Key: contract.HookEventKey(ev.SessionID, res.Sequence),
			SessionID: ev.SessionID, Status: ev.Status, PreviousStatus: res.PreviousStatus, At: at, Sequence: res.Sequence})
	}
}

// runAnnouncements tells the businesses' workflows what concerns them, for
// the whole run: each subscriber what it was not told, each hook the
// events queued for it, all in one local activity a round. It never parks:
// a business's worker being down delays nothing here (a signal or a start
// needs only Temporal), and what fails is retried; past the step budget the
// session is flagged, and the rounds go on.
func (s *session) runAnnouncements(ctx workflow.Context) {
	for {
		_ = workflow.Await(ctx, s.announcementDue)
		s.announce(ctx)
	}
}

// announcementDue reports whether someone is to be told something.
func (s *session) announcementDue() bool {
	return len(s.state.Hooked) > 0 || len(s.state.Refused) > 0 || slices.ContainsFunc(s.state.Subscribers, s.behind)
}

// behind reports whether a subscriber was not told where the session
// stands: told nothing yet, or an earlier status. While the run does not
// know where the session stands, every subscriber is, and the announcement
// reads it from the records.
func (s *session) behind(sub Subscriber) bool {
	return !s.state.Known || (s.state.Status != "" && sub.Told < s.state.StatusSeq)
}

// changesFor is what a subscriber is to be told, as far as the run knows:
// every change after the last it was told, or, for a new subscriber, where
// the session stands. The announcement adds where the records say it stands
// when they are ahead.
func (s *session) changesFor(sub Subscriber) []kyc.Change {
	var out []kyc.Change
	if sub.Told >= 0 {
		for _, c := range s.state.Changes {
			if c.Sequence > sub.Told {
				out = append(out, c)
			}
		}
	}
	if n := len(out); s.state.Known && s.state.Status != "" && (n == 0 || out[n-1].Sequence < s.state.StatusSeq) {
		out = append(out, kyc.Change{Sequence: s.state.StatusSeq, Status: s.state.Status, At: time.Unix(s.state.StatusAt, 0).UTC()})
	}
	return out
}

// announce makes one round of announcements.
func (s *session) announce(ctx workflow.Context) {
	in := activities.Announcement{SessionID: s.state.SessionID}
	var told []Subscriber
	for _, sub := range s.state.Subscribers {
		if s.behind(sub) {
			told = append(told, sub)
			in.Updates = append(in.Updates, activities.SubscriberUpdate{WorkflowID: sub.WorkflowID, RunID: sub.RunID, Changes: s.changesFor(sub)})
		}
	}
	refused := len(s.state.Refused)
	for _, sub := range s.state.Refused {
		in.Updates = append(in.Updates, activities.SubscriberUpdate{WorkflowID: sub.WorkflowID, RunID: sub.RunID,
			Refused: "the session has " + strconv.Itoa(kyc.MaxSubscribers) + " subscribers"})
	}
	hooked := len(s.state.Hooked)
	if hooked > 0 {
		in.Hooks, in.Events = s.settings.Hooks, slices.Clone(s.state.Hooked)
		for _, e := range in.Events {
			if e.Kind == kyc.StatusChanged {
				in.Announced = max(in.Announced, e.Sequence)
			}
		}
	}

	var res activities.AnnounceResult
	s.announcing = true
	err := workflow.ExecuteLocalActivity(s.announceOptions(ctx), kycActs.Announce, in).Get(ctx, &res)
	s.announcing = false
	if err != nil {
		if !temporal.IsCanceledError(err) {
			s.flags.raise(ctx, FlagNotAnnounced, "the businesses' workflows could not be told of the session's events "+
				"(hooks to start, subscribers to tell) within the step budget: retrying; see the worker's log")
		}
		return
	}
	s.heard(res.Status)
	for i, sub := range told {
		r := res.Updates[i]
		j := slices.IndexFunc(s.state.Subscribers, sub.is)
		switch {
		case j < 0:
		case r.Gone || r.Decided:
			s.state.Subscribers = slices.Delete(s.state.Subscribers, j, j+1)
		default:
			s.state.Subscribers[j].Told = max(s.state.Subscribers[j].Told, r.Told)
		}
	}
	s.state.Refused = slices.Delete(s.state.Refused, 0, refused)
	s.state.Hooked = slices.Delete(s.state.Hooked, 0, hooked)
}

// heard takes where the records said the session stands, when it is news:
// a run that recorded nothing learns it; one that recorded the change
// learns nothing new; a reading older than what the run recorded since is
// ignored.
func (s *session) heard(snap activities.SessionSnapshot) {
	if snap.Sequence < s.state.StatusSeq || (snap.Sequence == s.state.StatusSeq && s.state.Known) {
		return
	}
	s.state.StatusSeq, s.state.StatusAt, s.state.Known = snap.Sequence, snap.At, true
	if snap.Status != "" {
		s.state.Status = snap.Status
	}
}

// announceOptions retry an announcement as any step, for the step budget.
func (s *session) announceOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: s.settings.StepBudget,
		RetryPolicy:            stepRetryPolicy(),
	})
}
