package ingest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Decode validates one MQTT message strictly against the protocol for its
// topic's class and kind (docs/protocol.md) and returns the Reading. It is the
// only gate between devices and storage, so it is strict: unknown fields,
// duplicate keys, wrong types, null, values outside physical ranges, numbers
// that overflow float64, timestamps outside [now-MaxPast, now+MaxFuture] and
// oversize payloads are all refused. Every error is a *Reject naming the reason
// and the offending field. Decode is pure (now is passed in) and safe for
// concurrent use.
//
// Reading.Time is the device's ts (UTC), or now when the payload has none;
// Received is now (UTC). Fields hold float64, bool, string or []float64 (channel
// arrays and box), keyed exactly as in the payload; ts and device_id are lifted
// out, and a camera's snapshot_jpeg goes to Reading.Snapshot as JPEG bytes.
func Decode(prefix, topic string, payload []byte, now time.Time, lim Limits) (Reading, error) {
	class, dev, kind, err := ParseTopic(prefix, topic)
	if err != nil {
		return Reading{}, err
	}
	if len(payload) > lim.MaxPayload {
		return Reading{}, Rejectf(ReasonTooLarge, "", "payload is %d bytes, limit %d", len(payload), lim.MaxPayload)
	}
	sch := schemaFor(class, kind)
	if sch == nil { // unreachable: ParseTopic only admits pairs with a schema
		return Reading{}, Rejectf(ReasonBadTopic, "kind", "no schema for %s %s", class, kind)
	}
	now = now.UTC()
	// Pass 1: syntax. The whole payload must be well-formed JSON before any of
	// it is interpreted, so a broken message is always reported as bad_json.
	var stack [16]member
	ms := stack[:0]
	s := scanner{b: payload}
	if !s.members(func(key []byte, keyEsc bool, v jval) { ms = append(ms, member{key, keyEsc, v}) }) {
		return Reading{}, Rejectf(ReasonBadJSON, "", "offset %d: %s", s.err.off, s.err.msg)
	}
	// Pass 2: meaning, in payload order; the first problem is reported. The
	// map is sized for the members present (a map of up to 8 entries is one
	// allocation).
	n := len(ms)
	for i := range ms {
		if k := string(ms[i].key); k == "ts" || k == "device_id" {
			n--
		}
	}
	d := decoder{sch: sch, dev: dev, lim: lim, now: now, fields: make(map[string]any, n)}
	for i := range ms {
		if rej := d.member(ms[i].key, ms[i].keyEsc, ms[i].v); rej != nil {
			return Reading{}, rej
		}
	}
	for i := range sch.fields {
		if f := &sch.fields[i]; f.required && d.seen&(1<<(i+2)) == 0 {
			return Reading{}, Rejectf(ReasonMissingField, f.name, "required for %s %s", class, kind)
		}
	}
	t := now
	if d.seen&seenTS != 0 {
		if rej := checkWindow(d.ts, d.tsSeconds, now, lim); rej != nil {
			return Reading{}, rej
		}
		t = d.ts
	}
	return Reading{
		DeviceID: dev,
		Class:    class,
		Kind:     kind,
		Time:     t,
		Received: now,
		DeviceTS: d.seen&seenTS != 0,
		Fields:   d.fields,
		Snapshot: d.snapshot,
	}, nil
}

// Bits of decoder.seen for the two envelope fields; schema field i is bit i+2.
const (
	seenTS = 1 << iota
	seenDeviceID
)

// member is one top-level key and its value, as spans of the payload.
type member struct {
	key    []byte
	keyEsc bool
	v      jval
}

// decoder holds the state of one Decode call's second pass.
type decoder struct {
	sch       *schema
	dev       string
	lim       Limits
	now       time.Time
	fields    map[string]any
	seen      uint64
	ts        time.Time
	tsSeconds bool // numeric ts small enough to be Unix seconds: hint in the reject
	snapshot  []byte
}

