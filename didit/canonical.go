package didit

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
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
// non-finite numbers, nesting deeper than MaxDepth), and for bodies whose
// canonical form would be longer than CanonicalLimit.
var ErrInvalidJSON = errors.New("didit: invalid JSON")

// CanonicalLimit is the longest canonical form accepted for a body of n
// bytes: 2n + 1 KiB. Didit's wire form is its canonical form with non-ASCII
// escaped (SPEC §1.3), never shorter, so a body Didit sent is no longer in
// canonical form; a re-encoding proxy lengthens one only by writing whole
// numbers in exponent form ("1e+21" for 22 digits), which the doubling leaves
// room for. Numbers are the only thing that can grow (whitespace goes,
// strings keep or lose escapes), so serialising stops at the first number
// that would go past the limit: a forged body of huge floats (1e308 prints as
// 309 digits) costs what its size allows, not 60 times that.
func CanonicalLimit(n int) int { return 2*n + 1024 }

// Canonical returns the body in the form X-Signature-V2 signs (SPEC §1.4):
// whole-valued floats shortened to integers, keys sorted at every depth, no
// whitespace, non-ASCII emitted as UTF-8, and only the escapes Python's
// json.dumps(..., ensure_ascii=False) produces. Of duplicate member names
// the last is kept, as Python's dict keeps it.
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
	c := newCanonicalizer()
	defer c.release()
	out, err := c.canonical(body)
	if err != nil {
		return nil, err
	}
	if asciiOnly {
		return escapeNonASCII(out), nil
	}
	return bytes.Clone(out), nil
}

// A canonicalizer writes the canonical form of a JSON text in one pass,
// without building a tree: scalars and arrays are written as they are read,
// and an object's members are written in the order they come and put in
// order (of duplicates, the last kept) when the object closes, which costs
// nothing for a body Didit sent, sorted already. Besides its output it keeps
// where each member of the objects open at once starts, four bytes a member,
// so the memory it takes is a small multiple of the body's size, whatever
// the body holds (TestCanonicalCostsMemoryInProportion).
type canonicalizer struct {
	src []byte
	pos int
	out []byte
	// growth is how much longer than their text the numbers written so far
	// are; allowance is what CanonicalLimit leaves for it.
	growth, allowance int
	// members hold where in out the members of the objects being written
	// start, innermost object last.
	members []int32
	// tmp holds an object's members while they are put in order.
	tmp []byte
	// moved counts the bytes put in order, against maxMoved.
	moved int
}

// maxMoved bounds the bytes c.order moves for a body of n bytes. An object
// is moved when it is put in order, and again with each object around it
// that is, so nesting objects out of order 500 deep would make a body cost
// 500 times its size. Didit's bodies are in order already, and a proxy
// re-encoding one moves each byte once per level of the few that nest.
func maxMoved(n int) int { return 16*n + 64<<10 }

// canonicalizers are reused: refusing a forged delivery takes a canonical
// form, and at thousands a second its garbage would cost more than the work.
var canonicalizers = sync.Pool{New: func() any { return new(canonicalizer) }}

func newCanonicalizer() *canonicalizer { return canonicalizers.Get().(*canonicalizer) }

// pooledBytes bounds what a pooled canonicalizer keeps: the buffers a rare
// large body grew are let go rather than held for ever.
const pooledBytes = 256 << 10

// release returns c to the pool; nothing it returned may be used after.
func (c *canonicalizer) release() {
	c.src = nil
	if cap(c.out)+cap(c.tmp)+4*cap(c.members) > pooledBytes {
		return
	}
	canonicalizers.Put(c)
}

// canonical returns the canonical form of src in a buffer of c's, valid
// until c is used again or released.
func (c *canonicalizer) canonical(src []byte) ([]byte, error) {
	if len(src) > math.MaxInt32/4 {
		return nil, fmt.Errorf("%w: body of %d bytes is too large", ErrInvalidJSON, len(src))
	}
	c.src, c.pos = src, 0
	c.growth, c.allowance, c.moved = 0, CanonicalLimit(len(src))-len(src), 0
	c.out, c.members = c.out[:0], c.members[:0]
	if cap(c.out) < len(src) {
		// The canonical form is rarely longer than the body: one allocation.
		c.out = make([]byte, 0, len(src))
	}
	c.skipSpace()
	if err := c.value(0); err != nil {
		return nil, err
	}
	c.skipSpace()
	if c.pos != len(c.src) {
		return nil, c.errorf("unexpected data after top-level value")
	}
	return c.out, nil
}

