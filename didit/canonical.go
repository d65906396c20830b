package didit

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of objects and arrays the serialiser accepts.
// Didit's payloads nest about six levels; Python's own json module gives up
// near 1000, so Didit cannot have signed anything deeper than this.
const MaxDepth = 512

// ErrInvalidJSON is returned for bodies that Python's json.loads would reject
// or that json.dumps could not have produced (invalid UTF-8, lone surrogates,
// non-finite numbers, nesting deeper than MaxDepth).
var ErrInvalidJSON = errors.New("didit: invalid JSON")

// Canonical returns the body in the form X-Signature-V2 signs (SPEC §1.4):
// whole-valued floats shortened to integers, keys sorted at every depth, no
// whitespace, non-ASCII emitted as UTF-8, and only the escapes Python's
// json.dumps(..., ensure_ascii=False) produces.
func Canonical(body []byte) ([]byte, error) {
	return encode(body, false)
}

// Wire returns the body as Didit puts it on the wire and signs it for
// X-Signature: the canonical form with every non-ASCII character escaped as
// \uXXXX (Python's json.dumps default, ensure_ascii=True).
func Wire(body []byte) ([]byte, error) {
	return encode(body, true)
}

func encode(body []byte, asciiOnly bool) ([]byte, error) {
	d := newDocument()
	defer d.release()
	if err := d.parse(body); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(body))
	return d.write(out, 0, asciiOnly), nil
}

// documents are reused: a forged delivery costs a parse and a canonical
// write, and at thousands a second their garbage would cost more than both.
var documents = sync.Pool{New: func() any { return new(document) }}

func newDocument() *document { return documents.Get().(*document) }

// release returns d to the pool; nothing parsed from it may be used after.
func (d *document) release() {
	if cap(d.nodes) > 1<<16 {
		return // a rare huge body: let it go rather than hold its arrays
	}
	clear(d.nodes)
	d.nodes, d.kids, d.pending, d.scratch, d.out = d.nodes[:0], d.kids[:0], d.pending[:0], d.scratch[:0], d.out[:0]
	d.src = nil
	documents.Put(d)
}

type kind uint8

const (
	kindNull kind = iota
	kindFalse
	kindTrue
	kindNumber
	kindString
	kindArray
	kindObject
)

// node is one JSON value in a document's arena. Strings hold their decoded
// UTF-8; numbers hold their rendered canonical text; containers point at a
// contiguous run of child indices in document.kids.
type node struct {
	kind  kind
	key   []byte // decoded member name when the node is an object member
	text  []byte
	first int32
	count int32
}

// document is a parsed JSON text: an arena of nodes, root at index 0.
type document struct {
	src     []byte
	pos     int
	nodes   []node
	kids    []int32
	pending []int32 // children of the containers still open, innermost last
	scratch []byte  // decoded strings that needed unescaping
	out     []byte  // reusable output buffer for callers that only hash it
}

func (d *document) parse(src []byte) error {
	d.src, d.pos = src, 0
	if want := len(src)/16 + 1; cap(d.nodes) < want {
		d.nodes = make([]node, 0, want)
	}
	if want := len(src) / 4; cap(d.scratch) < want {
		d.scratch = make([]byte, 0, want)
	}
	d.skipSpace()
	if _, err := d.value(0); err != nil {
		return err
	}
	d.skipSpace()
	if d.pos != len(d.src) {
		return d.errorf("unexpected data after top-level value")
	}
	return nil
}

func (d *document) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrInvalidJSON, d.pos, fmt.Sprintf(format, args...))
}

