// Package layout checks diditflow's dependency rules on the package graph
// that `go list -deps -json` reports. Only non-test imports count: that is
// what a binary links. The rules, as Check enforces them:
//
//  1. starter-closure: the starter's dependency closure holds no SQL driver
//     (modernc.org/sqlite, github.com/jackc/pgx, github.com/lib/pq,
//     github.com/go-sql-driver/mysql, github.com/mattn/go-sqlite3, each with
//     its subpackages) and none of internal/store, internal/notify,
//     internal/notice, internal/reconcile, activities, workflows: those
//     are the worker's.
//     database/sql and database/sql/driver are allowed: they are
//     standard-library interfaces with no driver behind them, and
//     prometheus/client_golang's collectors package (the receiver's Go and
//     process metrics) imports database/sql for its DB stats collector. A
//     driver is what links database code.
//  2. contract-imports: internal/contract imports directly only the standard
//     library, didit and go.temporal.io/sdk/... packages.
//  3. didit-closure: didit and every package under didit/ have no
//     go.temporal.io/... nor github.com/gin-gonic/... in their closure.
//  4. product-closure: the closure of every product main (starter, worker,
//     cmd/diditflow*, cmd/codec-server, found by directory name) holds no
//     internal/harness/... package; and harness-imports: no package outside
//     internal/harness/ and the harness mains (cmd/bench, cmd/chaos,
//     cmd/cluster, cmd/didit-sim, cmd/didit-fake, cmd/mailsink) imports
//     internal/harness/... directly.
//  6. kyc-closure: the public packages kyc and kyctest, which a business's
//     worker links, import of the module only didit, internal/contract,
//     internal/codec and internal/config (kyctest also kyc), and their
//     closure holds no SQL driver and none of the worker's packages
//     (internal/store, internal/notify, internal/reconcile, activities,
//     workflows): a business links neither diditflow's records nor its mail.
//  5. main-size: a main package (the module's package main, a product's or
//     the harness's) has at most MaxLines lines in its non-test files: a
//     main wires, and what it would do beyond that belongs in a package
//     tests import. activities-size: no non-test file of activities/ has
//     more than MaxLines lines: the activities adapt, one concern a file.
//  7. examples-imports: a package under examples/ imports of the module
//     only kyc, kyctest and examples/..., in its tests too: an example is
//     a business's code, which has nothing else of diditflow to import, and
//     its tests are what the business copies next.
//
// Each violation names the offending package and the shortest import chain
// from the rule's root to it.
package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Rule identifiers, as Violation.Rule reports them.
const (
	RuleStarter  = "starter-closure"
	RuleContract = "contract-imports"
	RuleDidit    = "didit-closure"
	RuleProduct  = "product-closure"
	RuleHarness  = "harness-imports"
	RuleMissing  = "missing-package"
	RuleMainSize = "main-size"
	RuleActSize  = "activities-size"
	RuleKYC      = "kyc-closure"
	RuleExamples = "examples-imports"
)

// MaxLines is the most lines a main package, or a file of activities/, has
// (rule 5), counted as newlines in its non-test Go files.
const MaxLines = 400

// Module-relative directories; a pattern ending in "/..." also matches the
// directories below it.
var (
	// sqlDrivers may not be linked by the starter.
	sqlDrivers = []string{
		"modernc.org/sqlite/...",
		"github.com/jackc/pgx/...",
		"github.com/lib/pq/...",
		"github.com/go-sql-driver/mysql/...",
		"github.com/mattn/go-sqlite3/...",
	}
	// workerOnly are the module's packages the starter may not link.
	workerOnly = []string{"internal/store/...", "internal/notify/...", "internal/notice/...", "internal/reconcile/...", "activities/...", "workflows/..."}
	// contractMay are the non-standard imports internal/contract may have.
	contractMay = []string{"didit", "go.temporal.io/sdk/..."}
	// diditMayNot may not be in the closure of didit/....
	diditMayNot = []string{"go.temporal.io/...", "github.com/gin-gonic/..."}

	// publicPkgs are what businesses link, and what of the module each may
	// import.
	publicPkgs = map[string][]string{
		"kyc":     {"didit/...", "internal/contract", "internal/codec", "internal/config"},
		"kyctest": {"kyc", "didit/...", "internal/contract"},
	}

	// examplesMay is what of the module an example may import.
	examples    = "examples/..."
	examplesMay = []string{"kyc", "kyctest", examples}

	harness       = "internal/harness/..."
	harnessMains  = []string{"cmd/bench/...", "cmd/chaos/...", "cmd/cluster/...", "cmd/didit-sim/...", "cmd/didit-fake/...", "cmd/mailsink/..."}
	productFixed  = []string{"starter", "worker"}
	productByName = []string{"cmd/diditflow*", "cmd/codec-server"} // path.Match patterns on the directory
)

