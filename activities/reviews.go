package activities

import (
	"context"
	"errors"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
)

// RecordHitReviews records on an open case's record the review statuses
// Didit's console gave its hits (store.RecordHitReviews): a partial review
// is recorded while the case stays open.
func (a *Activities) RecordHitReviews(ctx context.Context, in contract.HitReviews) error {
	if _, err := a.Store.RecordHitReviews(ctx, in.CaseID, in.Hits); err != nil {
		return classify("record hit reviews", err)
	}
	return nil
}

// ReviewChange is what reviews that came after a case's resolution changed
// (store.ReviewChange).
type ReviewChange struct {
	// Hits are the reviews that changed a hit's status: none for Didit's
	// echo of what diditflow wrote, or for an older event.
	Hits []contract.HitReview `json:"hits,omitempty"`
	// Sequence numbers the change in the session's sequence, for the
	// business's hooks.
	Sequence int64 `json:"sequence,omitempty"`
	// Outcome is the case's resolution; Open is set when its record says
	// it is open (its workflow no longer runs, say terminated).
	Outcome contract.Outcome `json:"outcome,omitempty"`
	Open    bool             `json:"open,omitempty"`
}

// RecordReviewChange records reviews of a case's hits that came after its
// resolution (its workflow no longer runs, or took them resolved), once per
// case and event: what they changed, numbered for the hooks. Didit's echo of
// diditflow's own write-back changes nothing.
func (a *Activities) RecordReviewChange(ctx context.Context, in contract.HitReviews) (ReviewChange, error) {
	c, err := a.Store.RecordReviewChange(ctx, in.SessionID, in.CaseID, in.EventKey, in.Hits, a.now())
	if errors.Is(err, store.ErrNotFound) {
		// A case never recorded (its workflow never ran its first step):
		// there is nothing its reviews could have changed.
		a.log().WarnContext(ctx, "hit reviews of an AML case never recorded", "case", in.CaseID)
		return ReviewChange{}, nil
	}
	if err != nil {
		return ReviewChange{}, classify("record a review change", err)
	}
	return ReviewChange{Hits: c.Hits, Sequence: c.Sequence, Outcome: c.Outcome, Open: c.State == store.AMLCaseOpen}, nil
}

// ReportReviews hands reviews that came to a case after its resolution back
// to the case's session, whose run records them and flags the change for a
// person (contract.HitReviewsSignal), starting a run if none is open.
func (k *KYC) ReportReviews(ctx context.Context, in contract.HitReviews) error {
	return k.signalSession(ctx, "report hit reviews to the session", in.SessionID, contract.HitReviewsSignal, in)
}
