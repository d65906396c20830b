package fakedidit

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

// Choice is a button of a session's hosted page: what the user does, or
// what happens later in Didit's console.
type Choice string

// What the user does: finish, approved, declined or sent to manual review;
// leave half-way; never open the link.
const (
	Approve Choice = "approve"
	// Decline ends with a failed liveness check.
	Decline Choice = "decline"
	// Review ends In Review: the AML screening found a possible PEP match,
	// a hit left Unreviewed for compliance.
	Review Choice = "review"
	// Abandon leaves after the ID document.
	Abandon Choice = "abandon"
	// Expire lets a session never started expire.
	Expire Choice = "expire"
)

// What happens later in Didit's console: a reviewer's decision, or the KYC
// expiry policy ending an approval.
const (
	ReviewerApprove Choice = "reviewer-approve"
	ReviewerDecline Choice = "reviewer-decline"
	// ReviewerResubmit asks the user to redo the liveness check; the user's
	// choices are open again.
	ReviewerResubmit Choice = "reviewer-resubmit"
	KycExpire        Choice = "kyc-expire"
)

// choice is what a Choice does.
type choice struct {
	Choice
	Label    string
	reviewer bool
	// from are the statuses it is open to.
	from []didit.Status
	// steps are the statuses the session goes through, the outcome last;
	// the leading ones it is in already are skipped.
	steps []didit.Status
	// decision builds the outcome's decision; nil keeps the stored one.
	decision func(ss *session, now time.Time) (map[string]any, error)
}

// startedOrNot are the statuses in which the user can still go through
// the flow.
var startedOrNot = []didit.Status{didit.StatusNotStarted, didit.StatusInProgress, didit.StatusResubmitted}

var choices = []choice{
	{Choice: Approve, Label: "Finish: approved", from: startedOrNot,
		steps: []didit.Status{didit.StatusInProgress, didit.StatusApproved}, decision: fromTemplate("status-updated-approved.json", nil)},
	{Choice: Decline, Label: "Finish: declined (liveness check failed)", from: startedOrNot,
		steps: []didit.Status{didit.StatusInProgress, didit.StatusDeclined}, decision: fromTemplate("status-updated-approved.json", simulator.LivenessDeclined)},
	{Choice: Review, Label: "Finish: in review (AML hit, a possible PEP)", from: startedOrNot,
		steps: []didit.Status{didit.StatusInProgress, didit.StatusInReview}, decision: fromTemplate("status-updated-in-review.json", nil)},
	{Choice: Abandon, Label: "Leave after the ID document (Abandoned)", from: startedOrNot,
		steps: []didit.Status{didit.StatusInProgress, didit.StatusAbandoned}, decision: fromTemplate("status-updated-approved.json", simulator.LeftAfterDocument)},
	{Choice: Expire, Label: "Never open the link (Expired)", from: []didit.Status{didit.StatusNotStarted},
		steps: []didit.Status{didit.StatusExpired}},
	{Choice: ReviewerApprove, Label: "Reviewer approves", reviewer: true,
		from: []didit.Status{didit.StatusInReview, didit.StatusDeclined, didit.StatusAbandoned, didit.StatusKycExpired,
			didit.StatusResubmitted},
		steps: []didit.Status{didit.StatusApproved}, decision: reviewed(didit.StatusApproved)},
	{Choice: ReviewerDecline, Label: "Reviewer declines", reviewer: true,
		from: []didit.Status{didit.StatusInReview, didit.StatusApproved, didit.StatusAbandoned, didit.StatusKycExpired,
			didit.StatusResubmitted},
		steps: []didit.Status{didit.StatusDeclined}, decision: reviewed(didit.StatusDeclined)},
	{Choice: ReviewerResubmit, Label: "Reviewer asks for a new liveness check (Resubmitted)", reviewer: true,
		from: []didit.Status{didit.StatusInReview, didit.StatusDeclined}, steps: []didit.Status{didit.StatusResubmitted}},
	{Choice: KycExpire, Label: "KYC expires (Kyc Expired)", reviewer: true, from: []didit.Status{didit.StatusApproved},
		steps: []didit.Status{didit.StatusKycExpired}},
}

// fromTemplate builds a decision from one of the simulator's templates,
// changed by edit.
func fromTemplate(template string, edit func(map[string]any)) func(*session, time.Time) (map[string]any, error) {
	return func(*session, time.Time) (map[string]any, error) {
		d, err := simulator.Decision(template)
		if err == nil && edit != nil {
			edit(d)
		}
		return d, err
	}
}

// reviewed is the stored decision with a reviewer's entry for status.
func reviewed(status didit.Status) func(*session, time.Time) (map[string]any, error) {
	return func(ss *session, now time.Time) (map[string]any, error) {
		var d map[string]any
		if err := decodeNumbers(ss.decisionJSON(), &d); err != nil {
			return nil, err
		}
		reviews, _ := d["reviews"].([]any)
		d["reviews"] = append(reviews, map[string]any{
			"user": "reviewer@didit-fake.test", "new_status": string(status),
			"comment": "Decided on the fake Didit's page.", "created_at": isoTime(now),
		})
		return d, nil
	}
}

