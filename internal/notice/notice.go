// Package notice writes the notices diditflow mails to verified users: one
// text/template per notice, embedded in the binary, each replaceable by a
// file of the same name in an override directory (NOTICE_TEMPLATES).
//
// A template renders the whole message, its subject line first, an empty
// line, then the text:
//
//	Subject: Your identity verification is approved
//
//	Good news: your identity verification is complete and approved.
//
// Load parses every template and renders it with sample variables when the
// worker starts, so a broken override stops the worker, naming its file,
// instead of failing the notices it would have written.
//
// The notices are plain text only. An HTML part would need a second template
// per notice kept in step with the first, multipart MIME and contextual
// escaping, and invites remote images, which tell a third party when a user
// opens their KYC mail. A business that wants its own mail, HTML or not,
// sets USER_NOTICES=off and mails its users from its own workflows.
package notice

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/template"
	"unicode/utf8"

	"github.com/diditflow/diditflow/didit"
)

// Ext ends the name of every template file: approved.tmpl, ...
const Ext = ".tmpl"

// Names are the notices, each the name of its template file without Ext.
var Names = []string{"approved", "declined", "in_review", "resubmitted", "kyc_expired"}

// statuses are the statuses that call for each notice.
var statuses = map[string]didit.Status{
	"approved":    didit.StatusApproved,
	"declined":    didit.StatusDeclined,
	"in_review":   didit.StatusInReview,
	"resubmitted": didit.StatusResubmitted,
	"kyc_expired": didit.StatusKycExpired,
}

// Vars are what a template may use, and all it may use: nothing in them
// names the user, whose address is only the message's recipient.
type Vars struct {
	// Notice is the notice's name: approved, declined, in_review,
	// resubmitted or kyc_expired.
	Notice string
	// Status is the session's status that called for the notice, as Didit
	// writes it: Approved, Declined, In Review, Resubmitted, Kyc Expired.
	Status string
	// SessionID is Didit's session ID: a reference the user can quote to
	// support. It is no secret and says nothing about the user.
	SessionID string
	// Redo lists the steps to do again, for resubmitted: empty for the
	// other notices, and when Didit named none.
	Redo []Step
}

// Step is one verification step the user must do again.
type Step struct {
	// Name is the step in words a user understands ("your identity
	// document"); a step diditflow does not know is its Code.
	Name string
	// Code is the step as Didit named it: a feature (OCR, LIVENESS, ...)
	// or a node of the Didit workflow, for a template that words the steps
	// itself (in another language, say).
	Code string
}

// NewVars returns the variables of a notice of the given session; redo is
// the steps to do again as Didit named them.
func NewVars(name, sessionID string, redo []string) Vars {
	v := Vars{Notice: name, Status: string(statuses[name]), SessionID: sessionID}
	for _, code := range redo {
		v.Redo = append(v.Redo, Step{Name: stepName(code), Code: code})
	}
	return v
}

// stepNames word the steps Didit names, by a part of their code.
var stepNames = []struct{ key, name string }{
	{"ocr", "your identity document"}, {"id_verification", "your identity document"},
	{"liveness", "the selfie (liveness) check"}, {"face", "the face match"},
	{"poa", "your proof of address"}, {"proof_of_address", "your proof of address"},
	{"phone", "your phone number"}, {"email", "your email address"},
	{"nfc", "the NFC chip scan of your document"}, {"questionnaire", "the questionnaire"},
}

// stepName turns Didit's node ids and feature names into words a user
// understands; anything unrecognised is shown as it is.
func stepName(code string) string {
	s := strings.ToLower(code)
	for _, n := range stepNames {
		if strings.Contains(s, n.key) {
			return n.name
		}
	}
	return code
}

// Sample returns the variables of a typical notice of the given name, as
// the previews and the golden texts show it.
func Sample(name string) Vars {
	var redo []string
	if name == "resubmitted" {
		redo = []string{"OCR", "LIVENESS", "custom_node_7"}
	}
	return NewVars(name, "5f1c0a9e-8f4b-4c2d-9a51-3e7d2b6c8a10", redo)
}

// samples are the variables every template is rendered with at load: no
// step to redo, and every step diditflow words plus one it does not, so a
// branch on any of them runs before the first notice needs it.
func samples(name string) []Vars {
	all := make([]string, 0, len(stepNames)+1)
	for _, n := range stepNames {
		all = append(all, strings.ToUpper(n.key))
	}
	all = append(all, "custom_node_7")
	return []Vars{NewVars(name, Sample(name).SessionID, nil), NewVars(name, Sample(name).SessionID, all)}
}

// Templates are the notices' templates: the embedded ones, each replaced by
// the override directory's file of the same name.
type Templates struct {
	byName map[string]*template.Template
	// files are the override files in use, by notice name.
	files map[string]string
}

//go:embed templates/*.tmpl
var embedded embed.FS

// Embedded returns the templates built into the binary.
var Embedded = sync.OnceValue(func() *Templates {
	t, err := Load("")
	if err != nil {
		// A test renders every embedded template: this cannot ship.
		panic(err)
	}
	return t
})

