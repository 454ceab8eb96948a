package ingest

import (
	"unicode/utf8"
)

// This file is a small strict JSON scanner for one flat device payload. It is
// hand-written because encoding/json's generic path (map[string]any, or
// Decoder.Token) costs several microseconds and a dozen allocations per
// message, which the ingest budget (tens of thousands of messages per second
// on two shared cores) cannot afford. It follows RFC 8259 exactly: no comments,
// no trailing commas, no leading zeros or '+', no raw control characters or
// invalid UTF-8 in strings. It never allocates; values are handed out as spans
// of the input.

// maxDepth bounds nesting of values the scanner skips. Device payloads are flat
// (arrays of numbers at most), so anything deeper is garbage, and a bound keeps
// recursion from growing with hostile input.
const maxDepth = 16

// valKind is the JSON type of a scanned value.
type valKind uint8

const (
	valString valKind = iota + 1
	valNumber
	valTrue
	valFalse
	valNull
	valArray
	valObject
)

func (k valKind) String() string {
	switch k {
	case valString:
		return "string"
	case valNumber:
		return "number"
	case valTrue, valFalse:
		return "boolean"
	case valNull:
		return "null"
	case valArray:
		return "array"
	case valObject:
		return "object"
	}
	return "nothing"
}

// jval is one scanned value. For strings raw is the content between the quotes
// (still escaped when esc is set); for numbers the literal; for arrays and
// objects the whole text including brackets.
type jval struct {
	kind valKind
	esc  bool // string contains backslash escapes
	raw  []byte
	// number shape, for callers that need an integer literal
	frac bool // has a fraction or exponent
}

// syntaxError is a JSON syntax problem at a byte offset.
type syntaxError struct {
	off int
	msg string
}

type scanner struct {
	b   []byte
	i   int
	err *syntaxError
}

func (s *scanner) fail(msg string) {
	if s.err == nil {
		s.err = &syntaxError{off: s.i, msg: msg}
	}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str scans a string whose opening quote is at s.i and returns its content.
func (s *scanner) str() (raw []byte, esc bool, ok bool) {
	s.i++ // opening quote
	start := s.i
	b := s.b
	for s.i < len(b) {
		c := b[s.i]
		switch {
		case c == '"':
			raw = b[start:s.i]
			s.i++
			return raw, esc, true
		case c == '\\':
			esc = true
			if s.i+1 >= len(b) {
				s.i = len(b)
				s.fail("unterminated string")
				return nil, false, false
			}
			switch b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(b) || !isHex(b[s.i+2]) || !isHex(b[s.i+3]) || !isHex(b[s.i+4]) || !isHex(b[s.i+5]) {
					s.fail("bad \\u escape")
					return nil, false, false
				}
				s.i += 6
			default:
				s.fail("bad escape")
				return nil, false, false
			}
		case c < 0x20:
			s.fail("control character in string")
			return nil, false, false
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(b[s.i:])
			if r == utf8.RuneError && n <= 1 {
				s.fail("invalid UTF-8 in string")
				return nil, false, false
			}
			s.i += n
		}
	}
	s.fail("unterminated string")
	return nil, false, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// num scans a number literal at s.i.
func (s *scanner) num() (raw []byte, frac bool, ok bool) {
	b := s.b
	start := s.i
	if s.i < len(b) && b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(b) && b[s.i] == '0':
		s.i++
	case s.i < len(b) && b[s.i] >= '1' && b[s.i] <= '9':
		for s.i < len(b) && isDigit(b[s.i]) {
			s.i++
		}
	default:
		s.fail("bad number")
		return nil, false, false
	}
	if s.i < len(b) && b[s.i] == '.' {
		frac = true
		s.i++
		if s.i >= len(b) || !isDigit(b[s.i]) {
			s.fail("bad number: digit expected after '.'")
			return nil, false, false
		}
		for s.i < len(b) && isDigit(b[s.i]) {
			s.i++
		}
	}
	if s.i < len(b) && (b[s.i] == 'e' || b[s.i] == 'E') {
		frac = true
		s.i++
		if s.i < len(b) && (b[s.i] == '+' || b[s.i] == '-') {
			s.i++
		}
		if s.i >= len(b) || !isDigit(b[s.i]) {
			s.fail("bad number: digit expected in exponent")
			return nil, false, false
		}
		for s.i < len(b) && isDigit(b[s.i]) {
			s.i++
		}
	}
	return b[start:s.i], frac, true
}