// Package is the part of `go list -json` the rules read.
type Package struct {
	ImportPath string
	Name       string
	Dir        string
	GoFiles    []string // non-test Go files, by name in Dir
	Standard   bool
	Imports    []string // non-test imports, resolved
	// TestImports and XTestImports are the imports of the package's tests
	// and of its external test package.
	TestImports  []string
	XTestImports []string
	Deps         []string // non-test transitive closure
	Error        *struct{ Err string }
}

// Graph is the module's package graph, its dependencies included.
type Graph struct {
	Root   string // module root directory
	Module string // module path
	Pkgs   map[string]*Package
	// overlay maps a file's path to the file go list read in its place.
	overlay map[string]string
}

// Violation is one broken rule.
type Violation struct {
	Rule  string
	Pkg   string   // the offending package, module-relative when it is the module's
	Chain []string // the shortest import chain from the rule's root to Pkg
	Why   string
}

func (v Violation) String() string {
	return fmt.Sprintf("[%s] %s: %s", v.Rule, v.Why, strings.Join(v.Chain, " → "))
}

// ModuleRoot walks up from dir to the directory holding go.mod and returns it
// with the module path go.mod declares.
func ModuleRoot(dir string) (root, module string, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			module, err := modulePath(data)
			return dir, module, err
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "", errors.New("no go.mod above " + dir)
		}
		dir = parent
	}
}

func modulePath(gomod []byte) (string, error) {
	for line := range strings.Lines(string(gomod)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			if p, err := strconv.Unquote(f[1]); err == nil {
				return p, nil
			}
			return f[1], nil
		}
	}
	return "", errors.New("go.mod has no module line")
}

// Load runs `go list -e -deps -json ./...` in the module root, with the given
// overlay file when it is not empty. It never reaches the network
// (GOPROXY=off): every module must already be in the module cache.
func Load(root, module, overlay string) (*Graph, error) {
	args := []string{"list", "-e", "-deps", "-json=ImportPath,Name,Dir,GoFiles,Standard,Imports,TestImports,XTestImports,Deps,Error"}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	args = append(args, "./...")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOPROXY=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	g := &Graph{Root: root, Module: module, Pkgs: map[string]*Package{}}
	if overlay != "" {
		data, err := os.ReadFile(overlay)
		if err != nil {
			return nil, err
		}
		var o struct{ Replace map[string]string }
		if err := json.Unmarshal(data, &o); err != nil {
			return nil, fmt.Errorf("overlay %s: %v", overlay, err)
		}
		g.overlay = o.Replace
	}
	var broken []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(Package)
		if err := dec.Decode(p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decoding go list output: %v", err)
		}
		if p.Error != nil {
			broken = append(broken, p.ImportPath+": "+p.Error.Err)
		}
		g.Pkgs[p.ImportPath] = p
	}
	if len(broken) > 0 {
		// The graph is incomplete: checking it would miss imports.
		return nil, fmt.Errorf("go list reports broken packages:\n%s", strings.Join(broken, "\n"))
	}
	return g, nil
}

// rel is the module-relative directory of a module package, "" otherwise.
func (g *Graph) rel(p *Package) string {
	if p.Standard || p.Dir == "" || (p.ImportPath != g.Module && !strings.HasPrefix(p.ImportPath, g.Module+"/")) {
		return ""
	}
	r, err := filepath.Rel(g.Root, p.Dir)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return ""
	}
	return filepath.ToSlash(r)
}

// name is how messages show an import path: module-relative when it is the
// module's.
func (g *Graph) name(importPath string) string {
	if r, ok := strings.CutPrefix(importPath, g.Module+"/"); ok {
		return r
	}
	return importPath
}

// local resolves a module-relative pattern to an import path pattern.
func (g *Graph) local(pattern string) string { return g.Module + "/" + pattern }

// matches reports whether importPath is pattern, or below it when pattern
// ends in "/...".
func matches(importPath, pattern string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return importPath == base || strings.HasPrefix(importPath, base+"/")
	}
	return importPath == pattern
}

func matchesAny(importPath string, patterns []string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return matches(importPath, p) })
}

// chain is the shortest chain of Imports from root to the nearest package
// that satisfies target, as display names; nil when there is none.
func (g *Graph) chain(root string, target func(string) bool) []string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		p := g.Pkgs[cur]
		if p == nil {
			continue
		}
		for _, imp := range p.Imports {
			if _, seen := prev[imp]; seen {
				continue
			}
			prev[imp] = cur
			if target(imp) {
				var c []string
				for n := imp; n != ""; n = prev[n] {
					c = append(c, g.name(n))
				}
				slices.Reverse(c)
				return c
			}
			queue = append(queue, imp)
		}
	}
	return nil
}

