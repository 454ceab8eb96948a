package hotspot

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lookoutfire/lookout/errs"
)

// ErrBadFile means a FIRMS file cannot be read at all (no header, missing required
// columns); single bad rows are reported in ParseResult.Bad instead.
var ErrBadFile = fmt.Errorf("firms file %w", errs.ErrInvalid)

// ErrTooManyRows means a file exceeds max_import_rows.
var ErrTooManyRows = fmt.Errorf("firms file: too many rows: %w", errs.ErrTooLarge)

// Hotspot is one FIRMS detection: a satellite pixel whose centre is Lat/Lon and whose
// footprint is Scan × Track km. Fields FIRMS leaves out stay zero.
type Hotspot struct {
	Lat        float64   `json:"lat"`
	Lon        float64   `json:"lon"`
	Acquired   time.Time `json:"acquired"`   // acq_date + acq_time, UTC
	Satellite  string    `json:"satellite"`  // canonical code (T, A, N, N20, N21) whatever the file's spelling; else as given
	Instrument string    `json:"instrument"` // VIIRS or MODIS (from the column, else inferred)
	Scan       float64   `json:"scan_km"`    // pixel size along scan
	Track      float64   `json:"track_km"`   // pixel size along track
	Bright     float64   `json:"bright_k"`   // bright_ti4 (VIIRS) or brightness (MODIS)
	Bright2    float64   `json:"bright2_k"`  // bright_ti5 (VIIRS) or bright_t31 (MODIS)
	FRP        float64   `json:"frp_mw"`
	Confidence string    `json:"confidence"` // as delivered, normalised: low/nominal/high or 0–100
	ConfLevel  string    `json:"conf_level"` // low/nominal/high for both instruments
	Version    string    `json:"version,omitempty"`
	DayNight   string    `json:"daynight,omitempty"`
	Type       int       `json:"type"` // archive files: 0 vegetation fire, 1 volcano, 2 static land source, 3 offshore; -1 unknown
	Country    string    `json:"country,omitempty"`
	Line       int       `json:"line"` // line in the source file, for messages
}

// RowError is one rejected row with the line it came from.
type RowError struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// ParseResult sums up one parse. Bad lists at most the configured number of rows;
// BadCount counts them all.
type ParseResult struct {
	Rows     int        `json:"rows"`
	BadCount int        `json:"bad"`
	Bad      []RowError `json:"bad_rows,omitempty"`
}

// firmsColumns is the header → column index map of one file.
type firmsColumns struct {
	lat, lon, date, tim                                int
	bright, bright2, scan, track, sat, inst, conf, ver int
	frp, dn, typ, country                              int
	instrumentFromHeader                               string
}