func (d *decoder) member(key []byte, keyEsc bool, v jval) *Reject {
	var kbuf [64]byte
	if keyEsc {
		key = unescape(kbuf[:0], key)
	}
	var bit uint64
	idx := -1
	switch string(key) {
	case "ts":
		bit = seenTS
	case "device_id":
		bit = seenDeviceID
	default:
		idx = d.sch.index(key)
		if idx < 0 {
			return Rejectf(ReasonUnknownField, fieldName(key), "field %s is not part of this message kind", quoteTrunc(string(key)))
		}
		bit = 1 << (idx + 2)
	}
	if d.seen&bit != 0 {
		return Rejectf(ReasonDuplicateField, fieldName(key), "key appears more than once (JSON parsers disagree on which copy wins)")
	}
	d.seen |= bit
	switch {
	case bit == seenTS:
		return d.timestamp(v)
	case bit == seenDeviceID:
		return d.deviceID(v)
	}
	return d.field(&d.sch.fields[idx], v)
}

func (d *decoder) deviceID(v jval) *Reject {
	if v.kind != valString {
		return typeErr("device_id", "string", v)
	}
	raw := v.raw
	if v.esc {
		raw = unescape(nil, raw)
	}
	if string(raw) != d.dev {
		return Rejectf(ReasonDeviceMismatch, "device_id", "payload says %s, topic says %q", quoteTrunc(string(raw)), d.dev)
	}
	return nil
}

func (d *decoder) timestamp(v jval) *Reject {
	switch v.kind {
	case valString:
		raw := v.raw
		if v.esc {
			raw = unescape(nil, raw)
		}
		t, ok := parseRFC3339(raw)
		if !ok {
			return Rejectf(ReasonBadTimestamp, "ts", "%s is not RFC 3339 (e.g. 2025-06-01T08:30:00Z or 2025-06-01T16:30:00+08:00)", quoteTrunc(string(raw)))
		}
		d.ts = t
	case valNumber:
		if v.frac {
			return Rejectf(ReasonBadTimestamp, "ts", "numeric ts %s must be an integer count of Unix milliseconds", quoteTrunc(string(v.raw)))
		}
		ms, err := strconv.ParseInt(string(v.raw), 10, 64)
		// Bound to what time.UnixMilli represents exactly (and far beyond any sane clock).
		if err != nil || ms > math.MaxInt64/1000000 || ms < math.MinInt64/1000000 {
			return Rejectf(ReasonBadTimestamp, "ts", "numeric ts %s is out of range", quoteTrunc(string(v.raw)))
		}
		d.ts = time.UnixMilli(ms).UTC()
		d.tsSeconds = ms > 0 && ms < 1e11 // before 1973 as ms, but 1973..5138 as seconds
	default:
		return typeErr("ts", "string (RFC 3339) or integer (Unix ms)", v)
	}
	return nil
}

func checkWindow(ts time.Time, looksLikeSeconds bool, now time.Time, lim Limits) *Reject {
	if ts.After(now.Add(lim.MaxFuture)) {
		return Rejectf(ReasonBadTimestamp, "ts", "%s is %s ahead of gateway time (limit %s): check the device clock",
			ts.Format(time.RFC3339Nano), ts.Sub(now).Round(time.Millisecond), lim.MaxFuture)
	}
	if ts.Before(now.Add(-lim.MaxPast)) {
		hint := ""
		if looksLikeSeconds {
			hint = "; it looks like Unix seconds, but a numeric ts is Unix milliseconds"
		}
		return Rejectf(ReasonBadTimestamp, "ts", "%s is older than the limit of %s before gateway time%s",
			ts.Format(time.RFC3339Nano), lim.MaxPast, hint)
	}
	return nil
}

