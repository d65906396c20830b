package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/kyc"
)

// Subscriber is a business's workflow waiting for the session
// (kyc.AwaitOutcome). It stays until it is told a decided status, its run
// is found closed, it unsubscribes, or its Until passes.
type Subscriber struct {
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	Until      time.Time `json:"until"`
	// Told is the Sequence of the last change it was told; -1 until it is
	// told where the session stands.
	Told int64 `json:"told"`
}

func (sub Subscriber) is(other Subscriber) bool {
	return sub.WorkflowID == other.WorkflowID && sub.RunID == other.RunID
}

const (
	// maxRefused bounds the refused subscribers waiting to be told so.
	maxRefused = 20
	// subscriberGrace is how long past its Until a subscriber is kept:
	// its own timer fires first, and an outcome that came with it is
	// still told.
	subscriberGrace = time.Minute
)

// subscriptions are the signals that add and remove subscribers.
type subscriptions struct {
	subscribe, unsubscribe workflow.ReceiveChannel
}

func newSubscriptions(ctx workflow.Context) subscriptions {
	return subscriptions{
		subscribe:   workflow.GetSignalChannel(ctx, contract.SubscribeSignal),
		unsubscribe: workflow.GetSignalChannel(ctx, contract.UnsubscribeSignal),
	}
}

// waiting reports whether a subscription signal waits to be taken in: a
// run that ended now would lose it.
func (c subscriptions) waiting() bool { return c.subscribe.Len() > 0 || c.unsubscribe.Len() > 0 }

// takeSubscriptions takes in the subscription signals that arrived: the
// subscriptions first, so that a subscription and its end that arrive
// together leave no subscriber.
func (s *session) takeSubscriptions() {
	s.expireSubscribers()
	for {
		var sub kyc.Subscription
		if !s.subs.subscribe.ReceiveAsync(&sub) {
			break
		}
		s.subscribe(sub)
	}
	for {
		var sub kyc.Subscription
		if !s.subs.unsubscribe.ReceiveAsync(&sub) {
			break
		}
		n := len(s.state.Subscribers)
		s.state.Subscribers = slices.DeleteFunc(s.state.Subscribers, subscriber(sub).is)
		if len(s.state.Subscribers) < n {
			workflow.GetLogger(s.ctx).Info("subscriber left", "workflow_id", sub.WorkflowID)
		}
	}
}

func subscriber(sub kyc.Subscription) Subscriber {
	return Subscriber{WorkflowID: sub.WorkflowID, RunID: sub.RunID, Until: sub.Until, Told: -1}
}

// subscribe adds a subscriber, to be told where the session stands. One
// that subscribes again (a retried subscription) is told again. Past
// kyc.MaxSubscribers it is refused, and told so.
func (s *session) subscribe(sub kyc.Subscription) {
	logger := workflow.GetLogger(s.ctx)
	if sub.SessionID != s.state.SessionID || sub.WorkflowID == "" {
		logger.Warn("subscription ignored: it names another session, or no workflow", "workflow_id", sub.WorkflowID)
		return
	}
	n := subscriber(sub)
	if i := slices.IndexFunc(s.state.Subscribers, n.is); i >= 0 {
		s.state.Subscribers[i] = n
		return
	}
	if len(s.state.Subscribers) >= kyc.MaxSubscribers {
		logger.Warn("subscription refused: too many subscribers", "workflow_id", sub.WorkflowID, "subscribers", len(s.state.Subscribers))
		s.state.Refused = append(s.state.Refused, n)
		if over := len(s.state.Refused) - maxRefused; over > 0 {
			s.state.Refused = slices.Delete(s.state.Refused, 0, over)
		}
		return
	}
	logger.Info("subscriber joined", "workflow_id", sub.WorkflowID, "until", sub.Until)
	s.state.Subscribers = append(s.state.Subscribers, n)
}

// expireSubscribers drops the subscribers whose wait is over.
func (s *session) expireSubscribers() {
	now := workflow.Now(s.ctx)
	s.state.Subscribers = slices.DeleteFunc(s.state.Subscribers, func(sub Subscriber) bool {
		return !now.Before(sub.Until.Add(subscriberGrace))
	})
}

// waitedFor reports whether a subscriber still waits: the run stays open
// for it, so that it is told what comes.
func (s *session) waitedFor() bool {
	now := workflow.Now(s.ctx)
	return slices.ContainsFunc(s.state.Subscribers, func(sub Subscriber) bool { return now.Before(sub.Until.Add(subscriberGrace)) })
}

// nextExpiry is when the next subscriber's wait is over.
func (s *session) nextExpiry() (time.Time, bool) {
	var next time.Time
	for _, sub := range s.state.Subscribers {
		if at := sub.Until.Add(subscriberGrace); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next, !next.IsZero()
}
