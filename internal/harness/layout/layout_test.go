package layout

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The rules (see the package comment for the reasons):
//
//  1. starter-closure: `go list -deps ./starter` holds no SQL driver
//     (modernc.org/sqlite, github.com/jackc/pgx/..., github.com/lib/pq,
//     github.com/go-sql-driver/mysql, github.com/mattn/go-sqlite3; database/sql
//     itself is allowed) and none of internal/store, internal/notify,
//     internal/reconcile, activities, workflows.
//  2. contract-imports: internal/contract imports directly only the standard
//     library, didit and go.temporal.io/sdk/....
//  3. didit-closure: didit and didit/... link no go.temporal.io/... and no
//     github.com/gin-gonic/....
//  4. product-closure: starter, worker, cmd/diditflow* and cmd/codec-server
//     link no internal/harness/...; harness-imports: outside internal/harness/
//     and cmd/{bench,chaos,cluster,didit-sim,didit-fake,mailsink} no package
//     imports it.
//  5. main-size: no main package has over MaxLines (400) lines of non-test
//     Go; activities-size: no non-test file of activities/ has.
//  6. kyc-closure: kyc imports of the module only didit/..., internal/contract,
//     internal/codec, internal/config (kyctest: kyc, didit/..., internal/contract),
//     and neither links a SQL driver or the worker's packages.
//  7. examples-imports: examples/... import of the module only kyc, kyctest
//     and examples/..., in their tests too.
//
// Only non-test imports, and non-test files, count, but for rule 7.

func moduleRoot(t *testing.T) (root, module string) {
	t.Helper()
	root, module, err := ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root, module
}

