package workflows

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// versionedDirs hold workflow code whose workflow.GetVersion change IDs
// docs/VERSIONS.md must list; a directory that does not exist yet is skipped.
var versionedDirs = []string{".", filepath.Join("..", "kyc")}

// TestEveryChangeIDHasARow: every workflow.GetVersion change ID in the
// workflow code has its row in docs/VERSIONS.md, saying what changed, which
// recorded histories cover it, and the query that tells when it can go.
func TestEveryChangeIDHasARow(t *testing.T) {
	var ids []changeID
	for _, dir := range versionedDirs {
		found, err := changeIDs(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, found...)
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "VERSIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	recorded := func(name string) bool {
		for _, dir := range []string{filepath.Join("testdata", "replay"), filepath.Join("..", "kyc", "testdata", "replay")} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				return true
			}
		}
		return false
	}
	for _, problem := range checkVersions(ids, versionRows(string(doc)), recorded) {
		t.Error(problem)
	}
	t.Logf("%d change IDs in the workflow code", len(ids))
}

// TestVersionCheckerFindsAChangeIDWithoutARow proves the check on a workflow
// that versions a change, by a constant and by a literal: without rows it
// fails naming both, with rows it passes, and a row left over or half
// filled in fails too.
func TestVersionCheckerFindsAChangeIDWithoutARow(t *testing.T) {
	dir := t.TempDir()
	src := `package flows

import wf "go.temporal.io/sdk/workflow"

const noticeChange = "notice-per-change"

func Session(ctx wf.Context) error {
	if wf.GetVersion(ctx, noticeChange, wf.DefaultVersion, 1) == 1 {
		_ = wf.GetVersion(ctx, "lean-history", wf.DefaultVersion, 2)
	}
	return nil
}
`
	if err := os.WriteFile(filepath.Join(dir, "session.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ids, err := changeIDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := changeIDNames(ids); !slices.Equal(got, []string{"notice-per-change", "lean-history"}) {
		t.Fatalf("change IDs = %q", got)
	}
	recorded := func(name string) bool { return name == "notice-old.json" || name == "notice-new.json" }

	const header = "| history | recorded by |\n|---|---|\n| `notice-old.json` | a test |\n\n" +
		"| change ID | what changed | histories (old path; new path) | retire when this counts 0 |\n|---|---|---|---|\n"
	empty := versionRows(header)
	problems := checkVersions(ids, empty, recorded)
	if len(problems) != 2 || !strings.Contains(problems[0], `"notice-per-change"`) || !strings.Contains(problems[0], "session.go:8") ||
		!strings.Contains(problems[1], `"lean-history"`) {
		t.Fatalf("without rows: %q, want both change IDs named where they are", problems)
	}

	full := versionRows(header + "| `notice-per-change` | a notice per status change | `notice-old.json`; `notice-new.json` | `StartTime < '2026-02-01T00:00:00Z'` |\n" +
		"| `lean-history` | records as local activities | `notice-old.json`; `notice-new.json` | `StartTime < '2026-03-01T00:00:00Z'` |\n")
	if problems := checkVersions(ids, full, recorded); len(problems) != 0 {
		t.Fatalf("with rows: %q, want none", problems)
	}

	flawed := versionRows(header + "| `notice-per-change` | a notice per status change | `missing.json` | `StartTime < '2026-02-01T00:00:00Z'` |\n" +
		"| `lean-history` |  | `notice-new.json` | `StartTime < '2026-03-01T00:00:00Z'` |\n" +
		"| `retired-long-ago` | gone | `notice-old.json` | `StartTime < '2025-01-01T00:00:00Z'` |\n")
	problems = checkVersions(ids, flawed, recorded)
	want := []string{`"notice-per-change"`, "missing.json", `"lean-history"`, "empty", `"retired-long-ago"`, "no change ID"}
	joined := strings.Join(problems, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("flawed rows: %q lacks %s", problems, w)
		}
	}
	if len(problems) != 3 {
		t.Errorf("flawed rows: %d problems, want 3: %q", len(problems), problems)
	}

	odd := `package flows

import "go.temporal.io/sdk/workflow"

func Case(ctx workflow.Context, id string) { _ = workflow.GetVersion(ctx, id, workflow.DefaultVersion, 1) }
`
	if err := os.WriteFile(filepath.Join(dir, "case.go"), []byte(odd), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := changeIDs(dir); err == nil || !strings.Contains(err.Error(), "case.go:5") {
		t.Fatalf("a change ID the check cannot read: %v, want an error naming where", err)
	}
}

// changeID is one workflow.GetVersion call: its change ID and where it is.
type changeID struct {
	id    string
	where string
}

func changeIDNames(ids []changeID) []string {
	var out []string
	for _, c := range ids {
		out = append(out, c.id)
	}
	return out
}

const workflowPackage = "go.temporal.io/sdk/workflow"

// changeIDs finds the workflow.GetVersion calls of the package in dir (test
// files aside) and reads their change IDs: a string literal, or a string
// constant declared in the package. A change ID computed any other way is
// an error, since the check could not tell whether it has a row.
func changeIDs(dir string) ([]changeID, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	consts := map[string]string{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			d, ok := n.(*ast.GenDecl)
			if !ok || d.Tok != token.CONST {
				return true
			}
			for _, spec := range d.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if s, ok := stringLiteral(vs.Values[i]); ok {
							consts[name.Name] = s
						}
					}
				}
			}
			return true
		})
	}
	var ids []changeID
	var errs []error
	for _, f := range files {
		pkg := importName(f, workflowPackage)
		if pkg == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "GetVersion" {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != pkg {
				return true
			}
			pos := fset.Position(call.Pos())
			where := filepath.Base(pos.Filename) + ":" + strconv.Itoa(pos.Line)
			if len(call.Args) < 2 {
				errs = append(errs, fmt.Errorf("%s: GetVersion without a change ID", where))
				return true
			}
			id, ok := stringLiteral(call.Args[1])
			if ident, isIdent := call.Args[1].(*ast.Ident); !ok && isIdent {
				id, ok = consts[ident.Name]
			}
			if !ok {
				errs = append(errs, fmt.Errorf("%s: GetVersion's change ID is neither a string literal nor a string constant", where))
				return true
			}
			ids = append(ids, changeID{id: id, where: where})
			return true
		})
	}
	return ids, errors.Join(errs...)
}

