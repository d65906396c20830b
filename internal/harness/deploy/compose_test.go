// Package deploy checks the deployment files. There is no Docker engine on
// the build machines, so docker-compose.yml is validated by loading it with
// the Compose specification's own loader.
package deploy

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/telemetry"
)

func load(t *testing.T, env ...string) (*types.Project, error) {
	t.Helper()
	return loadProfiles(t, nil, env...)
}

// loadProfiles loads the compose file with the given profiles active.
func loadProfiles(t *testing.T, profiles []string, env ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{launch.Path(t, "docker-compose.yml")},
		cli.WithWorkingDirectory(launch.Path(t)), cli.WithEnv(env), cli.WithName("diditflow"), cli.WithProfiles(profiles))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func project(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	p, err := loadProfiles(t, profiles, "DIDIT_WEBHOOK_SECRETS=s3cret", "PAYLOAD_ENCRYPTION_KEYS=k1:"+strings.Repeat("A", 43)+"=")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// envNames lists the envconfig variable names of a config struct.
func envNames(v any) []string {
	var names []string
	for _, e := range config.Vars(v) {
		names = append(names, e.Name)
	}
	return names
}

// defaultOf is the default tag of variable name in config struct v.
func defaultOf(v any, name string) (string, bool) {
	for _, e := range config.Vars(v) {
		if e.Name == name {
			return e.Default, e.HasDefault
		}
	}
	return "", false
}

// temporalVars are read by Temporal's client configuration, not ours.
var temporalVars = []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_TLS",
	"TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
	"TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE"}

// temporalDefault is what the Temporal client uses when a variable of
// temporalVars is unset (internal/temporalclient): the SDK's defaults for the
// address and namespace, nothing for the rest.
func temporalDefault(name string) string {
	switch name {
	case "TEMPORAL_ADDRESS":
		return client.DefaultHostPort
	case "TEMPORAL_NAMESPACE":
		return client.DefaultNamespace
	}
	return ""
}

// diditflowServices are the services built from this repository, with the
// settings each reads.
var diditflowServices = map[string]any{"starter": config.Receiver{}, "worker": config.Worker{}, "codec-server": config.CodecServer{}}

// effective is the value service runs with for variable name: what compose
// sets, else the code's default.
func effective(t *testing.T, p *types.Project, service, name string) string {
	t.Helper()
	if v := p.Services[service].Environment[name]; v != nil {
		return *v
	}
	if slices.Contains(temporalVars, name) {
		return temporalDefault(name)
	}
	def, _ := defaultOf(diditflowServices[service], name)
	return def
}

func TestComposeServices(t *testing.T) {
	p := project(t)
	want := []string{"codec-server", "mailpit", "postgresql", "starter", "temporal", "temporal-schema", "temporal-setup", "temporal-ui", "worker"}
	if got := p.ServiceNames(); !slices.Equal(sorted(got), want) {
		t.Fatalf("services = %v, want %v", sorted(got), want)
	}
	for _, name := range want {
		s := p.Services[name]
		wantRestart := "unless-stopped"
		oneShot := name == "temporal-setup" || name == "temporal-schema"
		if oneShot {
			wantRestart = "no"
		}
		if s.Restart != wantRestart {
			t.Errorf("%s: restart %q, want %q", name, s.Restart, wantRestart)
		}
		if !oneShot && name != "worker" && name != "temporal-ui" && name != "codec-server" && s.HealthCheck == nil {
			t.Errorf("%s has no health check", name)
		}
	}
}

