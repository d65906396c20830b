// Package reconcile asks Didit's API what the webhooks missed and feeds it
// into the sessions, as the receiver would have: failed deliveries by their
// delivered body, sessions behind Didit by their decision, and sessions
// stuck in a status that is not final, with a backoff per session.
//
// Each step reads one page of one of Didit's lists, compares it with the
// records and returns counts and a cursor, never what Didit sent: a
// workflow (workflows.Reconcile) runs the steps one at a time, through the
// activities that adapt an Engine to Temporal.
package reconcile

import (
	"context"
	"log/slog"
	"time"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
)

// API is what reconciliation needs of Didit's API (didit/api.Client).
type API interface {
	Enabled() bool
	Decision(ctx context.Context, sessionID string) (api.DecisionResult, error)
	Sessions(ctx context.Context, f api.SessionFilter, cursor string) (api.SessionPage, error)
	SessionDeliveries(ctx context.Context, sessionID string) ([]api.Delivery, error)
	Destinations(ctx context.Context) ([]api.Destination, error)
	DestinationDeliveries(ctx context.Context, destUUID string, f api.DeliveryFilter, cursor string) (api.DeliveryPage, error)
	DestinationDelivery(ctx context.Context, destUUID, deliveryUUID string) (api.Delivery, error)
}

// Store is what reconciliation needs of the records.
type Store interface {
	HeldEvents(ctx context.Context, refs []store.EventRef) (map[store.EventRef]bool, error)
	SessionStatuses(ctx context.Context, ids []string) (map[string]string, error)
	ErasedSessions(ctx context.Context, ids []string) (map[string]bool, error)
	SettledDeliveries(ctx context.Context, uuids []string) (map[string]bool, error)
	SettleDeliveries(ctx context.Context, ds []store.SettledDelivery) error
	PruneSettledDeliveries(ctx context.Context, before time.Time) (int64, error)
	StaleSessions(ctx context.Context, unchangedSince, now time.Time, limit int) ([]store.StaleSession, error)
	OpenCaseReviews(ctx context.Context, sessionID string) (map[string]string, error)
	MarkStaleChecked(ctx context.Context, sessionID string, checks int, next, appliedAt time.Time) error
}

// Feeder hands a missed event to its session's workflow, through the same
// SignalWithStart and the same dedupe as a webhook.
type Feeder interface {
	Feed(ctx context.Context, se contract.SessionEvent) error
}

// Pacer paces the calls to Didit (a *rate.Limiter: the reconcile share of
// Didit's per-key budget, which every worker's steps share, as a run runs
// them one at a time).
type Pacer interface {
	Wait(ctx context.Context) error
}

// Metrics counts what reconciliation did. Its labels are the few fixed
// values the types below name.
type Metrics interface {
	// APICall counts a call to Didit by call and result: ok, or the error
	// class (api.Kind).
	APICall(call, result string)
	// Reconciled counts what a step of path examined and repaired.
	Reconciled(path Path, examined, repaired int)
	// RunFinished counts a run by its result.
	RunFinished(result Result)
}

