package didit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type canonicalVector struct {
	Name      string `json:"name"`
	Input     string `json:"input"`
	Canonical string `json:"canonical"`
	Wire      string `json:"wire"`
}

// loadVectors reads the vectors Python's json module produced
// (testdata/canonical/gen_vectors.py).
func loadVectors(t testing.TB) []canonicalVector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "canonical", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []canonicalVector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	return file.Vectors
}

func TestCanonicalMatchesPython(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			got, err := Canonical([]byte(v.Input))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != v.Canonical {
				t.Errorf("Canonical\n got %q\nwant %q", got, v.Canonical)
			}
			wire, err := Wire([]byte(v.Input))
			if err != nil {
				t.Fatal(err)
			}
			if string(wire) != v.Wire {
				t.Errorf("Wire\n got %q\nwant %q", wire, v.Wire)
			}
		})
	}
}

// TestCanonicalSpecExamples pins the cases SPEC §1.4 spells out, so the
// rules stay visible here even if the vectors file is regenerated.
func TestCanonicalSpecExamples(t *testing.T) {
	cases := map[string]string{
		`{"x":1e-05}`:                `{"x":1e-05}`,
		`{"x":1.5e-07}`:              `{"x":1.5e-07}`,
		`{"x":0.1}`:                  `{"x":0.1}`,
		`{"x":12345678.9}`:           `{"x":12345678.9}`,
		`{"x":1e16}`:                 `{"x":10000000000000000}`,
		`{"x":-0.0}`:                 `{"x":0}`,
		`{"x":100.0}`:                `{"x":100}`,
		`{"x":1e23}`:                 `{"x":99999999999999991611392}`,
		`{"x":18446744073709551617}`: `{"x":18446744073709551617}`,
		`{"u":"a?b=1&c=<d>"}`:        `{"u":"a?b=1&c=<d>"}`,
		`{"s":"a\/b"}`:               `{"s":"a/b"}`,
		`{"s":"\u2028\u2029"}`:       "{\"s\":\"\u2028\u2029\"}",
		`{"s":"\u0001\u001f\u007f"}`: "{\"s\":\"\\u0001\\u001f\u007f\"}",
		`{"s":"\ud83c\uddef"}`:       "{\"s\":\"\U0001F1EF\"}",
		`{"b":{"d":1,"c":[{"f":1,"e":2}]},"a":{}}`: `{"a":{},"b":{"c":[{"e":2,"f":1}],"d":1}}`,
		` [ ] `: `[]`,
	}
	for in, want := range cases {
		got, err := Canonical([]byte(in))
		if err != nil {
			t.Errorf("Canonical(%s): %v", in, err)
			continue
		}
		if string(got) != want {
			t.Errorf("Canonical(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestCanonicalRejects(t *testing.T) {
	cases := map[string]string{
		"empty":                 ``,
		"invalid UTF-8":         "{\"s\":\"\xff\"}",
		"truncated UTF-8":       "{\"s\":\"\xe2\x82\"}",
		"lone high surrogate":   `{"s":"\ud83c"}`,
		"high then not low":     `{"s":"\ud83c\u0041"}`,
		"lone low surrogate":    `{"s":"\udc00"}`,
		"raw control character": "{\"s\":\"a\nb\"}",
		"bad escape":            `{"s":"\x41"}`,
		"short unicode escape":  `{"s":"\u12"}`,
		"leading zero":          `{"x":01}`,
		"bare dot":              `{"x":1.}`,
		"bare exponent":         `{"x":1e}`,
		"plus sign":             `{"x":+1}`,
		"NaN":                   `{"x":NaN}`,
		"Infinity":              `{"x":Infinity}`,
		"float overflow":        `{"x":1e400}`,
		"trailing comma":        `{"a":1,}`,
		"trailing data":         `{"a":1} {}`,
		"missing colon":         `{"a" 1}`,
		"unquoted key":          `{a:1}`,
		"single quotes":         `{'a':1}`,
		"unterminated string":   `{"a":"b`,
		"unterminated object":   `{"a":1`,
		"too deep":              strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
		"100000 deep":           strings.Repeat("[", 100000),
	}
	for name, in := range cases {
		if got, err := Canonical([]byte(in)); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("%s: Canonical = %q, %v; want ErrInvalidJSON", name, got, err)
		}
	}
	deepest := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if _, err := Canonical([]byte(deepest)); err != nil {
		t.Errorf("nesting of exactly MaxDepth: %v", err)
	}
}

func TestCanonicalIsFixedPoint(t *testing.T) {
	for _, v := range loadVectors(t) {
		once, err := Canonical([]byte(v.Input))
		if err != nil {
			t.Fatal(err)
		}
		twice, err := Canonical(once)
		if err != nil || !bytes.Equal(once, twice) {
			t.Errorf("%s: Canonical(Canonical(x)) = %q, %v; want %q", v.Name, twice, err, once)
		}
	}
}
