// Package promq reads the PromQL that diditflow ships, the alert rules in
// deploy/prometheus and the Grafana dashboard in deploy/grafana, and parses
// it with Prometheus's own parser, so that tests can hold every query to the
// metrics the processes really export.
package promq

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// Files are the shipped files, relative to the repository root.
const (
	AlertsFile    = "deploy/prometheus/alerts.yml"
	DashboardFile = "deploy/grafana/dashboards/diditflow.json"
)

// Rules is a Prometheus rule file.
type Rules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []Rule `yaml:"rules"`
	} `yaml:"groups"`
}

// Rule is one alerting rule.
type Rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// ReadRules reads the alert rules, refusing keys Prometheus does not know.
func ReadRules(root string) (Rules, error) {
	raw, err := os.ReadFile(filepath.Join(root, AlertsFile))
	if err != nil {
		return Rules{}, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var r Rules
	if err := dec.Decode(&r); err != nil {
		return Rules{}, fmt.Errorf("%s: %w", AlertsFile, err)
	}
	return r, nil
}

// Dashboard is the part of a Grafana dashboard the tests read.
type Dashboard struct {
	UID    string  `json:"uid"`
	Panels []Panel `json:"panels"`
}

// Panel is one dashboard panel.
type Panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
}

// ReadDashboard reads the shipped dashboard.
func ReadDashboard(root string) (Dashboard, error) {
	raw, err := os.ReadFile(filepath.Join(root, DashboardFile))
	if err != nil {
		return Dashboard{}, err
	}
	var d Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return Dashboard{}, fmt.Errorf("%s: %w", DashboardFile, err)
	}
	return d, nil
}

// Query is one shipped PromQL expression and where it is.
type Query struct {
	Where string
	Expr  string
}

// Queries lists every expression of the rules and the dashboard.
func Queries(root string) ([]Query, error) {
	rules, err := ReadRules(root)
	if err != nil {
		return nil, err
	}
	var qs []Query
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			qs = append(qs, Query{Where: AlertsFile + ": " + r.Alert, Expr: r.Expr})
		}
	}
	d, err := ReadDashboard(root)
	if err != nil {
		return nil, err
	}
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			qs = append(qs, Query{Where: fmt.Sprintf("%s: panel %q %s", DashboardFile, p.Title, t.RefID), Expr: t.Expr})
		}
	}
	return qs, nil
}

// grafanaVariables are the dashboard's built-in range variables, replaced
// by a duration before parsing as Grafana does before querying.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// Parse parses expr (Grafana's range variables allowed) with Prometheus's
// parser.
func Parse(expr string) (parser.Expr, error) {
	return parser.NewParser(parser.Options{}).ParseExpr(grafanaVariables.Replace(expr))
}

// Family is the metric family a selected name belongs to: a histogram's
// _bucket, _sum and _count series are its family's.
func Family(name string, families map[string]bool) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && families[base] {
			return base
		}
	}
	return name
}

// Selectors are the vector selectors of expr: each metric name with the
// label matchers it is selected by (the name's own matcher left out).
func Selectors(expr string) ([]Selector, error) {
	e, err := Parse(expr)
	if err != nil {
		return nil, err
	}
	var out []Selector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			s := Selector{Metric: vs.Name}
			for _, m := range vs.LabelMatchers {
				if m.Name != "__name__" {
					s.Matchers = append(s.Matchers, m)
				}
			}
			out = append(out, s)
		}
		return nil
	})
	return out, nil
}

// Selector is one metric a query selects and how.
type Selector struct {
	Metric   string
	Matchers []*labels.Matcher
}

// Matches reports whether a series' labels satisfy every matcher.
func (s Selector) Matches(series map[string]string) bool {
	for _, m := range s.Matchers {
		if !m.Matches(series[m.Name]) {
			return false
		}
	}
	return true
}

// Threshold is a comparison of a histogram_quantile over Metric with a
// constant, as in `histogram_quantile(0.95, ...) > 60`: the histogram must
// have a finite bucket above Value, or the quantile can never pass it.
type Threshold struct {
	Metric string
	Value  float64
}

// QuantileThresholds lists expr's thresholds on histogram quantiles.
func QuantileThresholds(expr string) ([]Threshold, error) {
	e, err := Parse(expr)
	if err != nil {
		return nil, err
	}
	var out []Threshold
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		b, ok := n.(*parser.BinaryExpr)
		if !ok {
			return nil
		}
		call, ok := unwrap(b.LHS).(*parser.Call)
		num, isNum := unwrap(b.RHS).(*parser.NumberLiteral)
		if !ok || !isNum || call.Func.Name != "histogram_quantile" {
			return nil
		}
		parser.Inspect(call, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				out = append(out, Threshold{Metric: vs.Name, Value: num.Val})
			}
			return nil
		})
		return nil
	})
	return out, nil
}

func unwrap(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}
