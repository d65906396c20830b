package rotation

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
)

const (
	testKey   = "sk_test_admin_key_not_for_output"
	oldSecret = "old-secret-tno2NTeRC1ZK3sBOYlBJDyEzBVENl3pQ1A"
)

// fixture is a fake Didit over httptest, the command pointed at it by its
// environment, and a stand-in reconcile schedule.
type fixture struct {
	fake     *fakedidit.Server
	client   *api.Client
	schedule *fakeHandle
	opens    int
}

// newFixture starts a fake Didit whose default destination (the legacy
// config) delivers to receiverURL. wrap, when not nil, wraps its handler.
func newFixture(t *testing.T, receiverURL string, wrap func(http.Handler) http.Handler) *fixture {
	t.Helper()
	fake := fakedidit.New(fakedidit.Options{Key: testKey, Secret: oldSecret, ReceiverURL: receiverURL,
		RetryDelays: []time.Duration{time.Millisecond}})
	var h http.Handler = fake.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		_ = fake.Close()
	})
	c, err := api.New(api.Config{BaseURL: srv.URL, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DIDIT_API_URL", srv.URL)
	t.Setenv("DIDIT_API_KEY", testKey)
	t.Setenv("LOG_LEVEL", "debug")
	t.Setenv("LOG_FORMAT", "json")
	return &fixture{fake: fake, client: c, schedule: &fakeHandle{}}
}

// result is a step as diditflow-admin rotate-secret shows it.
type result struct {
	err     error
	outcome Outcome
	// stdout is the outcome's text; stderr the logs and the error.
	stdout, stderr string
}

// run runs the step req asks for, with the environment's settings, its
// reconcile schedule the fixture's.
func (f *fixture) run(t *testing.T, req Request) result {
	t.Helper()
	var r result
	var stdout, stderr bytes.Buffer
	var env Settings
	if err := envconfig.Process("", &env); err != nil {
		t.Fatal(err)
	}
	rot := &Rotator{Settings: env, Log: slog.New(slog.NewJSONHandler(&stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OpenSchedule: func(context.Context, *slog.Logger) (Schedule, func(), error) {
			f.opens++
			return temporalSchedule{handle: f.schedule, where: `Temporal namespace "default" at test`}, func() {}, nil
		}}
	if r.err = req.Check(); r.err == nil {
		r.outcome, r.err = rot.Run(context.Background(), req)
	}
	if r.err != nil {
		stderr.WriteString(r.err.Error())
	} else if err := r.outcome.WriteText(&stdout); err != nil {
		t.Fatal(err)
	}
	r.stdout, r.stderr = stdout.String(), stderr.String()
	t.Logf("rotate-secret %+v → %v\nstdout:\n%s\nstderr:\n%s", req, r.err, r.stdout, r.stderr)
	return r
}

// fakeHandle stands in for the Temporal handle of the reconcile schedule.
// These tests check how the command uses it: checked before a legacy
// rotation, triggered after the deploy, a missing schedule explained.
// That the worker creates the schedule and that its runs reconcile is
// covered against a real Temporal dev server by the e2e suite
// (internal/harness/e2e/reconcile_test.go); a CLI test gains nothing from
// one.
type fakeHandle struct {
	client.ScheduleHandle
	missing             bool
	describes, triggers int
}

func (h *fakeHandle) notFound() error {
	if h.missing {
		return serviceerror.NewNotFound("schedule not found")
	}
	return nil
}

func (h *fakeHandle) Describe(context.Context) (*client.ScheduleDescription, error) {
	h.describes++
	return &client.ScheduleDescription{}, h.notFound()
}

func (h *fakeHandle) Trigger(_ context.Context, opts client.ScheduleTriggerOptions) error {
	h.triggers++
	return h.notFound()
}

func (f *fixture) legacySecret(t *testing.T) string {
	t.Helper()
	cfg, err := f.client.WebhookConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Secret
}

// requireSecretOnce fails unless secret is on stdout exactly once, and
// neither it anywhere else nor the API key nor any of hidden anywhere.
func requireSecretOnce(t *testing.T, r result, secret string, hidden ...string) {
	t.Helper()
	if secret == "" {
		t.Fatal("no secret to look for")
	}
	if n := strings.Count(r.stdout, secret); n != 1 {
		t.Errorf("the new secret is on stdout %d times, want once", n)
	}
	if strings.Contains(r.stderr, secret) {
		t.Error("the new secret is in the logs")
	}
	for _, s := range append(hidden, testKey) {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("the output shows %q", s)
		}
	}
}

func requireContains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not say %q", what, w)
		}
	}
}

