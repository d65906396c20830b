package e2e

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/diditflow/diditflow/internal/codecserver"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/simulator"
	"github.com/diditflow/diditflow/internal/harness/smtptest"
)

var updateScreenshots = flag.Bool("update", false, "refresh the screenshots in docs/ that docs/WORKFLOWS.md shows")

// chromiumPath is Debian's Chromium, the only browser the tests use.
const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium with a fresh profile, or skips the test
// when it is missing (fails under CI=true, where .ci/run installs it).
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; .ci/run installs it (apt-get install chromium)", chromiumPath)
		}
		t.Skipf("%s is missing: apt-get install chromium to run the browser test", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1440, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return ctx
}

// uiStack is a stack on a dev server of its own that serves the UI, which
// decodes payloads through a codec server holding the stack's keys.
func uiStack(t *testing.T, opts ...func(*stack)) (*stack, *launch.DevServer) {
	t.Helper()
	uiPort := launch.Port(t)
	codecCfg, err := config.ReadCodecServer()
	if err != nil {
		t.Fatal(err)
	}
	codecCfg.CORSOrigins = []string{"http://127.0.0.1:" + uiPort}
	h, err := codecserver.New(codecCfg, launch.Codec(), nil)
	if err != nil {
		t.Fatal(err)
	}
	codec := httptest.NewServer(h)
	t.Cleanup(codec.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dev, err := launch.StartDevServer(ctx, launch.DevServerConfig{Dir: t.TempDir(), UIPort: uiPort, UI: true,
		CodecEndpoint: codec.URL, LogLevel: "warn"})
	if err != nil {
		launch.Unavailable(t, "temporal dev server", err)
	}
	t.Cleanup(dev.Close)
	tc := launch.DialTemporal(t, dev.Address())
	return newStack(t, append([]func(*stack){func(s *stack) { s.temporal, s.address = tc, dev.Address() }}, opts...)...), dev
}

// TestOperatorPathInTheBrowser: a session's notice parks because the mail
// server is down; an operator finds it in the Temporal UI by
// DiditNeedsAttention, reads its decoded state, and after the mail server
// is back sends Updates through the UI's own Send an Update form: an
// acknowledge, refused in the form with the validator's reason (no flag is
// raised), then a retry, which answers with the step it released. The flag
// clears, the user gets the mail once, and the decision keeps the UI's
// identity.
func TestOperatorPathInTheBrowser(t *testing.T) {
	ctx := browser(t)
	s, dev := uiStack(t, func(s *stack) { s.stepBudget = "3s" })
	shots := shotsDir(t)
	ui := "http://" + dev.UIAddress()

	addr := s.mailDown()
	session := simulator.NewUUID()
	s.deliver(delivery(t, "status-updated-approved.json", session))
	id := contract.SessionWorkflowID(session)
	t.Cleanup(func() { s.dumpFailure(shots, id) })
	s.waitFor("the session to need attention", func() bool { return s.needsAttention(id) })

	// Find it by its flag, as an operator would.
	list := ui + "/namespaces/default/workflows?query=" + url.QueryEscape("DiditNeedsAttention = true")
	link := chromedp.CSS(`a[href*="` + id + `"]`)
	step(t, ctx, shots, "1-needs-attention",
		chromedp.Navigate(list),
		chromedp.WaitVisible(link))

	// Its state, decoded by the codec server: the parked notice and why.
	step(t, ctx, shots, "2-decoded-state",
		chromedp.Click(link),
		chromedp.Click(chromedp.CSS(`[data-testid="queries-tab"]`)),
		chromedp.Click(chromedp.Search(`//button[contains(., "Run Query")]`)),
		pageShows(`"parked"`), pageShows(`notify user: approved`), pageShows(`"vendor_data"`))

	// The mail server is back. In the UI's Send an Update form, an
	// acknowledge first: there is no flag to clear, and the form says so.
	sink, err := smtptest.Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	const input = `{"operator":"ops@example.com","note":"SMTP is back"}`
	before := s.historyLength(id)
	step(t, ctx, shots, "3-update-refused", append(append([]chromedp.Action[chromedp.Void]{
		clickUntil(`button[aria-controls="workflow-actions"]`, "",
			`[...document.querySelectorAll('[data-testid="update-button"]')].some(e => e.checkVisibility({opacityProperty: true, visibilityProperty: true}))`),
		clickUntil(`[data-testid="update-button"]`, "", `document.querySelector('dialog#update-confirmation-modal[open]') !== null`)},
		chooseUpdate(contract.AcknowledgeSignal)...),
		typeInto(updateModal+`[contenteditable="true"]`, input),
		// A click that only takes the focus from the input is clicked again.
		clickUntil(updateModal+`[data-testid="confirm-modal-button"]`, "",
			`document.body.innerText.includes("nothing to acknowledge: no flag is raised")`))...)
	if after := s.historyLength(id); after != before {
		t.Fatalf("the refused Update grew the history from %d to %d events", before, after)
	}

	// Then the retry, which the workflow takes and answers.
	step(t, ctx, shots, "4-update-answered", append(chooseUpdate(contract.RetrySignal),
		clickUntil(updateModal+`[data-testid="confirm-modal-button"]`, "",
			`document.querySelector('dialog#update-confirmation-modal[open]') === null`),
		pageShows("Update successful"),
		// The state now holds the operator's decision, and the step is gone.
		chromedp.Click(chromedp.Search(`//button[contains(., "Refresh Query")]`)),
		pageShows(`"decisions"`), pageShows(`"action": "retry"`))...)

	s.waitFor("the session to complete", func() bool { return s.completed(id) })
	if s.needsAttention(id) {
		t.Fatal("DiditNeedsAttention still true after the retry")
	}
	if n := len(sink.Mails()); n != 1 || sink.Count("is approved") != 1 {
		t.Fatalf("%d mails after the retry, want the approval once", n)
	}
	answers := s.updateAnswers(id)
	if len(answers) != 1 || answers[0].Action != contract.RetrySignal || len(answers[0].Steps) != 1 ||
		!strings.HasPrefix(answers[0].Steps[0], "notify user: approved") || answers[0].Operator != "ops@example.com" {
		t.Fatalf("the Updates answered %+v, want the retry of the parked notice", answers)
	}
	t.Logf("the UI's Update came from identity %q", answers[0].Identity)
	// The UI's filter no longer finds it.
	step(t, ctx, shots, "5-flag-cleared",
		chromedp.Navigate(list),
		pageShows("No Results"))
	if *updateScreenshots {
		for _, name := range []string{"1-needs-attention", "2-decoded-state", "3-update-refused", "4-update-answered"} {
			raw, err := os.ReadFile(filepath.Join(shots, name+".png"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(launch.Path(t, "docs", "screenshots", "ui-"+name+".png"), raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// shotsDir is where step keeps each step's page: BROWSER_DUMP_DIR, to look
// at a failure past the test, else the test's temporary directory.
func shotsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BROWSER_DUMP_DIR")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// updateModal is the UI's Send an Update dialog (rendered twice, like its
// other dialogs: the open one is the one shown).
const updateModal = `dialog#update-confirmation-modal[open] `

// chooseUpdate picks name in the open Send an Update form and waits until
// the form holds it. The option is clicked by script, not by the mouse: the
// list opens and closes with a transition, and a mouse click while it moves
// lands on another option (or, on the closing list, which covers the input
// below it: what sent the browser test's retry as a kyc-subscribe signal).
func chooseUpdate(name string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		clickUntil(updateModal+`[data-testid="update-select-button"]`, "",
			`[...document.querySelectorAll('#update-select-select li[role="option"]')].some(e => e.checkVisibility())`),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => {
			const e = [...document.querySelectorAll('#update-select-select li[role="option"]')].find(e => e.checkVisibility() && e.innerText.trim() === %q);
			if (!e) return false;
			e.click();
			return true; })()`, name), chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`[...document.querySelectorAll(%q)].some(e => e.value === %q)`,
			updateModal+`[data-testid="update-select"]`, name), chromedp.WithPollingTimeout(10*time.Second)),
	}
}

// typeInto types text into the first displayed element matching css,
// focused by script rather than clicked (see chooseUpdate), and waits until
// it holds the text.
func typeInto(css, text string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		mark := fmt.Sprintf(`(() => {
			const e = [...document.querySelectorAll(%q)].find(e => e.checkVisibility());
			if (!e) return false;
			document.querySelectorAll('[data-e2e-target]').forEach(o => o.removeAttribute('data-e2e-target'));
			e.setAttribute('data-e2e-target', '');
			return true; })()`, css)
		for _, a := range []chromedp.Action[chromedp.Void]{
			chromedp.Poll[chromedp.Void](mark, chromedp.WithPollingTimeout(30*time.Second)),
			chromedp.SendKeys(chromedp.CSS(`[data-e2e-target]`), text),
			chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('[data-e2e-target]').innerText.trim() === %q`, text),
				chromedp.WithPollingTimeout(10*time.Second)),
		} {
			if _, err := a(ctx, t); err != nil {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, nil
	}
}

// step runs actions, bounded by a minute, and saves the page as name
// (screenshot and HTML) whether they passed or not.
func step(t *testing.T, ctx context.Context, dir, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var err error
	for i, a := range actions {
		if err = chromedp.Do(sctx, a); err != nil {
			err = fmt.Errorf("action %d of %d: %w", i+1, len(actions), err)
			break
		}
	}
	dump(t, ctx, dir, name)
	if err != nil {
		t.Fatalf("%s: %v (screenshot and HTML in %s)", name, err, dir)
	}
}

// clickUntil clicks, with the mouse, the first element matching css that
// is displayed and, unless text is empty, whose text is text (the UI
// renders some controls twice, one for each layout, and hides one), until
// the JavaScript condition holds, clicking again if it does not within a
// few seconds: a page still loading its scripts, or a menu still opening,
// can swallow a click.
func clickUntil(css, text, condition string) chromedp.Action[chromedp.Void] {
	mark := fmt.Sprintf(`(() => {
		const shown = e => e.checkVisibility({opacityProperty: true, visibilityProperty: true});
		const e = [...document.querySelectorAll(%q)].find(e => shown(e) && (%q === "" || e.innerText.trim() === %q));
		if (!e) return false;
		document.querySelectorAll('[data-e2e-target]').forEach(o => o.removeAttribute('data-e2e-target'));
		e.setAttribute('data-e2e-target', '');
		return true; })()`, css, text, text)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		var err error
		for range 5 {
			if _, err = chromedp.Poll[chromedp.Void](mark, chromedp.WithPollingTimeout(30*time.Second))(ctx, t); err != nil {
				return chromedp.Void{}, fmt.Errorf("no visible %s %q: %w", css, text, err)
			}
			if _, err = chromedp.Click(chromedp.CSS(`[data-e2e-target]`))(ctx, t); err != nil {
				continue
			}
			if _, err = chromedp.Poll[chromedp.Void](condition, chromedp.WithPollingTimeout(5*time.Second))(ctx, t); err == nil {
				return chromedp.Void{}, nil
			}
		}
		return chromedp.Void{}, fmt.Errorf("clicked %s %q, and still not %s: %w", css, text, condition, err)
	}
}

// pageShows waits until the page's text holds text.
func pageShows(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](fmt.Sprintf("document.body.innerText.includes(%q)", text),
		chromedp.WithPollingTimeout(45*time.Second))
}

// dump writes a screenshot and the page's HTML into dir as name.
func dump(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, _ := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
	if len(png) > 0 {
		_ = os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	}
	_ = os.WriteFile(filepath.Join(dir, name+".html"), []byte(html), 0o644)
}

// needsAttention reports the workflow's DiditNeedsAttention.
func (s *stack) needsAttention(workflowID string) bool {
	d, err := s.temporal.DescribeWorkflow(context.Background(), workflowID, "")
	if err != nil {
		return false
	}
	v, ok := d.TypedSearchAttributes.GetBool(contract.NeedsAttentionKey)
	return ok && v
}

// dumpFailure keeps, when the test failed, the workflow's history and the
// worker's log in dir beside the pages.
func (s *stack) dumpFailure(dir, workflowID string) {
	if !s.t.Failed() {
		return
	}
	if err := launch.WriteHistory(s.temporal, workflowID, filepath.Join(dir, "history.json")); err != nil {
		s.t.Logf("history of %s: %v", workflowID, err)
	}
	if log, err := os.ReadFile(s.workerLog); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "worker.log"), log, 0o644)
	}
}
