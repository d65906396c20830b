package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func printed(t *testing.T, v any) map[string]string {
	t.Helper()
	var b strings.Builder
	if err := Print(&b, v); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for line := range strings.Lines(b.String()) {
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !ok {
			t.Fatalf("line %q is not NAME=value", line)
		}
		if _, dup := m[name]; dup {
			t.Fatalf("%s printed twice", name)
		}
		m[name] = value
	}
	return m
}

// Every leaf field is read under its envconfig tag, and Print shows each
// variable exactly once.
func TestVarsAreTheEnvconfigTags(t *testing.T) {
	for _, c := range []any{Receiver{}, Worker{}} {
		var names []string
		for _, v := range Vars(c) {
			names = append(names, v.Name)
		}
		var tags []string
		var walk func(reflect.Type)
		walk = func(rt reflect.Type) {
			for f := range rt.Fields() {
				switch tag := f.Tag.Get("envconfig"); {
				case tag != "":
					tags = append(tags, tag)
				case f.Type.Kind() == reflect.Struct:
					walk(f.Type)
				default:
					t.Errorf("%T.%s has no envconfig tag", c, f.Name)
				}
			}
		}
		walk(reflect.TypeOf(c))
		if !slices.Equal(names, tags) {
			t.Errorf("%T: Vars = %v, tags %v", c, names, tags)
		}
		if p := printed(t, c); len(p) != len(names) {
			t.Errorf("%T: Print shows %d variables, want %d", c, len(p), len(names))
		}
	}
}