// Load parses the embedded templates and the override directory dir's
// (none when dir is empty), and renders each with sample variables. A file
// of dir named after a notice (approved.tmpl) replaces its embedded
// template; a missing one leaves it. Another file ending in Ext names no
// notice, which is refused, since a misspelt name would otherwise leave the
// embedded text in place unnoticed; other files and dot-files (a Kubernetes
// ConfigMap's ..data) are ignored. The error of a broken template names its
// file.
func Load(dir string) (*Templates, error) {
	t := &Templates{byName: map[string]*template.Template{}, files: map[string]string{}}
	for _, name := range Names {
		src, err := embedded.ReadFile("templates/" + name + Ext)
		if err != nil {
			return nil, err
		}
		if t.byName[name], err = parse(name, src); err != nil {
			return nil, fmt.Errorf("embedded notice template %s%s: %w", name, Ext, err)
		}
	}
	if dir == "" {
		return t, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("NOTICE_TEMPLATES: %w", err)
	}
	for _, e := range entries {
		file := e.Name()
		if strings.HasPrefix(file, ".") || e.IsDir() || !strings.HasSuffix(file, Ext) {
			continue
		}
		path := filepath.Join(dir, file)
		name := strings.TrimSuffix(file, Ext)
		if !slices.Contains(Names, name) {
			return nil, fmt.Errorf("NOTICE_TEMPLATES: %s: no notice is called %q (the notices: %s%s)",
				path, name, strings.Join(Names, Ext+", "), Ext)
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("NOTICE_TEMPLATES: %w", err)
		}
		if t.byName[name], err = parse(name, src); err != nil {
			return nil, fmt.Errorf("NOTICE_TEMPLATES: %s: %w", path, err)
		}
		t.files[name] = path
	}
	return t, nil
}

// parse parses a template and renders it with every sample, so what can be
// found wrong before a notice is sent is found now: syntax, a variable Vars
// lacks, a message without a subject or a text.
func parse(name string, src []byte) (*template.Template, error) {
	if !utf8.Valid(src) {
		return nil, errors.New("not UTF-8 text")
	}
	// A template saved with CRLF line ends writes the same message.
	text := strings.ReplaceAll(string(src), "\r\n", "\n")
	tmpl, err := template.New(name + Ext).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	for _, v := range samples(name) {
		if _, _, err := render(tmpl, v); err != nil {
			return nil, err
		}
	}
	return tmpl, nil
}

// Render writes the notice v.Notice with the variables v: its subject and
// its text, which ends in one newline.
func (t *Templates) Render(v Vars) (subject, text string, err error) {
	tmpl, ok := t.byName[v.Notice]
	if !ok {
		return "", "", fmt.Errorf("no notice is called %q", v.Notice)
	}
	subject, text, err = render(tmpl, v)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", t.Source(v.Notice), err)
	}
	return subject, text, nil
}

func render(tmpl *template.Template, v Vars) (subject, text string, err error) {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, v); err != nil {
		return "", "", err
	}
	// Leading blank lines let a template open with a comment.
	head, rest, _ := strings.Cut(strings.TrimLeft(b.String(), " \t\n"), "\n")
	if len(head) < len("Subject:") || !strings.EqualFold(head[:len("Subject:")], "Subject:") {
		return "", "", fmt.Errorf(`%s: the message must start with a line "Subject: ...", got %q`, tmpl.Name(), head)
	}
	subject = strings.TrimSpace(head[len("Subject:"):])
	if subject == "" {
		return "", "", fmt.Errorf("%s: the subject is empty", tmpl.Name())
	}
	blank, text, _ := strings.Cut(rest, "\n")
	if strings.TrimSpace(blank) != "" {
		return "", "", fmt.Errorf("%s: the subject line must be followed by an empty line, got %q", tmpl.Name(), blank)
	}
	text = strings.TrimRight(text, " \t\n")
	if strings.TrimSpace(text) == "" {
		return "", "", fmt.Errorf("%s: the text after the subject is empty", tmpl.Name())
	}
	return subject, text + "\n", nil
}

// Source says where the notice's template comes from: its override file,
// or "embedded".
func (t *Templates) Source(name string) string {
	if f, ok := t.files[name]; ok {
		return f
	}
	return "embedded " + name + Ext
}

// Overridden lists the notices whose template is an override file.
func (t *Templates) Overridden() []string {
	var out []string
	for _, name := range Names {
		if _, ok := t.files[name]; ok {
			out = append(out, name)
		}
	}
	return out
}

// Preview writes every notice rendered with its Sample variables, as a
// business checks its overrides before a worker runs them.
func (t *Templates) Preview(w io.Writer) error {
	for _, name := range Names {
		subject, text, err := t.Render(Sample(name))
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "==> %s (%s)\nSubject: %s\n\n%s\n", name, t.Source(name), subject, text); err != nil {
			return err
		}
	}
	return nil
}
