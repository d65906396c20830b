// Package workerapp assembles the worker from its configuration: the store,
// the mailers behind circuit breakers, the activities and the workflows. The
// worker main and the end-to-end tests share it.
package workerapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/notice"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/store"
	"github.com/diditflow/diditflow/internal/temporalclient"
	"github.com/diditflow/diditflow/workflows"
)

// Worker is a configured Temporal worker and what it holds open.
type Worker struct {
	// Worker polls the session workflows' task queue.
	worker.Worker
	// api polls the Didit API activities' queue, which the server
	// rate-limits to Didit's budget across every worker.
	api    worker.Worker
	writes worker.Worker
	// sessions polls the creation of Didit sessions for the businesses'
	// workflows, rate-limited to Didit's creation budget.
	sessions worker.Worker
	// reconcile polls the reconcile steps' queue.
	reconcile worker.Worker
	Store     *store.Store
	// stopGauges stops reading the records' gauges; nil without metrics.
	stopGauges func()
}

// Run runs the workers until interruptCh fires, then stops them.
func (w *Worker) Run(interruptCh <-chan any) error {
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	<-interruptCh
	return nil
}

// Start starts every worker: the session workflows' and the queues of the
// Didit API and reconcile activities.
func (w *Worker) Start() error {
	started := []worker.Worker{}
	for _, x := range []worker.Worker{w.api, w.writes, w.sessions, w.reconcile, w.Worker} {
		if err := x.Start(); err != nil {
			for _, s := range started {
				s.Stop()
			}
			return err
		}
		started = append(started, x)
	}
	return nil
}

// Stop stops every worker, the session workflows' first.
func (w *Worker) Stop() {
	w.Worker.Stop()
	w.reconcile.Stop()
	w.sessions.Stop()
	w.writes.Stop()
	w.api.Stop()
}

// APIQueue is the task queue of the Didit API activities that read.
func APIQueue(cfg config.Worker) string { return contract.DiditAPIQueue(cfg.TaskQueue) }

// APIWriteQueue is the task queue of the Didit API activities that write.
func APIWriteQueue(cfg config.Worker) string { return contract.DiditAPIWriteQueue(cfg.TaskQueue) }

// SessionsQueue is the task queue of the creation of Didit sessions.
func SessionsQueue(cfg config.Worker) string { return contract.DiditSessionsQueue(cfg.TaskQueue) }

// ReconcileQueue is the task queue of the reconcile steps.
func ReconcileQueue(cfg config.Worker) string { return cfg.TaskQueue + "-reconcile" }

// Close releases the worker's resources; call it after the worker stopped.
func (w *Worker) Close() error {
	if w.stopGauges != nil {
		w.stopGauges()
	}
	return w.Store.Close()
}

// OpenStore opens the records database of cfg (DATABASE_URL), its
// PostgreSQL pool bounded at DATABASE_MAX_CONNS.
func OpenStore(ctx context.Context, cfg config.Worker, log *slog.Logger) (*store.Store, error) {
	return store.Open(ctx, cfg.DatabaseURL, log, store.WithMaxConns(cfg.DatabaseMaxConns))
}