func TestComposePorts(t *testing.T) {
	p := project(t, observability)
	// diditflow's services publish the ports they listen on, whichever
	// setting (compose's or the code's default) gives them.
	webhook := port(t, effective(t, p, "starter", "HTTP_ADDR"))
	starterMetrics := port(t, effective(t, p, "starter", "STARTER_METRICS_ADDR"))
	workerMetrics := port(t, effective(t, p, "worker", "METRICS_ADDR"))
	for service, want := range map[string][]string{
		"starter":      {":8080→" + itoa(webhook), "127.0.0.1:9091→" + itoa(starterMetrics)},
		"worker":       {"127.0.0.1:9090→" + itoa(workerMetrics)},
		"temporal":     {"127.0.0.1:7233→7233"},
		"temporal-ui":  {"127.0.0.1:8233→8080"},
		"mailpit":      {"127.0.0.1:8025→8025"},
		"codec-server": {"127.0.0.1:8081→8081"},
		"jaeger":       {"127.0.0.1:16686→16686", "127.0.0.1:4317→4317", "127.0.0.1:4318→4318"},
		"prometheus":   {"127.0.0.1:9099→9090"},
		"grafana":      {"127.0.0.1:3000→3000"},
		"postgresql":   nil,
	} {
		var got []string
		for _, pt := range p.Services[service].Ports {
			got = append(got, pt.HostIP+":"+pt.Published+"→"+itoa(pt.Target))
		}
		if !slices.Equal(sorted(got), sorted(want)) {
			t.Errorf("%s publishes %v, want %v", service, got, want)
		}
	}
	// Inside their containers the metrics listeners are off loopback, or
	// Prometheus could not reach them across the compose network.
	for service, name := range map[string]string{"starter": "STARTER_METRICS_ADDR", "worker": "METRICS_ADDR"} {
		if host := hostOf(t, effective(t, p, service, name)); isLoopback(host) {
			t.Errorf("%s: %s listens on %s, which Prometheus on the compose network cannot reach", service, name, host)
		}
	}
}

// Docker publishes a port on every interface unless the mapping names a
// host address, and its rules bypass the host's firewall. In every profile,
// only the starter's webhook port is published beyond the host's loopback:
// Temporal's frontend and UI (which signal, reset and terminate), Mailpit
// (every mail), the codec server, the metrics and the observability tools
// have no auth here.
func TestComposePublishesOnlyTheWebhookBeyondLoopback(t *testing.T) {
	p := project(t, "*")
	if _, ok := p.Services["grafana"]; !ok {
		t.Fatal("loading every profile left out the observability profile's services")
	}
	webhook := port(t, effective(t, p, "starter", "HTTP_ADDR"))
	public := 0
	for name, s := range p.Services {
		if s.NetworkMode == "host" {
			t.Errorf("%s uses the host's network: every port it listens on is reachable as the host's", name)
		}
		for _, pt := range s.Ports {
			if name == "starter" && pt.Target == webhook {
				public++
				continue
			}
			if !isLoopback(pt.HostIP) {
				where := pt.HostIP
				if where == "" {
					where = "every interface"
				}
				t.Errorf("%s publishes %s→%d on %s; publish it as 127.0.0.1:%[2]s (or not at all)", name, pt.Published, pt.Target, where)
			}
		}
	}
	if public != 1 {
		t.Errorf("the starter publishes its webhook port %d %d times, want once", webhook, public)
	}
}

