package didit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
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

// hostileShapes are bodies of about n bytes built to make the canonical form
// as costly as JSON allows: the most values, the longest numbers, the most
// members to put in order, names to decode, the deepest nesting.
func hostileShapes(n int) map[string][]byte {
	object := func(member func(i int) string) []byte {
		b := []byte{'{'}
		for i := 0; len(b) < n-32; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, member(i)...)
		}
		return append(b, '}')
	}
	nested := strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1)
	return map[string][]byte{
		"huge floats":    hostileBody("1e308", n),
		"tiny values":    hostileBody("1", n),
		"empty objects":  hostileBody("{}", n),
		"deep arrays":    hostileBody(nested, n),
		"escaped string": hostileBody(`"`+strings.Repeat(`\u00e9`, 1000)+`"`, n),
		"members in reverse order": object(func(i int) string {
			return `"` + strconv.FormatInt(int64(1<<40-i), 36) + `":0`
		}),
		"escaped names in reverse order": object(func(i int) string {
			return `"\u0041` + strconv.FormatInt(int64(1<<40-i), 36) + `":0`
		}),
		"one name repeated":         object(func(int) string { return `"":0` }),
		"long mantissas":            hostileBody("1"+strings.Repeat("0", 56)+"5e-400", n),
		"floats past 2^53":          hostileBody("9007199254740993.0", n),
		"names alternating":         object(func(i int) string { return `"` + string(rune('a'+i%2)) + `":0` }),
		"deep objects out of order": hostileBody(strings.Repeat(`{"b":0,"a":`, MaxDepth-2)+"0"+strings.Repeat("}", MaxDepth-2), n),
	}
}

// TestCanonicalCostsMemoryInProportion: whatever an unauthenticated body
// holds, building its canonical form (which X-Signature-V2 needs before any
// MAC is checked) allocates a small multiple of its size, from a cold pool.
func TestCanonicalCostsMemoryInProportion(t *testing.T) {
	const n = 1 << 20
	const most = 5 // bytes allocated per byte of body, at most (3.84 measured)
	forged := strings.Repeat("0", 64)
	v := fixtureVerifier()
	for name, body := range hostileShapes(n) {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := v.Verify(body, Headers{SignatureV2: forged, Timestamp: "1767225600"})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrSignatureMismatch) {
				t.Fatalf("forged delivery: %v, want ErrSignatureMismatch", err)
			}
			got := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes: %d allocated (%.2fx)", len(body), got, float64(got)/float64(len(body)))
			if got > most*uint64(len(body)) {
				t.Errorf("refusing %d bytes allocated %d, more than %dx", len(body), got, most)
			}
		})
	}
}

// TestCanonicalLimit: a body whose canonical form would pass CanonicalLimit
// is refused at the first number past it, while the numbers Didit really
// sends, and a re-encoding that writes some whole numbers in exponent form,
// are untouched.
func TestCanonicalLimit(t *testing.T) {
	huge := hostileBody("1e308", 64<<10)
	if _, err := Canonical(huge); !errors.Is(err, ErrInvalidJSON) || !strings.Contains(err.Error(), "canonical form longer than") {
		t.Fatalf("64 KiB of 1e308: %v, want the limit's error", err)
	}
	honest := map[string]string{
		`{"metadata":{"id":9007199254740993},"score":86.0,"risk":0.0001,"big":1e23}`:            `{"big":99999999999999991611392,"metadata":{"id":9007199254740993},"risk":0.0001,"score":86}`,
		`{"x":-2.2250738585072014e-308,"y":12345678901234567890123456789012345678901234567890}`: `{"x":-2.2250738585072014e-308,"y":12345678901234567890123456789012345678901234567890}`,
	}
	for in, want := range honest {
		if got, err := Canonical([]byte(in)); err != nil || string(got) != want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := Canonical([]byte(`[1.` + strings.Repeat("0", 70) + `1]`)); !errors.Is(err, ErrInvalidJSON) {
		t.Errorf("a float of 73 characters: %v, want ErrInvalidJSON", err)
	}
	// A re-encoding proxy that prints every whole float of a real delivery
	// in exponent form still fits.
	body := readFixture(t, "status-updated-declined-aml-hit.json")
	reencoded := regexp.MustCompile(`:(\d)(\d{2,})([,}])`).ReplaceAllFunc(body, func(m []byte) []byte {
		digits := regexp.MustCompile(`\d+`).Find(m)
		f, _ := strconv.ParseFloat(string(digits), 64)
		return []byte(":" + strconv.FormatFloat(f, 'e', -1, 64) + string(m[len(m)-1]))
	})
	want, err := Canonical(body)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Canonical(reencoded); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("re-encoded with exponents: %v; same canonical form: %v", err, bytes.Equal(got, want))
	}
}