func TestLegacyRotationPrintsTheNewSecretOnce(t *testing.T) {
	f := newFixture(t, "https://receiver.example/webhooks/didit", nil)
	r := f.run(t, Request{})
	if r.err != nil {
		t.Fatal(r.err)
	}
	current := f.legacySecret(t)
	if current == oldSecret || current == "" {
		t.Fatalf("Didit's secret is still the old one (%q)", current)
	}
	requireSecretOnce(t, r, current, oldSecret)
	requireContains(t, "stdout", r.stdout,
		"DIDIT_WEBHOOK_SECRETS=<new secret>,<current value>", "401", cmdAfterDeploy, cmdFinish)
	if f.schedule.describes != 1 || f.schedule.triggers != 0 {
		t.Errorf("schedule described %d, triggered %d times; want 1 and 0 (the run waits for the deploy)",
			f.schedule.describes, f.schedule.triggers)
	}
}

func TestLegacyRotationJSON(t *testing.T) {
	f := newFixture(t, "https://receiver.example/webhooks/didit", nil)
	r := f.run(t, Request{})
	if r.err != nil {
		t.Fatal(r.err)
	}
	var js bytes.Buffer
	if err := r.outcome.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	r.stdout = js.String()
	var out struct {
		Secret string `json:"secret"`
		Steps  []Step `json:"next_steps"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("stdout is not JSON: %v", err)
	}
	if out.Secret != f.legacySecret(t) || len(out.Steps) != 3 || out.Steps[1].Command != cmdAfterDeploy {
		t.Errorf("JSON = %+v", out)
	}
	requireSecretOnce(t, r, out.Secret, oldSecret)
}

func TestLegacyRotationNeedsTheReconcileSchedule(t *testing.T) {
	f := newFixture(t, "https://receiver.example/webhooks/didit", nil)
	f.schedule.missing = true
	r := f.run(t, Request{})
	if r.err == nil {
		t.Fatal("the step succeeded; want it to fail")
	}
	if f.legacySecret(t) != oldSecret {
		t.Fatal("rotated although no reconcile schedule can cover the gap")
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	requireContains(t, "stderr", r.stderr, "nothing rotated",
		"reconcile schedule diditflow-reconcile does not exist in Temporal namespace", "DIDIT_API_KEY", "--without-reconcile")
}

func TestLegacyRotationWithoutReconcile(t *testing.T) {
	f := newFixture(t, "https://receiver.example/webhooks/didit", nil)
	r := f.run(t, Request{WithoutReconcile: true})
	if r.err != nil {
		t.Fatal(r.err)
	}
	requireSecretOnce(t, r, f.legacySecret(t), oldSecret)
	if f.opens != 0 {
		t.Error("Temporal was dialled")
	}
	requireContains(t, "stdout", r.stdout, "resend from Didit's console", cmdFinish)
	if strings.Contains(r.stdout, cmdAfterDeploy) {
		t.Error("stdout tells to trigger a reconcile run that --without-reconcile gave up")
	}
}

// patchFails answers PATCH /v3/webhook/ with a 502, after passing it to the
// fake when apply is set: a rotation whose answer is lost.
func patchFails(apply bool) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPatch || r.URL.Path != "/v3/webhook/" {
				h.ServeHTTP(w, r)
				return
			}
			if apply {
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
			http.Error(w, "bad gateway", http.StatusBadGateway)
		})
	}
}

func TestLegacyRotationReadsBackALostAnswer(t *testing.T) {
	f := newFixture(t, "https://receiver.example/webhooks/didit", patchFails(true))
	r := f.run(t, Request{})
	if r.err != nil {
		t.Fatal(r.err)
	}
	current := f.legacySecret(t)
	if current == oldSecret {
		t.Fatal("not rotated")
	}
	requireSecretOnce(t, r, current, oldSecret)
	requireContains(t, "stdout", r.stdout, "read back")
}

func TestLegacyRotationThatDidNotHappen(t *testing.T) {
	f := newFixture(t, "https://receiver.example/webhooks/didit", patchFails(false))
	r := f.run(t, Request{})
	if r.err == nil {
		t.Fatal("the step succeeded; want it to fail")
	}
	if f.legacySecret(t) != oldSecret {
		t.Fatal("rotated")
	}
	requireContains(t, "stderr", r.stderr, "nothing rotated (the secret is unchanged", "Didit failed (502)")
	if strings.Contains(r.stderr, oldSecret) {
		t.Error("stderr shows the old secret")
	}
}

func TestAfterDeployTriggersTheReconcileSchedule(t *testing.T) {
	f := newFixture(t, "https://receiver.example/webhooks/didit", nil)
	t.Setenv("DIDIT_API_KEY", "") // the step asks Temporal only
	r := f.run(t, Request{AfterDeploy: true})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if f.schedule.triggers != 1 {
		t.Fatalf("schedule triggered %d times, want 1", f.schedule.triggers)
	}
	requireContains(t, "stdout", r.stdout, contract.ReconcileScheduleID, "RECONCILE_LOOKBACK", cmdFinish)
}

func TestAfterDeployWithoutTheSchedule(t *testing.T) {
	f := newFixture(t, "https://receiver.example/webhooks/didit", nil)
	f.schedule.missing = true
	r := f.run(t, Request{AfterDeploy: true})
	if r.err == nil {
		t.Fatal("the step succeeded; want it to fail")
	}
	requireContains(t, "stderr", r.stderr, "no reconcile run triggered",
		`reconcile schedule diditflow-reconcile does not exist in Temporal namespace "default"`,
		"starts with DIDIT_API_KEY: set it on the worker", "Didit's console")
}

func TestFinishPrintsOnlyTheStepThatDropsTheOldSecret(t *testing.T) {
	f := newFixture(t, "https://receiver.example/webhooks/didit", nil)
	t.Setenv("DIDIT_API_KEY", "")
	t.Setenv("DIDIT_API_URL", "http://127.0.0.1:1") // nothing is called
	r := f.run(t, Request{Finish: true})
	if r.err != nil {
		t.Fatal(r.err)
	}
	requireContains(t, "stdout", r.stdout, "\n       DIDIT_WEBHOOK_SECRETS=<new secret>\n", "10 minutes")
	if strings.Contains(r.stdout, "<current value>") || strings.Contains(r.stdout+r.stderr, oldSecret) {
		t.Error("the finish step keeps or shows the old secret")
	}
	if f.opens != 0 {
		t.Error("Temporal was dialled")
	}
}

// destinations returns the live destinations, oldest first, with secrets.
func (f *fixture) destinations(t *testing.T) []api.Destination {
	t.Helper()
	ctx := context.Background()
	list, err := f.client.Destinations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range list {
		if list[i], err = f.client.Destination(ctx, d.UUID); err != nil {
			t.Fatal(err)
		}
	}
	return list
}

func TestDestinationRotationTwice(t *testing.T) {
	base := "https://receiver.example/webhooks/didit?tenant=a%20b"
	f := newFixture(t, base, nil)
	old := fakedidit.DefaultDestinationUUID
	for n, wantURL := range []string{base + "&rotation=1", base + "&rotation=2"} {
		n++
		before := f.destinations(t)
		oldDest := before[len(before)-1]
		if oldDest.UUID != old {
			t.Fatalf("rotation %d: the newest destination is %s, want %s", n, oldDest.UUID, old)
		}
		r := f.run(t, Request{Destination: old})
		if r.err != nil {
			t.Fatalf("rotation %d: %v", n, r.err)
		}
		after := f.destinations(t)
		if len(after) != len(before)+1 {
			t.Fatalf("rotation %d: %d destinations, want %d", n, len(after), len(before)+1)
		}
		nu := after[len(after)-1]
		wantLabel := "default (rotated " + strconv.Itoa(n) + ")"
		if nu.URL != wantURL || nu.Label != wantLabel || !nu.Enabled || nu.WebhookVersion != oldDest.WebhookVersion ||
			!slices.Equal(nu.SubscribedEvents, oldDest.SubscribedEvents) {
			t.Fatalf("rotation %d: created %+v, want a copy of %+v on %s labelled %q", n, nu, oldDest, wantURL, wantLabel)
		}
		if !after[len(after)-2].Enabled {
			t.Fatalf("rotation %d: the old destination is disabled before the finish step", n)
		}
		requireSecretOnce(t, r, nu.Secret, oldDest.Secret, oldSecret)
		finish := "diditflow-admin rotate-secret --destination " + old + " --finish-destination " + nu.UUID
		requireContains(t, "stdout", r.stdout, "DIDIT_WEBHOOK_SECRETS=<new secret>,<current value>", finish, "event_id")

		r = f.run(t, Request{Destination: old, FinishDestination: nu.UUID})
		if r.err != nil {
			t.Fatalf("rotation %d: finish: %v", n, r.err)
		}
		done := f.destinations(t)
		if done[len(done)-2].Enabled || !done[len(done)-1].Enabled {
			t.Fatalf("rotation %d: after the finish step old enabled = %v, new enabled = %v, want false and true",
				n, done[len(done)-2].Enabled, done[len(done)-1].Enabled)
		}
		requireContains(t, "stdout", r.stdout, "\n       DIDIT_WEBHOOK_SECRETS=<new secret>\n",
			"DIDIT_WEBHOOK_DESTINATION_ID="+nu.UUID)
		for _, s := range []string{nu.Secret, oldDest.Secret} {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Fatalf("rotation %d: the finish step shows a secret", n)
			}
		}
		old = nu.UUID
	}
	if f.opens != 0 {
		t.Error("Temporal was dialled: the destination procedure has no gap to reconcile")
	}
}

func TestFinishDestinationRefusesAnUnrelatedOne(t *testing.T) {
	f := newFixture(t, "https://receiver.example/webhooks/didit", nil)
	other, err := f.client.CreateDestination(context.Background(), api.Destination{Label: "other",
		URL: "https://elsewhere.example/hook", Enabled: true, SubscribedEvents: []string{"status.updated"}})
	if err != nil {
		t.Fatal(err)
	}
	r := f.run(t, Request{Destination: fakedidit.DefaultDestinationUUID, FinishDestination: other.UUID})
	if r.err == nil {
		t.Fatal("the step succeeded; want it to fail")
	}
	requireContains(t, "stderr", r.stderr, "nothing disabled")
	if d := f.destinations(t); !d[0].Enabled {
		t.Fatal("the old destination was disabled")
	}
}

func TestDestinationNotFound(t *testing.T) {
	f := newFixture(t, "https://receiver.example/webhooks/didit", nil)
	r := f.run(t, Request{Destination: "0b6e1d4a-1111-4222-8333-444455556666"})
	if r.err == nil {
		t.Fatal("the step succeeded; want it to fail")
	}
	requireContains(t, "stderr", r.stderr, "nothing created", "0b6e1d4a-1111-4222-8333-444455556666", "Didit answered 404")
}

func TestMissingAPIKey(t *testing.T) {
	f := newFixture(t, "https://receiver.example/webhooks/didit", nil)
	t.Setenv("DIDIT_API_KEY", "")
	for _, req := range []Request{
		{},
		{Destination: fakedidit.DefaultDestinationUUID},
		{Destination: fakedidit.DefaultDestinationUUID, FinishDestination: "0b6e1d4a-1111-4222-8333-444455556666"},
	} {
		r := f.run(t, req)
		if r.err == nil {
			t.Fatalf("%+v: succeeded without a key", req)
		}
		requireContains(t, "stderr", r.stderr, "DIDIT_API_KEY is not set")
	}
	if f.opens != 0 {
		t.Error("Temporal was dialled before the key was checked")
	}
	if f.legacySecret(t) != oldSecret {
		t.Error("rotated")
	}
}

func TestWrongAPIKey(t *testing.T) {
	f := newFixture(t, "https://receiver.example/webhooks/didit", nil)
	t.Setenv("DIDIT_API_KEY", "sk_wrong")
	r := f.run(t, Request{})
	if r.err == nil {
		t.Fatal("the step succeeded; want it to fail")
	}
	requireContains(t, "stderr", r.stderr, "nothing rotated", "Didit refused DIDIT_API_KEY (401)")
	if strings.Contains(r.stderr, "sk_wrong") {
		t.Error("stderr shows the key")
	}
}

func TestRotationURLs(t *testing.T) {
	for _, tc := range []struct {
		url      string
		existing []string
		want     string
	}{
		{"https://r.example/webhooks/didit", nil, "https://r.example/webhooks/didit?rotation=1"},
		{"https://r.example/webhooks/didit/", nil, "https://r.example/webhooks/didit/?rotation=1"},
		{"https://r.example/webhooks/didit?rotation=1", nil, "https://r.example/webhooks/didit?rotation=2"},
		{"https://r.example/webhooks/didit?rotation=9&a=1", nil, "https://r.example/webhooks/didit?a=1&rotation=10"},
		{"https://r.example/webhooks/didit?z=2&a=%2F", nil, "https://r.example/webhooks/didit?z=2&a=%2F&rotation=1"},
		// A copy made before, not yet finished, keeps its number.
		{"https://r.example/webhooks/didit", []string{"https://r.example/webhooks/didit?rotation=3",
			"https://other.example/webhooks/didit?rotation=7"}, "https://r.example/webhooks/didit?rotation=4"},
	} {
		var all []api.Destination
		for _, u := range tc.existing {
			all = append(all, api.Destination{URL: u})
		}
		n, err := nextRotation(tc.url, all)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		base, _, _ := splitRotation(tc.url)
		if got := withRotation(base, n); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.url, got, tc.want)
		}
	}
	if _, err := nextRotation("not a url", nil); err == nil {
		t.Error("a relative URL was accepted")
	}
	for label, want := range map[string]string{
		"prod": "prod (rotated 4)", "prod (rotated 3)": "prod (rotated 4)", "a (rotated x)": "a (rotated x) (rotated 4)",
	} {
		if got := rotatedLabel(label, 4); got != want {
			t.Errorf("rotatedLabel(%q) = %q, want %q", label, got, want)
		}
	}
}
