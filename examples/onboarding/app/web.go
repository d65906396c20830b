package app

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"net/http"
	"net/mail"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

//go:embed pages.html
var pagesFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{"explain": explain, "page": page}).ParseFS(pagesFS, "pages.html"))

// headView is what every page's head shows: its title, and how often it
// reloads itself, in seconds (0: never).
type headView struct {
	Title   string
	Refresh int
}

func page(title string, refresh int) headView { return headView{title, refresh} }

// refreshEvery is how often a pending account's page reloads itself.
const refreshEvery = 2 * time.Second

// startTimeout bounds the start of a workflow, within a user's request.
const startTimeout = 5 * time.Second

// Handler serves the app's pages: the signup form (GET /, POST /signup),
// the account page (GET /accounts/{id}), and its "verify again" button
// (POST /accounts/{id}/verify). A form posted from another site is
// refused.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		render(w, http.StatusOK, "signup", signupView{})
	})
	mux.HandleFunc("POST /signup", a.signup)
	mux.HandleFunc("GET /accounts/{id}", a.account)
	mux.HandleFunc("POST /accounts/{id}/verify", a.verifyAgain)
	return http.NewCrossOriginProtection().Handler(mux)
}

// signupView is what the signup page shows.
type signupView struct {
	Name, Email string
	Problem     string
}

// signup creates a pending account and starts its onboarding, then sends
// the browser to the account page.
func (a *App) signup(w http.ResponseWriter, r *http.Request) {
	v := signupView{Name: strings.TrimSpace(r.PostFormValue("name")), Email: strings.TrimSpace(r.PostFormValue("email"))}
	if addr, err := mail.ParseAddress(v.Email); err != nil || addr.Address != v.Email || len(v.Email) > 254 {
		v.Problem = "Enter your email address, as name@example.com."
	}
	if v.Name == "" || len(v.Name) > 200 {
		v.Problem = "Enter your name."
	}
	if v.Problem != "" {
		render(w, http.StatusBadRequest, "signup", v)
		return
	}
	acct, err := a.accounts.Create(r.Context(), v.Name, v.Email)
	if err != nil {
		a.logger.ErrorContext(r.Context(), "signup failed", "error", err)
		v.Problem = "We could not create your account. Try again in a moment."
		render(w, http.StatusServiceUnavailable, "signup", v)
		return
	}
	if err := a.startOnboarding(r.Context(), acct, 1); err != nil {
		// Nothing verifies the account: it goes, and the user tries again.
		a.logger.ErrorContext(r.Context(), "onboarding did not start", "account_id", acct.ID, "error", err)
		if err := a.accounts.Delete(context.WithoutCancel(r.Context()), acct.ID); err != nil {
			a.logger.ErrorContext(r.Context(), "account left pending", "account_id", acct.ID, "error", err)
		}
		v.Problem = "We could not start your verification. Try again in a moment."
		render(w, http.StatusServiceUnavailable, "signup", v)
		return
	}
	a.logger.InfoContext(r.Context(), "account created", "account_id", acct.ID)
	http.Redirect(w, r, "/accounts/"+acct.ID, http.StatusSeeOther)
}

// accountView is what the account page shows.
type accountView struct {
	Account
	// Refresh is how often the page reloads itself, in seconds; 0 never.
	Refresh int
	// Back says Didit sent the browser back here (its callback).
	Back    bool
	Problem string
}

func (a *App) account(w http.ResponseWriter, r *http.Request) {
	acct, ok := a.lookup(w, r)
	if !ok {
		return
	}
	v := accountView{Account: acct, Back: r.URL.Query().Has("verificationSessionId")}
	if acct.Status == Pending {
		v.Refresh = int(refreshEvery / time.Second)
	}
	render(w, http.StatusOK, "account", v)
}

// verifyAgain starts a new verification of an account whose KYC expired,
// or that did not finish in time. Pressed twice, it starts one.
func (a *App) verifyAgain(w http.ResponseWriter, r *http.Request) {
	acct, ok := a.lookup(w, r)
	if !ok {
		return
	}
	if acct.Status.CanVerifyAgain() {
		if err := a.startOnboarding(r.Context(), acct, acct.Attempt+1); err != nil {
			a.logger.ErrorContext(r.Context(), "verification did not start", "account_id", acct.ID, "error", err)
			render(w, http.StatusServiceUnavailable, "account", accountView{Account: acct,
				Problem: "We could not start your verification. Try again in a moment."})
			return
		}
	}
	http.Redirect(w, r, "/accounts/"+acct.ID, http.StatusSeeOther)
}

// lookup is the account of the request's path, or false once it answered
// that there is none (404) or that it cannot tell (503).
func (a *App) lookup(w http.ResponseWriter, r *http.Request) (Account, bool) {
	acct, err := a.accounts.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNoAccount):
		http.NotFound(w, r)
		return Account{}, false
	case err != nil:
		a.logger.ErrorContext(r.Context(), "account lookup failed", "error", err)
		http.Error(w, "The account is unavailable. Try again in a moment.", http.StatusServiceUnavailable)
		return Account{}, false
	}
	return acct, true
}

// startOnboarding starts the account's verification numbered attempt. One
// already started is not started again.
func (a *App) startOnboarding(ctx context.Context, acct Account, attempt int) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	_, err := a.cfg.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    OnboardingWorkflowID(acct.ID, attempt),
		TaskQueue:             a.cfg.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, OnboardingWorkflowType, OnboardingInput{
		AccountID:  acct.ID,
		Attempt:    attempt,
		Email:      acct.Email,
		AccountURL: a.cfg.PublicURL + "/accounts/" + acct.ID,
		KYCQueue:   a.cfg.KYCQueue,
	})
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return nil
	}
	return err
}

// render writes the page name with v, or a 500 if it fails.
func render(w http.ResponseWriter, code int, name string, v any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, v); err != nil {
		http.Error(w, "The page failed to render.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
}

// explain is what a status means to the account's owner.
func explain(s Status) string {
	switch s {
	case Pending:
		return "We are verifying your identity."
	case Active:
		return "Your identity is verified: your account is active."
	case Rejected:
		return "We could not verify your identity."
	case Expired:
		return "Your verification was not finished in time."
	case Closed:
		return "A review of your verification declined it: your account is closed."
	case Frozen:
		return "Your account is frozen. Contact us."
	case Reverify:
		return "Your verification has expired: verify your identity again to keep your account."
	}
	return ""
}
