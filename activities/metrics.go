package activities

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/reconcile"
)

// Metrics count what the activities did, by outcome. Labels take a few fixed
// values; no session or person becomes a label.
type Metrics struct {
	events  *prometheus.CounterVec
	notices *prometheus.CounterVec
	refused *prometheus.CounterVec
	// apiCalls counts calls to Didit's API by call and result (ok, or the
	// error class: server, credentials, not_found, rate_limited, malformed,
	// request; no_key when the API is off).
	apiCalls *prometheus.CounterVec
	// Reconciliation: runs by result, and items examined and repaired by
	// path (deliveries, sessions, stale).
	reconcileRuns     *prometheus.CounterVec
	reconcileExamined *prometheus.CounterVec
	reconcileRepaired *prometheus.CounterVec
	// purgedRecords counts records whose personal fields the retention
	// purge blanked, by record (session, notification, aml_case).
	purgedRecords *prometheus.CounterVec
	// hookStarts counts the starts of the businesses' hooks by result;
	// subscriberUpdates the updates signalled to waiting workflows.
	hookStarts        *prometheus.CounterVec
	subscriberUpdates *prometheus.CounterVec
}

// Results of a hook's start and of a subscriber's update.
var (
	hookStartResults        = []string{"started", "duplicate", "failed"}
	subscriberUpdateResults = []string{"sent", "gone", "failed"}
)

// NewMetrics registers the activities' metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diditflow_events_recorded_total",
			Help: "Didit events recorded, by outcome: applied (moved the record), stale (older than the record), duplicate.",
		}, []string{"outcome"}),
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diditflow_notifications_total",
			Help: "Notifications by audience (user, compliance) and result (sent, already_sent, undeliverable, in_doubt, not_configured, partly_sent, withheld; disabled for the user's when USER_NOTICES=off).",
		}, []string{"audience", "result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diditflow_recipients_refused_total",
			Help: "Recipients a mail server refused for good (5xx to RCPT), by audience (user, compliance); counted once per notification.",
		}, []string{"audience"}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diditflow_didit_api_calls_total",
			Help: "Calls to Didit's API by call and result: ok, or the error class (server, credentials, not_found, rate_limited, malformed, request); no_key when DIDIT_API_KEY is unset.",
		}, []string{"call", "result"}),
		reconcileRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diditflow_reconcile_runs_total",
			Help: "Reconcile runs by result: ok, capped (RECONCILE_MAX_CALLS reached), off (no DIDIT_API_KEY), failed (a step gave up, e.g. refused credentials).",
		}, []string{"result"}),
		reconcileExamined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diditflow_reconcile_examined_total",
			Help: "Items reconciliation compared with the records, by path: deliveries (a destination's delivery log), sessions (created in the lookback), stale (not moved for RECONCILE_STALE_AFTER).",
		}, []string{"path"}),
		reconcileRepaired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diditflow_reconcile_repaired_total",
			Help: "Events reconciliation fed into sessions that the webhooks had missed, by path (deliveries, sessions, stale).",
		}, []string{"path"}),
		purgedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diditflow_records_purged_total",
			Help: "Records whose personal fields the retention purge blanked, by record: session (closed for RECORD_RETENTION), notification (of such a session), aml_case (resolved for AML_RECORD_RETENTION).",
		}, []string{"record"}),
		hookStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diditflow_hook_starts_total",
			Help: "Starts of the businesses' hook workflows (HOOK_WORKFLOWS), by result: started, duplicate (Temporal refused a second start of the same hook for the same event: a retry), failed (retried).",
		}, []string{"result"}),
		subscriberUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diditflow_subscriber_updates_total",
			Help: "Updates signalled to businesses' workflows waiting for a session (kyc.AwaitOutcome), by result: sent, gone (the waiting run is closed: dropped), failed (retried).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.events, m.notices, m.refused, m.apiCalls, m.reconcileRuns, m.reconcileExamined, m.reconcileRepaired,
		m.purgedRecords, m.hookStarts, m.subscriberUpdates)
	m.initSeries()
	return m
}

// initSeries creates every series the code can count, at zero: an alert
// on increase() sees the first failure only if the series existed before
// it, and a dashboard's lines do not appear out of nowhere.
func (m *Metrics) initSeries() {
	for _, o := range []string{"applied", "stale", "duplicate"} {
		m.events.WithLabelValues(o)
	}
	for _, audience := range []string{"user", "compliance"} {
		m.refused.WithLabelValues(audience)
		for _, r := range []NoticeResult{Sent, AlreadySent, Undeliverable, InDoubt, NotConfigured, PartlySent, Withheld} {
			m.notices.WithLabelValues(audience, string(r))
		}
	}
	// Only the user's notices can be turned off.
	m.notices.WithLabelValues("user", string(Disabled))
	results := []string{"ok", "no_key"}
	for k := api.KindServer; k <= api.KindRequest; k++ {
		results = append(results, k.String())
	}
	for _, call := range []string{"decision", "create_session", "aml_hit_reviews", "sessions", "session_deliveries", "destinations",
		"destination_deliveries", "delivery"} {
		for _, r := range results {
			m.apiCalls.WithLabelValues(call, r)
		}
	}
	for _, r := range reconcile.Results {
		m.reconcileRuns.WithLabelValues(string(r))
	}
	for _, p := range reconcile.Paths {
		m.reconcileExamined.WithLabelValues(string(p))
		m.reconcileRepaired.WithLabelValues(string(p))
	}
	for _, r := range []string{"session", "notification", "aml_case"} {
		m.purgedRecords.WithLabelValues(r)
	}
	for _, r := range hookStartResults {
		m.hookStarts.WithLabelValues(r)
	}
	for _, r := range subscriberUpdateResults {
		m.subscriberUpdates.WithLabelValues(r)
	}
}

func (m *Metrics) hookStart(result string) {
	if m == nil {
		return
	}
	m.hookStarts.WithLabelValues(result).Inc()
}

func (m *Metrics) subscriberUpdate(result string) {
	if m == nil {
		return
	}
	m.subscriberUpdates.WithLabelValues(result).Inc()
}

func (m *Metrics) recorded(r RecordResult) {
	if m == nil {
		return
	}
	outcome := "stale"
	switch {
	case r.Duplicate:
		outcome = "duplicate"
	case r.Applied:
		outcome = "applied"
	}
	m.events.WithLabelValues(outcome).Inc()
}

func (m *Metrics) notified(audience string, d NoticeResult) {
	if m == nil {
		return
	}
	m.notices.WithLabelValues(audience, string(d)).Inc()
}

func (m *Metrics) recipientsRefused(audience string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.refused.WithLabelValues(audience).Add(float64(n))
}

// APICall counts a call to Didit's API by call and result: ok, no_key, or
// the error class (api.Kind).
func (m *Metrics) APICall(call, result string) {
	if m == nil {
		return
	}
	m.apiCalls.WithLabelValues(call, result).Inc()
}

// Reconciled counts what a reconcile step of path examined and repaired.
func (m *Metrics) Reconciled(path reconcile.Path, examined, repaired int) {
	if m == nil {
		return
	}
	m.reconcileExamined.WithLabelValues(string(path)).Add(float64(examined))
	m.reconcileRepaired.WithLabelValues(string(path)).Add(float64(repaired))
}

// RunFinished counts a reconcile run by its result.
func (m *Metrics) RunFinished(result reconcile.Result) {
	if m == nil {
		return
	}
	m.reconcileRuns.WithLabelValues(string(result)).Inc()
}
