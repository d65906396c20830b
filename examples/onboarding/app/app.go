// Package app is the onboarding example's business app, built on diditflow's
// public package kyc: a signup page, an accounts table of its own (SQLite),
// the Onboarding workflow that verifies each new account's user with Didit,
// and the OnKYCEvent hook that applies every later event of the session
// (a review that declines, Kyc Expired, a confirmed AML match) to the
// account.
//
// It imports nothing of diditflow but kyc (and kyctest in its tests), as
// a business's code would: its worker runs on its own task queue, beside
// diditflow's, in the same Temporal namespace.
package app

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
)

// DefaultTaskQueue is the app's own task queue, where its worker runs its
// workflows and activities.
const DefaultTaskQueue = "onboarding"

// Config is what the app runs with.
type Config struct {
	// DB is the accounts' SQLite file, created if missing.
	DB string
	// Temporal starts the workflows: a client set up with
	// kyc.ConfigureClient, so that it shares diditflow's payload keys.
	Temporal client.Client
	// TaskQueue is the app's task queue; empty is DefaultTaskQueue.
	TaskQueue string
	// KYCQueue is diditflow's task queue; empty is kyc.DefaultTaskQueue.
	KYCQueue string
	// PublicURL is where users' browsers reach the app
	// (http://127.0.0.1:3000): Didit sends them back to their account page
	// there.
	PublicURL string
	// Logger logs what the app does to accounts; nil logs nothing.
	Logger *slog.Logger
}

// App is the business app: its pages, its workflows, its accounts.
type App struct {
	cfg      Config
	accounts *Accounts
	logger   *slog.Logger
}

// New opens the accounts table and returns the app.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Temporal == nil {
		return nil, errors.New("app: Config.Temporal is required")
	}
	if u, err := url.Parse(cfg.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("app: Config.PublicURL must be an http(s) URL, got " + cfg.PublicURL)
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	cfg.TaskQueue = cmp.Or(cfg.TaskQueue, DefaultTaskQueue)
	accounts, err := OpenAccounts(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &App{cfg: cfg, accounts: accounts, logger: logger}, nil
}

// Close closes the accounts table.
func (a *App) Close() error { return a.accounts.Close() }

// Accounts is the app's accounts table.
func (a *App) Accounts() *Accounts { return a.accounts }

// Registry is where Register registers: a worker, or a test environment.
type Registry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
	RegisterActivity(a any)
}

// Register registers the app's workflows and activities on r: the worker
// of the app's task queue.
func (a *App) Register(r Registry) {
	Register(r, &Activities{Accounts: a.accounts, Logger: a.logger})
}

// Register registers the workflows, under their types, and acts.
func Register(r Registry, acts *Activities) {
	r.RegisterWorkflowWithOptions(Onboarding, workflow.RegisterOptions{Name: OnboardingWorkflowType})
	r.RegisterWorkflowWithOptions(OnKYCEvent, workflow.RegisterOptions{Name: HookWorkflowType})
	r.RegisterActivity(acts)
}