// New checks the notice templates, opens the store (applying migrations)
// and builds the worker. metrics, if not nil, receives the activities'
// outcomes and the store's gauges; callers, if not nil, tells the workflows
// who sent each Update (the note tc's connection keeps:
// temporalclient.Worker.Callers).
func New(ctx context.Context, tc client.Client, cfg config.Worker, log *slog.Logger, metrics *Metrics, callers workflows.Callers) (*Worker, error) {
	// First: a broken notice template stops the worker before it holds
	// anything open, never at the first notice it would write.
	notices, err := LoadNotices(cfg, log)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	mailer, err := newMailer(cfg, log)
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	compliance := activities.Compliance{Email: cfg.ComplianceEmail, Escalation: cfg.ComplianceEscalationEmail}
	if cfg.ComplianceWebhookURL != "" {
		hook, err := notify.NewCallback(cfg.ComplianceWebhookURL, &http.Client{Timeout: 10 * time.Second})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("COMPLIANCE_WEBHOOK_URL: %w", err), st.Close())
		}
		compliance.Callback = notify.WithPosterBreaker(hook, "compliance-callback",
			notify.BreakerLogger(log), notify.BreakerOpenTimeout(cfg.MailBreakerOpenTimeout))
	}

	didit, err := api.New(api.Config{BaseURL: cfg.DiditAPIURL, Key: cfg.DiditAPIKey})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("DIDIT_API_URL: %w", err), st.Close())
	}
	decisionReads := cfg.DiditAPIReadsPerSecond - cfg.ReconcileReadsPerSecond
	if didit.Enabled() {
		log.Info("Didit API on: decisions missing from webhooks are fetched, and missed events reconciled", "url", cfg.DiditAPIURL,
			"task_queue", APIQueue(cfg), "reads_per_second", decisionReads,
			"reconcile_reads_per_second", cfg.ReconcileReadsPerSecond, "reconcile_interval", cfg.ReconcileInterval.String())
	} else {
		log.Warn("Didit API off (DIDIT_API_KEY unset): events without a usable decision are flagged, not repaired, and nothing is reconciled")
	}

	hooks, err := cfg.Hooks()
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	if len(hooks) > 0 {
		log.Info("hooks on: each status change and resolved AML case starts them", "hooks", len(hooks))
	}
	w := worker.New(tc, cfg.TaskQueue, worker.Options{})
	wf := &workflows.Workflows{Settings: Settings(cfg), Callers: callers}
	wf.Register(w)
	acts := &activities.Activities{Store: st, Mailer: mailer, Compliance: compliance, Logger: log, Didit: didit,
		Notices: notices, UserNoticesOff: cfg.UserNotices == "off"}
	var stopGauges func()
	if metrics != nil {
		namespace, err := temporalclient.Namespace()
		if err != nil {
			return nil, errors.Join(err, st.Close())
		}
		metrics.startWorkflowCounters(namespace, cfg.TaskQueue)
		acts.Metrics = activities.NewMetrics(metrics.Registry)
		stopGauges = metrics.watchStore(ctx, st, cfg.MetricsGaugeInterval, log)
		metrics.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "diditflow_didit_api_enabled",
			Help: "1 when DIDIT_API_KEY is set and the Didit API features (decision fetch) are on, else 0.",
		}, func() float64 {
			if didit.Enabled() {
				return 1
			}
			return 0
		}))
	}
	w.RegisterActivity(acts)
	kyc := &activities.KYC{API: didit, Store: st, Temporal: tc, TaskQueue: cfg.TaskQueue, WorkflowID: cfg.DiditWorkflowID,
		Metrics: acts.Metrics, Logger: log}
	w.RegisterActivityWithOptions(kyc.Subscribe, activity.RegisterOptions{Name: contract.SubscribeActivity})
	w.RegisterActivityWithOptions(kyc.Unsubscribe, activity.RegisterOptions{Name: contract.UnsubscribeActivity})
	w.RegisterActivity(kyc.Announce)
	w.RegisterActivity(kyc.StartCaseHooks)
	// The server hands out at most TaskQueueActivitiesPerSecond of this
	// queue's activities, whatever the number of workers polling it; each
	// makes one Didit call.
	apiWorker := worker.New(tc, APIQueue(cfg), worker.Options{
		TaskQueueActivitiesPerSecond: decisionReads,
		DisableWorkflowWorker:        true,
	})
	apiWorker.RegisterActivity(acts.FetchDecision)
	apiWorker.RegisterActivityWithOptions(kyc.SessionDecision, activity.RegisterOptions{Name: contract.DecisionActivity})
	sessions := worker.New(tc, SessionsQueue(cfg), worker.Options{
		TaskQueueActivitiesPerSecond: cfg.DiditAPICreatesPerSecond,
		DisableWorkflowWorker:        true,
	})
	sessions.RegisterActivityWithOptions(kyc.CreateSession, activity.RegisterOptions{Name: contract.CreateSessionActivity})
	writes := worker.New(tc, APIWriteQueue(cfg), worker.Options{
		TaskQueueActivitiesPerSecond: cfg.DiditAPIWritesPerSecond,
		DisableWorkflowWorker:        true,
	})
	writes.RegisterActivity(acts.WriteHitReviews)

	rec := &activities.Reconciler{API: didit, Store: st, Temporal: tc, TaskQueue: cfg.TaskQueue,
		Limiter: rate.NewLimiter(rate.Limit(cfg.ReconcileReadsPerSecond), 1), Metrics: acts.Metrics, Logger: log}
	// A run's steps run one at a time, so one slot per worker is plenty.
	reconcile := worker.New(tc, ReconcileQueue(cfg), worker.Options{
		DisableWorkflowWorker:              true,
		MaxConcurrentActivityExecutionSize: 1,
	})
	reconcile.RegisterActivity(rec)
	return &Worker{Worker: w, api: apiWorker, writes: writes, sessions: sessions, reconcile: reconcile, Store: st, stopGauges: stopGauges}, nil
}