// field checks one schema field and stores it in d.fields.
func (d *decoder) field(f *fieldSpec, v jval) *Reject {
	switch f.typ {
	case tNum, tInt:
		if v.kind != valNumber {
			return typeErr(f.name, "number", v)
		}
		x, rej := number(f.name, v.raw)
		if rej != nil {
			return rej
		}
		if f.typ == tInt && x != math.Trunc(x) {
			return Rejectf(ReasonBadType, f.name, "%s is not an integer", quoteTrunc(string(v.raw)))
		}
		if rej := inRange(f, x, 0); rej != nil {
			return rej
		}
		d.fields[f.name] = x
	case tBool:
		if v.kind != valTrue && v.kind != valFalse {
			return typeErr(f.name, "boolean", v)
		}
		d.fields[f.name] = v.kind == valTrue
	case tEnum:
		if v.kind != valString {
			return typeErr(f.name, "string", v)
		}
		raw := v.raw
		if v.esc {
			raw = unescape(nil, raw)
		}
		for _, e := range f.enum {
			if string(raw) == e {
				d.fields[f.name] = e // the table's string: no allocation
				return nil
			}
		}
		return Rejectf(ReasonOutOfRange, f.name, "%s is not one of %s", quoteTrunc(string(raw)), strings.Join(f.enum, ", "))
	case tText:
		if v.kind != valString {
			return typeErr(f.name, "string", v)
		}
		raw := v.raw
		if v.esc {
			raw = unescape(nil, raw)
		}
		if len(raw) < f.minLen || len(raw) > f.maxLen {
			return Rejectf(ReasonOutOfRange, f.name, "length %d bytes, want %d..%d", len(raw), f.minLen, f.maxLen)
		}
		for _, r := range string(raw) {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
				return Rejectf(ReasonOutOfRange, f.name, "contains control or invalid character %U", r)
			}
		}
		d.fields[f.name] = string(raw)
	case tNums, tBox:
		if v.kind != valArray {
			return typeErr(f.name, "array of numbers", v)
		}
		var buf [4]float64
		n, rej := numbers(f.name, v.raw, buf[:])
		if rej != nil {
			return rej
		}
		if f.typ == tBox {
			if n != 4 {
				return Rejectf(ReasonOutOfRange, f.name, "has %d values, want 4: [xmin, ymin, xmax, ymax]", n)
			}
		} else if n < f.minLen || n > f.maxLen {
			return Rejectf(ReasonOutOfRange, f.name, "has %d values, want %d..%d (one per channel)", n, f.minLen, f.maxLen)
		}
		for i := 0; i < n; i++ {
			if rej := inRange(f, buf[i], i+1); rej != nil {
				return rej
			}
		}
		if f.typ == tBox {
			if !(buf[0] < buf[2]) {
				return Rejectf(ReasonOutOfRange, f.name, "xmin %g must be < xmax %g", buf[0], buf[2])
			}
			if !(buf[1] < buf[3]) {
				return Rejectf(ReasonOutOfRange, f.name, "ymin %g must be < ymax %g", buf[1], buf[3])
			}
		}
		out := make([]float64, n)
		copy(out, buf[:n])
		d.fields[f.name] = out
	case tSnapshot:
		if v.kind != valString {
			return typeErr(f.name, "string (base64 JPEG)", v)
		}
		img, rej := snapshot(f.name, v, d.lim.MaxSnapshot)
		if rej != nil {
			return rej
		}
		d.snapshot = img
	}
	return nil
}

// number parses a JSON number literal (grammar already checked by the scanner).
// Literals beyond float64 would become ±Inf: those are refused, so no NaN or
// Inf ever reaches a Reading.
func number(name string, raw []byte) (float64, *Reject) {
	if x, ok := fastNumber(raw); ok {
		return x, nil
	}
	x, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
		if errors.Is(err, strconv.ErrRange) || math.IsInf(x, 0) {
			return 0, Rejectf(ReasonOutOfRange, name, "%s overflows a 64-bit float", quoteTrunc(string(raw)))
		}
		return 0, Rejectf(ReasonBadJSON, name, "bad number %s", quoteTrunc(string(raw)))
	}
	return x, nil
}

// pow10 holds the powers of ten that float64 represents exactly (read-only).
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// fastNumber converts the common sensor literal (-?digits[.digits], at most 15
// digits, no exponent) without strconv's general machinery. Both the integer
// mantissa (< 2^53) and the power of ten (≤ 1e22) are exact in float64, so the
// single IEEE division is correctly rounded: the same result ParseFloat gives
// (Clinger's fast path). Anything else reports !ok and takes the slow path.
func fastNumber(raw []byte) (float64, bool) {
	i := 0
	neg := len(raw) > 0 && raw[0] == '-'
	if neg {
		i++
	}
	var mant uint64
	digits, scale := 0, 0
	for ; i < len(raw) && isDigit(raw[i]); i++ {
		mant = mant*10 + uint64(raw[i]-'0')
		digits++
	}
	if i < len(raw) && raw[i] == '.' {
		for i++; i < len(raw) && isDigit(raw[i]); i++ {
			mant = mant*10 + uint64(raw[i]-'0')
			digits++
			scale++
		}
	}
	if i != len(raw) || digits == 0 || digits > 15 {
		return 0, false
	}
	x := float64(mant) / pow10[scale] // scale <= digits <= 15
	if neg {
		x = -x
	}
	return x, true
}