func TestPrintRedactsSecrets(t *testing.T) {
	clearEnv(t)
	t.Setenv("DIDIT_WEBHOOK_SECRETS", "first-secret, second-secret,")
	t.Setenv("DATABASE_URL", "postgres://app:hunter2@db:5432/diditflow?sslmode=disable")
	t.Setenv("SMTP_URL", "smtp://mailer:p%40ss@mail:587")
	t.Setenv("DIDIT_API_KEY", "didit-api-key-value")
	t.Setenv("PAYLOAD_ENCRYPTION_KEYS", "k1:payload-key-value")
	// Slack's and Teams's incoming-webhook URLs carry their credential in
	// the path.
	t.Setenv("COMPLIANCE_WEBHOOK_URL", "https://hooks.slack.com/services/T0000/B0000/slack-path-secret")
	r, err := ReadReceiver()
	if err != nil {
		t.Fatal(err)
	}
	w, err := ReadWorker()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := printed(t, r), printed(t, w)
	for name, want := range map[string]string{
		"DIDIT_WEBHOOK_SECRETS": "<2 secrets>",
	} {
		if pr[name] != want {
			t.Errorf("%s = %q, want %q", name, pr[name], want)
		}
	}
	for name, want := range map[string]string{
		"DATABASE_URL":            "postgres://app:***@db:5432/diditflow?sslmode=disable",
		"SMTP_URL":                "smtp://mailer:***@mail:587",
		"DIDIT_API_KEY":           "<set>",
		"PAYLOAD_ENCRYPTION_KEYS": "<set>",
		"COMPLIANCE_WEBHOOK_URL":  "<set>",
	} {
		if pw[name] != want {
			t.Errorf("%s = %q, want %q", name, pw[name], want)
		}
	}
	var all strings.Builder
	_ = Print(&all, r)
	_ = Print(&all, w)
	for _, secret := range []string{"first-secret", "second-secret", "hunter2", "p%40ss", "p@ss",
		"didit-api-key-value", "payload-key-value", "slack-path-secret"} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("Print shows %q:\n%s", secret, all.String())
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		".data/diditflow.db":                                 ".data/diditflow.db",
		"file:records.db?_pragma=busy_timeout(5000)":         "file:records.db?_pragma=busy_timeout(5000)",
		"postgres://app@db/diditflow":                        "postgres://app@db/diditflow",
		"postgres://app:pw@db/diditflow":                     "postgres://app:***@db/diditflow",
		"postgres://app@db/diditflow?password=pw":            "postgres://app@db/diditflow?password=***",
		"host=db user=app password=pw dbname=diditflow":      "host=db user=app password=*** dbname=diditflow",
		"host=db password='p w' sslpassword=k dbname=x":      "host=db password=*** sslpassword=*** dbname=x",
		"smtps://user:pw@mail:465":                           "smtps://user:***@mail:465",
		"diditflow <no-reply@diditflow.localhost>":           "diditflow <no-reply@diditflow.localhost>",
		"https://hooks.example.com/aml?token=abc&kind=cases": "https://hooks.example.com/aml?token=***&kind=cases",
		// Secrets in query parameters, by their names; a key file's path is
		// not one.
		"postgres://app@db/x?sslpassword=pw&sslkey=/k.pem&sslmode=verify-full": "postgres://app@db/x?sslpassword=***&sslkey=/k.pem&sslmode=verify-full",
		"https://api.example.com/v1?api_key=k&sig=s&access_token=t&page=2":     "https://api.example.com/v1?api_key=***&sig=***&access_token=***&page=2",
		"https://api.example.com/v1?API%5FKEY=k":                               "https://api.example.com/v1?API%5FKEY=***",
		// A password that makes the URL unparsable ('#', '/', a space, a bad
		// escape) is hidden all the same.
		"postgres://app:p#w@db:5432/diditflow":       "postgres://app:***@db:5432/diditflow",
		"postgres://app:p/w@db:5432/diditflow":       "postgres://app:***@db:5432/diditflow",
		"smtp://mailer:p w@mail:587":                 "smtp://mailer:***@mail:587",
		"postgres://app:p%zz@db/diditflow?token=abc": "postgres://app:***@db/diditflow?token=***",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// What Print writes reads back as the same settings.
func TestPrintRoundTrips(t *testing.T) {
	clearEnv(t)
	for name, value := range map[string]string{
		"DIDIT_ALLOW_SIMPLE_SIGNATURE": "true", "MAX_BODY_BYTES": "2048", "SIGNAL_TIMEOUT": "1500ms",
		"SESSION_IDLE_WINDOW": "90m", "STEP_RETRY_BUDGET": "36h30s", "LOG_LEVEL": "debug",
		"LOG_FORMAT": "text", "AML_ESCALATE_AFTER": "7", "METRICS_ADDR": "",
	} {
		t.Setenv(name, value)
	}
	r, err := ReadReceiver()
	if err != nil {
		t.Fatal(err)
	}
	w, err := ReadWorker()
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range printed(t, w) {
		t.Setenv(name, value)
	}
	for name, value := range printed(t, r) {
		if name != "DIDIT_WEBHOOK_SECRETS" {
			t.Setenv(name, value)
		}
	}
	r2, err := ReadReceiver()
	if err != nil {
		t.Fatal(err)
	}
	w2, err := ReadWorker()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, r2) || !reflect.DeepEqual(w, w2) {
		t.Fatalf("read back differently:\n%+v\n%+v\n%+v\n%+v", r, r2, w, w2)
	}
}

// The health check reads HTTP_ADDR alone, with the receiver's default.
func TestLoadHTTPNeedsNoSecrets(t *testing.T) {
	clearEnv(t)
	h, err := LoadHTTP()
	if err != nil {
		t.Fatal(err)
	}
	r, err := ReadReceiver()
	if err != nil {
		t.Fatal(err)
	}
	if h.HTTPAddr == "" || h != r.HTTP {
		t.Fatalf("health check reads %q, the receiver listens on %q", h.HTTPAddr, r.HTTPAddr)
	}
	t.Setenv("HTTP_ADDR", "127.0.0.1:18080")
	if h, err := LoadHTTP(); err != nil || h.HTTPAddr != "127.0.0.1:18080" {
		t.Fatalf("LoadHTTP = %+v, %v", h, err)
	}
}
