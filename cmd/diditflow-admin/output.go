package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// outcome is what a step did and what the operator does next: the
// command's whole output on stdout.
type outcome struct {
	Summary string `json:"summary"`
	// Secret is the new secret; the one place it is ever shown.
	Secret string `json:"secret,omitempty"`
	// SecretTitle introduces Secret in the text output.
	SecretTitle string `json:"-"`
	// Destination is the new destination's UUID (destination step 1).
	Destination string   `json:"destination_uuid,omitempty"`
	Notes       []string `json:"notes,omitempty"`
	Steps       []step   `json:"next_steps"`
}

// step is one thing left for the operator to do.
type step struct {
	Do      string `json:"do"`
	Command string `json:"command,omitempty"`
	Why     string `json:"why,omitempty"`
}

// textWidth is where prose is wrapped; commands and the secret never are.
const textWidth = 78

func (o outcome) writeText(w io.Writer) error {
	b := bufio.NewWriter(w)
	writeWrapped(b, o.Summary, "", "")
	if o.Secret != "" {
		b.WriteString("\n")
		writeWrapped(b, o.SecretTitle, "", "")
		fmt.Fprintf(b, "\n    %s\n", o.Secret)
	}
	for _, n := range o.Notes {
		b.WriteString("\n")
		writeWrapped(b, n, "", "")
	}
	if len(o.Steps) > 0 {
		b.WriteString("\nNext steps:\n")
	}
	for i, s := range o.Steps {
		b.WriteString("\n")
		writeWrapped(b, s.Do, fmt.Sprintf("  %d. ", i+1), "     ")
		if s.Command != "" {
			fmt.Fprintf(b, "\n       %s\n", s.Command)
		}
		if s.Why != "" {
			b.WriteString("\n")
			writeWrapped(b, s.Why, "     ", "     ")
		}
	}
	return b.Flush()
}

func (o outcome) writeJSON(w io.Writer) error {
	if o.Steps == nil {
		o.Steps = []step{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(o)
}

// writeWrapped writes text wrapped at textWidth, its first line after
// first and the others after indent.
func writeWrapped(b *bufio.Writer, text, first, indent string) {
	line, prefix := "", first
	for _, word := range strings.Fields(text) {
		if line != "" && len(prefix)+len(line)+1+len(word) > textWidth {
			b.WriteString(prefix + line + "\n")
			line, prefix = "", indent
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	b.WriteString(prefix + line + "\n")
}