func (d *document) skipSpace() {
	for d.pos < len(d.src) {
		switch d.src[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// value parses one value and returns its node index.
func (d *document) value(depth int) (int32, error) {
	if d.pos >= len(d.src) {
		return 0, d.errorf("unexpected end of input")
	}
	idx := int32(len(d.nodes))
	d.nodes = append(d.nodes, node{})
	switch c := d.src[d.pos]; {
	case c == '{':
		return idx, d.container(idx, depth, kindObject, '}')
	case c == '[':
		return idx, d.container(idx, depth, kindArray, ']')
	case c == '"':
		s, err := d.string()
		if err != nil {
			return 0, err
		}
		d.nodes[idx] = node{kind: kindString, text: s}
	case c == '-' || (c >= '0' && c <= '9'):
		text, err := d.number()
		if err != nil {
			return 0, err
		}
		d.nodes[idx] = node{kind: kindNumber, text: text}
	case d.literal("true"):
		d.nodes[idx].kind = kindTrue
	case d.literal("false"):
		d.nodes[idx].kind = kindFalse
	case d.literal("null"):
		d.nodes[idx].kind = kindNull
	default:
		return 0, d.errorf("unexpected character %q", c)
	}
	return idx, nil
}

func (d *document) literal(word string) bool {
	if bytes.HasPrefix(d.src[d.pos:], []byte(word)) {
		d.pos += len(word)
		return true
	}
	return false
}

func (d *document) container(idx int32, depth int, k kind, closer byte) error {
	base := len(d.pending)
	err := d.members(depth, closer, func() error {
		var key []byte
		if k == kindObject {
			var err error
			if key, err = d.memberName(); err != nil {
				return err
			}
		}
		child, err := d.value(depth + 1)
		if err != nil {
			return err
		}
		d.nodes[child].key = key
		d.pending = append(d.pending, child)
		return nil
	})
	if err != nil {
		return err
	}
	children := d.pending[base:]
	if k == kindObject {
		children = d.sortMembers(children)
	}
	d.nodes[idx] = node{kind: k, first: int32(len(d.kids)), count: int32(len(children))}
	d.kids = append(d.kids, children...)
	d.pending = d.pending[:base]
	return nil
}

// members walks the items of the container opening at d.pos, calling item
// for each with d.pos at the item (for objects, at the member name).
func (d *document) members(depth int, closer byte, item func() error) error {
	if depth >= MaxDepth {
		return d.errorf("nesting deeper than %d", MaxDepth)
	}
	d.pos++
	d.skipSpace()
	if d.pos < len(d.src) && d.src[d.pos] == closer {
		d.pos++
		return nil
	}
	for {
		if closer == '}' && (d.pos >= len(d.src) || d.src[d.pos] != '"') {
			return d.errorf("expected member name")
		}
		if err := item(); err != nil {
			return err
		}
		d.skipSpace()
		if d.pos >= len(d.src) {
			return d.errorf("unexpected end of input")
		}
		switch d.src[d.pos] {
		case ',':
			d.pos++
			d.skipSpace()
		case closer:
			d.pos++
			return nil
		default:
			return d.errorf("expected ',' or %q", closer)
		}
	}
}

// memberName reads `"name" :` and leaves d.pos at the member's value.
func (d *document) memberName() ([]byte, error) {
	key, err := d.string()
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos >= len(d.src) || d.src[d.pos] != ':' {
		return nil, d.errorf("expected ':' after member name")
	}
	d.pos++
	d.skipSpace()
	return key, nil
}

// sortMembers orders members by name (byte order of UTF-8 is code point
// order, which is what Python's sort_keys uses) and keeps only the last of
// duplicate names, as Python's dict does.
func (d *document) sortMembers(members []int32) []int32 {
	slices.SortStableFunc(members, func(a, b int32) int {
		return bytes.Compare(d.nodes[a].key, d.nodes[b].key)
	})
	out := members[:0]
	for i, m := range members {
		if i+1 < len(members) && bytes.Equal(d.nodes[m].key, d.nodes[members[i+1]].key) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// string parses a JSON string at d.pos and returns its decoded UTF-8 bytes.
// When the string has no escapes the result aliases the source.
func (d *document) string() ([]byte, error) {
	d.pos++ // opening quote
	start := d.pos
	for d.pos < len(d.src) {
		c := d.src[d.pos]
		switch {
		case c == '"':
			s := d.src[start:d.pos]
			d.pos++
			return s, nil
		case c == '\\':
			return d.escapedString(start)
		case c < 0x20:
			return nil, d.errorf("control character in string")
		case c < utf8.RuneSelf:
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.src[d.pos:])
			if r == utf8.RuneError && size == 1 {
				return nil, d.errorf("invalid UTF-8")
			}
			d.pos += size
		}
	}
	return nil, d.errorf("unterminated string")
}

func (d *document) escapedString(start int) ([]byte, error) {
	begin := len(d.scratch)
	d.scratch = append(d.scratch, d.src[start:d.pos]...)
	for d.pos < len(d.src) {
		c := d.src[d.pos]
		switch {
		case c == '"':
			d.pos++
			return d.scratch[begin:len(d.scratch):len(d.scratch)], nil
		case c == '\\':
			if err := d.escape(); err != nil {
				return nil, err
			}
		case c < 0x20:
			return nil, d.errorf("control character in string")
		case c < utf8.RuneSelf:
			d.scratch = append(d.scratch, c)
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.src[d.pos:])
			if r == utf8.RuneError && size == 1 {
				return nil, d.errorf("invalid UTF-8")
			}
			d.scratch = append(d.scratch, d.src[d.pos:d.pos+size]...)
			d.pos += size
		}
	}
	return nil, d.errorf("unterminated string")
}

func (d *document) escape() error {
	if d.pos+1 >= len(d.src) {
		return d.errorf("unterminated escape")
	}
	c := d.src[d.pos+1]
	d.pos += 2
	switch c {
	case '"', '\\', '/':
		d.scratch = append(d.scratch, c)
	case 'b':
		d.scratch = append(d.scratch, '\b')
	case 'f':
		d.scratch = append(d.scratch, '\f')
	case 'n':
		d.scratch = append(d.scratch, '\n')
	case 'r':
		d.scratch = append(d.scratch, '\r')
	case 't':
		d.scratch = append(d.scratch, '\t')
	case 'u':
		r, err := d.hex4()
		if err != nil {
			return err
		}
		if utf16IsHighSurrogate(r) {
			if !bytes.HasPrefix(d.src[d.pos:], []byte(`\u`)) {
				return d.errorf("lone surrogate")
			}
			d.pos += 2
			lo, err := d.hex4()
			if err != nil {
				return err
			}
			if !utf16IsLowSurrogate(lo) {
				return d.errorf("lone surrogate")
			}
			r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
		} else if utf16IsLowSurrogate(r) {
			// Python would decode it, but json.dumps(...).encode("utf-8")
			// cannot encode a lone surrogate, so Didit never signs one.
			return d.errorf("lone surrogate")
		}
		d.scratch = utf8.AppendRune(d.scratch, r)
	default:
		return d.errorf("invalid escape %q", c)
	}
	return nil
}

func (d *document) hex4() (rune, error) {
	if d.pos+4 > len(d.src) {
		return 0, d.errorf("short \\u escape")
	}
	var r rune
	for _, c := range d.src[d.pos : d.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, d.errorf("invalid \\u escape")
		}
	}
	d.pos += 4
	return r, nil
}

func utf16IsHighSurrogate(r rune) bool { return r >= 0xD800 && r < 0xDC00 }
func utf16IsLowSurrogate(r rune) bool  { return r >= 0xDC00 && r < 0xE000 }

// number validates a JSON number at d.pos and returns the text Python would
// print for it after float shortening.
func (d *document) number() ([]byte, error) {
	start := d.pos
	if d.src[d.pos] == '-' {
		d.pos++
	}
	switch {
	case d.pos < len(d.src) && d.src[d.pos] == '0':
		d.pos++
	case d.pos < len(d.src) && d.src[d.pos] >= '1' && d.src[d.pos] <= '9':
		d.digits()
	default:
		return nil, d.errorf("invalid number")
	}
	integer := true
	if d.pos < len(d.src) && d.src[d.pos] == '.' {
		integer = false
		d.pos++
		if d.digits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	if d.pos < len(d.src) && (d.src[d.pos] == 'e' || d.src[d.pos] == 'E') {
		integer = false
		d.pos++
		if d.pos < len(d.src) && (d.src[d.pos] == '+' || d.src[d.pos] == '-') {
			d.pos++
		}
		if d.digits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	lit := d.src[start:d.pos]
	if integer {
		// Python ints are exact at any size; only "-0" prints differently.
		if len(lit) == 2 && lit[0] == '-' && lit[1] == '0' {
			return []byte("0"), nil
		}
		return lit, nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || math.IsInf(f, 0) {
		// Python would read it as inf and print "Infinity", which is not JSON.
		return nil, d.errorf("number out of float64 range")
	}
	// Into the scratch buffer, which only grows while the document lives:
	// earlier slices of it stay valid.
	begin := len(d.scratch)
	d.scratch = appendFloat(d.scratch, f)
	return d.scratch[begin:len(d.scratch):len(d.scratch)], nil
}

func (d *document) digits() int {
	n := 0
	for d.pos < len(d.src) && d.src[d.pos] >= '0' && d.src[d.pos] <= '9' {
		d.pos++
		n++
	}
	return n
}

// appendFloat appends f as Python prints shorten_floats(f): whole values as
// exact integers, others as repr (shortest round-trip digits, exponent form
// below 1e-4; non-integral doubles are always below 1e16).
func appendFloat(dst []byte, f float64) []byte {
	if f == math.Trunc(f) {
		if math.Abs(f) < 1<<53 {
			return strconv.AppendInt(dst, int64(f), 10)
		}
		// Beyond 2^53 Python's int(f) prints the exact binary value.
		return new(big.Float).SetFloat64(f).Append(dst, 'f', 0)
	}
	if math.Abs(f) < 1e-4 {
		return strconv.AppendFloat(dst, f, 'e', -1, 64)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

func (d *document) write(out []byte, idx int32, asciiOnly bool) []byte {
	n := &d.nodes[idx]
	switch n.kind {
	case kindNull:
		return append(out, "null"...)
	case kindFalse:
		return append(out, "false"...)
	case kindTrue:
		return append(out, "true"...)
	case kindNumber:
		return append(out, n.text...)
	case kindString:
		return appendString(out, n.text, asciiOnly)
	}
	open, close := byte('['), byte(']')
	if n.kind == kindObject {
		open, close = '{', '}'
	}
	out = append(out, open)
	for i, child := range d.kids[n.first : n.first+n.count] {
		if i > 0 {
			out = append(out, ',')
		}
		if n.kind == kindObject {
			out = appendString(out, d.nodes[child].key, asciiOnly)
			out = append(out, ':')
		}
		out = d.write(out, child, asciiOnly)
	}
	return append(out, close)
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as Python's json encoder does: the short escapes for
// " \ \n \r \t \b \f, \u00XX for other control characters and, when
// asciiOnly, \uXXXX (surrogate pairs above U+FFFF) for everything past '~'.
// Nothing else is escaped: not '/', '<', '>', '&', U+2028 or U+2029.
func appendString(out, s []byte, asciiOnly bool) []byte {
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && (c < 0x7f || !asciiOnly) {
			i++
			continue
		}
		out = append(out, s[start:i]...)
		size := 1
		switch c {
		case '"':
			out = append(out, '\\', '"')
		case '\\':
			out = append(out, '\\', '\\')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		default:
			var r rune
			r, size = utf8.DecodeRune(s[i:])
			if r > 0xFFFF {
				r -= 0x10000
				out = appendU(out, 0xD800+(r>>10))
				r = 0xDC00 + (r & 0x3FF)
			}
			out = appendU(out, r)
		}
		i += size
		start = i
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}

func appendU(out []byte, r rune) []byte {
	return append(out, '\\', 'u', hexDigits[r>>12&0xF], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
}