// Engine runs the steps of a reconcile run.
type Engine struct {
	API   API
	Store Store
	Feed  Feeder
	// Pacer, if set, paces every Didit call.
	Pacer Pacer
	// Metrics, if set, counts calls, steps and runs.
	Metrics Metrics
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Path is one of a run's three ways to find what was missed; it labels the
// counts of diditflow_reconcile_examined_total and _repaired_total.
type Path string

const (
	// PathDeliveries reads a destination's delivery log.
	PathDeliveries Path = "deliveries"
	// PathSessions reads the sessions created in the lookback.
	PathSessions Path = "sessions"
	// PathStale checks the sessions that have not moved for a while.
	PathStale Path = "stale"
)

// Paths are every Path, in a run's order.
var Paths = []Path{PathDeliveries, PathSessions, PathStale}

// Result is how a run ended; it labels diditflow_reconcile_runs_total.
type Result string

const (
	// ResultOK: every path read its window.
	ResultOK Result = "ok"
	// ResultOff: no API key, nothing read.
	ResultOff Result = "off"
	// ResultCapped: a path reached RECONCILE_MAX_CALLS; the next run goes on.
	ResultCapped Result = "capped"
	// ResultFailed: a step gave up; the run went on with the next path, or
	// ended if Didit refused the key.
	ResultFailed Result = "failed"
)

// Results are every Result.
var Results = []Result{ResultOK, ResultCapped, ResultOff, ResultFailed}

// Targets is which destinations a run reads the deliveries of.
type Targets struct {
	// Enabled is false when no API key is configured: the run does nothing.
	Enabled bool `json:"enabled"`
	// Destinations are UUIDs; none means the legacy single webhook, whose
	// deliveries are read per session.
	Destinations []string `json:"destinations,omitempty"`
}

// DeliveriesStep reads one page of a destination's deliveries.
type DeliveriesStep struct {
	Destination string    `json:"destination"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	// Cursor is the page to read: "" the first, else a previous step's Next.
	Cursor   string `json:"cursor,omitempty"`
	PageSize int    `json:"page_size"`
}

// SessionsStep reads one page of the sessions created in the window.
type SessionsStep struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Cursor   string    `json:"cursor,omitempty"`
	PageSize int       `json:"page_size"`
	// Legacy reads the deliveries of each session behind (no destination
	// to read them from).
	Legacy bool `json:"legacy,omitempty"`
}

// StaleStep checks the sessions whose status has not moved for StaleAfter.
type StaleStep struct {
	StaleAfter time.Duration `json:"stale_after"`
	Limit      int           `json:"limit"`
}

// StepResult is what one step did, in counts.
type StepResult struct {
	// Examined counts list rows looked at; Repaired the events fed into
	// sessions; Held the failed deliveries whose event we already held.
	Examined int `json:"examined"`
	Repaired int `json:"repaired"`
	Held     int `json:"held,omitempty"`
	// Errors counts items skipped for an error no retry fixes (404, an
	// unusable body); Calls the Didit calls made.
	Errors int `json:"errors,omitempty"`
	Calls  int `json:"calls"`
	// Next is the cursor of the next page; "" when the list is done.
	Next string `json:"next,omitempty"`
}

// Summary is a run's totals.
type Summary struct {
	Examined map[string]int `json:"examined,omitempty"`
	Repaired map[string]int `json:"repaired,omitempty"`
	Errors   int            `json:"errors,omitempty"`
	Calls    int            `json:"calls"`
	Result   Result         `json:"result"`
	// Capped lists the paths that reached their cap.
	Capped []string `json:"capped,omitempty"`
	// Failure is why steps gave up, by path.
	Failure string `json:"failure,omitempty"`
}

// Finish is a finished run's totals, and the time before which settled
// deliveries are never read again.
type Finish struct {
	Summary     Summary   `json:"summary"`
	PruneBefore time.Time `json:"prune_before"`
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) log() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// called counts a Didit call's result by class, as FetchDecision does.
func (e *Engine) called(call string, err error) {
	if e.Metrics == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = api.KindOf(err).String()
	}
	e.Metrics.APICall(call, result)
}

func (e *Engine) count(path Path, res StepResult) {
	if e.Metrics != nil {
		e.Metrics.Reconciled(path, res.Examined, res.Repaired)
	}
}

// Targets lists the destinations to read: the configured one, or every
// enabled destination.
func (e *Engine) Targets(ctx context.Context, configured string) (Targets, error) {
	if e.API == nil || !e.API.Enabled() {
		e.log().WarnContext(ctx, "reconcile: Didit API off (DIDIT_API_KEY unset), nothing to do")
		return Targets{}, nil
	}
	if configured != "" {
		e.log().InfoContext(ctx, "reconcile: reading the deliveries of the configured destination", "destination", configured)
		return Targets{Enabled: true, Destinations: []string{configured}}, nil
	}
	if err := e.newStep().call(ctx); err != nil {
		return Targets{}, err
	}
	dests, err := e.API.Destinations(ctx)
	e.called("destinations", err)
	if err != nil && api.KindOf(err) != api.KindNotFound {
		return Targets{}, err
	}
	out := Targets{Enabled: true}
	for _, d := range dests {
		// Another webhook_version is another payload shape, meant for
		// another consumer: not ours to parse as v3.
		if d.Enabled && (d.WebhookVersion == "" || d.WebhookVersion == "v3") {
			out.Destinations = append(out.Destinations, d.UUID)
		}
	}
	if len(out.Destinations) == 0 {
		e.log().InfoContext(ctx, "reconcile: no enabled webhook destination; reading deliveries per session (legacy webhook)")
	} else {
		e.log().InfoContext(ctx, "reconcile: reading the deliveries of every enabled destination", "destinations", out.Destinations)
	}
	return out, nil
}

// Finished prunes settled deliveries older than any window will read
// again, then counts the run and logs its totals.
func (e *Engine) Finished(ctx context.Context, in Finish) error {
	sum := in.Summary
	if e.Store != nil && sum.Result != ResultOff {
		// A failed prune is only a bigger table: the run still counts.
		if n, err := e.Store.PruneSettledDeliveries(ctx, in.PruneBefore); err != nil {
			e.log().WarnContext(ctx, "reconcile: pruning settled deliveries failed", "error", err)
		} else if n > 0 {
			e.log().InfoContext(ctx, "reconcile: pruned settled deliveries", "rows", n)
		}
	}
	if e.Metrics != nil {
		e.Metrics.RunFinished(sum.Result)
	}
	level := slog.LevelInfo
	if sum.Result == ResultFailed {
		level = slog.LevelError
	}
	e.log().Log(ctx, level, "reconcile run finished", "result", string(sum.Result), "calls", sum.Calls,
		"examined", sum.Examined, "repaired", sum.Repaired, "errors", sum.Errors, "capped", sum.Capped, "failure", sum.Failure)
	return nil
}

// step is the state of one step: what it counted, and the events it fed,
// so that the failed attempts of one event are fed once.
type step struct {
	e   *Engine
	res StepResult
	fed map[store.EventRef]bool
}

func (e *Engine) newStep() *step { return &step{e: e, fed: map[store.EventRef]bool{}} }

// call paces one Didit call and counts it.
func (s *step) call(ctx context.Context) error {
	s.res.Calls++
	if s.e.Pacer == nil {
		return nil
	}
	return s.e.Pacer.Wait(ctx)
}

// itemFailed reports whether an error reading one item (a delivery, a
// decision) is that item's alone, so the step counts it and goes on: a 404,
// an answer that is not the documented JSON or over the size cap, another
// 4xx. Credentials, 429 and 5xx concern every item and fail the step.
func itemFailed(err error) bool {
	switch api.KindOf(err) {
	case api.KindNotFound, api.KindMalformed, api.KindRequest:
		return true
	}
	return false
}

// dayFilter is the window as the lists' date filters take it: whole days,
// one more on each side, since Didit does not say in which time zone it
// cuts them. The rows are then cut at the window exactly.
func dayFilter(from, to time.Time) (time.Time, time.Time) {
	return from.Add(-24 * time.Hour), to.Add(24 * time.Hour)
}
