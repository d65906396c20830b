package contract

import "github.com/diditflow/diditflow/didit"

// HitReviewsSignal carries HitReviews between a session and its AML cases:
// from a session to an open case, the review statuses Didit now shows for
// some of its hits (a review in Didit's console); from a case that resolved
// meanwhile back to its session, those that differ from its resolution.
// diditflow sends it itself; an operator never needs to.
const HitReviewsSignal = "hit-reviews"

// ConsoleReviewer is the reviewer recorded for a case decided in Didit's
// console when the session's reviews name nobody.
const ConsoleReviewer = "Didit console"

// HitReview is the review status Didit shows for one hit, as of an event.
type HitReview struct {
	HitID string `json:"hit_id"`
	// ReviewStatus is Didit's: Unreviewed, Confirmed Match, False Positive
	// or Inconclusive (didit.Review*).
	ReviewStatus string `json:"review_status"`
	// At is when the event that showed it happened (Unix seconds): an older
	// event never undoes what a newer one showed.
	At int64 `json:"at"`
}

// HitReviews is the payload of HitReviewsSignal: reviews Didit shows for
// hits of one AML case, brought by one of the session's events.
type HitReviews struct {
	SessionID string `json:"session_id"`
	CaseID    string `json:"case_id"`
	// EventKey is the session's event that brought them: what a change
	// after the case's resolution is recorded, and its hooks started, by.
	EventKey string      `json:"event_key"`
	Hits     []HitReview `json:"hits"`
	// Reviewer is who Didit's reviews of the session name last, if anyone
	// (Didit names no reviewer per hit).
	Reviewer string `json:"reviewer,omitempty"`
}

// Final reports whether a review status is a verdict: Confirmed Match,
// False Positive or Inconclusive.
func Final(reviewStatus string) bool {
	_, ok := OutcomeOf(reviewStatus)
	return ok
}

// OutcomeOf is the outcome a final review status stands for.
func OutcomeOf(reviewStatus string) (Outcome, bool) {
	switch reviewStatus {
	case didit.ReviewConfirmedMatch:
		return ConfirmedMatch, true
	case didit.ReviewFalsePositive:
		return FalsePositive, true
	case didit.ReviewInconclusive:
		return Inconclusive, true
	}
	return "", false
}

// ReviewStatus is Didit's review status for an outcome.
func (o Outcome) ReviewStatus() string {
	switch o {
	case ConfirmedMatch:
		return didit.ReviewConfirmedMatch
	case FalsePositive:
		return didit.ReviewFalsePositive
	}
	return didit.ReviewInconclusive
}

// Worst is the outcome of a case whose hits have these outcomes: a
// confirmed match if any hit is one, else inconclusive if any is, else
// false positive. One true match makes the case one; a doubt left on any hit
// keeps it from being cleared.
func Worst(outcomes ...Outcome) Outcome {
	worst := FalsePositive
	for _, o := range outcomes {
		switch {
		case o == ConfirmedMatch:
			return ConfirmedMatch
		case o == Inconclusive:
			worst = Inconclusive
		}
	}
	return worst
}
