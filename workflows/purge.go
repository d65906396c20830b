package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/activities"
)

// PurgeParams are a purge run's settings. The worker writes them into the
// schedule's action, so the Temporal UI shows them and a worker restarted
// with new settings updates them.
type PurgeParams struct {
	// RecordRetention is how long a session stays closed (final, no event)
	// before its personal fields go.
	RecordRetention time.Duration `json:"record_retention"`
	// AMLRetention is how long a resolved AML case keeps its personal
	// fields, and its session the vendor_data that says whose it is.
	AMLRetention time.Duration `json:"aml_retention"`
	// PageSize is how many records one activity purges; zero means
	// DefaultPurgePageSize.
	PageSize int `json:"page_size,omitempty"`
}

// DefaultPurgePageSize is the records one purge activity handles, in one
// transaction: a few milliseconds of SQLite's write lock.
const DefaultPurgePageSize = 500

// PurgeInput starts a Purge run: the schedule's parameters and, after a
// continue-as-new, how far the run got.
type PurgeInput struct {
	Params   PurgeParams    `json:"params"`
	Progress *PurgeProgress `json:"progress,omitempty"`
}

// PurgeProgress is where a run is: its cut-offs, taken once at its start,
// the phase and counts.
type PurgeProgress struct {
	SessionsBefore time.Time    `json:"sessions_before"`
	CasesBefore    time.Time    `json:"cases_before"`
	Phase          string       `json:"phase"`
	Summary        PurgeSummary `json:"summary"`
}

// PurgeSummary is what a purge run did, in counts.
type PurgeSummary struct {
	Sessions      int `json:"sessions"`
	Notifications int `json:"notifications"`
	AMLCases      int `json:"aml_cases"`
	// VendorDataHeld counts sessions purged with their vendor_data kept for
	// an AML case; VendorDataReleased those whose vendor_data went with
	// their last case.
	VendorDataHeld     int `json:"vendor_data_held"`
	VendorDataReleased int `json:"vendor_data_released"`
	// Pages counts the purge activities of the run.
	Pages int `json:"pages"`
}

// The phases of a purge run, in order.
const (
	purgeSessions = "sessions"
	purgeAMLCases = "aml_cases"
	purgeDone     = "done"
)

// purgeHistoryLimit is the history length past which a run continues as
// new; a page costs six events.
const purgeHistoryLimit = 1500

// Purge removes the personal fields of the records past their retention:
// first the sessions closed for RecordRetention, then the AML cases
// resolved for AMLRetention, each a page at a time until a page comes back
// short. It passes only times and counts; a page is idempotent, so a run
// that fails is taken up by the next.
func (w *Workflows) Purge(ctx workflow.Context, in PurgeInput) (PurgeSummary, error) {
	p := in.Progress
	if p == nil {
		now := workflow.Now(ctx)
		p = &PurgeProgress{SessionsBefore: now.Add(-in.Params.RecordRetention),
			CasesBefore: now.Add(-in.Params.AMLRetention), Phase: purgeSessions}
	}
	limit := in.Params.PageSize
	if limit <= 0 {
		limit = DefaultPurgePageSize
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 2 * time.Minute,
			MaximumAttempts: 6,
		},
	})
	var a *activities.Activities
	for p.Phase != purgeDone {
		info := workflow.GetInfo(ctx)
		if info.GetCurrentHistoryLength() > purgeHistoryLimit || info.GetContinueAsNewSuggested() {
			return PurgeSummary{}, workflow.NewContinueAsNewError(ctx, w.Purge, PurgeInput{Params: in.Params, Progress: p})
		}
		var got activities.PurgeCounts
		switch p.Phase {
		case purgeSessions:
			step := activities.PurgeStep{ClosedBefore: p.SessionsBefore, Limit: limit}
			if err := workflow.ExecuteActivity(actx, a.PurgeSessions, step).Get(ctx, &got); err != nil {
				return p.Summary, fmt.Errorf("purge closed sessions: %w", err)
			}
			p.Summary.Sessions += got.Records
			p.Summary.Notifications += got.Notifications
			p.Summary.VendorDataHeld += got.VendorDataHeld
		case purgeAMLCases:
			step := activities.PurgeStep{ClosedBefore: p.CasesBefore, Limit: limit}
			if err := workflow.ExecuteActivity(actx, a.PurgeAMLCases, step).Get(ctx, &got); err != nil {
				return p.Summary, fmt.Errorf("purge resolved aml cases: %w", err)
			}
			p.Summary.AMLCases += got.Records
			p.Summary.VendorDataReleased += got.VendorDataReleased
		}
		p.Summary.Pages++
		if got.Records < limit {
			p.Phase = nextPurgePhase(p.Phase)
		}
	}
	workflow.GetLogger(ctx).Info("purge run finished", "sessions", p.Summary.Sessions,
		"notifications", p.Summary.Notifications, "aml_cases", p.Summary.AMLCases,
		"vendor_data_held", p.Summary.VendorDataHeld, "vendor_data_released", p.Summary.VendorDataReleased,
		"pages", p.Summary.Pages)
	return p.Summary, nil
}

func nextPurgePhase(phase string) string {
	if phase == purgeSessions {
		return purgeAMLCases
	}
	return purgeDone
}
