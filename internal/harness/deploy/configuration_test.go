package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

// configurationDoc is the page that documents every setting, relative to the
// repository root.
var configurationDoc = filepath.Join("docs", "CONFIGURATION.md")

// docRow is one row of a table of the configuration page.
type docRow struct {
	line       int      // in configurationDoc
	names      []string // the variables of the first cell
	def        string   // the default cell, backticks removed
	hasDefault bool     // false for "—" or "— (required)"
}

// docTable is one table of that page.
type docTable struct {
	line int
	rows []docRow
}

var backticked = regexp.MustCompile("`([^`]*)`")

// configurationTables parses every table of the configuration page: rows
// "| `NAME` | `default` | meaning |", a default of "—" or "— (required)"
// meaning none. A table of any other shape is an error, so that no setting
// hides from the check in a table it does not read.
func configurationTables(t *testing.T, doc []byte) []docTable {
	t.Helper()
	var tables []docTable
	inTable, inFence := false, false
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		cells := splitRow(line)
		if !inTable {
			// The header row starts a table.
			inTable = true
			if len(cells) < 2 || cells[0] != "variable" || cells[1] != "default" {
				t.Fatalf("%s:%d: a table must start with | variable | default | meaning |, got %q", configurationDoc, n, line)
			}
			tables = append(tables, docTable{line: n})
			continue
		}
		if strings.Trim(line, "|-: ") == "" {
			continue // the separator row
		}
		if len(cells) < 3 {
			t.Fatalf("%s:%d: want | variable | default | meaning |, got %q", configurationDoc, n, line)
		}
		row := docRow{line: n}
		for _, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
			row.names = append(row.names, m[1])
		}
		if len(row.names) == 0 {
			t.Fatalf("%s:%d: no `VARIABLE` in %q", configurationDoc, n, cells[0])
		}
		switch d := cells[1]; {
		case d == "—" || d == "— (required)":
		case len(d) >= 2 && strings.HasPrefix(d, "`") && strings.HasSuffix(d, "`") && strings.Count(d, "`") == 2:
			row.def, row.hasDefault = d[1:len(d)-1], true
		default:
			t.Fatalf("%s:%d: the default %q is neither `value` nor — (none)", configurationDoc, n, d)
		}
		tables[len(tables)-1].rows = append(tables[len(tables)-1].rows, row)
	}
	if len(tables) == 0 {
		t.Fatalf("%s has no table of settings", configurationDoc)
	}
	return tables
}

// splitRow splits a Markdown table row on its unescaped pipes.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cell.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

// The configuration page's tables are the envconfig tags of
// config.Receiver, config.Worker and config.CodecServer: every variable
// documented, nothing documented that is not read, and each default exactly
// the default tag. The table of the Temporal connection is Temporal's
// (go.temporal.io/sdk/contrib/envconfig): it is only required to be there.
func TestConfigurationDocIsTheCode(t *testing.T) {
	doc, err := os.ReadFile(launch.Path(t, configurationDoc))
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range checkConfiguration(t, doc) {
		t.Error(problem)
	}
}

// checkConfiguration lists where the configuration page's tables and the
// code disagree.
func checkConfiguration(t *testing.T, doc []byte) []string {
	t.Helper()
	tables := configurationTables(t, doc)
	var problems []string
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	var ours []docRow
	var temporalTable *docTable
	for i, tab := range tables {
		if slices.ContainsFunc(tab.rows, func(r docRow) bool { return slices.Contains(r.names, "TEMPORAL_ADDRESS") }) {
			temporalTable = &tables[i]
			continue
		}
		ours = append(ours, tab.rows...)
	}
	if temporalTable == nil {
		return append(problems, configurationDoc+": no table of the Temporal connection (TEMPORAL_ADDRESS, ...)")
	}
	var temporalDocumented []string
	for _, r := range temporalTable.rows {
		temporalDocumented = append(temporalDocumented, r.names...)
	}
	for _, name := range temporalVars {
		if !slices.Contains(temporalDocumented, name) {
			errorf("%s:%d: the Temporal connection table does not list %s", configurationDoc, temporalTable.line, name)
		}
	}
	if len(ours) == 0 {
		return append(problems, configurationDoc+": no table of diditflow's settings")
	}

	// Every variable the code reads, with the default tag of each struct
	// that reads it (TEMPORAL_TASK_QUEUE and LOG_* are in both).
	type source struct {
		structName string
		v          config.Var
	}
	code := map[string][]source{}
	for _, c := range []any{config.Receiver{}, config.Worker{}, config.CodecServer{}} {
		for _, v := range config.Vars(c) {
			code[v.Name] = append(code[v.Name], source{fmt.Sprintf("%T", c), v})
		}
	}

	documented := map[string]bool{}
	for _, r := range ours {
		for _, name := range r.names {
			documented[name] = true
			sources, ok := code[name]
			if !ok {
				errorf("%s:%d documents %s, which none of config.Receiver, config.Worker and config.CodecServer reads", configurationDoc, r.line, name)
				continue
			}
			for _, s := range sources {
				switch {
				case !s.v.HasDefault && r.hasDefault:
					errorf("%s:%d: %s has default `%s`, but %s has no default tag (write —)", configurationDoc, r.line, name, r.def, s.structName)
				case s.v.HasDefault && !r.hasDefault:
					errorf("%s:%d: %s has no default (—), but %s has default:%q", configurationDoc, r.line, name, s.structName, s.v.Default)
				case s.v.Default != r.def:
					errorf("%s:%d: %s has default `%s`, but %s has default:%q", configurationDoc, r.line, name, r.def, s.structName, s.v.Default)
				}
			}
		}
	}
	var missing []string
	for name, sources := range code {
		if !documented[name] {
			missing = append(missing, fmt.Sprintf("%s (%s)", name, sources[0].structName))
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		errorf("%s's tables do not document %s", configurationDoc, strings.Join(missing, ", "))
	}
	return problems
}

// The check catches a wrong default, an undocumented variable and a
// documented one nothing reads.
func TestConfigurationCheckCatchesDrift(t *testing.T) {
	doc, err := os.ReadFile(launch.Path(t, configurationDoc))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `HTTP_ADDR` \\| `[^`]*` \\|")
	if !row.Match(doc) {
		t.Fatalf("%s has no HTTP_ADDR row with a default", configurationDoc)
	}
	drifted := row.ReplaceAll(doc, []byte("| `HTTP_ADDR` | `:1` |"))
	drifted = regexp.MustCompile("(?m)^\\| `SIGNAL_TIMEOUT` \\|.*\n").ReplaceAll(drifted, nil)
	drifted = regexp.MustCompile("(?m)^(\\| `MAX_BODY_BYTES` \\|.*\n)").ReplaceAll(drifted, []byte("$1| `NO_SUCH_SETTING` | — | nothing |\n"))
	got := strings.Join(checkConfiguration(t, drifted), "\n")
	for _, want := range []string{"HTTP_ADDR has default `:1`", "do not document SIGNAL_TIMEOUT", "documents NO_SUCH_SETTING"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems found:\n%s\nwant one with %q", got, want)
		}
	}
}

func TestSplitRow(t *testing.T) {
	got := splitRow("| `SMTP_URL` | — | `?starttls=required\\|off` or `smtps://` |")
	want := []string{"`SMTP_URL`", "—", "`?starttls=required|off` or `smtps://`"}
	if !slices.Equal(got, want) {
		t.Fatalf("splitRow = %q, want %q", got, want)
	}
}
