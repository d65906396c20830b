package deploy

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/promq"
)

// observability is the compose profile of Jaeger, Prometheus and Grafana.
const observability = "observability"

// runbookURL is where the alerts' runbook_url point, with a section anchor.
const runbookURL = "https://github.com/diditflow/diditflow/blob/main/docs/RUNBOOK.md#"

// runbookSections are the anchors of docs/RUNBOOK.md's second-level
// headings, as GitHub makes them.
func runbookSections(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(launch.Path(t, "docs", "RUNBOOK.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var anchors []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if h, ok := strings.CutPrefix(sc.Text(), "## "); ok {
			anchors = append(anchors, headingAnchor(h))
		}
	}
	return anchors
}

// templateHeader defines the variables Prometheus gives an alert's
// annotation templates.
const templateHeader = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"

// Every alert parses with Prometheus's parser, says how bad it is and what
// it means, and links to its own runbook section; every runbook section
// belongs to an alert.
func TestAlertRules(t *testing.T) {
	rules, err := promq.ReadRules(launch.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	sections := runbookSections(t)
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if _, err := promq.Parse(r.Expr); err != nil {
				t.Errorf("%s: expr does not parse: %v", r.Alert, err)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s has no summary", r.Alert)
			}
			for k, v := range r.Annotations {
				if _, err := template.New(k).Parse(templateHeader + v); err != nil {
					t.Errorf("%s: annotation %s does not parse as a template: %v", r.Alert, k, err)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookURL)
			if !ok || anchor != strings.ToLower(r.Alert) || !slices.Contains(sections, anchor) {
				t.Errorf("%s: runbook_url %q, want %s%s with that section in docs/RUNBOOK.md",
					r.Alert, r.Annotations["runbook_url"], runbookURL, strings.ToLower(r.Alert))
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alerts")
	}
	for _, s := range sections {
		if !slices.ContainsFunc(alerts, func(a string) bool { return strings.ToLower(a) == s }) {
			t.Errorf("docs/RUNBOOK.md: section %q has no alert", s)
		}
	}
	for _, want := range []string{"DiditflowDeliveriesFailing", "DiditflowSessionsNeedAttention", "DiditflowAMLCasesOverdue",
		"DiditflowReconcileFailing", "DiditflowDiditCredentialsRefused", "DiditflowSignatureFailures",
		"DiditflowWorkflowTasksBehind", "DiditflowActivitiesBehind"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
	slices.Sort(alerts)
	if d := slices.Compact(slices.Clone(alerts)); len(d) != len(alerts) {
		t.Errorf("alert names repeat: %v", alerts)
	}
}

// The dashboard is what the provisioning loads: every query parses, every
// panel reads the provisioned data source, ids are unique and panels fit
// Grafana's 24-column grid.
func TestDashboard(t *testing.T) {
	d, err := promq.ReadDashboard(launch.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Fatalf("provisioned data sources %+v, want the compose stack's Prometheus", ds.Datasources)
	}
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d repeats", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q does not fit the grid: %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != ds.Datasources[0].UID {
			t.Errorf("panel %q reads data source %+v, want uid %q", p.Title, p.Datasource, ds.Datasources[0].UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			queries++
			if _, err := promq.Parse(q.Expr); err != nil {
				t.Errorf("panel %q %s: %v", p.Title, q.RefID, err)
			}
		}
	}
	if queries < 10 {
		t.Fatalf("%d queries", queries)
	}
}

// The observability profile: Prometheus with the rules and the starter's and
// worker's metrics listeners (never the starter's webhook port), Grafana with the dashboard where its provisioning
// looks, Jaeger taking OTLP.
func TestComposeObservabilityProfile(t *testing.T) {
	if p := project(t); slices.ContainsFunc(p.ServiceNames(), func(s string) bool { return s == "prometheus" }) {
		t.Fatal("prometheus runs without the observability profile")
	}
	p := project(t, observability)
	for _, s := range []string{"jaeger", "prometheus", "grafana"} {
		if _, ok := p.Services[s]; !ok {
			t.Fatalf("no %s in the observability profile", s)
		}
		if !slices.Equal(p.Services[s].Profiles, []string{observability}) {
			t.Errorf("%s: profiles %v", s, p.Services[s].Profiles)
		}
	}
	mounts := func(service string) map[string]string {
		m := map[string]string{}
		for _, v := range p.Services[service].Volumes {
			if v.Type == "bind" {
				rel, err := filepath.Rel(launch.Path(t), v.Source)
				if err != nil {
					t.Fatal(err)
				}
				m[v.Target] = filepath.ToSlash(rel)
			}
		}
		return m
	}

	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "deploy/prometheus/prometheus.yml", &prom)
	if m := mounts("prometheus"); m["/etc/prometheus"] != "deploy/prometheus" {
		t.Fatalf("prometheus mounts %v, want deploy/prometheus at /etc/prometheus", m)
	}
	if !slices.Equal(prom.RuleFiles, []string{"/etc/prometheus/alerts.yml"}) {
		t.Errorf("rule_files %v, want the mounted alerts.yml", prom.RuleFiles)
	}
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	want := []string{"starter:" + itoa(port(t, effective(t, p, "starter", "STARTER_METRICS_ADDR"))),
		"worker:" + itoa(port(t, effective(t, p, "worker", "METRICS_ADDR")))}
	if !slices.Equal(sorted(targets), sorted(want)) {
		t.Errorf("Prometheus scrapes %v, want %v", targets, want)
	}

	var provider struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "deploy/grafana/provisioning/dashboards/diditflow.yml", &provider)
	m := mounts("grafana")
	if m["/etc/grafana/provisioning"] != "deploy/grafana/provisioning" || len(provider.Providers) != 1 ||
		m[provider.Providers[0].Options.Path] != path.Dir(promq.DashboardFile) {
		t.Errorf("grafana mounts %v, provider %+v: want the provisioning and %s where the provider reads",
			m, provider.Providers, path.Dir(promq.DashboardFile))
	}
	cmd := strings.Join(p.Services["jaeger"].Command, " ")
	if !strings.Contains(cmd, "0.0.0.0:4318") {
		t.Errorf("jaeger takes no OTLP/HTTP from the other containers: %s", cmd)
	}
	for _, s := range []string{"starter", "worker"} {
		if _, ok := p.Services[s].Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]; !ok {
			t.Errorf("%s does not pass OTEL_EXPORTER_OTLP_ENDPOINT through", s)
		}
	}
}

func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	raw, err := os.ReadFile(launch.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// .env.example names every variable docker-compose.yml takes from the
// environment, and a filled-in .env is never committed.
func TestEnvExampleListsTheComposeVariables(t *testing.T) {
	compose, err := os.ReadFile(launch.Path(t, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(launch.Path(t, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)`).FindAllStringSubmatch(string(compose), -1) {
		names = append(names, m[1])
	}
	// Pass-through entries: "NAME:" with no value.
	for _, m := range regexp.MustCompile(`(?m)^\s+([A-Z_][A-Z0-9_]*):\s*$`).FindAllStringSubmatch(string(compose), -1) {
		names = append(names, m[1])
	}
	for _, n := range names {
		if !regexp.MustCompile(`(?m)^#?` + n + `=`).Match(example) {
			t.Errorf(".env.example does not list %s", n)
		}
	}
	ignore, err := os.ReadFile(launch.Path(t, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range []string{"/.env", "/.env.*", "!/.env.example"} {
		if !slices.Contains(strings.Fields(string(ignore)), rule) {
			t.Errorf(".gitignore lacks %s: a filled-in .env (or .env.local, ...) is never committed, .env.example always", rule)
		}
	}
}
