package fakedidit

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/diditflow/diditflow/internal/harness/simulator"
)

// SeedFailedDelivery logs, without sending anything, the delivery Deliver
// would have made of body to the default destination if the receiver had
// answered responseStatus to every attempt: the first attempt at at, each
// retry RetryDelays later (none when Didit would not retry that status). It
// builds a backlog of failed deliveries (the receiver's Temporal was down)
// in far less time than Deliver takes to send it.
//
// As Deliver does, it first records the body's session state, and the
// attempts repeat the first one's bytes and signatures, stamped at at (each
// re-stamped and re-signed at its own time with RestampRetries). The log
// stays in time order, so the seeded attempts list among the others as
// they would have been sent. It returns the attempts logged.
//
// The default destination must be one Deliver would send body to: live,
// enabled, with a url and subscribed to body's webhook_type.
func (s *Server) SeedFailedDelivery(body []byte, responseStatus int, at time.Time) ([]LoggedDelivery, error) {
	if responseStatus >= 200 && responseStatus < 300 {
		return nil, fmt.Errorf("fakedidit: seed a failed delivery: status %d is a success", responseStatus)
	}
	ev, err := parseEvent(body)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(s.targets(ev.str("webhook_type")), DefaultDestinationUUID) {
		return nil, errors.New("fakedidit: seed a failed delivery: the default destination would not be sent " +
			"this webhook (disabled, without a url, or not subscribed to its webhook_type)")
	}
	d, _ := s.destination(DefaultDestinationUUID)
	s.record(ev.update())

	var recs []*LoggedDelivery
	var req signed
	when := at
	delays := s.retryDelays()
	for i := 0; ; i++ {
		if i == 0 || s.opts.RestampRetries {
			if req, err = signAt(ev, d.secret, when); err != nil {
				return nil, err
			}
		}
		recs = append(recs, &LoggedDelivery{
			UUID:            simulator.NewUUID(),
			DestinationUUID: d.uuid,
			SessionID:       ev.str("session_id"),
			WebhookType:     ev.str("webhook_type"),
			EventID:         ev.str("event_id"),
			RequestURL:      d.url,
			ResponseStatus:  responseStatus,
			Status:          "failed",
			CreatedAt:       when,
			RequestHeader:   flatten(req.header),
			RequestBody:     req.body,
		})
		if !retryable(Attempt{Status: responseStatus}) || i >= len(delays) {
			break
		}
		when = when.Add(delays[i])
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]LoggedDelivery, len(recs))
	for i, rec := range recs {
		// After every attempt logged at the same time or earlier.
		pos := len(s.log)
		for pos > 0 && s.log[pos-1].CreatedAt.After(rec.CreatedAt) {
			pos--
		}
		s.log = slices.Insert(s.log, pos, rec)
		out[i] = *rec
	}
	return out, nil
}
