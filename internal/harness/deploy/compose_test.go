// Package deploy checks the deployment files. There is no Docker engine on
// the build machines, so docker-compose.yml is validated by loading it with
// the Compose specification's own loader.
package deploy

import (
	"context"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

func load(t *testing.T, env ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{launch.Path(t, "docker-compose.yml")},
		cli.WithWorkingDirectory(launch.Path(t)), cli.WithEnv(env), cli.WithName("diditflow"))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func project(t *testing.T) *types.Project {
	t.Helper()
	p, err := load(t, "DIDIT_WEBHOOK_SECRETS=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// envNames lists the envconfig variable names of a config struct.
func envNames(v any) []string {
	var names []string
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if name := f.Tag.Get("envconfig"); name != "" {
				names = append(names, name)
			} else if f.Type.Kind() == reflect.Struct {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeOf(v))
	return names
}

// temporalVars are read by Temporal's client configuration, not ours.
var temporalVars = []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_TLS",
	"TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
	"TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE"}

func TestComposeServices(t *testing.T) {
	p := project(t)
	want := []string{"mailpit", "postgresql", "starter", "temporal", "temporal-setup", "temporal-ui", "worker"}
	if got := p.ServiceNames(); !slices.Equal(sorted(got), want) {
		t.Fatalf("services = %v, want %v", sorted(got), want)
	}
	for _, name := range want {
		s := p.Services[name]
		wantRestart := "unless-stopped"
		if name == "temporal-setup" {
			wantRestart = "no"
		}
		if s.Restart != wantRestart {
			t.Errorf("%s: restart %q, want %q", name, s.Restart, wantRestart)
		}
		if name != "worker" && name != "temporal-setup" && name != "temporal-ui" && s.HealthCheck == nil {
			t.Errorf("%s has no health check", name)
		}
	}
}

func TestComposePorts(t *testing.T) {
	p := project(t)
	for service, want := range map[string][2]uint32{
		"starter":     {8080, 8080},
		"temporal":    {7233, 7233},
		"temporal-ui": {8233, 8080},
		"mailpit":     {8025, 8025},
	} {
		found := false
		for _, port := range p.Services[service].Ports {
			if port.Published == itoa(want[0]) && port.Target == want[1] {
				found = true
			}
		}
		if !found {
			t.Errorf("%s does not publish %d→%d: %+v", service, want[0], want[1], p.Services[service].Ports)
		}
	}
}

func TestComposeDependencies(t *testing.T) {
	p := project(t)
	for service, deps := range map[string]map[string]string{
		"temporal":       {"postgresql": types.ServiceConditionHealthy},
		"temporal-setup": {"temporal": types.ServiceConditionHealthy},
		"temporal-ui":    {"temporal": types.ServiceConditionHealthy},
		"worker": {"temporal": types.ServiceConditionHealthy, "postgresql": types.ServiceConditionHealthy,
			"mailpit": types.ServiceConditionHealthy, "temporal-setup": types.ServiceConditionCompletedSuccessfully},
		"starter": {"temporal": types.ServiceConditionHealthy},
	} {
		got := p.Services[service].DependsOn
		for dep, cond := range deps {
			if got[dep].Condition != cond {
				t.Errorf("%s depends on %s with %q, want %q", service, dep, got[dep].Condition, cond)
			}
		}
	}
}

func TestComposeEnvironment(t *testing.T) {
	p := project(t)
	check := func(service string, cfg any, required map[string]string) {
		env := p.Services[service].Environment
		known := append(envNames(cfg), temporalVars...)
		for name := range env {
			if !slices.Contains(known, name) {
				t.Errorf("%s sets %s, which nothing reads", service, name)
			}
		}
		for name, pattern := range required {
			v := env[name]
			if v == nil || !regexp.MustCompile(pattern).MatchString(*v) {
				t.Errorf("%s: %s = %v, want it to match %q", service, name, deref(v), pattern)
			}
		}
	}
	check("worker", config.Worker{}, map[string]string{
		"TEMPORAL_ADDRESS":    `^temporal:7233$`,
		"TEMPORAL_TASK_QUEUE": `^diditflow$`,
		"DATABASE_URL":        `^postgres://.*@postgresql:5432/`,
		"SMTP_URL":            `^smtp://mailpit:1025$`,
		"COMPLIANCE_EMAIL":    `@`,
	})
	check("starter", config.Receiver{}, map[string]string{
		"DIDIT_WEBHOOK_SECRETS": `^s3cret$`,
		"TEMPORAL_ADDRESS":      `^temporal:7233$`,
		"TEMPORAL_TASK_QUEUE":   `^diditflow$`,
		"HTTP_ADDR":             `:8080$`,
	})

	// The worker's database is the one PostgreSQL creates.
	u, err := url.Parse(*p.Services["worker"].Environment["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	if db := p.Services["postgresql"].Environment["POSTGRES_DB"]; db == nil || "/"+*db != u.Path {
		t.Errorf("worker uses database %s, PostgreSQL creates %v", u.Path, deref(db))
	}
}

func TestComposeRefusesToStartWithoutSecret(t *testing.T) {
	_, err := load(t)
	if err == nil || !strings.Contains(err.Error(), "DIDIT_WEBHOOK_SECRETS") {
		t.Fatalf("loading without DIDIT_WEBHOOK_SECRETS: %v", err)
	}
}

func TestComposeBuildsFromTheDockerfile(t *testing.T) {
	p := project(t)
	dockerfile, err := os.ReadFile(launch.Path(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, service := range []string{"starter", "worker"} {
		b := p.Services[service].Build
		if b == nil || b.Target != service {
			t.Fatalf("%s: build %+v, want target %q", service, b, service)
		}
		if !regexp.MustCompile(`(?m)^FROM .+ AS ` + service + `$`).Match(dockerfile) {
			t.Errorf("Dockerfile has no stage %q", service)
		}
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func deref(p *string) string {
	if p == nil {
		return "<unset>"
	}
	return *p
}
