package api

import (
	"context"
	"encoding/json"
)

// AMLHitNames reads a session's decision (GET /v3/session/{id}/decision/)
// for the names of its AML hits: each hit's caption, the name of the list
// entry it matched (a politically exposed or sanctioned person), by hit ID.
// Hits without a caption are left out.
//
// It is for a compliance officer's screen (diditflow-admin case) and
// nothing else. Unlike Decision, it returns names, which diditflow never
// stores, logs or hands to Temporal (docs/PRIVACY.md); it reads nothing
// else of the decision.
func (c *Client) AMLHitNames(ctx context.Context, sessionID string) (map[string]string, error) {
	const op = "aml hit names"
	r, err := c.decision(ctx, op, sessionID)
	if err != nil {
		return nil, err
	}
	var d struct {
		AMLScreenings []struct {
			Hits []struct {
				ID      string `json:"id"`
				Caption string `json:"caption"`
			} `json:"hits"`
		} `json:"aml_screenings"`
	}
	if err := json.Unmarshal(r.body, &d); err != nil {
		return nil, malformed(op, r.status, jsonReason(err))
	}
	names := map[string]string{}
	for _, s := range d.AMLScreenings {
		for _, h := range s.Hits {
			if h.ID != "" && h.Caption != "" {
				names[h.ID] = h.Caption
			}
		}
	}
	return names, nil
}