// closureHolds reports, for each pattern, the package of root's closure
// (Deps) nearest to root that matches it.
func (g *Graph) closureHolds(rule, root string, patterns []string, why func(pkg string) string) []Violation {
	var vs []Violation
	deps := g.Pkgs[root].Deps
	for _, pat := range patterns {
		if !slices.ContainsFunc(deps, func(d string) bool { return matches(d, pat) }) {
			continue
		}
		c := g.chain(root, func(p string) bool { return matches(p, pat) })
		if c == nil { // Deps and Imports disagree; still report it
			first := deps[slices.IndexFunc(deps, func(d string) bool { return matches(d, pat) })]
			c = []string{g.name(root), "…", g.name(first)}
		}
		pkg := c[len(c)-1]
		vs = append(vs, Violation{Rule: rule, Pkg: pkg, Chain: c, Why: why(pkg)})
	}
	return vs
}

// modulePkgs are the module's packages, sorted by import path, with their
// module-relative directories.
func (g *Graph) modulePkgs() (paths []string, rels map[string]string) {
	rels = map[string]string{}
	for ip, p := range g.Pkgs {
		if r := g.rel(p); r != "" {
			paths = append(paths, ip)
			rels[ip] = r
		}
	}
	slices.Sort(paths)
	return paths, rels
}

// ProductMains are the import paths of the product commands: the starter,
// the worker, and the module's directories named cmd/diditflow* or
// cmd/codec-server.
func (g *Graph) ProductMains() []string {
	var mains []string
	for _, f := range productFixed {
		mains = append(mains, g.local(f))
	}
	paths, rels := g.modulePkgs()
	for _, ip := range paths {
		for _, pat := range productByName {
			if ok, _ := path.Match(pat, rels[ip]); ok && !slices.Contains(mains, ip) {
				mains = append(mains, ip)
			}
		}
	}
	return mains
}