func stringLiteral(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// importName is the name f refers to the package path by, or "".
func importName(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p != path {
			continue
		}
		if imp.Name != nil {
			return imp.Name.Name
		}
		return filepath.Base(path)
	}
	return ""
}

// versionRow is one row of the change ID table in docs/VERSIONS.md.
type versionRow struct {
	id, what, histories, query string
}

// versionRowPattern matches a row of the change ID table: its first cell
// is a change ID in backquotes.
var versionRowPattern = regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|(.*)\\|$")

// versionRows reads the table under the header "| change ID |": its rows,
// up to the first line that is not one.
func versionRows(doc string) []versionRow {
	var rows []versionRow
	inTable := false
	for line := range strings.SplitSeq(doc, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "| change ID |"):
			inTable = true
			continue
		case !inTable:
			continue
		case !strings.HasPrefix(line, "|"):
			return rows
		}
		m := versionRowPattern.FindStringSubmatch(line)
		if m == nil {
			continue // the separator
		}
		cells := strings.Split(m[2], "|")
		for len(cells) < 3 {
			cells = append(cells, "")
		}
		rows = append(rows, versionRow{id: m[1], what: strings.TrimSpace(cells[0]),
			histories: strings.TrimSpace(cells[1]), query: strings.TrimSpace(strings.Join(cells[2:], "|"))})
	}
	return rows
}

var historyName = regexp.MustCompile("`([^`]+\\.json)`")

// checkVersions returns what is wrong between the change IDs in the code
// and the rows: an ID without a row, a row without an ID (its change was
// retired: the row goes too), an empty column, or a history not recorded.
func checkVersions(ids []changeID, rows []versionRow, recorded func(name string) bool) []string {
	var problems []string
	byID := map[string]versionRow{}
	for _, r := range rows {
		byID[r.id] = r
	}
	inCode := map[string]bool{}
	for _, c := range ids {
		if inCode[c.id] {
			continue
		}
		inCode[c.id] = true
		r, ok := byID[c.id]
		if !ok {
			problems = append(problems, fmt.Sprintf("change ID %q (%s) has no row in docs/VERSIONS.md: say what changed, "+
				"which recorded histories cover its paths, and the query that tells when it can be retired", c.id, c.where))
			continue
		}
		if r.what == "" || r.histories == "" || r.query == "" {
			problems = append(problems, fmt.Sprintf("change ID %q: its row in docs/VERSIONS.md leaves a column empty", c.id))
			continue
		}
		names := historyName.FindAllStringSubmatch(r.histories, -1)
		if len(names) == 0 {
			problems = append(problems, fmt.Sprintf("change ID %q: its row names no recorded history", c.id))
		}
		for _, n := range names {
			if !recorded(n[1]) {
				problems = append(problems, fmt.Sprintf("change ID %q: history %s is not in workflows/testdata/replay", c.id, n[1]))
			}
		}
	}
	for _, r := range rows {
		if !inCode[r.id] {
			problems = append(problems, fmt.Sprintf("docs/VERSIONS.md has a row for %q, which no change ID in the code has: "+
				"a retired change takes its row with it", r.id))
		}
	}
	return problems
}
