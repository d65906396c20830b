package activities

import (
	"context"
	"errors"
	"strings"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
)

// OpenAMLCase records the case; opening it again changes nothing.
func (a *Activities) OpenAMLCase(ctx context.Context, c AMLCase) (bool, error) {
	hits := make([]store.AMLHit, 0, len(c.Hits))
	for _, h := range c.Hits {
		hits = append(hits, store.AMLHit{ID: h.ID, Datasets: h.Datasets, MatchScore: value(h.MatchScore),
			RiskScore: value(h.RiskScore), ReviewStatus: h.ReviewStatus})
	}
	created, err := a.Store.OpenAMLCase(ctx, store.AMLCase{CaseID: c.ID(), SessionID: c.SessionID,
		FollowUpOf: c.FollowUpOf, OpenedAt: a.now(), Hits: hits})
	if err != nil {
		return false, classify("open AML case", err)
	}
	return created, nil
}

// RecordAMLReminder records that a reminder went out.
func (a *Activities) RecordAMLReminder(ctx context.Context, in ReminderInput) error {
	id := AMLCase{CaseID: in.CaseID, SessionID: in.SessionID}.ID()
	if err := a.Store.RecordAMLReminder(ctx, id, in.Reminder, in.Escalated); err != nil {
		return classify("record AML reminder", err)
	}
	return nil
}

// ResolveAMLCase records compliance's verdict.
func (a *Activities) ResolveAMLCase(ctx context.Context, in ResolveInput) error {
	id := AMLCase{CaseID: in.CaseID, SessionID: in.SessionID}.ID()
	err := a.Store.ResolveAMLCase(ctx, id, store.Resolution{
		Outcome: in.Resolution.Outcome, Reviewer: in.Resolution.Reviewer, Identity: in.Resolution.Identity,
		Note: in.Resolution.Note, ResolvedAt: a.now(),
	})
	if err != nil {
		return classify("resolve AML case", err)
	}
	return nil
}

// CaseHits is an AML case and the IDs of the hits it covers.
type CaseHits struct {
	CaseID string   `json:"case_id"`
	Hits   []string `json:"hits,omitempty"`
}

// SessionCases lists the AML cases recorded for a session, first case
// first, with the hits each covers: what a new run of the session needs to
// open follow-ups, not duplicates.
func (a *Activities) SessionCases(ctx context.Context, sessionID string) ([]CaseHits, error) {
	cases, err := a.Store.AMLCases(ctx, sessionID)
	if err != nil {
		return nil, classify("list AML cases", err)
	}
	out := make([]CaseHits, 0, len(cases))
	for _, c := range cases {
		ch := CaseHits{CaseID: c.CaseID}
		for _, h := range c.Hits {
			ch.Hits = append(ch.Hits, h.ID)
		}
		out = append(out, ch)
	}
	return out, nil
}

// FlagInput mirrors a workflow's flags onto its record: whether it needs an
// operator, and why (the flags' reasons, which name steps and kinds of
// trouble, never personal data).
type FlagInput struct {
	SessionID string `json:"session_id"`
	// CaseID, when set, names the AML case whose record carries the flag.
	CaseID         string   `json:"case_id,omitempty"`
	NeedsAttention bool     `json:"needs_attention"`
	Reasons        []string `json:"reasons,omitempty"`
}

// FlagSession sets the session record's flag and its reasons.
func (a *Activities) FlagSession(ctx context.Context, in FlagInput) error {
	err := a.Store.SetAttention(ctx, in.SessionID, in.NeedsAttention, strings.Join(in.Reasons, "\n"))
	if errors.Is(err, store.ErrNotFound) {
		return nil // nothing recorded yet: the flag has nowhere to go
	}
	if err != nil {
		return classify("flag session", err)
	}
	return nil
}

// FlagAMLCase sets an AML case record's flag and its reasons.
func (a *Activities) FlagAMLCase(ctx context.Context, in FlagInput) error {
	id := in.CaseID
	if id == "" {
		id = contract.AMLCaseWorkflowID(in.SessionID)
	}
	err := a.Store.SetCaseAttention(ctx, id, in.NeedsAttention, strings.Join(in.Reasons, "\n"))
	if errors.Is(err, store.ErrNotFound) {
		return nil // the case step that records it has not run yet
	}
	if err != nil {
		return classify("flag AML case", err)
	}
	return nil
}

// RecordEvents records a batch of a session's events in order, as
// RecordVerification records one, in one transaction: what arrived in one
// workflow task costs one activity and one commit, not one each. The
// results are in the order of the inputs.
func (a *Activities) RecordEvents(ctx context.Context, in []RecordInput) ([]RecordResult, error) {
	records := make([]store.EventRecord, len(in))
	for i, e := range in {
		records[i] = e.record(a.now())
	}
	res, err := a.Store.RecordEvents(ctx, records)
	if err != nil {
		return nil, classify("record events", err)
	}
	out := make([]RecordResult, len(res))
	for i, r := range res {
		out[i] = recordResult(r)
		a.Metrics.recorded(out[i])
	}
	return out, nil
}

func value(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}