func (c *canonicalizer) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrInvalidJSON, c.pos, fmt.Sprintf(format, args...))
}

func (c *canonicalizer) skipSpace() {
	for c.pos < len(c.src) {
		switch c.src[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

// value writes the value at c.pos.
func (c *canonicalizer) value(depth int) error {
	if c.pos >= len(c.src) {
		return c.errorf("unexpected end of input")
	}
	switch ch := c.src[c.pos]; {
	case ch == '{':
		return c.object(depth)
	case ch == '[':
		return c.array(depth)
	case ch == '"':
		return c.quoted()
	case ch == '-' || (ch >= '0' && ch <= '9'):
		return c.number()
	case c.literal("true"), c.literal("false"), c.literal("null"):
		return nil
	default:
		return c.errorf("unexpected character %q", ch)
	}
}

// literal writes word if it is at c.pos.
func (c *canonicalizer) literal(word string) bool {
	if !bytes.HasPrefix(c.src[c.pos:], []byte(word)) {
		return false
	}
	c.pos += len(word)
	c.out = append(c.out, word...)
	return true
}

// open writes the opener of the container at c.pos and reports whether the
// container is empty, in which case its closer is written too.
func (c *canonicalizer) open(depth int, opener, closer byte) (empty bool, err error) {
	if depth >= MaxDepth {
		return false, c.errorf("nesting deeper than %d", MaxDepth)
	}
	c.out = append(c.out, opener)
	c.pos++
	c.skipSpace()
	if c.pos < len(c.src) && c.src[c.pos] == closer {
		c.pos++
		c.out = append(c.out, closer)
		return true, nil
	}
	return false, nil
}

// next reads what follows an item: true after a ',', which it writes, and
// false after the closer, which it does not.
func (c *canonicalizer) next(closer byte) (bool, error) {
	c.skipSpace()
	if c.pos >= len(c.src) {
		return false, c.errorf("unexpected end of input")
	}
	switch c.src[c.pos] {
	case ',':
		c.pos++
		c.skipSpace()
		c.out = append(c.out, ',')
		return true, nil
	case closer:
		c.pos++
		return false, nil
	}
	return false, c.errorf("expected ',' or %q", closer)
}

func (c *canonicalizer) array(depth int) error {
	if empty, err := c.open(depth, '[', ']'); err != nil || empty {
		return err
	}
	for {
		if err := c.value(depth + 1); err != nil {
			return err
		}
		if more, err := c.next(']'); err != nil || !more {
			c.out = append(c.out, ']')
			return err
		}
	}
}

func (c *canonicalizer) object(depth int) error {
	start := len(c.out)
	if empty, err := c.open(depth, '{', '}'); err != nil || empty {
		return err
	}
	base := len(c.members)
	defer func() { c.members = c.members[:base] }()
	ordered := true
	for {
		if c.pos >= len(c.src) || c.src[c.pos] != '"' {
			return c.errorf("expected member name")
		}
		m := int32(len(c.out))
		if err := c.quoted(); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.src) || c.src[c.pos] != ':' {
			return c.errorf("expected ':' after member name")
		}
		c.pos++
		c.skipSpace()
		c.out = append(c.out, ':')
		if n := len(c.members); n > base {
			switch prev := c.members[n-1]; compareNames(c.out, int(prev), int(m)) {
			case 0:
				// The same name again: this member replaces the last one
				// at once (Python keeps the last), so a run of one name
				// costs one member's memory.
				c.out = append(c.out[:prev], c.out[m:]...)
				m = prev
				c.members = c.members[:n-1]
			case 1:
				ordered = false
			}
		}
		if err := c.value(depth + 1); err != nil {
			return err
		}
		if len(c.members) == cap(c.members) {
			// Doubled rather than append's quarter for large slices: what
			// is allocated on the way stays within twice the final size.
			c.members = slices.Grow(c.members, max(len(c.members), 64))
		}
		c.members = append(c.members, m)
		more, err := c.next('}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	if !ordered {
		if err := c.order(start, c.members[base:]); err != nil {
			return err
		}
	}
	c.out = append(c.out, '}')
	return nil
}

// order rewrites the object whose '{' is at out[start], and whose closer is
// still to come, with its members (where each starts, in the order they
// came) sorted by name (byte order of UTF-8 is code point order, which is
// what Python's sort_keys uses) and only the last of duplicate names kept,
// as Python's dict keeps it. The rewrite is never longer than what it
// replaces.
func (c *canonicalizer) order(start int, members []int32) error {
	if c.moved += len(c.out) - start; c.moved > maxMoved(len(c.src)) {
		return c.errorf("members out of order nested too deep: more than %d bytes to put in order", maxMoved(len(c.src)))
	}
	tmp := append(c.tmp[:0], c.out[start:]...)
	c.tmp = tmp
	for i, m := range members {
		members[i] = m - int32(start)
		if i > 0 {
			// The comma before each member becomes a NUL, which a
			// canonical form never holds: where a member ends is then
			// found wherever the sort puts it.
			tmp[members[i]-1] = 0
		}
	}
	slices.SortStableFunc(members, func(a, b int32) int { return compareNames(tmp, int(a), int(b)) })
	c.out = c.out[:start+1]
	for k, m := range members {
		if k+1 < len(members) && compareNames(tmp, int(m), int(members[k+1])) == 0 {
			continue // a later duplicate, next in the stable order, wins
		}
		if len(c.out) > start+1 {
			c.out = append(c.out, ',')
		}
		member := tmp[m:]
		if end := bytes.IndexByte(member, 0); end >= 0 {
			member = member[:end]
		}
		c.out = append(c.out, member...)
	}
	return nil
}

// quoted writes the JSON string at c.pos as Python's json encoder writes
// it with ensure_ascii=False: the short escapes for " \ \n \r \t \b \f,
// \u00XX for the other control characters, and nothing else escaped (not
// '/', '<', '>', '&', U+2028 or U+2029). A string is never longer written
// than read.
func (c *canonicalizer) quoted() error {
	c.pos++ // opening quote
	c.out = append(c.out, '"')
	run := c.pos // the start of what is copied as it is
	for c.pos < len(c.src) {
		ch := c.src[c.pos]
		switch {
		case ch == '"':
			c.out = append(c.out, c.src[run:c.pos]...)
			c.pos++
			c.out = append(c.out, '"')
			return nil
		case ch == '\\':
			c.out = append(c.out, c.src[run:c.pos]...)
			r, err := c.escape()
			if err != nil {
				return err
			}
			c.out = appendRune(c.out, r)
			run = c.pos
		case ch < 0x20:
			return c.errorf("control character in string")
		case ch < utf8.RuneSelf:
			c.pos++
		default:
			r, size := utf8.DecodeRune(c.src[c.pos:])
			if r == utf8.RuneError && size == 1 {
				return c.errorf("invalid UTF-8")
			}
			c.pos += size
		}
	}
	return c.errorf("unterminated string")
}

// appendRune appends r as it stands in a canonical string.
func appendRune(out []byte, r rune) []byte {
	switch r {
	case '"':
		return append(out, '\\', '"')
	case '\\':
		return append(out, '\\', '\\')
	case '\n':
		return append(out, '\\', 'n')
	case '\r':
		return append(out, '\\', 'r')
	case '\t':
		return append(out, '\\', 't')
	case '\b':
		return append(out, '\\', 'b')
	case '\f':
		return append(out, '\\', 'f')
	}
	if r < 0x20 {
		return appendU(out, r)
	}
	return utf8.AppendRune(out, r)
}

// escape decodes the escape sequence at c.pos.
func (c *canonicalizer) escape() (rune, error) {
	if c.pos+1 >= len(c.src) {
		return 0, c.errorf("unterminated escape")
	}
	ch := c.src[c.pos+1]
	c.pos += 2
	switch ch {
	case '"', '\\', '/':
		return rune(ch), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, err := c.hex4()
		if err != nil {
			return 0, err
		}
		if utf16IsHighSurrogate(r) {
			if !bytes.HasPrefix(c.src[c.pos:], []byte(`\u`)) {
				return 0, c.errorf("lone surrogate")
			}
			c.pos += 2
			lo, err := c.hex4()
			if err != nil {
				return 0, err
			}
			if !utf16IsLowSurrogate(lo) {
				return 0, c.errorf("lone surrogate")
			}
			r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
		} else if utf16IsLowSurrogate(r) {
			// Python would decode it, but json.dumps(...).encode("utf-8")
			// cannot encode a lone surrogate, so Didit never signs one.
			return 0, c.errorf("lone surrogate")
		}
		return r, nil
	}
	return 0, c.errorf("invalid escape %q", ch)
}

func (c *canonicalizer) hex4() (rune, error) {
	if c.pos+4 > len(c.src) {
		return 0, c.errorf("short \\u escape")
	}
	var r rune
	for _, ch := range c.src[c.pos : c.pos+4] {
		r <<= 4
		switch {
		case ch >= '0' && ch <= '9':
			r |= rune(ch - '0')
		case ch >= 'a' && ch <= 'f':
			r |= rune(ch - 'a' + 10)
		case ch >= 'A' && ch <= 'F':
			r |= rune(ch - 'A' + 10)
		default:
			return 0, c.errorf("invalid \\u escape")
		}
	}
	c.pos += 4
	return r, nil
}

func utf16IsHighSurrogate(r rune) bool { return r >= 0xD800 && r < 0xDC00 }
func utf16IsLowSurrogate(r rune) bool  { return r >= 0xDC00 && r < 0xE000 }

// number writes the JSON number at c.pos as Python prints it after float
// shortening, within the allowance for growth.
func (c *canonicalizer) number() error {
	start := c.pos
	if c.src[c.pos] == '-' {
		c.pos++
	}
	switch {
	case c.pos < len(c.src) && c.src[c.pos] == '0':
		c.pos++
	case c.pos < len(c.src) && c.src[c.pos] >= '1' && c.src[c.pos] <= '9':
		c.digits()
	default:
		return c.errorf("invalid number")
	}
	integer := true
	if c.pos < len(c.src) && c.src[c.pos] == '.' {
		integer = false
		c.pos++
		if c.digits() == 0 {
			return c.errorf("invalid number")
		}
	}
	if c.pos < len(c.src) && (c.src[c.pos] == 'e' || c.src[c.pos] == 'E') {
		integer = false
		c.pos++
		if c.pos < len(c.src) && (c.src[c.pos] == '+' || c.src[c.pos] == '-') {
			c.pos++
		}
		if c.digits() == 0 {
			return c.errorf("invalid number")
		}
	}
	lit := c.src[start:c.pos]
	if integer {
		// Python ints are exact at any size; only "-0" prints differently.
		if len(lit) == 2 && lit[0] == '-' && lit[1] == '0' {
			lit = lit[1:]
		}
		c.out = append(c.out, lit...)
		return nil
	}
	if len(lit) > maxFloatText {
		// Converting hundreds of digits takes strconv's slow path, a cost
		// per byte a forged body may choose; no encoder writes a float so.
		return c.errorf("number of %d characters: no JSON encoder writes a float so long", len(lit))
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || math.IsInf(f, 0) {
		// Python would read it as inf and print "Infinity", which is not JSON.
		return c.errorf("number out of float64 range")
	}
	if f == math.Trunc(f) && math.Abs(f) >= 1<<53 {
		// An exact integer of up to 309 digits: refused before it is
		// printed when even its least length would pass the limit.
		least := int(math.Log10(math.Abs(f)))
		if c.growth+least-len(lit) > c.allowance {
			return c.errorf("canonical form longer than %d bytes", CanonicalLimit(len(c.src)))
		}
	}
	before := len(c.out)
	c.out = appendFloat(c.out, f)
	if c.growth += len(c.out) - before - len(lit); c.growth > c.allowance {
		return c.errorf("canonical form longer than %d bytes", CanonicalLimit(len(c.src)))
	}
	return nil
}

// maxFloatText is the longest float literal accepted (integers may be of
// any length: Python prints its ints whole, and they are copied as they
// are). A float printed to round-trip takes at most 24 characters
// ("-2.2250738585072014e-308") in Python, JavaScript, Java or Go, and 64
// leaves room for any fixed precision an encoder might use.
const maxFloatText = 64

func (c *canonicalizer) digits() int {
	n := 0
	for c.pos < len(c.src) && c.src[c.pos] >= '0' && c.src[c.pos] <= '9' {
		c.pos++
		n++
	}
	return n
}

// appendFloat appends f as Python prints shorten_floats(f): whole values as
// exact integers (beyond 2^53 Python's int(f) prints the exact binary value,
// which strconv's fixed format prints too), others as repr (shortest
// round-trip digits, exponent form below 1e-4; non-integral doubles are
// always below 1e16).
func appendFloat(dst []byte, f float64) []byte {
	if f == math.Trunc(f) {
		if f == 0 {
			return append(dst, '0') // -0.0 too
		}
		return strconv.AppendFloat(dst, f, 'f', 0, 64)
	}
	if math.Abs(f) < 1e-4 {
		return strconv.AppendFloat(dst, f, 'e', -1, 64)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

func appendU(out []byte, r rune) []byte {
	return append(out, '\\', 'u', hexDigits[r>>12&0xF], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
}

// escapeNonASCII turns a canonical form into the wire form, Python's
// ensure_ascii=True: every character past '~' as \uXXXX (a surrogate pair
// above U+FFFF). Outside strings a canonical form is ASCII, and inside them
// it already has the escapes both forms share.
func escapeNonASCII(canonical []byte) []byte {
	out := make([]byte, 0, len(canonical)+len(canonical)/8)
	for i := 0; i < len(canonical); {
		if canonical[i] < 0x7f {
			out = append(out, canonical[i])
			i++
			continue
		}
		r, size := utf8.DecodeRune(canonical[i:])
		if r > 0xFFFF {
			r -= 0x10000
			out = appendU(out, 0xD800+(r>>10))
			r = 0xDC00 + (r & 0x3FF)
		}
		out = appendU(out, r)
		i += size
	}
	return out
}

// topLevelMember returns the value of the top-level member name of a
// canonical form (compact, and valid: the canonicalizer wrote it), if the
// form is an object that has it. name must need no escaping.
func topLevelMember(canonical []byte, name string) ([]byte, bool) {
	if len(canonical) < 2 || canonical[0] != '{' {
		return nil, false
	}
	for i := 1; i < len(canonical) && canonical[i] == '"'; {
		keyEnd := stringEnd(canonical, i)
		start := keyEnd + 1 // past ':'
		end := valueEnd(canonical, start)
		if string(canonical[i+1:keyEnd-1]) == name {
			return canonical[start:end], true
		}
		i = end + 1 // past ',' or '}'
	}
	return nil, false
}

// stringEnd returns the index just past the string that opens at s[i].
func stringEnd(s []byte, i int) int {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(s)
}

// valueEnd returns the index just past the value that starts at s[i].
func valueEnd(s []byte, i int) int {
	depth := 0
	for i < len(s) {
		switch s[i] {
		case '"':
			i = stringEnd(s, i)
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// nameByte reads the decoded byte of the canonical string s at s[i] (past
// its opening quote): the byte, where the next one is, and false at the
// closing quote. In a canonical string each escape stands for one byte.
func nameByte(s []byte, i int) (byte, int, bool) {
	switch s[i] {
	case '"':
		return 0, i, false
	case '\\':
		switch e := s[i+1]; e {
		case 'u': // \u00XX, a control character
			return unhex(s[i+4])<<4 | unhex(s[i+5]), i + 6, true
		case 'n':
			return '\n', i + 2, true
		case 'r':
			return '\r', i + 2, true
		case 't':
			return '\t', i + 2, true
		case 'b':
			return '\b', i + 2, true
		case 'f':
			return '\f', i + 2, true
		default: // '"' and '\\'
			return e, i + 2, true
		}
	}
	return s[i], i + 1, true
}

func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// compareNames compares the decoded canonical strings that open at s[a]
// and s[b] byte by byte: UTF-8 byte order, which is code point order.
func compareNames(s []byte, a, b int) int {
	a, b = a+1, b+1
	for {
		ca, na, moreA := nameByte(s, a)
		cb, nb, moreB := nameByte(s, b)
		switch {
		case !moreA || !moreB:
			return cmp.Compare(b2i(moreA), b2i(moreB))
		case ca != cb:
			return cmp.Compare(ca, cb)
		}
		a, b = na, nb
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// appendDecoded appends the decoded canonical string that opens at s[i].
func appendDecoded(dst, s []byte, i int) []byte {
	for i++; ; {
		b, next, more := nameByte(s, i)
		if !more {
			return dst
		}
		dst = append(dst, b)
		i = next
	}
}
