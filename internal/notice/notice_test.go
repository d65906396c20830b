package notice

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden texts in testdata/")

// message is a rendered notice as the golden files hold it.
func message(t *testing.T, tmpl *Templates, v Vars) string {
	t.Helper()
	subject, text, err := tmpl.Render(v)
	if err != nil {
		t.Fatal(err)
	}
	return "Subject: " + subject + "\n\n" + text
}

// Every embedded notice renders with the documented variables to the text
// checked in beside this test, which is what users are mailed.
func TestEmbeddedNoticesMatchTheirGoldenText(t *testing.T) {
	cases := map[string]Vars{}
	for _, name := range Names {
		cases[name] = Sample(name)
	}
	// Didit may name no step to redo.
	cases["resubmitted-no-steps"] = NewVars("resubmitted", Sample("resubmitted").SessionID, nil)
	for file, v := range cases {
		t.Run(file, func(t *testing.T) {
			got := message(t, Embedded(), v)
			path := filepath.Join("testdata", file+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s renders\n%s\nwant (%s)\n%s", file, got, path, want)
			}
		})
	}
}

// The variables reach the text: a template that uses each one shows what
// the notice was given.
func TestVariablesReachTheText(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "resubmitted.tmpl", "Subject: {{.Status}} ({{.Notice}})\n\nref {{.SessionID}}:"+
		"{{range .Redo}} {{.Code}}={{.Name}};{{end}}\n")
	tmpl, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	subject, text, err := tmpl.Render(NewVars("resubmitted", "s-1", []string{"feature_OCR", "node_42"}))
	if err != nil {
		t.Fatal(err)
	}
	if subject != "Resubmitted (resubmitted)" || text != "ref s-1: feature_OCR=your identity document; node_42=node_42;\n" {
		t.Fatalf("rendered %q, %q", subject, text)
	}
}

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A file named after a notice replaces that notice's template; the others
// stay embedded, and files that are no template are left alone.
func TestOverrideReplacesOneNotice(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "approved.tmpl", "{{/* ours */}}\r\nSubject: Welcome to Acme\r\n\r\nYou are verified (ref {{.SessionID}}).\r\n\r\n")
	write(t, dir, "README.md", "not a template")
	write(t, dir, ".approved.tmpl.swp", "an editor's")
	// A Kubernetes ConfigMap volume keeps its files in a dot-directory.
	if err := os.Mkdir(filepath.Join(dir, "..data"), 0o755); err != nil {
		t.Fatal(err)
	}
	tmpl, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := message(t, tmpl, NewVars("approved", "s-1", nil)); got != "Subject: Welcome to Acme\n\nYou are verified (ref s-1).\n" {
		t.Fatalf("approved = %q", got)
	}
	if got := tmpl.Overridden(); len(got) != 1 || got[0] != "approved" || tmpl.Source("approved") != path {
		t.Fatalf("overridden %v from %q", got, tmpl.Source("approved"))
	}
	for _, name := range Names[1:] {
		if got, want := message(t, tmpl, Sample(name)), message(t, Embedded(), Sample(name)); got != want {
			t.Errorf("%s = %q, want the embedded %q", name, got, want)
		}
	}
}

// A broken override is refused when the templates load, with an error that
// names its file and says what is wrong, instead of failing a notice later.
func TestBrokenOverrideFailsToLoad(t *testing.T) {
	for _, c := range []struct {
		name, file, text, want string
	}{
		{"syntax", "declined.tmpl", "Subject: x\n\n{{if .Redo}}unclosed\n", "unexpected EOF"},
		{"unknown variable", "approved.tmpl", "Subject: Hello {{.Email}}\n\nhi\n", "can't evaluate field Email"},
		{"unknown variable in a step branch", "resubmitted.tmpl",
			"Subject: x\n\n{{range .Redo}}{{if eq .Code \"NFC\"}}{{.Document}}{{end}}{{end}}text\n", "can't evaluate field Document"},
		{"unknown function", "in_review.tmpl", "Subject: x\n\n{{upper .Status}}\n", `function "upper" not defined`},
		{"no subject", "kyc_expired.tmpl", "Please verify again.\n", `must start with a line "Subject: ..."`},
		{"empty subject", "kyc_expired.tmpl", "Subject: \n\ntext\n", "the subject is empty"},
		{"no empty line", "kyc_expired.tmpl", "Subject: x\ntext\n", "must be followed by an empty line"},
		{"no text", "kyc_expired.tmpl", "Subject: x\n\n{{if .Redo}}{{end}}\n", "the text after the subject is empty"},
		{"not UTF-8", "approved.tmpl", "Subject: \xff\n\ntext\n", "not UTF-8"},
		{"misspelt notice", "aproved.tmpl", "Subject: x\n\ntext\n", `no notice is called "aproved"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := write(t, dir, c.file, c.text)
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), "NOTICE_TEMPLATES: "+path) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load = %v, want an error naming %s and saying %q", err, path, c.want)
			}
		})
	}
}

// A directory that is not there is a mistake in the deployment, not a
// reason to mail the embedded text.
func TestMissingOverrideDirectoryFailsToLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "notices")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "NOTICE_TEMPLATES") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Load = %v, want an error naming NOTICE_TEMPLATES and %s", err, dir)
	}
}

func TestUnknownNoticeDoesNotRender(t *testing.T) {
	if _, _, err := Embedded().Render(NewVars("welcome", "s-1", nil)); err == nil {
		t.Fatal("a notice that does not exist rendered")
	}
}

// The preview shows every notice, and where its template comes from.
func TestPreviewShowsEveryNotice(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "declined.tmpl", "Subject: Sorry\n\nNo.\n")
	tmpl, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tmpl.Preview(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"==> approved (embedded approved.tmpl)", "==> declined (" + path + ")\nSubject: Sorry\n\nNo.\n",
		"==> kyc_expired (embedded kyc_expired.tmpl)", "  - your identity document\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("preview lacks %q:\n%s", want, out)
		}
	}
}
