package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/diditflow/diditflow/examples/onboarding/app"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

// TestOnboardingExampleInTheBrowser runs examples/onboarding (its pages and
// its worker, in this process) beside diditflow and the fake Didit, and
// goes through it in headless Chromium as its user: sign up, follow the
// verification link to Didit's hosted page, finish approved, land back on
// the account page and see the account active. Then a reviewer declines
// the session on Didit's page, and the hook diditflow starts closes the
// account.
func TestOnboardingExampleInTheBrowser(t *testing.T) {
	ctx := browser(t)
	shots := shotsDir(t)
	fake, didit, withDidit := fakeDidit(t)
	t.Cleanup(func() { _ = fake.Close() })
	queue := businessQueue()
	s := newStack(t, withDidit, func(s *stack) {
		s.workerEnv = append(s.workerEnv, "HOOK_WORKFLOWS="+app.HookWorkflowType+"@"+queue)
	})
	s.receiveWebhooksOf(didit)

	pages := httptest.NewUnstartedServer(nil)
	site := "http://" + pages.Listener.Addr().String()
	var example *app.App
	c := s.businessOf(queue, func(c client.Client, w worker.Worker) {
		var err error
		example, err = app.New(context.Background(), app.Config{DB: filepath.Join(t.TempDir(), "onboarding.db"), Temporal: c,
			TaskQueue: queue, KYCQueue: taskQueue, PublicURL: site})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = example.Close() })
		example.Register(w)
	})
	pages.Config.Handler = example.Handler()
	pages.Start()
	t.Cleanup(pages.Close)

	const email = "ada@example.com"
	step(t, ctx, shots, "onboarding-1-signup",
		chromedp.Navigate(site),
		pageShows("Open an account"),
		chromedp.SendKeys(chromedp.CSS("#name"), "Ada Lovelace"),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		landsOn("Your account"))
	// The page reloads itself until the verification's link is there.
	var link string
	step(t, ctx, shots, "onboarding-2-verification-link",
		landsOn("Verify your identity"),
		follow("#verify", &link),
		landsOn("The fake Didit's hosted verification page"))
	step(t, ctx, shots, "onboarding-3-approved",
		chromedp.Click(chromedp.CSS(`button[value="approve"]`)),
		landsOn("Your account"),
		landsOn("Status: active"))

	back, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(back)
	id := strings.TrimPrefix(u.Path, "/accounts/")
	acct, err := example.Accounts().Get(context.Background(), id)
	if err != nil {
		t.Fatalf("the account of %s: %v", back, err)
	}
	if acct.Status != app.Active || acct.VerificationURL != link || u.Query().Get("verificationSessionId") != acct.SessionID ||
		u.Query().Get("status") != "Approved" {
		t.Fatalf("back on %s, the account is %+v", back, acct)
	}
	var onboarded app.Status
	s.result(c.GetWorkflow(context.Background(), app.OnboardingWorkflowID(id, 1), ""), &onboarded)
	if onboarded != app.Active {
		t.Fatalf("Onboarding = %q, want active", onboarded)
	}

	// Later, in Didit's console, a reviewer declines the session.
	step(t, ctx, shots, "onboarding-4-reviewer-declines",
		chromedp.Navigate(link),
		chromedp.Click(chromedp.CSS(`button[value="reviewer-decline"]`)),
		landsOn("Declined"))
	s.waitFor("the hook to close the account", func() bool {
		acct, err := example.Accounts().Get(context.Background(), id)
		return err == nil && acct.Status == app.Closed
	})
	step(t, ctx, shots, "onboarding-5-closed",
		chromedp.Navigate(site+"/accounts/"+id),
		pageShows("Status: closed"))
	var closing string
	s.waitFor("the hook that closed it", func() bool { closing = s.hookThat(c, acct.SessionID, app.Active, app.Closed); return closing != "" })
	// The business's history holds the user's address encrypted.
	s.noneReadable(app.OnboardingWorkflowID(id, 1), email)
	if *updateReplay {
		replay := launch.Path(t, "examples", "onboarding", "app", "testdata", "replay")
		for name, workflowID := range map[string]string{"onboarding-approved.json": app.OnboardingWorkflowID(id, 1), "hook-closes.json": closing} {
			if err := launch.WriteHistory(s.temporal, workflowID, filepath.Join(replay, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// hookThat is the ID of the example's hook of the session that moved its
// account from one status to another, or "".
func (s *stack) hookThat(c client.Client, session string, from, to app.Status) string {
	s.t.Helper()
	resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: `WorkflowId STARTS_WITH "` + app.HookWorkflowType + "-" + session + `-" AND ExecutionStatus = "Completed"`,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range resp.Executions {
		var done app.Applied
		s.result(c.GetWorkflow(context.Background(), e.Execution.WorkflowId, e.Execution.RunId), &done)
		if done.From == from && done.To == to && done.Ignored == "" {
			return e.Execution.WorkflowId
		}
	}
	return ""
}

// follow clicks the link sel, in one go within the page, so that the
// page's own reloads cannot take the link from under the click, and keeps
// where it leads in href.
func follow(sel string, href *string) chromedp.Action[chromedp.Void] {
	click := fmt.Sprintf(`(() => { const a = document.querySelector(%q); if (!a) return ""; a.click(); return a.href; })()`, sel)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for {
			if h, err := chromedp.Evaluate[string](click)(ctx, t); err == nil && h != "" {
				*href = h
				return chromedp.Void{}, nil
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, fmt.Errorf("no link %s to follow: %w", sel, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}
