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
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/store"
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
	Store  *store.Store
}

// Run runs both workers until interruptCh fires, then stops them.
func (w *Worker) Run(interruptCh <-chan any) error {
	if err := w.api.Start(); err != nil {
		return err
	}
	defer w.api.Stop()
	if err := w.writes.Start(); err != nil {
		return err
	}
	defer w.writes.Stop()
	return w.Worker.Run(interruptCh)
}

// APIQueue is the task queue of the Didit API activities that read.
func APIQueue(cfg config.Worker) string { return cfg.TaskQueue + "-didit-api" }

// APIWriteQueue is the task queue of the Didit API activities that write.
func APIWriteQueue(cfg config.Worker) string { return cfg.TaskQueue + "-didit-api-writes" }

// Close releases the worker's resources; call it after the worker stopped.
func (w *Worker) Close() error {
	return w.Store.Close()
}

// New opens the store (applying migrations) and builds the worker. metrics,
// if not nil, receives the activities' outcomes and the store's gauges.
func New(ctx context.Context, tc client.Client, cfg config.Worker, log *slog.Logger, metrics *Metrics) (*Worker, error) {
	st, err := store.Open(ctx, cfg.DatabaseURL, log)
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
	if didit.Enabled() {
		log.Info("Didit API on: decisions missing from webhooks are fetched", "url", cfg.DiditAPIURL,
			"task_queue", APIQueue(cfg), "reads_per_second", cfg.DiditAPIReadsPerSecond)
	} else {
		log.Warn("Didit API off (DIDIT_API_KEY unset): events without a usable decision are flagged, not repaired")
	}

	w := worker.New(tc, cfg.TaskQueue, worker.Options{})
	wf := &workflows.Workflows{Settings: Settings(cfg)}
	wf.Register(w)
	acts := &activities.Activities{Store: st, Mailer: mailer, Compliance: compliance, Logger: log, Didit: didit}
	if metrics != nil {
		acts.Metrics = activities.NewMetrics(metrics.Registry)
		metrics.watchStore(st)
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
	// The server hands out at most TaskQueueActivitiesPerSecond of this
	// queue's activities, whatever the number of workers polling it; each
	// makes one Didit call.
	apiWorker := worker.New(tc, APIQueue(cfg), worker.Options{
		TaskQueueActivitiesPerSecond: cfg.DiditAPIReadsPerSecond,
		DisableWorkflowWorker:        true,
	})
	apiWorker.RegisterActivity(acts.FetchDecision)
	writes := worker.New(tc, APIWriteQueue(cfg), worker.Options{
		TaskQueueActivitiesPerSecond: cfg.DiditAPIWritesPerSecond,
		DisableWorkflowWorker:        true,
	})
	writes.RegisterActivity(acts.WriteHitReviews)
	return &Worker{Worker: w, api: apiWorker, writes: writes, Store: st}, nil
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
