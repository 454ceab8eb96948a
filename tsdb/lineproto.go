package tsdb

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/lookoutfire/lookout/ingest"
)

// Line protocol rules this encoder follows, chosen so that every line it
// produces parses the same way in InfluxDB 1.8 and in influxdata/line-protocol:
//
//   - Names (measurement, tag keys, tag values, field keys): ASCII control
//     characters, which no parser accepts there, become '_'. Commas and spaces
//     (and '=' outside the measurement) are backslash-escaped. A backslash that
//     would merge with a following escape, or ends the name, becomes '_'
//     (InfluxDB 1.x cannot represent it); any other backslash is kept.
//   - A measurement may not start with '#' (that is a comment): it becomes '_'.
//   - Empty tag keys or values, and empty field keys, are left out.
//   - Every number is written as a float (no 'i' suffix), so a field never
//     changes type between points and InfluxDB never rejects a batch for it.
//     NaN and ±Inf cannot be stored and are left out.
//   - String values escape '"' and '\'; '\r' and '\f' (which the parsers
//     reject) become spaces. Newlines are kept (quoted, both parsers accept).
//   - []float64 fields become name_1..name_n.
//   - A point with no storable field produces nothing.

// EncodeReading appends one line of InfluxDB line protocol for r to dst:
// measurement "{class}_{kind}" (e.g. smoke_telemetry), tags device_id, forest
// and zone (when set), the payload's fields, and the device timestamp in ns
// (StoreTime when the pipeline set one; the receive time when the device sent
// none). Snapshot bytes are never
// written. It returns dst unchanged when r has no storable field.
func EncodeReading(dst []byte, r *ingest.Reading) []byte {
	start := len(dst)
	dst = appendMeasurement(dst, string(r.Class))
	dst = append(dst, '_')
	dst = appendName(dst, string(r.Kind), false)
	// Tags in key order, as InfluxDB prefers: device_id < forest < zone.
	dst = appendTag(dst, "device_id", r.DeviceID)
	dst = appendTag(dst, "forest", r.Forest)
	dst = appendTag(dst, "zone", r.Zone)
	var kbuf [32]string
	keys := kbuf[:0]
	for k := range r.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst, ok := appendFields(dst, keys, r.Fields)
	if !ok {
		return dst[:start]
	}
	t := r.StoreTime
	if t.IsZero() {
		t = r.Time
	}
	if t.IsZero() {
		t = r.Received
	}
	return appendTime(dst, t)
}

// EncodePoint is EncodeReading for an arbitrary point (alerting stores fire
// danger as its own measurement). Field values may be float64 and the other
// Go number types, bool, string or []float64; anything else is left out. A
// zero t leaves the timestamp to InfluxDB. It returns dst unchanged when the
// measurement is empty or no field is storable.
func EncodePoint(dst []byte, measurement string, tags map[string]string, fields map[string]any, t time.Time) []byte {
	if measurement == "" {
		return dst
	}
	start := len(dst)
	dst = appendMeasurement(dst, measurement)
	if len(tags) > 0 {
		var kbuf [16]string
		keys := kbuf[:0]
		for k := range tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var prev []byte
		for _, k := range keys {
			if k == "" || tags[k] == "" {
				continue
			}
			// Two keys can normalise to the same name; the first wins.
			mark := len(dst)
			dst = append(dst, ',')
			dst = appendName(dst, k, true)
			name := dst[mark+1:]
			if prev != nil && string(prev) == string(name) {
				dst = dst[:mark]
				continue
			}
			prev = append(prev[:0], name...)
			dst = append(dst, '=')
			dst = appendName(dst, tags[k], true)
		}
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst, ok := appendFields(dst, keys, fields)
	if !ok {
		return dst[:start]
	}
	return appendTime(dst, t)
}

func appendTag(dst []byte, key, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, ',')
	dst = append(dst, key...)
	dst = append(dst, '=')
	return appendName(dst, value, true)
}

// appendFields writes " k=v,k=v" for keys in order; ok is false when nothing
// was storable (and then dst is garbage past its original length).
func appendFields(dst []byte, keys []string, fields map[string]any) ([]byte, bool) {
	n := 0
	sep := func() {
		if n == 0 {
			dst = append(dst, ' ')
		} else {
			dst = append(dst, ',')
		}
		n++
	}
	for _, k := range keys {
		if k == "" {
			continue
		}
		switch v := fields[k].(type) {
		case []float64:
			var nbuf [64]byte
			for i, x := range v {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					continue
				}
				flat := strconv.AppendInt(append(append(nbuf[:0], k...), '_'), int64(i+1), 10)
				if _, clash := fields[string(flat)]; clash {
					continue // an explicit field of that name wins
				}
				sep()
				dst = appendName(dst, k, true)
				dst = append(dst, '_')
				dst = strconv.AppendInt(dst, int64(i+1), 10)
				dst = append(dst, '=')
				dst = strconv.AppendFloat(dst, x, 'g', -1, 64)
			}
		case bool:
			sep()
			dst = appendName(dst, k, true)
			if v {
				dst = append(dst, "=true"...)
			} else {
				dst = append(dst, "=false"...)
			}
		case string:
			sep()
			dst = appendName(dst, k, true)
			dst = append(dst, '=', '"')
			dst = appendStringValue(dst, v)
			dst = append(dst, '"')
		default:
			x, ok := toFloat(v)
			if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
				continue
			}
			sep()
			dst = appendName(dst, k, true)
			dst = append(dst, '=')
			dst = strconv.AppendFloat(dst, x, 'g', -1, 64)
		}
	}
	return dst, n > 0
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return dst
	}
	dst = append(dst, ' ')
	return strconv.AppendInt(dst, t.UnixNano(), 10)
}

func isControl(c byte) bool { return c < 0x20 || c == 0x7f }

// escapes reports whether c is backslash-escaped in a name (eq: '=' too).
func escapes(c byte, eq bool) bool { return c == ',' || c == ' ' || (eq && c == '=') }

func appendMeasurement(dst []byte, s string) []byte {
	if len(s) > 0 && s[0] == '#' {
		dst = append(dst, '_')
		s = s[1:]
		if s == "" {
			return dst
		}
	}
	return appendName(dst, s, false)
}

// appendName writes a measurement (eq=false) or tag key/value or field key
// (eq=true) following the rules above.
func appendName(dst []byte, s string, eq bool) []byte {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = !isControl(c) && !escapes(c, eq) && c != '\\'
	}
	if plain {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isControl(c):
			dst = append(dst, '_')
		case escapes(c, eq):
			dst = append(dst, '\\', c)
		case c == '\\':
			if i+1 == len(s) || escapes(s[i+1], eq) {
				dst = append(dst, '_')
			} else {
				dst = append(dst, '\\')
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func appendStringValue(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\r', '\f':
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
