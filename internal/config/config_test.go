package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadReceiverDefaults(t *testing.T) {
	t.Setenv("DIDIT_WEBHOOK_SECRETS", "old-secret, new-secret,")
	c, err := LoadReceiver()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.WebhookSecrets) != 2 || c.WebhookSecrets[0] != "old-secret" || c.WebhookSecrets[1] != "new-secret" {
		t.Fatalf("secrets = %q", c.WebhookSecrets)
	}
	if c.HTTPAddr != ":8080" || c.TaskQueue != "diditflow" || c.MaxBodyBytes != 1<<20 || c.SignalTimeout != 3*time.Second || c.AllowSimpleSignature {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestLoadReceiverRefusesWithoutSecret(t *testing.T) {
	for _, v := range []string{"", " , "} {
		t.Setenv("DIDIT_WEBHOOK_SECRETS", v)
		_, err := LoadReceiver()
		if err == nil || !strings.Contains(err.Error(), "DIDIT_WEBHOOK_SECRETS is not set") {
			t.Fatalf("%q: error %v should say what to set", v, err)
		}
	}
}

func TestLoadReceiverRejectsBadValues(t *testing.T) {
	t.Setenv("DIDIT_WEBHOOK_SECRETS", "s")
	for name, value := range map[string]string{
		"SIGNAL_TIMEOUT": "6s",
		"MAX_BODY_BYTES": "0",
		"LOG_FORMAT":     "xml",
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

func TestLoadWorkerDefaults(t *testing.T) {
	c, err := LoadWorker()
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != ".data/diditflow.db" || c.OutboxDir != ".data/outbox" || c.SMTPURL != "" ||
		c.SessionIdleWindow != time.Hour || c.AMLEscalateAfter != 3 || c.ComplianceEmail == "" {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestLoadWorkerRejectsBadValues(t *testing.T) {
	for name, value := range map[string]string{
		"SESSION_IDLE_WINDOW":   "0s",
		"STEP_RETRY_BUDGET":     "-1m",
		"AML_REMINDER_INTERVAL": "0s",
		"AML_ESCALATE_AFTER":    "0",
		"DATABASE_URL":          "",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			if _, err := LoadWorker(); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("error %v should name %s", err, name)
			}
		})
	}
}
