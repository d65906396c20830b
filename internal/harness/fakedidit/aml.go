package fakedidit

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/diditflow/diditflow/didit"
)

var reviewStatuses = []string{"Unreviewed", "Confirmed Match", "False Positive", "Inconclusive"}

var errNoHit = errors.New("fakedidit: no such AML hit")

// hitUpdate is one hit's new review status.
type hitUpdate struct {
	HitID        string `json:"hit_id"`
	ReviewStatus string `json:"review_status"`
}

// updateHit serves PATCH /v3/session/{id}/update-aml-hit-status/.
func (s *Server) updateHit(w http.ResponseWriter, r *http.Request, ids []string) {
	var in struct {
		hitUpdate
		NodeID string `json:"node_id"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	hits, ok := s.reviewHits(w, ids[0], in.NodeID, []hitUpdate{in.hitUpdate}, false)
	if ok {
		writeJSON(w, http.StatusOK, hits[0])
	}
}

// bulkUpdateHits serves PATCH /v3/session/{id}/bulk-update-aml-hit-status/.
func (s *Server) bulkUpdateHits(w http.ResponseWriter, r *http.Request, ids []string) {
	var in struct {
		NodeID     string      `json:"node_id"`
		HitUpdates []hitUpdate `json:"hit_updates"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	switch {
	case in.NodeID == "":
		fieldError(w, "node_id", "This field is required.")
		return
	case len(in.HitUpdates) == 0:
		fieldError(w, "hit_updates", "This list may not be empty.")
		return
	}
	hits, ok := s.reviewHits(w, ids[0], in.NodeID, in.HitUpdates, true)
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"session_id": ids[0], "node_id": in.NodeID, "updated_hits": hits})
	}
}

// reviewHits validates and applies hit updates all or nothing, records the
// calls and fires one data.updated webhook, answering errors itself.
func (s *Server) reviewHits(w http.ResponseWriter, sessionID, nodeID string, updates []hitUpdate, bulk bool) ([]any, bool) {
	for _, u := range updates {
		if u.HitID == "" {
			fieldError(w, "hit_id", "This field is required.")
			return nil, false
		}
		if !slices.Contains(reviewStatuses, u.ReviewStatus) {
			fieldError(w, "review_status", strconv.Quote(u.ReviewStatus)+" is not a valid choice.")
			return nil, false
		}
	}
	s.mu.Lock()
	ss, ok := s.sessions[sessionID]
	if !ok {
		s.mu.Unlock()
		notFoundJSON(w)
		return nil, false
	}
	decision, hits, err := applyHitUpdates(ss.decisionJSON(), nodeID, updates)
	if err != nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, detail("AML hit not found."))
		return nil, false
	}
	ss.decision = decision
	for _, u := range updates {
		s.hitCalls = append(s.hitCalls, HitReviewCall{SessionID: sessionID, NodeID: nodeID, HitID: u.HitID, ReviewStatus: u.ReviewStatus, Bulk: bulk})
	}
	ev := s.dataUpdated(ss)
	s.mu.Unlock()
	// Sent, not delivered: the record is already the body's, and a later
	// review must not be undone by this webhook going out after it.
	s.bg.Go(func() { s.send(s.ctx, ev) })
	return hits, true
}

// dataUpdated builds the data.updated webhook a hit review fires; s.mu must
// be held.
func (s *Server) dataUpdated(ss *session) event {
	ev := s.sessionEvent(ss, "data.updated", didit.Status(ss.status), s.now())
	ev["decision"] = ss.decisionJSON()
	return ev
}

// applyHitUpdates sets review_status on the hits of decision's
// aml_screenings (of node nodeID, if given) and returns the new decision
// and the updated hits. Any unknown hit fails the whole call.
func applyHitUpdates(decision json.RawMessage, nodeID string, updates []hitUpdate) (json.RawMessage, []any, error) {
	var m map[string]any
	if err := decodeNumbers(decision, &m); err != nil {
		return nil, nil, err
	}
	var out []any
	for _, u := range updates {
		hit := findHit(m, nodeID, u.HitID)
		if hit == nil {
			return nil, nil, errNoHit
		}
		hit["review_status"] = u.ReviewStatus
		out = append(out, hit)
	}
	d, err := encodeJSON(m)
	if err != nil {
		return nil, nil, err
	}
	return d, out, nil
}

// findHit returns the first hit with id hitID in a screening of node nodeID
// (any node when nodeID is empty).
func findHit(decision map[string]any, nodeID, hitID string) map[string]any {
	screenings, _ := decision["aml_screenings"].([]any)
	for _, sc := range screenings {
		screening, _ := sc.(map[string]any)
		if screening == nil || (nodeID != "" && screening["node_id"] != nodeID) {
			continue
		}
		hits, _ := screening["hits"].([]any)
		for _, h := range hits {
			if hit, _ := h.(map[string]any); hit != nil && hit["id"] == hitID {
				return hit
			}
		}
	}
	return nil
}