// Check applies the rules to g and returns every violation, in a stable
// order.
func Check(g *Graph) []Violation {
	var vs []Violation
	missing := func(ip, why string) bool {
		if g.Pkgs[ip] != nil {
			return false
		}
		vs = append(vs, Violation{Rule: RuleMissing, Pkg: g.name(ip), Chain: []string{g.name(ip)}, Why: why})
		return true
	}
	paths, rels := g.modulePkgs()

	// 1. The starter links no SQL driver and none of the worker's packages.
	starter := g.local("starter")
	if !missing(starter, "the starter is gone; rule "+RuleStarter+" has nothing to check") {
		vs = append(vs, g.closureHolds(RuleStarter, starter, sqlDrivers, func(pkg string) string {
			return "the starter links SQL driver " + pkg
		})...)
		var wo []string
		for _, p := range workerOnly {
			wo = append(wo, g.local(p))
		}
		vs = append(vs, g.closureHolds(RuleStarter, starter, wo, func(pkg string) string {
			return "the starter links " + pkg + ", which only the worker may link"
		})...)
	}

	// 2. internal/contract imports only the standard library, didit and the SDK.
	contract := g.local("internal/contract")
	if !missing(contract, "internal/contract is gone; rule "+RuleContract+" has nothing to check") {
		var may []string
		for _, p := range contractMay {
			if strings.HasPrefix(p, "go.temporal.io/") {
				may = append(may, p)
			} else {
				may = append(may, g.local(p))
			}
		}
		for _, imp := range g.Pkgs[contract].Imports {
			if p := g.Pkgs[imp]; (p != nil && p.Standard) || matchesAny(imp, may) {
				continue
			}
			vs = append(vs, Violation{
				Rule: RuleContract, Pkg: g.name(imp), Chain: []string{g.name(contract), g.name(imp)},
				Why: "internal/contract imports " + g.name(imp) + "; it may import only the standard library, didit and go.temporal.io/sdk/...",
			})
		}
	}

	// 3. didit and didit/... link neither Temporal nor Gin.
	didit := g.local("didit")
	if !missing(didit, "didit is gone; rule "+RuleDidit+" has nothing to check") {
		for _, ip := range paths {
			if !matches(rels[ip], "didit/...") {
				continue
			}
			root := g.name(ip)
			vs = append(vs, g.closureHolds(RuleDidit, ip, diditMayNot, func(pkg string) string {
				return root + " links " + pkg + "; the Didit protocol packages stay free of Temporal and Gin"
			})...)
		}
	}

	// 4. No product main links the harness ...
	harnessPath := g.local(harness)
	for _, m := range g.ProductMains() {
		if missing(m, g.name(m)+" is gone; rule "+RuleProduct+" cannot check it") {
			continue
		}
		root := g.name(m)
		vs = append(vs, g.closureHolds(RuleProduct, m, []string{harnessPath}, func(pkg string) string {
			return "product command " + root + " links harness package " + pkg
		})...)
	}
	// ... and nothing outside the harness imports it.
	for _, ip := range paths {
		if matches(rels[ip], harness) || matchesAny(rels[ip], harnessMains) {
			continue
		}
		for _, imp := range g.Pkgs[ip].Imports {
			if matches(imp, harnessPath) {
				vs = append(vs, Violation{
					Rule: RuleHarness, Pkg: g.name(ip), Chain: []string{g.name(ip), g.name(imp)},
					Why: g.name(ip) + " imports harness package " + g.name(imp) + " but is neither under internal/harness nor a harness main",
				})
			}
		}
	}

	// 6. What a business links: kyc and kyctest.
	for _, rel := range slices.Sorted(maps.Keys(publicPkgs)) {
		ip := g.local(rel)
		if missing(ip, rel+" is gone; rule "+RuleKYC+" cannot check it") {
			continue
		}
		var may []string
		for _, p := range publicPkgs[rel] {
			may = append(may, g.local(p))
		}
		for _, imp := range g.Pkgs[ip].Imports {
			if !strings.HasPrefix(imp, g.Module+"/") || matchesAny(imp, may) {
				continue
			}
			vs = append(vs, Violation{Rule: RuleKYC, Pkg: g.name(imp), Chain: []string{rel, g.name(imp)},
				Why: rel + " imports " + g.name(imp) + "; of diditflow it may import only " + strings.Join(publicPkgs[rel], ", ")})
		}
		vs = append(vs, g.closureHolds(RuleKYC, ip, sqlDrivers, func(pkg string) string {
			return rel + " links SQL driver " + pkg + ": a business's worker must not"
		})...)
		var wo []string
		for _, p := range workerOnly {
			wo = append(wo, g.local(p))
		}
		vs = append(vs, g.closureHolds(RuleKYC, ip, wo, func(pkg string) string {
			return rel + " links " + pkg + ", which only diditflow's worker may link"
		})...)
	}

	// 7. An example imports of diditflow what a business can: kyc.
	var may []string
	for _, p := range examplesMay {
		may = append(may, g.local(p))
	}
	found := false
	for _, ip := range paths {
		if !matches(rels[ip], examples) {
			continue
		}
		found = true
		p := g.Pkgs[ip]
		for _, imp := range slices.Compact(slices.Sorted(slices.Values(slices.Concat(p.Imports, p.TestImports, p.XTestImports)))) {
			if !strings.HasPrefix(imp, g.Module+"/") || matchesAny(imp, may) {
				continue
			}
			vs = append(vs, Violation{Rule: RuleExamples, Pkg: g.name(imp), Chain: []string{g.name(ip), g.name(imp)},
				Why: g.name(ip) + " imports " + g.name(imp) + "; an example imports of diditflow only kyc and kyctest, as a business does"})
		}
	}
	if !found {
		vs = append(vs, Violation{Rule: RuleMissing, Pkg: examples, Chain: []string{examples},
			Why: "no package under examples/; rule " + RuleExamples + " has nothing to check"})
	}

	// 5. Mains wire; the activities adapt.
	for _, ip := range paths {
		p := g.Pkgs[ip]
		switch {
		case p.Name == "main":
			if n, err := g.lines(p, p.GoFiles...); err != nil {
				vs = append(vs, Violation{Rule: RuleMainSize, Pkg: g.name(ip), Chain: []string{g.name(ip)}, Why: err.Error()})
			} else if n > MaxLines {
				vs = append(vs, Violation{Rule: RuleMainSize, Pkg: g.name(ip), Chain: []string{g.name(ip)},
					Why: fmt.Sprintf("main package %s has %d lines, over %d: move what it does beyond wiring into a package", g.name(ip), n, MaxLines)})
			}
		case rels[ip] == "activities":
			for _, f := range p.GoFiles {
				file := rels[ip] + "/" + f
				if n, err := g.lines(p, f); err != nil {
					vs = append(vs, Violation{Rule: RuleActSize, Pkg: file, Chain: []string{file}, Why: err.Error()})
				} else if n > MaxLines {
					vs = append(vs, Violation{Rule: RuleActSize, Pkg: file, Chain: []string{file},
						Why: fmt.Sprintf("%s has %d lines, over %d: split it by concern", file, n, MaxLines)})
				}
			}
		}
	}
	return vs
}

// lines counts the lines of p's files, as go list read them (the overlay's
// content for a file it replaces).
func (g *Graph) lines(p *Package, files ...string) (int, error) {
	n := 0
	for _, f := range files {
		path := filepath.Join(p.Dir, f)
		if o, ok := g.overlay[path]; ok {
			path = o
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		n += bytes.Count(b, []byte("\n"))
	}
	return n, nil
}