// LoadNotices parses and checks the user notices' templates: the embedded
// ones and NOTICE_TEMPLATES's overrides. It says which are in use, or that
// USER_NOTICES=off sends none.
func LoadNotices(cfg config.Worker, log *slog.Logger) (*notice.Templates, error) {
	t, err := notice.Load(cfg.NoticeTemplates)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.UserNotices == "off":
		log.Info("user notices off (USER_NOTICES=off): the business mails its users; records, AML cases and compliance mail go on")
	case cfg.NoticeTemplates != "" && len(t.Overridden()) == 0:
		log.Warn("NOTICE_TEMPLATES holds no notice template: every user notice uses its embedded text",
			"dir", cfg.NoticeTemplates, "notices", strings.Join(notice.Names, ","))
	case cfg.NoticeTemplates != "":
		log.Info("user notice templates overridden", "dir", cfg.NoticeTemplates, "overridden", strings.Join(t.Overridden(), ","))
	}
	return t, nil
}

// ReconcileParams are the reconcile runs' settings from the configuration.
func ReconcileParams(cfg config.Worker) workflows.ReconcileParams {
	return workflows.ReconcileParams{
		Lookback: cfg.ReconcileLookback, StaleAfter: cfg.ReconcileStaleAfter,
		Destination: cfg.WebhookDestinationID, PageSize: cfg.ReconcilePageSize,
		MaxCalls: cfg.ReconcileMaxCalls, Queue: ReconcileQueue(cfg),
		StepTimeout: reconcileStepTimeout(cfg),
	}
}

// reconcileStepTimeout is twice the time the longest step takes at the
// reconcile rate (a page of sessions behind, each read twice, and the page
// itself), and at least 15 minutes.
func reconcileStepTimeout(cfg config.Worker) time.Duration {
	calls := float64(2*cfg.ReconcilePageSize + 1)
	return max(15*time.Minute, 2*time.Duration(calls/cfg.ReconcileReadsPerSecond*float64(time.Second))+time.Minute)
}

// Settings maps the configuration onto the workflows' settings.
func Settings(cfg config.Worker) workflows.Settings {
	s := workflows.DefaultSettings()
	s.IdleWindow = cfg.SessionIdleWindow
	s.StepBudget = cfg.StepRetryBudget
	s.AMLReminderInterval = cfg.AMLReminderInterval
	s.AMLEscalateAfter = cfg.AMLEscalateAfter
	s.DiditAPIQueue = APIQueue(cfg)
	s.DiditAPIWriteQueue = APIWriteQueue(cfg)
	hooks, _ := cfg.Hooks() // checked by config.LoadWorker
	for _, h := range hooks {
		s.Hooks = append(s.Hooks, activities.Hook{WorkflowType: h.WorkflowType, TaskQueue: h.TaskQueue})
	}
	return s
}

// newMailer sends through SMTP when SMTP_URL is set, else into the outbox;
// either way behind a circuit breaker, so that a dead server fails fast and
// Temporal's backoff paces the retries.
func newMailer(cfg config.Worker, log *slog.Logger) (notify.Mailer, error) {
	var m notify.Mailer
	if cfg.SMTPURL != "" {
		s, err := notify.NewSMTP(cfg.SMTPURL, cfg.MailFrom, notify.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("SMTP_URL: %w", err)
		}
		m = s
	} else {
		o, err := notify.NewOutbox(cfg.OutboxDir, cfg.MailFrom)
		if err != nil {
			return nil, fmt.Errorf("OUTBOX_DIR: %w", err)
		}
		m = o
	}
	return notify.WithBreaker(m, "mail", notify.BreakerLogger(log), notify.BreakerOpenTimeout(cfg.MailBreakerOpenTimeout)), nil
}