var (
	errNoHostedSession = errors.New("fakedidit: no session created through POST /v3/session/ has that id")
	errNotOpen         = errors.New("fakedidit: not open to the session now")
)

// Choose does what the hosted page's button c does to a session created
// through POST /v3/session/: the fake's record of it (decision API,
// sessions list) moves at once, and Didit's status.updated webhooks for
// each step go out in the background, one a second at the most, as the
// user would take them (Wait waits for them). It returns the session's new
// status, or an error when the session is unknown or c is not open to it.
func (s *Server) Choose(sessionID string, c Choice) (didit.Status, error) {
	i := slices.IndexFunc(choices, func(ch choice) bool { return ch.Choice == c })
	if i < 0 {
		return "", fmt.Errorf("fakedidit: no choice %q", c)
	}
	ch := choices[i]
	s.mu.Lock()
	ss := s.sessions[sessionID]
	if ss == nil || ss.hosted == nil {
		s.mu.Unlock()
		return "", errNoHostedSession
	}
	current := didit.Status(ss.status)
	if !slices.Contains(ch.from, current) {
		s.mu.Unlock()
		return "", fmt.Errorf("%w: %s to a session %s", errNotOpen, c, current)
	}
	steps := ch.steps
	for len(steps) > 1 && steps[0] == current {
		steps = steps[1:]
	}
	outcome := steps[len(steps)-1]
	var decision json.RawMessage
	if ch.decision != nil {
		d, err := ch.decision(ss, s.now())
		if err == nil {
			maps.Copy(d, ss.fields())
			d["status"] = string(outcome)
			decision, err = encodeJSON(d)
		}
		if err != nil {
			s.mu.Unlock()
			return "", fmt.Errorf("fakedidit: %s: %w", c, err)
		}
	}
	type timed struct {
		ev event
		at time.Time
	}
	var sends []timed
	for _, st := range steps {
		at := ss.nextEventTime(s.now())
		ev := s.statusEvent(ss, st, at)
		switch {
		case st == outcome && simulator.CarriesDecision(st):
			ev["decision"] = decision
		case st == didit.StatusResubmitted:
			ev["resubmit_info"] = map[string]any{
				"nodes_to_resubmit": []any{"feature_liveness_1"},
				"reasons":           map[string]any{"feature_liveness_1": "LOW_LIVENESS_SCORE"},
			}
		}
		sends = append(sends, timed{ev, at})
	}
	ss.status = string(outcome)
	if decision != nil {
		ss.decision = decision
	} else if ss.decision != nil {
		if d, err := withStatus(ss.decision, ss.status); err == nil {
			ss.decision = d
		}
	}
	s.mu.Unlock()
	for _, sd := range sends {
		s.bg.Go(func() { s.sendAt(s.ctx, sd.ev, sd.at) })
	}
	return outcome, nil
}

// callbackURL is where Didit sends the user's browser after the flow: the
// creator's callback with verificationSessionId and status appended.
func callbackURL(callback, sessionID string, status didit.Status) string {
	u, err := url.Parse(callback)
	if err != nil {
		return callback
	}
	q := url.Values{"verificationSessionId": {sessionID}, "status": {string(status)}}.Encode()
	if u.RawQuery != "" {
		u.RawQuery += "&" + q
	} else {
		u.RawQuery = q
	}
	return u.String()
}

// redirects are the outcomes after which Didit sends the browser to the
// callback (its docs name these three).
var redirects = []didit.Status{didit.StatusApproved, didit.StatusDeclined, didit.StatusInReview}

// servePage serves a hosted verification page: GET shows it, POST takes a
// choice (form field "choice") and answers 303, to the callback after the
// user's finishing choices when the session has one, else to the page.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Path[len(hostedPrefix):]
	s.mu.Lock()
	var ss *session
	for _, x := range s.sessions {
		if x.hosted != nil && x.hosted.token == token {
			ss = x
		}
	}
	var id, callback string
	if ss != nil {
		id, callback = ss.id, ss.hosted.callback
	}
	s.mu.Unlock()
	if ss == nil {
		notFoundHTML(w)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.renderPage(w, id, http.StatusOK, "")
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		c := Choice(r.PostForm.Get("choice"))
		status, err := s.Choose(id, c)
		if err != nil {
			s.renderPage(w, id, http.StatusConflict, err.Error())
			return
		}
		to := r.URL.Path
		if callback != "" && !isReviewer(c) && slices.Contains(redirects, status) {
			to = callbackURL(callback, id, status)
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func isReviewer(c Choice) bool {
	i := slices.IndexFunc(choices, func(ch choice) bool { return ch.Choice == c })
	return i >= 0 && choices[i].reviewer
}