func mapHeader(h []string) (firmsColumns, error) {
	c := firmsColumns{lat: -1, lon: -1, date: -1, tim: -1, bright: -1, bright2: -1, scan: -1, track: -1,
		sat: -1, inst: -1, conf: -1, ver: -1, frp: -1, dn: -1, typ: -1, country: -1}
	for i, name := range h {
		name = strings.ToLower(strings.TrimSpace(name)) // a leading BOM went with the first line
		switch name {
		case "latitude", "lat":
			c.lat = i
		case "longitude", "lon", "lng":
			c.lon = i
		case "acq_date":
			c.date = i
		case "acq_time":
			c.tim = i
		case "bright_ti4":
			c.bright, c.instrumentFromHeader = i, "VIIRS"
		case "brightness":
			c.bright, c.instrumentFromHeader = i, "MODIS"
		case "bright_ti5", "bright_t31":
			c.bright2 = i
		case "scan":
			c.scan = i
		case "track":
			c.track = i
		case "satellite":
			c.sat = i
		case "instrument":
			c.inst = i
		case "confidence":
			c.conf = i
		case "version":
			c.ver = i
		case "frp":
			c.frp = i
		case "daynight":
			c.dn = i
		case "type":
			c.typ = i
		case "country_id":
			c.country = i
		}
	}
	var missing []string
	for _, m := range []struct {
		idx  int
		name string
	}{{c.lat, "latitude"}, {c.lon, "longitude"}, {c.date, "acq_date"}, {c.tim, "acq_time"}} {
		if m.idx < 0 {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("header lacks %s: %w", strings.Join(missing, ", "), ErrBadFile)
	}
	return c, nil
}

// ParseFIRMS reads a FIRMS CSV of any variant (VIIRS or MODIS, with or without
// instrument, archive type, country_id) and calls fn for every good row in order. Bad
// rows are counted and listed (up to maxBad) with their line numbers and do not stop
// the parse; a missing header or required column does (ErrBadFile). fn's error stops
// the parse and is returned, except BadRow, which rejects just that row. maxRows > 0
// caps the good rows (ErrTooManyRows).
//
// FIRMS has no multi-line fields, so every physical line is parsed on its own: a stray
// quote spoils its own line (one bad row), never the rows after it. A UTF-8 byte order
// mark before the header is dropped before the header is parsed.
func ParseFIRMS(r io.Reader, maxBad, maxRows int, fn func(Hotspot) error) (ParseResult, error) {
	var res ParseResult
	lr := newLineRecords(r)
	var header []string
	for header == nil {
		rec, _, err := lr.next()
		var pe *csv.ParseError
		switch {
		case errors.Is(err, io.EOF):
			return res, fmt.Errorf("empty file: %w", ErrBadFile)
		case errors.As(err, &pe):
			return res, fmt.Errorf("header: %v: %w", err, ErrBadFile)
		case err != nil:
			return res, fmt.Errorf("read firms: %w", err)
		}
		header = append([]string(nil), rec...)
	}
	cols, err := mapHeader(header)
	if err != nil {
		return res, err
	}
	bad := func(line int, reason string) {
		res.BadCount++
		if len(res.Bad) < maxBad {
			res.Bad = append(res.Bad, RowError{Line: line, Reason: reason})
		}
	}
	for {
		rec, line, err := lr.next()
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad(line, pe.Err.Error())
				continue
			}
			return res, fmt.Errorf("read firms: %w", err)
		}
		if len(rec) != len(header) {
			bad(line, fmt.Sprintf("%d fields, header has %d", len(rec), len(header)))
			continue
		}
		h, err := cols.row(rec)
		if err != nil {
			bad(line, err.Error())
			continue
		}
		h.Line = line
		res.Rows++
		if maxRows > 0 && res.Rows > maxRows {
			return res, fmt.Errorf("more than %d rows: %w", maxRows, ErrTooManyRows)
		}
		if err := fn(h); err != nil {
			var br badRow
			if errors.As(err, &br) {
				res.Rows--
				bad(line, string(br))
				continue
			}
			return res, err
		}
	}
}

// BadRow is what ParseFIRMS's fn returns to reject one row it was given (say, a date
// in the future): the row is counted and listed as bad with its line number and
// reason, like the rows the parser rejects itself, and the parse goes on.
func BadRow(reason string) error { return badRow(reason) }

type badRow string

func (b badRow) Error() string { return string(b) }

// lineRecords splits a stream into physical lines and parses each on its own as one CSV
// record, so a quote can never carry a field over into the next line. One csv.Reader is
// reused: it is fed a single line at a time and sees the end of input after it.
type lineRecords struct {
	br   *bufio.Reader
	feed lineFeed
	cr   *csv.Reader
	line int
	long []byte // a line longer than br's buffer
}

func newLineRecords(r io.Reader) *lineRecords {
	lr := &lineRecords{br: bufio.NewReaderSize(r, 64<<10)}
	lr.cr = csv.NewReader(&lr.feed)
	lr.cr.FieldsPerRecord = -1
	lr.cr.ReuseRecord = true
	lr.cr.TrimLeadingSpace = true
	return lr
}

