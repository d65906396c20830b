// Package config reads diditflow's own settings from the environment with
// kelseyhightower/envconfig. The Temporal connection is configured separately,
// by Temporal's own convention (see internal/temporalclient).
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/diditflow/diditflow/internal/telemetry"
)

// HTTP is where the receiver listens. It stands alone so that the starter's
// -healthcheck can read it without the receiver's other settings (secrets).
type HTTP struct {
	// HTTPAddr is where the receiver listens.
	HTTPAddr string `envconfig:"HTTP_ADDR" default:":8080"`
}

// LoadHTTP reads the receiver's listen address alone.
func LoadHTTP() (HTTP, error) {
	var c HTTP
	if err := envconfig.Process("", &c); err != nil {
		return HTTP{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// Receiver configures the webhook receiver (the starter).
type Receiver struct {
	HTTP
	// WebhookSecrets are Didit's webhook secrets; several during a rotation.
	// Print shows only how many there are.
	WebhookSecrets []string `envconfig:"DIDIT_WEBHOOK_SECRETS" secret:"true"`
	// AllowSimpleSignature accepts X-Signature-Simple when no full-body
	// signature verifies. Such events carry only their envelope.
	AllowSimpleSignature bool `envconfig:"DIDIT_ALLOW_SIMPLE_SIGNATURE" default:"false"`
	// TaskQueue is the Temporal task queue of the session workflows.
	TaskQueue string `envconfig:"TEMPORAL_TASK_QUEUE" default:"diditflow"`
	// MaxBodyBytes caps a delivery's body; larger ones get 413.
	MaxBodyBytes int64 `envconfig:"MAX_BODY_BYTES" default:"1048576"`
	// SignalTimeout bounds the Temporal call, well under Didit's 5 s timeout.
	SignalTimeout time.Duration `envconfig:"SIGNAL_TIMEOUT" default:"3s"`
	// RequestTimeout bounds one delivery from its arrival: reading its body,
	// waiting its turn to be verified, and the signal. A body not received
	// by then is answered 503 (Didit retries it). Didit gives up after 5 s.
	RequestTimeout time.Duration `envconfig:"REQUEST_TIMEOUT" default:"4.5s"`
	// MetricsAddr serves the starter's /metrics on a listener of its own,
	// loopback by default: refusal reasons and volumes are for operators,
	// not for whoever reaches the webhook. Empty turns it off.
	MetricsAddr string `envconfig:"STARTER_METRICS_ADDR" default:"127.0.0.1:9091"`
	// ShutdownTimeout bounds how long in-flight requests may finish on exit.
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"15s"`
	// ReplayCacheSize caps how many deliveries Temporal accepted the receiver
	// remembers, to answer their exact replays (the same verified body) 200
	// without a new signal; 0 turns it off. An entry takes about 200 bytes
	// (key, time, run ID, map slot), so 10000 is about 2 MB; with the 10m
	// TTL it remembers every delivery of a steady 16 a second, and a flood
	// of distinct ones evicts the oldest, which only means a replay of those
	// is signalled again and the workflow drops it.
	ReplayCacheSize int `envconfig:"REPLAY_CACHE_SIZE" default:"10000"`
	// ReplayCacheTTL is how long an accepted delivery is remembered. 10m is
	// twice the 300 s signature window: a body accepted at A was signed no
	// earlier than A-300s, so no replay of it verifies after A+10m; longer
	// buys nothing, shorter only signals some replays again.
	ReplayCacheTTL time.Duration `envconfig:"REPLAY_CACHE_TTL" default:"10m"`
	// LogRefusalsPerSecond caps the log lines of refused deliveries (401,
	// 400, 413), with a burst of LogRefusalsBurst: a flood of forged ones
	// then costs its metrics, not a log write each. Lines past it are
	// dropped and counted; 0 logs every refusal.
	LogRefusalsPerSecond float64 `envconfig:"LOG_REFUSALS_PER_SECOND" default:"10"`
	LogRefusalsBurst     int     `envconfig:"LOG_REFUSALS_BURST" default:"50"`
	Encryption           Encryption
	Log                  Log
}

// Log configures log/slog.
type Log struct {
	Level  slog.Level `envconfig:"LOG_LEVEL" default:"info"`
	Format string     `envconfig:"LOG_FORMAT" default:"json"`
}

// LoadReceiver reads the receiver's settings and checks them.
func LoadReceiver() (Receiver, error) {
	c, err := ReadReceiver()
	if err != nil {
		return Receiver{}, err
	}
	return c, c.validate()
}

// ReadReceiver reads the receiver's settings as LoadReceiver does, blank
// secrets dropped, but does not check them.
func ReadReceiver() (Receiver, error) {
	var c Receiver
	if err := envconfig.Process("", &c); err != nil {
		return Receiver{}, fmt.Errorf("config: %w", err)
	}
	secrets := c.WebhookSecrets[:0]
	for _, s := range c.WebhookSecrets {
		if s = strings.TrimSpace(s); s != "" {
			secrets = append(secrets, s)
		}
	}
	c.WebhookSecrets = secrets
	return c, nil
}

func (c Receiver) validate() error {
	var errs []error
	if len(c.WebhookSecrets) == 0 {
		errs = append(errs, errors.New("DIDIT_WEBHOOK_SECRETS is not set: set it to the webhook secret shown in Didit's console "+
			"(API & Webhooks); during a rotation give both, comma-separated"))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("MAX_BODY_BYTES must be positive, got %d", c.MaxBodyBytes))
	}
	if c.SignalTimeout <= 0 || c.SignalTimeout >= 5*time.Second {
		errs = append(errs, fmt.Errorf("SIGNAL_TIMEOUT must be above 0 and below Didit's 5s timeout, got %s", c.SignalTimeout))
	}
	if c.RequestTimeout <= c.SignalTimeout {
		errs = append(errs, fmt.Errorf("REQUEST_TIMEOUT (%s) must be longer than SIGNAL_TIMEOUT (%s), which it includes", c.RequestTimeout, c.SignalTimeout))
	}
	if c.TaskQueue == "" {
		errs = append(errs, errors.New("TEMPORAL_TASK_QUEUE must not be empty"))
	}
	if c.ReplayCacheSize < 0 {
		errs = append(errs, fmt.Errorf("REPLAY_CACHE_SIZE must be 0 (off) or positive, got %d", c.ReplayCacheSize))
	}
	if c.ReplayCacheSize > 0 && c.ReplayCacheTTL <= 0 {
		errs = append(errs, fmt.Errorf("REPLAY_CACHE_TTL must be positive while REPLAY_CACHE_SIZE is set, got %s", c.ReplayCacheTTL))
	}
	errs = append(errs, c.Log.validate(), c.Encryption.validate())
	return errors.Join(errs...)
}

func (l Log) validate() error {
	if l.Format != "json" && l.Format != "text" {
		return fmt.Errorf("LOG_FORMAT must be json or text, got %q", l.Format)
	}
	return nil
}

// NewLogger builds the process's slog logger.
func (l Log) NewLogger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.Level}
	var h slog.Handler = slog.NewJSONHandler(os.Stderr, opts)
	if l.Format == "text" {
		h = slog.NewTextHandler(os.Stderr, opts)
	}
	return slog.New(telemetry.LogHandler(h))
}

// Worker configures the Temporal worker: where records and mail go, and the
// workflows' timings.
type Worker struct {
	// TaskQueue is the Temporal task queue of the session workflows.
	TaskQueue string `envconfig:"TEMPORAL_TASK_QUEUE" default:"diditflow"`
	// DatabaseURL is postgres://... for PostgreSQL, otherwise a SQLite file.
	DatabaseURL string `envconfig:"DATABASE_URL" default:".data/diditflow.db"`
	// DatabaseMaxConns bounds the worker's PostgreSQL pool: activities
	// beyond it wait for a connection instead of opening one more, so a
	// burst cannot exhaust the server's max_connections (100 by default),
	// which the other workers and, often, Temporal's own stores share. Ten:
	// a record write is a transaction of milliseconds, so ten keep up with
	// a worker's activities, and several workers plus Temporal's pools
	// (its image's defaults: 20 and 10 per service) fit in a default
	// server. SQLite keeps its one connection.
	DatabaseMaxConns int `envconfig:"DATABASE_MAX_CONNS" default:"10"`
	// SMTPURL (smtp:// or smtps://) sends mail; empty writes .eml files to
	// OutboxDir instead.
	SMTPURL   string `envconfig:"SMTP_URL"`
	OutboxDir string `envconfig:"OUTBOX_DIR" default:".data/outbox"`
	MailFrom  string `envconfig:"MAIL_FROM" default:"diditflow <no-reply@diditflow.localhost>"`
	// UserNotices is on or off: off leaves the user's mail to the business
	// (its own workflows, on diditflow's hooks); records, AML cases and
	// compliance mail are unchanged.
	UserNotices string `envconfig:"USER_NOTICES" default:"on"`
	// NoticeTemplates is a directory of user notice templates, each file
	// replacing the embedded template of the same name (internal/notice);
	// empty uses the embedded ones. Read once, at start.
	NoticeTemplates string `envconfig:"NOTICE_TEMPLATES"`
	// MailBreakerOpenTimeout is how long the circuit breaker in front of the
	// mail server and the compliance webhook stays open after repeated
	// failures, before it lets a trial call through.
	MailBreakerOpenTimeout time.Duration `envconfig:"MAIL_BREAKER_OPEN_TIMEOUT" default:"30s"`
	// Compliance contacts for AML cases.
	ComplianceEmail           string `envconfig:"COMPLIANCE_EMAIL" default:"compliance@diditflow.localhost"`
	ComplianceEscalationEmail string `envconfig:"COMPLIANCE_ESCALATION_EMAIL"`
	// ComplianceWebhookURL is secret as a whole: Slack's and Teams's
	// incoming-webhook URLs carry their credential in the path.
	ComplianceWebhookURL string `envconfig:"COMPLIANCE_WEBHOOK_URL" secret:"true"`
	// MetricsAddr serves the worker's /metrics, on loopback by default;
	// empty turns it off.
	MetricsAddr string `envconfig:"METRICS_ADDR" default:"127.0.0.1:9090"`
	// MetricsGaugeInterval is how often the gauges taken from the records
	// (sessions by status, AML cases open and overdue, flagged sessions)
	// are read again, a GROUP BY over the records each time. A scrape only
	// serves the last reading, so scrapes never query the records. 30 s is
	// twice Prometheus's usual scrape interval, and the alerts on these
	// gauges wait minutes.
	MetricsGaugeInterval time.Duration `envconfig:"METRICS_GAUGE_INTERVAL" default:"30s"`
	// Workflow timings (see workflows.Settings).
	SessionIdleWindow   time.Duration `envconfig:"SESSION_IDLE_WINDOW" default:"1h"`
	StepRetryBudget     time.Duration `envconfig:"STEP_RETRY_BUDGET" default:"1h"`
	AMLReminderInterval time.Duration `envconfig:"AML_REMINDER_INTERVAL" default:"24h"`
	AMLEscalateAfter    int           `envconfig:"AML_ESCALATE_AFTER" default:"3"`
	// Didit's API, for what webhooks do not carry (decisions). Without a
	// key the API features are off.
	DiditAPIURL string `envconfig:"DIDIT_API_URL" default:"https://verification.didit.me"`
	DiditAPIKey string `envconfig:"DIDIT_API_KEY" secret:"true"`
	// DiditAPIReadsPerSecond is the server-enforced rate of the API read
	// activities across every worker: Didit allows 600 GET a minute per
	// key, and 9/s leaves a tenth of that to other uses of the key.
	DiditAPIReadsPerSecond float64 `envconfig:"DIDIT_API_READS_PER_SECOND" default:"9"`
	// DiditAPIWritesPerSecond is the same for writes (AML hit reviews):
	// Didit allows 300 a minute.
	DiditAPIWritesPerSecond float64 `envconfig:"DIDIT_API_WRITES_PER_SECOND" default:"4.5"`
	// DiditAPICreatesPerSecond is the same for the creation of sessions
	// (kyc.StartVerification): Didit allows 600 a minute, a budget of its
	// own; 9/s leaves a tenth of it to other uses of the key.
	DiditAPICreatesPerSecond float64 `envconfig:"DIDIT_API_CREATES_PER_SECOND" default:"9"`
	// DiditWorkflowID is the Didit workflow of a session a business's
	// workflow creates without naming one (kyc.Request.WorkflowID).
	DiditWorkflowID string `envconfig:"DIDIT_WORKFLOW_ID"`
	// HookWorkflows are the businesses' workflows started on every status
	// change and resolved AML case, as WorkflowType@task-queue
	// (comma-separated); see Hooks.
	HookWorkflows []string `envconfig:"HOOK_WORKFLOWS"`
	// Reconciliation (a Temporal Schedule) asks Didit every ReconcileInterval
	// for what the webhooks missed over ReconcileLookback.
	ReconcileInterval time.Duration `envconfig:"RECONCILE_INTERVAL" default:"15m"`
	ReconcileLookback time.Duration `envconfig:"RECONCILE_LOOKBACK" default:"24h"`
	// ReconcileStaleAfter is how long a session may sit in a status that is
	// not final before its decision is checked (then after twice as long
	// each time, up to a week).
	ReconcileStaleAfter time.Duration `envconfig:"RECONCILE_STALE_AFTER" default:"24h"`
	// ReconcileReadsPerSecond is the part of DIDIT_API_READS_PER_SECOND that
	// reconciliation spends; decision fetches get the rest. A run's steps
	// run one at a time, so this holds across every worker.
	ReconcileReadsPerSecond float64 `envconfig:"RECONCILE_READS_PER_SECOND" default:"3"`
	// ReconcilePageSize is the page size of the lists reconciliation reads.
	ReconcilePageSize int `envconfig:"RECONCILE_PAGE_SIZE" default:"100"`
	// ReconcileMaxCalls caps the Didit calls of one run; the next run goes on
	// where it stopped.
	ReconcileMaxCalls int `envconfig:"RECONCILE_MAX_CALLS" default:"5000"`
	// WebhookDestinationID names the Didit webhook destination whose
	// deliveries reconciliation reads; empty reads every enabled one.
	WebhookDestinationID string `envconfig:"DIDIT_WEBHOOK_DESTINATION_ID"`
	// RecordRetention is how long a session in a final status keeps its
	// personal fields (address, vendor_data, recipients) after its last
	// event: 90 days covers the questions and disputes that follow a
	// decision, long after its notices went out, and keeps no more.
	RecordRetention time.Duration `envconfig:"RECORD_RETENTION" default:"2160h"`
	// AMLRecordRetention is the same for a resolved AML case (and the
	// vendor_data of its session): five years, as anti-money-laundering
	// rules commonly require (EU AMLD art. 40, FATF R.11, UK MLR 2017
	// reg. 40).
	AMLRecordRetention time.Duration `envconfig:"AML_RECORD_RETENTION" default:"43800h"`
	// PurgeInterval is how often the purge schedule runs.
	PurgeInterval time.Duration `envconfig:"PURGE_INTERVAL" default:"24h"`
	Encryption    Encryption
	// AcceptPlaintext makes a worker with payload keys trust unencrypted
	// workflow inputs, signals and Updates, as it did before it had keys:
	// for the migration of a deployment to encryption only, until the runs
	// started before have closed (internal/untrusted).
	AcceptPlaintext bool `envconfig:"PAYLOAD_ENCRYPTION_ACCEPT_PLAINTEXT" default:"false"`
	Log             Log
}

// LoadWorker reads the worker's settings and checks them.
func LoadWorker() (Worker, error) {
	c, err := ReadWorker()
	if err != nil {
		return Worker{}, err
	}
	return c, c.validate()
}

// ReadWorker reads the worker's settings as LoadWorker does, but does not
// check them.
func ReadWorker() (Worker, error) {
	var c Worker
	if err := envconfig.Process("", &c); err != nil {
		return Worker{}, fmt.Errorf("config: %w", err)
	}
	// Blank entries (a trailing comma, an empty variable) name no hook.
	var hooks []string
	for _, h := range c.HookWorkflows {
		if h = strings.TrimSpace(h); h != "" {
			hooks = append(hooks, h)
		}
	}
	c.HookWorkflows = hooks
	return c, nil
}

func (c Worker) validate() error {
	var errs []error
	if c.TaskQueue == "" {
		errs = append(errs, errors.New("TEMPORAL_TASK_QUEUE must not be empty"))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL must not be empty"))
	}
	if c.DatabaseMaxConns < 1 {
		errs = append(errs, fmt.Errorf("DATABASE_MAX_CONNS must be at least 1, got %d", c.DatabaseMaxConns))
	}
	if c.UserNotices != "on" && c.UserNotices != "off" {
		errs = append(errs, fmt.Errorf("USER_NOTICES must be on or off, got %q", c.UserNotices))
	}
	if c.SMTPURL == "" && c.OutboxDir == "" {
		errs = append(errs, errors.New("set SMTP_URL to send mail, or OUTBOX_DIR to write it to files"))
	}
	for name, d := range map[string]time.Duration{
		"SESSION_IDLE_WINDOW": c.SessionIdleWindow, "STEP_RETRY_BUDGET": c.StepRetryBudget,
		"AML_REMINDER_INTERVAL": c.AMLReminderInterval, "MAIL_BREAKER_OPEN_TIMEOUT": c.MailBreakerOpenTimeout,
		"METRICS_GAUGE_INTERVAL": c.MetricsGaugeInterval,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", name, d))
		}
	}
	if u, err := url.Parse(c.DiditAPIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("DIDIT_API_URL must be an http(s) URL, got %q", redact(c.DiditAPIURL)))
	}
	// Didit allows 600 GET and 300 writes a minute per key; a key with
	// other limits (or a test against a fake) may set more.
	if c.DiditAPIReadsPerSecond <= 0 {
		errs = append(errs, fmt.Errorf("DIDIT_API_READS_PER_SECOND must be positive (Didit allows 600 GET a minute: at most 10), got %v", c.DiditAPIReadsPerSecond))
	}
	if c.DiditAPIWritesPerSecond <= 0 {
		errs = append(errs, fmt.Errorf("DIDIT_API_WRITES_PER_SECOND must be positive (Didit allows 300 writes a minute: at most 5), got %v", c.DiditAPIWritesPerSecond))
	}
	if c.DiditAPICreatesPerSecond <= 0 {
		errs = append(errs, fmt.Errorf("DIDIT_API_CREATES_PER_SECOND must be positive (Didit allows 600 session creations a minute: at most 10), got %v", c.DiditAPICreatesPerSecond))
	}
	if _, err := c.Hooks(); err != nil {
		errs = append(errs, err)
	}
	for name, d := range map[string]time.Duration{
		"RECONCILE_INTERVAL": c.ReconcileInterval, "RECONCILE_LOOKBACK": c.ReconcileLookback,
		"RECONCILE_STALE_AFTER": c.ReconcileStaleAfter,
	} {
		if d < time.Second {
			errs = append(errs, fmt.Errorf("%s must be at least 1s, got %s", name, d))
		}
	}
	if c.ReconcileLookback < c.ReconcileInterval {
		errs = append(errs, fmt.Errorf("RECONCILE_LOOKBACK (%s) must be at least RECONCILE_INTERVAL (%s), or runs leave gaps between their windows",
			c.ReconcileLookback, c.ReconcileInterval))
	}
	if c.ReconcileReadsPerSecond <= 0 || c.ReconcileReadsPerSecond >= c.DiditAPIReadsPerSecond {
		errs = append(errs, fmt.Errorf("RECONCILE_READS_PER_SECOND must be above 0 and below DIDIT_API_READS_PER_SECOND (%v), which it is part of, got %v",
			c.DiditAPIReadsPerSecond, c.ReconcileReadsPerSecond))
	}
	if c.ReconcilePageSize < 1 || c.ReconcilePageSize > 100 {
		errs = append(errs, fmt.Errorf("RECONCILE_PAGE_SIZE must be in [1, 100], got %d", c.ReconcilePageSize))
	}
	if c.ReconcileMaxCalls < 1 {
		errs = append(errs, fmt.Errorf("RECONCILE_MAX_CALLS must be at least 1, got %d", c.ReconcileMaxCalls))
	}
	for name, d := range map[string]time.Duration{
		"RECORD_RETENTION": c.RecordRetention, "AML_RECORD_RETENTION": c.AMLRecordRetention, "PURGE_INTERVAL": c.PurgeInterval,
	} {
		if d < time.Minute {
			errs = append(errs, fmt.Errorf("%s must be at least 1m, got %s", name, d))
		}
	}
	if c.AMLEscalateAfter < 1 {
		errs = append(errs, fmt.Errorf("AML_ESCALATE_AFTER must be at least 1, got %d", c.AMLEscalateAfter))
	}
	errs = append(errs, c.Log.validate(), c.Encryption.validate())
	return errors.Join(errs...)
}

// Hook is one of HOOK_WORKFLOWS: a business's workflow type and the task
// queue its worker polls.
type Hook struct {
	WorkflowType, TaskQueue string
}

// Hooks parses HOOK_WORKFLOWS: comma-separated WorkflowType@task-queue,
// each named once.
func (c Worker) Hooks() ([]Hook, error) {
	var out []Hook
	for _, item := range c.HookWorkflows {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		typ, queue, ok := strings.Cut(item, "@")
		typ, queue = strings.TrimSpace(typ), strings.TrimSpace(queue)
		if !ok || typ == "" || queue == "" || strings.Contains(queue, "@") {
			return nil, fmt.Errorf("HOOK_WORKFLOWS: %q is not WorkflowType@task-queue", item)
		}
		h := Hook{WorkflowType: typ, TaskQueue: queue}
		if slices.Contains(out, h) {
			return nil, fmt.Errorf("HOOK_WORKFLOWS: %q is given twice", item)
		}
		out = append(out, h)
	}
	return out, nil
}
