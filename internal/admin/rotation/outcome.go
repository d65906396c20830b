package rotation

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/diditflow/diditflow/internal/admin"
)

// Outcome is what a step did and what the operator does next: the
// command's whole output.
type Outcome struct {
	Summary string `json:"summary"`
	// Secret is the new secret; the one place it is ever shown.
	Secret string `json:"secret,omitempty"`
	// SecretTitle introduces Secret in the text output.
	SecretTitle string `json:"-"`
	// Destination is the new destination's UUID (destination step 1).
	Destination string   `json:"destination_uuid,omitempty"`
	Notes       []string `json:"notes,omitempty"`
	Steps       []Step   `json:"next_steps"`
}

// Step is one thing left for the operator to do.
type Step struct {
	Do      string `json:"do"`
	Command string `json:"command,omitempty"`
	Why     string `json:"why,omitempty"`
}

// WriteText writes the outcome for a person: prose wrapped, commands and
// the secret on lines of their own.
func (o Outcome) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	admin.WriteWrapped(b, o.Summary, "", "")
	if o.Secret != "" {
		b.WriteString("\n")
		admin.WriteWrapped(b, o.SecretTitle, "", "")
		fmt.Fprintf(b, "\n    %s\n", o.Secret)
	}
	for _, n := range o.Notes {
		b.WriteString("\n")
		admin.WriteWrapped(b, n, "", "")
	}
	if len(o.Steps) > 0 {
		b.WriteString("\nNext steps:\n")
	}
	for i, s := range o.Steps {
		b.WriteString("\n")
		admin.WriteWrapped(b, s.Do, fmt.Sprintf("  %d. ", i+1), "     ")
		if s.Command != "" {
			fmt.Fprintf(b, "\n       %s\n", s.Command)
		}
		if s.Why != "" {
			b.WriteString("\n")
			admin.WriteWrapped(b, s.Why, "     ", "     ")
		}
	}
	return b.Flush()
}

// WriteJSON writes the outcome as one JSON object (the secret in "secret").
func (o Outcome) WriteJSON(w io.Writer) error {
	if o.Steps == nil {
		o.Steps = []Step{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(o)
}
