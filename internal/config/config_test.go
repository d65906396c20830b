package config

import (
	"os"
	"strings"
	"testing"
)

// clearEnv unsets every variable of the settings structs for the test, so
// that the defaults apply whatever the caller's environment holds.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, v := range append(Vars(Receiver{}), Vars(Worker{})...) {
		t.Setenv(v.Name, "") // restores the caller's value after the test
		os.Unsetenv(v.Name)
	}
}

// The defaults are written once, as default tags; this checks that every
// one of them loads, passes validation and is what the receiver and the
// worker then run with.
func TestLoadReceiverDefaults(t *testing.T) {
	clearEnv(t)
	t.Setenv("DIDIT_WEBHOOK_SECRETS", "old-secret, new-secret,")
	c, err := LoadReceiver()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.WebhookSecrets) != 2 || c.WebhookSecrets[0] != "old-secret" || c.WebhookSecrets[1] != "new-secret" {
		t.Fatalf("secrets = %q", c.WebhookSecrets)
	}
	checkDefaults(t, c)
}

// checkDefaults asserts that each variable of c that has a default tag holds
// it, as Print shows it.
func checkDefaults(t *testing.T, c any) {
	t.Helper()
	var b strings.Builder
	if err := Print(&b, c); err != nil {
		t.Fatal(err)
	}
	printed := map[string]string{}
	for line := range strings.Lines(b.String()) {
		name, value, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		printed[name] = value
	}
	for _, v := range Vars(c) {
		if v.HasDefault && printed[v.Name] != v.Default {
			t.Errorf("%s = %q, want its default %q", v.Name, printed[v.Name], v.Default)
		}
	}
}

func TestLoadReceiverRefusesWithoutSecret(t *testing.T) {
	clearEnv(t)
	for _, v := range []string{"", " , "} {
		t.Setenv("DIDIT_WEBHOOK_SECRETS", v)
		_, err := LoadReceiver()
		if err == nil || !strings.Contains(err.Error(), "DIDIT_WEBHOOK_SECRETS is not set") {
			t.Fatalf("%q: error %v should say what to set", v, err)
		}
	}
}

func TestLoadReceiverRejectsBadValues(t *testing.T) {
	clearEnv(t)
	t.Setenv("DIDIT_WEBHOOK_SECRETS", "s")
	for name, value := range map[string]string{
		"SIGNAL_TIMEOUT":    "6s",
		"MAX_BODY_BYTES":    "0",
		"LOG_FORMAT":        "xml",
		"REPLAY_CACHE_SIZE": "-1",
		"REPLAY_CACHE_TTL":  "0s",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			if _, err := LoadReceiver(); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("error %v should name %s", err, name)
			}
		})
	}
	t.Setenv("SIGNAL_TIMEOUT", "soon")
	if _, err := LoadReceiver(); err == nil {
		t.Fatal("unparsable duration accepted")
	}
}

// REPLAY_CACHE_SIZE=0 turns the replay cache off; its TTL then matters not.
func TestLoadReceiverReplayCacheOff(t *testing.T) {
	clearEnv(t)
	t.Setenv("DIDIT_WEBHOOK_SECRETS", "s")
	t.Setenv("REPLAY_CACHE_SIZE", "0")
	t.Setenv("REPLAY_CACHE_TTL", "0s")
	c, err := LoadReceiver()
	if err != nil {
		t.Fatal(err)
	}
	if c.ReplayCacheSize != 0 {
		t.Fatalf("REPLAY_CACHE_SIZE = %d, want 0", c.ReplayCacheSize)
	}
}

func TestLoadWorkerDefaults(t *testing.T) {
	clearEnv(t)
	c, err := LoadWorker()
	if err != nil {
		t.Fatal(err)
	}
	checkDefaults(t, c)
	// make run (scripts/run.sh) relies on this: without DIDITFLOW_DATA it
	// sets neither DATABASE_URL nor OUTBOX_DIR, and mail goes to files.
	if !strings.HasPrefix(c.DatabaseURL, ".data/") || !strings.HasPrefix(c.OutboxDir, ".data/") || c.SMTPURL != "" {
		t.Fatalf("records %q, outbox %q, SMTP %q: by default records and mail must stay in .data/", c.DatabaseURL, c.OutboxDir, c.SMTPURL)
	}
}

func TestLoadWorkerRejectsBadValues(t *testing.T) {
	clearEnv(t)
	for name, value := range map[string]string{
		"SESSION_IDLE_WINDOW":          "0s",
		"STEP_RETRY_BUDGET":            "-1m",
		"AML_REMINDER_INTERVAL":        "0s",
		"AML_ESCALATE_AFTER":           "0",
		"DATABASE_URL":                 "",
		"DIDIT_API_CREATES_PER_SECOND": "0",
		"HOOK_WORKFLOWS":               "OnKYCEvent",
		"USER_NOTICES":                 "no",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			if _, err := LoadWorker(); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("error %v should name %s", err, name)
			}
		})
	}
}

// TestHookWorkflows: HOOK_WORKFLOWS names each hook as WorkflowType@queue,
// once; anything else stops the worker at start, naming the setting.
func TestHookWorkflows(t *testing.T) {
	clearEnv(t)
	t.Setenv("HOOK_WORKFLOWS", " OnKYCEvent@business , Audit@compliance-queue,")
	c, err := LoadWorker()
	if err != nil {
		t.Fatal(err)
	}
	hooks, err := c.Hooks()
	want := []Hook{{"OnKYCEvent", "business"}, {"Audit", "compliance-queue"}}
	if err != nil || len(hooks) != 2 || hooks[0] != want[0] || hooks[1] != want[1] {
		t.Fatalf("hooks = %+v, %v; want %+v", hooks, err, want)
	}
	for _, bad := range []string{"OnKYCEvent", "@business", "OnKYCEvent@", "A@b@c", "A@q,A@q"} {
		t.Setenv("HOOK_WORKFLOWS", bad)
		if _, err := LoadWorker(); err == nil || !strings.Contains(err.Error(), "HOOK_WORKFLOWS") {
			t.Errorf("%q: error %v, want one naming HOOK_WORKFLOWS", bad, err)
		}
	}
}