// isLoopback reports whether host, an address as compose or a listen
// address writes it (127.0.0.1, [::1], ::1), is a loopback address. An
// empty host is every interface.
func isLoopback(host string) bool {
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

func TestComposeDependencies(t *testing.T) {
	p := project(t)
	for service, deps := range map[string]map[string]string{
		"temporal": {"postgresql": types.ServiceConditionHealthy,
			"temporal-schema": types.ServiceConditionCompletedSuccessfully},
		"temporal-schema": {"postgresql": types.ServiceConditionHealthy},
		"temporal-setup":  {"temporal": types.ServiceConditionHealthy},
		"temporal-ui":     {"temporal": types.ServiceConditionHealthy},
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
		known := append(append(envNames(cfg), temporalVars...), telemetry.Variables...)
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
		"PAYLOAD_ENCRYPTION_KEYS": `^k1:`,
		"TEMPORAL_ADDRESS":        `^temporal:7233$`,
		"DATABASE_URL":            `^postgres://.*@postgresql:5432/`,
		"SMTP_URL":                `^smtp://mailpit:1025$`,
		"COMPLIANCE_EMAIL":        `@`,
	})
	check("starter", config.Receiver{}, map[string]string{
		"DIDIT_WEBHOOK_SECRETS":   `^s3cret$`,
		"TEMPORAL_ADDRESS":        `^temporal:7233$`,
		"PAYLOAD_ENCRYPTION_KEYS": `^k1:`,
	})
	check("codec-server", config.CodecServer{}, map[string]string{
		"PAYLOAD_ENCRYPTION_KEYS": `^k1:`,
		"CODEC_ADDR":              `^0\.0\.0\.0:8081$`,
	})
	// The UI reaches the codec server from the browser, through the port
	// published on the host's loopback only (it serves without auth here).
	if v := p.Services["temporal-ui"].Environment["TEMPORAL_CODEC_ENDPOINT"]; v == nil || *v != "http://localhost:8081" {
		t.Errorf("temporal-ui: TEMPORAL_CODEC_ENDPOINT = %v, want http://localhost:8081", deref(v))
	}
	if ports := p.Services["codec-server"].Ports; len(ports) != 1 || ports[0].HostIP != "127.0.0.1" || ports[0].Published != "8081" {
		t.Errorf("codec-server publishes %+v, want 127.0.0.1:8081 only", ports)
	}

	// The two meet on the same namespace and task queue.
	for _, name := range []string{"TEMPORAL_NAMESPACE", "TEMPORAL_TASK_QUEUE"} {
		if s, w := effective(t, p, "starter", name), effective(t, p, "worker", name); s != w || s == "" {
			t.Errorf("%s: the starter uses %q, the worker %q", name, s, w)
		}
	}

	// The worker's database is the one PostgreSQL creates.
	u, err := url.Parse(*p.Services["worker"].Environment["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	if db := p.Services["postgresql"].Environment["POSTGRES_DB"]; db == nil || "/"+*db != u.Path {
		t.Errorf("worker uses database %s, PostgreSQL creates %v", u.Path, deref(db))
	}
}

// The defaults are written once, in internal/config: a diditflow service
// sets a variable only to give it another value. A setting equal to the
// default (also when written differently, "60m" for "1h") is an error, as it
// would silently stop following the code's default.
func TestComposeSetsOnlyWhatDiffersFromTheDefaults(t *testing.T) {
	p := project(t)
	reads := map[string]func() (any, error){
		"starter":      func() (any, error) { return config.ReadReceiver() },
		"worker":       func() (any, error) { return config.ReadWorker() },
		"codec-server": func() (any, error) { return config.ReadCodecServer() },
	}
	for service, cfg := range diditflowServices {
		for _, name := range append(envNames(cfg), temporalVars...) {
			t.Setenv(name, "") // restored after the test
			os.Unsetenv(name)
		}
		defaults, err := reads[service]()
		if err != nil {
			t.Fatalf("%s: reading the defaults: %v", service, err)
		}
		for name, v := range p.Services[service].Environment {
			if v == nil {
				continue // passed through from the shell, unset here
			}
			if slices.Contains(telemetry.Variables, name) {
				continue // OpenTelemetry's own, read by the SDK
			}
			if slices.Contains(temporalVars, name) {
				if def := temporalDefault(name); *v == def {
					t.Errorf("docker-compose.yml: %s sets %s=%q, which is the Temporal client's default: remove it", service, name, *v)
				}
				continue
			}
			t.Setenv(name, *v)
			got, err := reads[service]()
			os.Unsetenv(name)
			if err != nil {
				t.Errorf("docker-compose.yml: %s sets %s=%q, which does not parse: %v", service, name, *v, err)
				continue
			}
			if reflect.DeepEqual(got, defaults) {
				same := "the same as leaving it unset (it has no default tag in internal/config)"
				if def, ok := defaultOf(cfg, name); ok {
					same = fmt.Sprintf("the code's default (default:%q in internal/config)", def)
				}
				t.Errorf("docker-compose.yml: %s sets %s=%q, which is %s: remove it", service, name, *v, same)
			}
		}
	}
}

// Every image is pinned to an exact release, none to latest or to a
// floating major or minor; Temporal's is the maintained server image (not
// the deprecated auto-setup) at a release with the fix for CVE-2025-14986
// (1.29.2 or later), with admin-tools of the same release.
func TestComposeImagesArePinned(t *testing.T) {
	p := project(t, observability)
	exact := regexp.MustCompile(`^v?\d+\.\d+(\.\d+)?$`)
	three := regexp.MustCompile(`^v?\d+\.\d+\.\d+$`)
	var server, admin string
	for name, s := range p.Services {
		if s.Image == "" {
			continue // built from the Dockerfile
		}
		repo, tag, ok := strings.Cut(s.Image, ":")
		switch {
		case !ok || !exact.MatchString(tag):
			t.Errorf("%s: image %q is not pinned to an exact release", name, s.Image)
		case strings.HasPrefix(repo, "temporalio/") && !three.MatchString(tag):
			t.Errorf("%s: image %q: Temporal's images are pinned to major.minor.patch", name, s.Image)
		case repo == "temporalio/auto-setup":
			t.Errorf("%s: temporalio/auto-setup is deprecated", name)
		case repo == "temporalio/server":
			server = tag
		case repo == "temporalio/admin-tools":
			if admin != "" && admin != tag {
				t.Errorf("admin-tools at %s and %s", admin, tag)
			}
			admin = tag
		}
	}
	if server == "" || version(t, server) < version(t, "1.29.2") {
		t.Errorf("temporalio/server at %q, want 1.29.2 or later", server)
	}
	if admin != server {
		t.Errorf("admin-tools at %q, the server at %q: the SQL tool must be the server's release", admin, server)
	}
	dockerfile, err := os.ReadFile(launch.Path(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(dockerfile), "\n") {
		if img, ok := strings.CutPrefix(line, "FROM golang:"); ok && !three.MatchString(strings.Fields(img)[0]) {
			t.Errorf("Dockerfile: %q: pin the Go image to a release", line)
		}
	}
}

// version orders major.minor.patch releases.
func version(t *testing.T, v string) int {
	t.Helper()
	n := 0
	for _, part := range strings.Split(strings.TrimPrefix(v, "v"), ".") {
		d, err := strconv.Atoi(part)
		if err != nil {
			t.Fatalf("version %q", v)
		}
		n = n*1000 + d
	}
	return n
}

// temporal-setup registers the search attributes the workflows upsert.
func TestComposeRegistersTheSearchAttributes(t *testing.T) {
	p := project(t)
	var want []string
	for key := range contract.SearchAttributes().GetUntypedValues() {
		want = append(want, key.GetName()+"="+key.GetValueType().String())
	}
	slices.Sort(want)
	script := strings.Join(p.Services["temporal-setup"].Command, " ")
	m := regexp.MustCompile(`for sa in ([^;]*);`).FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("temporal-setup: no `for sa in ...;` loop in %q", script)
	}
	if got := sorted(strings.Fields(m[1])); !slices.Equal(got, want) {
		t.Errorf("temporal-setup registers %v, the workflows upsert %v (contract.SearchAttributes)", got, want)
	}
}

func TestComposeStarterHealthCheck(t *testing.T) {
	p := project(t)
	hc := p.Services["starter"].HealthCheck
	if hc == nil || !slices.Equal([]string(hc.Test), []string{"CMD", "/starter", "-healthcheck"}) {
		t.Errorf("starter health check %+v, want [CMD /starter -healthcheck]", hc)
	}
}

func TestComposeRefusesToStartWithoutSecret(t *testing.T) {
	_, err := load(t)
	if err == nil || !strings.Contains(err.Error(), "DIDIT_WEBHOOK_SECRETS") {
		t.Fatalf("loading without DIDIT_WEBHOOK_SECRETS: %v", err)
	}
}

func TestComposeRefusesToStartWithoutPayloadKeys(t *testing.T) {
	_, err := load(t, "DIDIT_WEBHOOK_SECRETS=s3cret")
	if err == nil || !strings.Contains(err.Error(), "PAYLOAD_ENCRYPTION_KEYS") {
		t.Fatalf("loading without PAYLOAD_ENCRYPTION_KEYS: %v", err)
	}
}

func TestComposeBuildsFromTheDockerfile(t *testing.T) {
	p := project(t)
	dockerfile, err := os.ReadFile(launch.Path(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, service := range []string{"starter", "worker", "codec-server"} {
		b := p.Services[service].Build
		if b == nil || b.Target != service {
			t.Fatalf("%s: build %+v, want target %q", service, b, service)
		}
		if !regexp.MustCompile(`(?m)^FROM .+ AS ` + service + `$`).Match(dockerfile) {
			t.Errorf("Dockerfile has no stage %q", service)
		}
	}
}

// The starter's image checks its own health (distroless has no shell, so in
// exec form) and exposes the port of HTTP_ADDR's default.
func TestDockerfileStarterStage(t *testing.T) {
	dockerfile, err := os.ReadFile(launch.Path(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stage := regexp.MustCompile(`(?ms)^FROM .+ AS starter$(.*?)(?:^FROM |\z)`).FindSubmatch(dockerfile)
	if stage == nil {
		t.Fatal("Dockerfile has no starter stage")
	}
	if !regexp.MustCompile(`(?m)^HEALTHCHECK (--\S+ )*CMD \["/starter", "-healthcheck"\]$`).Match(stage[1]) {
		t.Errorf("the starter stage has no HEALTHCHECK ... CMD [\"/starter\", \"-healthcheck\"]:\n%s", stage[1])
	}
	def, _ := defaultOf(config.Receiver{}, "HTTP_ADDR")
	want := fmt.Sprintf("(?m)^EXPOSE %d$", port(t, def))
	if !regexp.MustCompile(want).Match(stage[1]) {
		t.Errorf("the starter stage does not EXPOSE the port of HTTP_ADDR's default %q", def)
	}
}

// A filled-in .env (or .env.local, .env.production, ...) holds the webhook
// secret and the payload keys: `docker build` must leave it out of the
// context, or COPY . . puts it in an image layer. .env.example, which holds
// none, and the sources stay in.
func TestDockerBuildContextLeavesOutEnvFiles(t *testing.T) {
	raw, err := os.ReadFile(launch.Path(t, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	rules := strings.Split(string(raw), "\n")
	for name, want := range map[string]bool{
		".env": true, ".env.local": true, ".env.production": true, ".data/payload-keys": true,
		".env.example": false, "go.mod": false, "internal/config/config.go": false, "docker-compose.yml": false,
	} {
		if got := dockerIgnored(t, rules, name); got != want {
			t.Errorf(".dockerignore leaves out %s: %v, want %v", name, got, want)
		}
	}
}

// dockerIgnored reports whether Docker leaves name (a path in the build
// context) out by .dockerignore's rules, read as Docker reads them: blank
// lines and # comments skipped, a leading "/" dropped, "!" taking a path
// back in, the last matching rule winning, and a rule that matches a
// directory covering everything in it.
func dockerIgnored(t *testing.T, rules []string, name string) bool {
	t.Helper()
	ignored := false
	for _, rule := range rules {
		rule = strings.TrimSpace(rule)
		if rule == "" || strings.HasPrefix(rule, "#") {
			continue
		}
		pattern, include := strings.CutPrefix(rule, "!")
		pattern = strings.TrimPrefix(path.Clean(strings.TrimSpace(pattern)), "/")
		for p := name; p != "."; p = path.Dir(p) {
			ok, err := path.Match(pattern, p)
			if err != nil {
				t.Fatalf(".dockerignore: rule %q: %v", rule, err)
			}
			if ok {
				ignored = !include
				break
			}
		}
	}
	return ignored
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// hostOf is the host of a listen address such as "127.0.0.1:9090" (empty
// for ":8080").
func hostOf(t *testing.T, addr string) string {
	t.Helper()
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return h
}

// port is the port of a listen address such as ":8080".
func port(t *testing.T, addr string) uint32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return uint32(n)
}

func deref(p *string) string {
	if p == nil {
		return "<unset>"
	}
	return *p
}