// load builds the graph of the real tree, with files (module-relative path →
// content) added or replaced through a `go list -overlay`, never written to
// the tree.
func load(t *testing.T, files map[string]string) *Graph {
	t.Helper()
	root, module := moduleRoot(t)
	overlay := ""
	if len(files) > 0 {
		dir := t.TempDir()
		replace := map[string]string{}
		i := 0
		for name, content := range files {
			i++
			src := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
			if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			replace[filepath.Join(root, filepath.FromSlash(name))] = src
		}
		data, err := json.Marshal(map[string]any{"Replace": replace})
		if err != nil {
			t.Fatal(err)
		}
		overlay = filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(overlay, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g, err := Load(root, module, overlay)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func key(v Violation) string { return v.Rule + ": " + strings.Join(v.Chain, " → ") }

func TestRealTreeKeepsTheRules(t *testing.T) {
	t.Parallel()
	g := load(t, nil)
	for _, v := range Check(g) {
		t.Error(v)
	}
	// The rules must have had something to check.
	var mains []string
	for _, m := range g.ProductMains() {
		mains = append(mains, g.name(m))
	}
	if !slices.Contains(mains, "cmd/diditflow-records") {
		t.Errorf("product mains %v miss cmd/diditflow-records: discovery by directory name is broken", mains)
	}
	t.Logf("product mains: %v", mains)
}

// imports is a Go file of package pkg that blank-imports paths.
func imports(pkg string, paths ...string) string {
	var b strings.Builder
	b.WriteString("package " + pkg + "\n\nimport (\n")
	for _, p := range paths {
		b.WriteString("\t_ \"" + p + "\"\n")
	}
	b.WriteString(")\n")
	return b.String()
}

// command is a main package that blank-imports paths.
func command(paths ...string) string { return imports("main", paths...) + "\nfunc main() {}\n" }

// long is a Go file of package pkg with lines lines.
func long(pkg string, lines int) string {
	return "package " + pkg + "\n" + strings.Repeat("// a line of what a main or an activity should not hold\n", lines-1)
}

const mod = "github.com/diditflow/diditflow/"

func TestCheckerCatchesViolations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files map[string]string
		// want must all be reported, as "rule: chain"; any other violation
		// must be of one of their rules.
		want []string
	}{
		{
			name:  "receiver links the store",
			files: map[string]string{"internal/receiver/zz_violation.go": imports("receiver", mod+"internal/store")},
			want:  []string{"starter-closure: starter → internal/receiver → internal/store"},
		},
		{
			name:  "receiver links workflows and through it the worker's code",
			files: map[string]string{"internal/receiver/zz_violation.go": imports("receiver", mod+"workflows")},
			want: []string{
				"starter-closure: starter → internal/receiver → workflows",
				"starter-closure: starter → internal/receiver → workflows → activities",
				"starter-closure: starter → internal/receiver → workflows → activities → internal/store",
				"starter-closure: starter → internal/receiver → workflows → activities → internal/notify",
			},
		},
		{
			name: "receiver links SQL drivers",
			files: map[string]string{"internal/receiver/zz_violation.go": imports("receiver",
				"modernc.org/sqlite", "github.com/jackc/pgx/v5/stdlib")},
			want: []string{
				"starter-closure: starter → internal/receiver → modernc.org/sqlite",
				"starter-closure: starter → internal/receiver → github.com/jackc/pgx/v5/stdlib",
			},
		},
		{
			name:  "didit imports gin",
			files: map[string]string{"didit/zz_violation.go": imports("didit", "github.com/gin-gonic/gin")},
			want:  []string{"didit-closure: didit → github.com/gin-gonic/gin"},
		},
		{
			name:  "a new didit/api package links the Temporal SDK",
			files: map[string]string{"didit/api/api.go": imports("api", mod+"didit", "go.temporal.io/sdk/client")},
			want:  []string{"didit-closure: didit/api → go.temporal.io/sdk/client"},
		},
		{
			name:  "contract imports config",
			files: map[string]string{"internal/contract/zz_violation.go": imports("contract", mod+"internal/config")},
			want:  []string{"contract-imports: internal/contract → internal/config"},
		},
		{
			name:  "contract imports the Temporal API module, not the SDK",
			files: map[string]string{"internal/contract/zz_violation.go": imports("contract", "go.temporal.io/api/enums/v1")},
			want:  []string{"contract-imports: internal/contract → go.temporal.io/api/enums/v1"},
		},
		{
			name:  "receiver imports the launcher",
			files: map[string]string{"internal/receiver/zz_violation.go": imports("receiver", mod+"internal/harness/launch")},
			want: []string{
				"product-closure: starter → internal/receiver → internal/harness/launch",
				"harness-imports: internal/receiver → internal/harness/launch",
			},
		},
		{
			name:  "workflows import the simulator, deep in the worker",
			files: map[string]string{"workflows/zz_violation.go": imports("workflows", mod+"internal/harness/simulator")},
			want: []string{
				"product-closure: worker → internal/workerapp → workflows → internal/harness/simulator",
				"harness-imports: workflows → internal/harness/simulator",
			},
		},
		{
			name:  "a new cmd/codec-server is a product main",
			files: map[string]string{"cmd/codec-server/main.go": command(mod + "internal/harness/smtptest")},
			want: []string{
				"product-closure: cmd/codec-server → internal/harness/smtptest",
				"harness-imports: cmd/codec-server → internal/harness/smtptest",
			},
		},
		{
			name:  "a new cmd/diditflow-admin is a product main",
			files: map[string]string{"cmd/diditflow-admin/main.go": command(mod + "internal/harness/launch")},
			want: []string{
				"product-closure: cmd/diditflow-admin → internal/harness/launch",
				"harness-imports: cmd/diditflow-admin → internal/harness/launch",
			},
		},
		{
			name:  "a main grows past the lines that wiring takes",
			files: map[string]string{"cmd/diditflow-records/zz_logic.go": long("main", MaxLines)},
			want:  []string{"main-size: cmd/diditflow-records"},
		},
		{
			name:  "a harness main grows too",
			files: map[string]string{"cmd/didit-sim/zz_logic.go": long("main", MaxLines)},
			want:  []string{"main-size: cmd/didit-sim"},
		},
		{
			name:  "an activities file grows past one concern",
			files: map[string]string{"activities/zz_engine.go": long("activities", MaxLines+1)},
			want:  []string{"activities-size: activities/zz_engine.go"},
		},
		{
			name:  "kyc links the records",
			files: map[string]string{"kyc/zz_violation.go": imports("kyc", mod+"internal/store")},
			want: []string{
				"kyc-closure: kyc → internal/store",
				"kyc-closure: kyctest → kyc → internal/store",
			},
		},
		{
			name:  "kyc links the mail, and through it a package it may not import",
			files: map[string]string{"kyc/zz_violation.go": imports("kyc", mod+"internal/notify", mod+"internal/pii")},
			want: []string{
				"kyc-closure: kyc → internal/notify",
				"kyc-closure: kyc → internal/pii",
				"kyc-closure: kyctest → kyc → internal/notify",
			},
		},
		{
			name:  "kyctest imports the workflows to stand in for diditflow",
			files: map[string]string{"kyctest/zz_violation.go": imports("kyctest", mod+"workflows")},
			want: []string{
				"kyc-closure: kyctest → workflows",
				"kyc-closure: kyctest → workflows → activities → internal/notify",
			},
		},
		{
			name:  "an example reaches into diditflow's internals",
			files: map[string]string{"examples/onboarding/app/zz_violation.go": imports("app", mod+"internal/contract", mod+"workflows")},
			want: []string{
				"examples-imports: examples/onboarding/app → internal/contract",
				"examples-imports: examples/onboarding/app → workflows",
			},
		},
		{
			name: "an example's tests use the harness and the didit package",
			files: map[string]string{
				"examples/onboarding/app/zz_violation_test.go":   imports("app", mod+"internal/harness/launch"),
				"examples/onboarding/app/zz_x_violation_test.go": imports("app_test", mod+"didit"),
			},
			want: []string{
				"examples-imports: examples/onboarding/app → internal/harness/launch",
				"examples-imports: examples/onboarding/app → didit",
			},
		},
		{
			name:  "a package no product links still may not import the harness",
			files: map[string]string{"internal/tools/gen/gen.go": imports("gen", mod+"internal/harness/simulator")},
			want:  []string{"harness-imports: internal/tools/gen → internal/harness/simulator"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Check(load(t, tc.files))
			var rules, keys []string
			for _, w := range tc.want {
				rules = append(rules, w[:strings.Index(w, ":")])
			}
			for _, v := range got {
				keys = append(keys, key(v))
				if !slices.Contains(rules, v.Rule) {
					t.Errorf("unexpected violation: %v", v)
				}
				if v.Pkg == "" || !strings.Contains(v.String(), v.Pkg) || !strings.Contains(v.String(), strings.Join(v.Chain, " → ")) {
					t.Errorf("message %q does not name the package %q and its chain", v, v.Pkg)
				}
			}
			for _, w := range tc.want {
				if !slices.Contains(keys, w) {
					t.Errorf("missing violation %q; got:\n%s", w, strings.Join(keys, "\n"))
				}
			}
			for _, v := range got {
				t.Log(v)
			}
		})
	}
}

// What the rules allow stays allowed: test files, harness mains, database/sql
// in the starter, the SDK in the contract.
func TestCheckerAllows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files map[string]string
	}{
		{"test files may import anything", map[string]string{
			"internal/receiver/zz_violation_test.go": imports("receiver", mod+"internal/store", mod+"internal/harness/launch"),
			"didit/zz_violation_test.go":             imports("didit", "github.com/gin-gonic/gin", "go.temporal.io/sdk/client"),
			"internal/contract/zz_violation_test.go": imports("contract", mod+"internal/config"),
		}},
		{"the starter may link database/sql", map[string]string{
			"starter/zz_sql.go": imports("main", "database/sql", "database/sql/driver"),
		}},
		{"the contract may import the standard library, didit and the SDK", map[string]string{
			"internal/contract/zz_sdk.go": imports("contract", "fmt", mod+"didit", "go.temporal.io/sdk/workflow", "go.temporal.io/sdk/converter"),
		}},
		{"a harness main may import the harness", map[string]string{
			"cmd/didit-sim/zz_more.go": imports("main", mod+"internal/harness/launch", mod+"internal/harness/smtptest"),
		}},
		{"the cluster rig is a harness main", map[string]string{
			"cmd/cluster/zz_more.go": imports("main", mod+"internal/harness/launch"),
		}},
		{"tests may be long", map[string]string{
			"activities/zz_long_test.go":            long("activities", 3*MaxLines),
			"cmd/diditflow-records/zz_long_test.go": long("main", 3*MaxLines),
		}},
		{"an activities file may have exactly MaxLines lines", map[string]string{
			"activities/zz_full.go": long("activities", MaxLines),
		}},
		{"an example and its tests may import kyc and kyctest", map[string]string{
			"examples/onboarding/app/zz_kyc.go":      imports("app", mod+"kyc", mod+"kyctest"),
			"examples/onboarding/app/zz_kyc_test.go": imports("app_test", mod+"kyc", mod+"kyctest", mod+"examples/onboarding/app"),
		}},
		{"the harness may import product code", map[string]string{
			"internal/harness/simulator/zz_more.go": imports("simulator", mod+"internal/store", mod+"workflows"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, v := range Check(load(t, tc.files)) {
				t.Error(v)
			}
		})
	}
}