func (s *scanner) lit(word string, k valKind) (jval, bool) {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return jval{kind: k, raw: s.b[s.i-len(word) : s.i]}, true
	}
	s.fail("invalid literal")
	return jval{}, false
}

// value scans any JSON value at s.i (after whitespace).
func (s *scanner) value(depth int) (jval, bool) {
	if s.i >= len(s.b) {
		s.fail("unexpected end of input")
		return jval{}, false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		raw, esc, ok := s.str()
		return jval{kind: valString, raw: raw, esc: esc}, ok
	case c == '-' || isDigit(c):
		raw, frac, ok := s.num()
		return jval{kind: valNumber, raw: raw, frac: frac}, ok
	case c == 't':
		return s.lit("true", valTrue)
	case c == 'f':
		return s.lit("false", valFalse)
	case c == 'n':
		return s.lit("null", valNull)
	case c == '[' || c == '{':
		if depth >= maxDepth {
			s.fail("nested too deep")
			return jval{}, false
		}
		start := s.i
		var ok bool
		k := valArray
		if c == '[' {
			ok = s.array(depth + 1)
		} else {
			k = valObject
			ok = s.object(depth + 1)
		}
		return jval{kind: k, raw: s.b[start:s.i]}, ok
	}
	s.fail("unexpected character")
	return jval{}, false
}

func (s *scanner) array(depth int) bool {
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		s.ws()
		if _, ok := s.value(depth); !ok {
			return false
		}
		if more, ok := s.next(']', "array"); !more {
			return ok
		}
	}
}

// next consumes the separator after a container element: ',' (more follows,
// ok) or the closing byte (done, ok); anything else fails the scan.
func (s *scanner) next(closer byte, what string) (more, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		s.fail("unterminated " + what)
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true, true
	case closer:
		s.i++
		return false, true
	}
	s.fail("expected ',' or '" + string(closer) + "' in " + what)
	return false, false
}

// object skips a nested object (only ever found where a payload has no business
// putting one; the top level is walked by members).
func (s *scanner) object(depth int) bool { return s.walkObject(depth, nil) }

// walkObject scans the object whose '{' is at s.i, calling fn (when not nil)
// for every member in order; member values are scanned at depth.
func (s *scanner) walkObject(depth int, fn func(key []byte, keyEsc bool, v jval)) bool {
	s.i++ // '{'
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			s.fail("expected string key")
			return false
		}
		key, kesc, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			s.fail("expected ':' after key")
			return false
		}
		s.i++
		s.ws()
		v, ok := s.value(depth)
		if !ok {
			return false
		}
		if fn != nil {
			fn(key, kesc, v)
		}
		if more, ok := s.next('}', "object"); !more {
			return ok
		}
	}
}

// members walks the top-level object and calls fn for every member in order.
// It returns false on a syntax error (left in s.err). fn's result does not stop
// the walk: the caller keeps the first semantic problem but still wants to know
// whether the whole payload is well-formed JSON, so syntax errors always win.
func (s *scanner) members(fn func(key []byte, keyEsc bool, v jval)) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		s.fail("payload must be a JSON object")
		return false
	}
	if !s.walkObject(1, fn) {
		return false
	}
	s.ws()
	if s.i != len(s.b) {
		s.fail("trailing data after object")
		return false
	}
	return true
}

// unescape appends the decoded content of a JSON string (raw, between quotes,
// already syntax-checked) to dst. Lone surrogates become U+FFFD, as in
// encoding/json.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		e := raw[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i:])
			i += 4
			if r >= 0xD800 && r < 0xDC00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
				if r2 := hex4(raw[i+2:]); r2 >= 0xDC00 && r2 < 0xE000 {
					r = (r-0xD800)<<10 | (r2 - 0xDC00) + 0x10000
					i += 6
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
