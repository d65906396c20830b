package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/diditflow/diditflow/internal/harness/launch"
)

// readmeMaxLines keeps the README a front door: what diditflow is, the two
// commands, a first run, links. Reference belongs in docs/.
const readmeMaxLines = 250

func TestREADMEStaysShort(t *testing.T) {
	readme, err := os.ReadFile(launch.Path(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := lineCount(readme); n > readmeMaxLines {
		t.Errorf("README.md has %d lines, want %d or fewer: move reference into docs/ and link it", n, readmeMaxLines)
	}
}

func lineCount(b []byte) int {
	n := bytes.Count(b, []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

// docFiles are the Markdown files a reader moves between: README.md,
// docs/*.md and the examples' READMEs, as slash paths from the repository
// root.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md"}
	for _, pattern := range []string{"docs/*.md", "examples/*/README.md"} {
		found, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(pattern)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range found {
			rel, err := filepath.Rel(root, f)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, filepath.ToSlash(rel))
		}
	}
	return files
}

// Every relative link in the README and docs/ reaches a file of the
// repository and, into Markdown, a heading of that file, so that moving a
// section or a file cannot strand its readers.
func TestDocLinksResolve(t *testing.T) {
	root := launch.Path(t)
	for _, problem := range brokenLinks(root, docFiles(t, root)) {
		t.Error(problem)
	}
}

// The check finds a missing file and a missing heading, and nothing in code.
func TestLinkCheckCatchesBrokenLinks(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", "# Title\n\n"+
		"[ok](docs/A.md#the-twice-named-1), [dir](docs), [self](#title), [web](https://example.com/x.md)\n"+
		"[gone](docs/B.md) and [no heading](docs/A.md#nowhere) and `[in code](docs/C.md)`\n"+
		"```\n[fenced](docs/D.md)\n```\n")
	write("docs/A.md", "# The twice-named\n\n## The *twice*-named\n\n[up](../README.md#title) [lost](#title)\n")

	got := strings.Join(brokenLinks(root, []string{"README.md", "docs/A.md"}), "\n")
	for _, want := range []string{"README.md:4: docs/B.md", "README.md:4: docs/A.md#nowhere", "docs/A.md:5: #title"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems:\n%s\nwant one starting %q", got, want)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 3 {
		t.Errorf("problems:\n%s\nwant exactly 3", got)
	}
}

var (
	// inlineCode is a code span; what it holds is not a link.
	inlineCode = regexp.MustCompile("`[^`]*`")
	// linkTarget is the target of an inline link or image, without its title.
	linkTarget = regexp.MustCompile(`\]\(([^)\s]*)(?:\s+"[^"]*")?\)`)
	// linkText is a link, to keep only its text in a heading.
	linkText = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// brokenLinks lists, as "file:line: target (why)", every relative link of
// files (slash paths from root) whose file or heading does not exist.
func brokenLinks(root string, files []string) []string {
	var problems []string
	anchorsOf := map[string][]string{}
	for _, src := range files {
		text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(src)))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", src, err))
			continue
		}
		for _, l := range proseLines(text) {
			for _, m := range linkTarget.FindAllStringSubmatch(inlineCode.ReplaceAllString(l.text, ""), -1) {
				target := m[1]
				if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				broken := func(why string) {
					problems = append(problems, fmt.Sprintf("%s:%d: %s (%s)", src, l.n, target, why))
				}
				dest := src
				ref, anchor, _ := strings.Cut(target, "#")
				if ref != "" {
					dest = path.Join(path.Dir(src), ref)
					if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dest))); err != nil {
						broken("no such file")
						continue
					}
				}
				if anchor == "" || !strings.HasSuffix(dest, ".md") {
					continue
				}
				anchors, ok := anchorsOf[dest]
				if !ok {
					text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(dest)))
					if err != nil {
						broken(err.Error())
						continue
					}
					anchors = headingAnchors(text)
					anchorsOf[dest] = anchors
				}
				if !slices.Contains(anchors, anchor) {
					broken("no such heading in " + dest)
				}
			}
		}
	}
	return problems
}

// line is one line of a Markdown file, numbered from 1.
type line struct {
	n    int
	text string
}

// proseLines are the lines of text that are not fenced code.
func proseLines(text []byte) []line {
	var lines []line
	inFence := false
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		if strings.HasPrefix(strings.TrimSpace(sc.Text()), "```") {
			inFence = !inFence
			continue
		}
		if !inFence {
			lines = append(lines, line{n, sc.Text()})
		}
	}
	return lines
}

// headingAnchors are the anchors GitHub gives the headings of a Markdown
// file, in order: the heading's text in lower case, spaces made hyphens,
// punctuation but hyphens and underscores dropped, and "-1", "-2", ... after
// a repeated one.
func headingAnchors(text []byte) []string {
	var anchors []string
	seen := map[string]int{}
	for _, l := range proseLines(text) {
		h := strings.TrimLeft(l.text, "#")
		if len(h) == len(l.text) || len(l.text)-len(h) > 6 || !strings.HasPrefix(h, " ") {
			continue
		}
		a := headingAnchor(h)
		if n := seen[a]; n > 0 {
			seen[a]++
			a = fmt.Sprintf("%s-%d", a, n)
		} else {
			seen[a] = 1
		}
		anchors = append(anchors, a)
	}
	return anchors
}

// headingAnchor is the anchor of one heading's text, before deduplication.
func headingAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(linkText.ReplaceAllString(heading, "$1"))) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// testName is a test, fuzz target or benchmark named in backticks.
var testName = regexp.MustCompile("`((?:Test|Fuzz|Benchmark)[A-Z][A-Za-z0-9_]*)`")

// testFunc declares a test, fuzz target or benchmark.
var testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Z][A-Za-z0-9_]*)\(`)

// Every test the README and docs/ name (an invariant's proof, a way to
// refresh screenshots) is declared somewhere, so that renaming or deleting a
// test cannot leave the docs citing a proof that is gone.
func TestDocsNameRealTests(t *testing.T) {
	root := launch.Path(t)
	declared := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range testFunc.FindAllSubmatch(src, -1) {
			declared[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !declared["TestDocsNameRealTests"] {
		t.Fatalf("found %d test functions under %s, not this one: the walk is wrong", len(declared), root)
	}
	for _, file := range docFiles(t, root) {
		text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range proseLines(text) {
			for _, m := range testName.FindAllStringSubmatch(l.text, -1) {
				if !declared[m[1]] {
					t.Errorf("%s:%d names %s, which no _test.go declares", file, l.n, m[1])
				}
			}
		}
	}
}

func TestHeadingAnchors(t *testing.T) {
	text := "# diditflow — design\n\n## A real cluster: `make cluster`\n\n```\n# not a heading\n```\n" +
		"## Flags: what needs a person\n### Flags: what needs a person\n####### seven\n#hashtag\n" +
		"## [PRIVACY.md](PRIVACY.md) and `snake_case`\n"
	got := headingAnchors([]byte(text))
	want := []string{"diditflow--design", "a-real-cluster-make-cluster", "flags-what-needs-a-person",
		"flags-what-needs-a-person-1", "privacymd-and-snake_case"}
	if !slices.Equal(got, want) {
		t.Errorf("headingAnchors = %q, want %q", got, want)
	}
}