// next returns the record of the next non-blank line and its line number (1-based). A
// malformed line gives a *csv.ParseError (the caller moves on to the next line); io.EOF
// ends the input; any other error is the reader's.
func (l *lineRecords) next() ([]string, int, error) {
	for {
		line, err := l.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			l.long = append(l.long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = l.br.ReadSlice('\n')
				l.long = append(l.long, line...)
			}
			line = l.long
		}
		if err != nil && (!errors.Is(err, io.EOF) || len(line) == 0) {
			return nil, l.line, err
		}
		l.line++
		if l.line == 1 {
			line = bytes.TrimPrefix(line, utf8BOM)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		l.feed.b = line
		rec, err := l.cr.Read()
		l.feed.b = nil
		if errors.Is(err, io.EOF) { // nothing but a line end the CSV reader skips
			continue
		}
		return rec, l.line, err
	}
}

var utf8BOM = []byte("\ufeff")

// lineFeed hands the CSV reader one line, then the end of input; it can be refilled.
type lineFeed struct{ b []byte }

func (f *lineFeed) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

func field(rec []string, i int) string {
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

func parseNum(rec []string, i int, name string, lo, hi float64) (float64, bool, error) {
	s := field(rec, i)
	if s == "" {
		return 0, false, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || v < lo || v > hi {
		return 0, false, fmt.Errorf("%s %q: want a number in [%g, %g]", name, s, lo, hi)
	}
	return v, true, nil
}

func (c firmsColumns) row(rec []string) (Hotspot, error) {
	h := Hotspot{Type: -1}
	var ok bool
	var err error
	if h.Lat, ok, err = parseNum(rec, c.lat, "latitude", -90, 90); err != nil || !ok {
		return h, orMissing(err, "latitude")
	}
	if h.Lon, ok, err = parseNum(rec, c.lon, "longitude", -180, 180); err != nil || !ok {
		return h, orMissing(err, "longitude")
	}
	if h.Acquired, err = parseAcq(field(rec, c.date), field(rec, c.tim)); err != nil {
		return h, err
	}
	h.Satellite = canonicalSatellite(field(rec, c.sat))
	h.Instrument = strings.ToUpper(field(rec, c.inst))
	if h.Instrument == "" {
		h.Instrument = c.instrumentFromHeader
	}
	if h.Instrument == "" {
		h.Instrument = instrumentOf(h.Satellite)
	}
	if h.Instrument != "VIIRS" && h.Instrument != "MODIS" {
		return h, fmt.Errorf("instrument %q: want VIIRS or MODIS", h.Instrument)
	}
	if h.Satellite == "" {
		return h, errors.New("satellite: missing")
	}
	if h.Scan, ok, err = parseNum(rec, c.scan, "scan", 0.05, 10); err != nil {
		return h, err
	} else if !ok {
		h.Scan = nominalPixelKm(h.Instrument)
	}
	if h.Track, ok, err = parseNum(rec, c.track, "track", 0.05, 10); err != nil {
		return h, err
	} else if !ok {
		h.Track = nominalPixelKm(h.Instrument)
	}
	if h.Bright, _, err = parseNum(rec, c.bright, "brightness", 0, 1000); err != nil {
		return h, err
	}
	if h.Bright2, _, err = parseNum(rec, c.bright2, "brightness 2", 0, 1000); err != nil {
		return h, err
	}
	if h.FRP, _, err = parseNum(rec, c.frp, "frp", -1, 1e6); err != nil {
		return h, err
	}
	if h.Confidence, h.ConfLevel, err = parseConfidence(field(rec, c.conf)); err != nil {
		return h, err
	}
	h.Version = field(rec, c.ver)
	h.DayNight = strings.ToUpper(field(rec, c.dn))
	if h.DayNight != "" && h.DayNight != "D" && h.DayNight != "N" {
		return h, fmt.Errorf("daynight %q: want D or N", h.DayNight)
	}
	if s := field(rec, c.typ); s != "" {
		t, err := strconv.Atoi(s)
		if err != nil || t < 0 || t > 3 {
			return h, fmt.Errorf("type %q: want 0–3", s)
		}
		h.Type = t
	}
	h.Country = field(rec, c.country)
	return h, nil
}

func orMissing(err error, name string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%s: missing", name)
}

// parseAcq joins acq_date (YYYY-MM-DD) and acq_time (HHMM UTC; unpadded "33" = 00:33,
// "5" = 00:05; "HH:MM" also accepted).
func parseAcq(date, tm string) (time.Time, error) {
	d, err := time.Parse("2006-01-02", date)
	if err != nil {
		return time.Time{}, fmt.Errorf("acq_date %q: want YYYY-MM-DD", date)
	}
	t := strings.ReplaceAll(tm, ":", "")
	if t == "" || len(t) > 4 {
		return time.Time{}, fmt.Errorf("acq_time %q: want HHMM", tm)
	}
	n, err := strconv.Atoi(t)
	if err != nil || strings.Trim(t, "0123456789") != "" {
		return time.Time{}, fmt.Errorf("acq_time %q: want HHMM", tm)
	}
	hh, mm := n/100, n%100
	if hh > 23 || mm > 59 {
		return time.Time{}, fmt.Errorf("acq_time %q: no such time of day", tm)
	}
	return d.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute).UTC(), nil
}

// parseConfidence normalises VIIRS l/n/h (or words) and MODIS 0–100 and derives a
// common level (MODIS: < 30 low, < 80 nominal, else high, as in the MODIS user guide).
func parseConfidence(s string) (conf, level string, err error) {
	switch strings.ToLower(s) {
	case "":
		return "", "", nil
	case "l", "low":
		return "low", "low", nil
	case "n", "nominal":
		return "nominal", "nominal", nil
	case "h", "high":
		return "high", "high", nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 100 {
		return "", "", fmt.Errorf("confidence %q: want l/n/h, low/nominal/high or 0–100", s)
	}
	switch {
	case n < 30:
		level = "low"
	case n < 80:
		level = "nominal"
	default:
		level = "high"
	}
	return strconv.Itoa(n), level, nil
}

// instrumentOf infers the instrument from the satellite when the file does not say.
func instrumentOf(sat string) string {
	switch canonicalSatellite(sat) {
	case "N", "N20", "N21":
		return "VIIRS"
	case "T", "A":
		return "MODIS"
	}
	return ""
}

// satelliteCodes maps the spellings FIRMS uses for one satellite (NRT files: codes;
// archive files: names; JPSS numbers) to the NRT code, upper-cased with spaces and
// dashes removed.
var satelliteCodes = map[string]string{
	"T": "T", "TERRA": "T",
	"A": "A", "AQUA": "A",
	"N": "N", "NPP": "N", "SNPP": "N", "SUOMINPP": "N",
	"N20": "N20", "NOAA20": "N20", "J1": "N20", "JPSS1": "N20", "1": "N20",
	"N21": "N21", "NOAA21": "N21", "J2": "N21", "JPSS2": "N21", "2": "N21",
}

// canonicalSatellite returns the one code a hotspot is stored and identified under
// (T, A, N, N20, N21) for any spelling FIRMS uses; an unknown satellite is kept as given
// (trimmed).
func canonicalSatellite(sat string) string {
	sat = strings.TrimSpace(sat)
	if c, ok := satelliteCodes[sat]; ok { // the usual case: an NRT code
		return c
	}
	if c, ok := satelliteCodes[satelliteSeparators.Replace(strings.ToUpper(sat))]; ok {
		return c
	}
	return sat
}

var satelliteSeparators = strings.NewReplacer(" ", "", "-", "", "_", "")

// nominalPixelKm is the nadir pixel size used when scan/track are absent.
func nominalPixelKm(instrument string) float64 {
	if instrument == "MODIS" {
		return 1
	}
	return 0.375
}