// numbers parses an array of numbers (syntax already checked) into buf and
// returns how many elements the array holds (which may exceed len(buf)).
func numbers(name string, raw []byte, buf []float64) (int, *Reject) {
	s := scanner{b: raw, i: 1}
	n := 0
	for {
		s.ws()
		if s.b[s.i] == ']' {
			return n, nil
		}
		v, ok := s.value(maxDepth - 1)
		if !ok { // cannot happen: the array was scanned before
			return 0, Rejectf(ReasonBadJSON, name, "bad array")
		}
		if v.kind != valNumber {
			return 0, Rejectf(ReasonBadType, name, "element %d is %s, want number", n+1, v.kind)
		}
		if n < len(buf) {
			x, rej := number(name, v.raw)
			if rej != nil {
				return 0, rej
			}
			buf[n] = x
		}
		n++
		s.ws()
		if s.b[s.i] == ',' {
			s.i++
		}
	}
}

// inRange checks x against f's bounds; elem is the 1-based array index, 0 for
// a scalar.
func inRange(f *fieldSpec, x float64, elem int) *Reject {
	if x < f.min || x > f.max || (f.minOpen && x == f.min) {
		what := ""
		if elem > 0 {
			what = fmt.Sprint("element ", elem, " = ")
		}
		lo := "["
		if f.minOpen {
			lo = "("
		}
		unit := ""
		if f.unit != "" {
			unit = " " + f.unit
		}
		return Rejectf(ReasonOutOfRange, f.name, "%s%g outside %s%g, %g]%s", what, x, lo, f.min, f.max, unit)
	}
	return nil
}

func snapshot(name string, v jval, max int) ([]byte, *Reject) {
	src := v.raw
	if v.esc { // JSON encoders may write '/' as "\/"
		src = unescape(make([]byte, 0, len(src)), src)
	}
	enc := base64.StdEncoding
	if enc.DecodedLen(len(src)) > max+2 { // can only shrink by padding (≤2)
		return nil, Rejectf(ReasonBadSnapshot, name, "decodes to about %d bytes, limit %d", enc.DecodedLen(len(src)), max)
	}
	img := make([]byte, enc.DecodedLen(len(src)))
	n, err := enc.Decode(img, src)
	if err != nil {
		return nil, Rejectf(ReasonBadSnapshot, name, "not standard padded base64: %v", err)
	}
	img = img[:n]
	if n > max {
		return nil, Rejectf(ReasonBadSnapshot, name, "decodes to %d bytes, limit %d", n, max)
	}
	// FF D8 is JPEG's start-of-image marker; FF starts the marker after it.
	if n < 3 || img[0] != 0xFF || img[1] != 0xD8 || img[2] != 0xFF {
		return nil, Rejectf(ReasonBadSnapshot, name, "not a JPEG (no FF D8 FF start-of-image marker)")
	}
	return img, nil
}

func typeErr(name, want string, v jval) *Reject {
	if v.kind == valNull {
		return Rejectf(ReasonBadType, name, "null is not allowed (omit an optional field instead), want %s", want)
	}
	return Rejectf(ReasonBadType, name, "got %s, want %s", v.kind, want)
}

// fieldName makes an untrusted key safe to carry in Reject.Field (a log line,
// a dead-letter JSON value): at most 64 bytes, valid UTF-8, no control
// characters.
func fieldName(key []byte) string {
	const max = 64
	if len(key) > max {
		key = key[:max]
		for len(key) > 0 && !utf8.Valid(key) {
			key = key[:len(key)-1]
		}
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(string(key), "\uFFFD"))
}

// quoteTrunc quotes an untrusted string for a Reject detail, cut to 64 bytes.
func quoteTrunc(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "…"
	}
	return strconv.Quote(s)
}
