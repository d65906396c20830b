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

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/store"
	"github.com/diditflow/diditflow/workflows"
)

// Worker is a configured Temporal worker and what it holds open.
type Worker struct {
	worker.Worker
	Store *store.Store
}

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

	w := worker.New(tc, cfg.TaskQueue, worker.Options{})
	wf := &workflows.Workflows{Settings: Settings(cfg)}
	wf.Register(w)
	acts := &activities.Activities{Store: st, Mailer: mailer, Compliance: compliance, Logger: log}
	if metrics != nil {
		acts.Metrics = activities.NewMetrics(metrics.Registry)
		metrics.watchStore(st)
	}
	w.RegisterActivity(acts)
	return &Worker{Worker: w, Store: st}, nil
}

// Settings maps the configuration onto the workflows' settings.
func Settings(cfg config.Worker) workflows.Settings {
	s := workflows.DefaultSettings()
	s.IdleWindow = cfg.SessionIdleWindow
	s.StepBudget = cfg.StepRetryBudget
	s.AMLReminderInterval = cfg.AMLReminderInterval
	s.AMLEscalateAfter = cfg.AMLEscalateAfter
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
