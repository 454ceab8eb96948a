package hotspot

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/errs"
)

func parseAll(t *testing.T, data []byte, maxBad int) ([]Hotspot, ParseResult, error) {
	t.Helper()
	var out []Hotspot
	res, err := ParseFIRMS(bytes.NewReader(data), maxBad, 0, func(h Hotspot) error {
		out = append(out, h)
		return nil
	})
	return out, res, err
}

// dataLines counts the non-empty lines after the header, independently of the parser.
func dataLines(t *testing.T, data []byte) int {
	t.Helper()
	n := -1
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			n++
		}
	}
	return n
}

func TestParseFIRMSVariants(t *testing.T) {
	shared := sharedFIRMS(t)
	tests := []struct {
		name       string
		path       string
		instrument string
		first      Hotspot // fields checked on the first row
		levels     []string
	}{
		{name: "VIIRS regional 7d, no instrument, confidence words (real)",
			path: filepath.Join(shared, "viirs_snpp_south_asia_7d_sample.csv"), instrument: "VIIRS",
			first: Hotspot{Lat: 10.82826, Lon: 79.18586, Acquired: time.Date(2026, 9, 20, 8, 35, 0, 0, time.UTC),
				Satellite: "N", Scan: 0.4, Track: 0.44, Bright: 339.68, Bright2: 298.65, FRP: 2.84, Confidence: "nominal",
				ConfLevel: "nominal", Version: "2.0NRT", DayNight: "D", Type: -1, Line: 2},
			levels: []string{"low", "nominal"}},
		{name: "MODIS regional 7d, confidence 0-100 (real)",
			path: filepath.Join(shared, "modis_c61_south_asia_7d_sample.csv"), instrument: "MODIS",
			first: Hotspot{Lat: 11.76757, Lon: 78.84091, Acquired: time.Date(2026, 9, 17, 10, 17, 0, 0, time.UTC),
				Satellite: "A", Scan: 1.01, Track: 1, Bright: 316.59, Bright2: 298.15, FRP: 6.14, Confidence: "62",
				ConfLevel: "nominal", Version: "6.1NRT", DayNight: "D", Type: -1, Line: 2},
			levels: []string{"low", "nominal", "high"}},
		{name: "MODIS global 24h (real, 13069 rows)",
			path: filepath.Join(shared, "modis_c61_global_24h_2025-04-22.csv"), instrument: "MODIS",
			first: Hotspot{Lat: 35.35244, Lon: 139.87474, Acquired: time.Date(2025, 4, 22, 0, 13, 0, 0, time.UTC),
				Satellite: "T", Scan: 1.33, Track: 1.14, Bright: 313.07, Bright2: 294.93, FRP: 10.82, Confidence: "0",
				ConfLevel: "low", Version: "6.1NRT", DayNight: "D", Type: -1, Line: 2},
			levels: []string{"low", "nominal", "high"}},
		{name: "VIIRS API with instrument, l/n/h, unpadded acq_time",
			path: "testdata/viirs_noaa20_api_instrument.csv", instrument: "VIIRS",
			first: Hotspot{Lat: 25.21034, Lon: 100.21987, Acquired: time.Date(2026, 3, 14, 0, 33, 0, 0, time.UTC),
				Satellite: "N20", Instrument: "VIIRS", Scan: 0.39, Track: 0.36, Bright: 341.2, Bright2: 290.11, FRP: 5.31,
				Confidence: "nominal", ConfLevel: "nominal", Version: "2.0NRT", DayNight: "N", Type: -1, Line: 2},
			levels: []string{"low", "nominal", "high"}},
		{name: "MODIS archive with type",
			path: "testdata/modis_archive_type.csv", instrument: "MODIS",
			first: Hotspot{Lat: 25.2211, Lon: 100.3102, Acquired: time.Date(2024, 4, 2, 3, 15, 0, 0, time.UTC),
				Satellite: "T", Scan: 1.1, Track: 1.0, Bright: 318.4, Bright2: 296.2, FRP: 14.7, Confidence: "72",
				ConfLevel: "nominal", Version: "6.1", DayNight: "D", Type: 0, Line: 2},
			levels: []string{"low", "nominal", "high"}},
		{name: "VIIRS country file with leading country_id",
			path: "testdata/viirs_country_china.csv", instrument: "VIIRS",
			first: Hotspot{Lat: 25.33105, Lon: 100.18277, Acquired: time.Date(2026, 3, 15, 5, 27, 0, 0, time.UTC),
				Satellite: "N", Scan: 0.41, Track: 0.45, Bright: 333.51, Bright2: 294.1, FRP: 3.9, Confidence: "nominal",
				ConfLevel: "nominal", Version: "2.0NRT", DayNight: "D", Type: -1, Country: "CHN", Line: 2},
			levels: []string{"nominal", "high"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			hs, res, err := parseAll(t, data, 10)
			if err != nil {
				t.Fatal(err)
			}
			if want := dataLines(t, data); res.Rows != want || len(hs) != want || res.BadCount != 0 {
				t.Fatalf("rows %d (callbacks %d), bad %d %v; want %d rows, 0 bad", res.Rows, len(hs), res.BadCount, res.Bad, want)
			}
			want := tc.first
			want.Instrument = tc.instrument
			if hs[0] != want {
				t.Errorf("first row\n got %+v\nwant %+v", hs[0], want)
			}
			levels := map[string]bool{}
			for i, h := range hs {
				if h.Instrument != tc.instrument || h.Satellite == "" || h.Acquired.IsZero() || h.Scan <= 0 || h.Track <= 0 {
					t.Fatalf("row %d: %+v", i, h)
				}
				if h.Line != i+2 {
					t.Fatalf("row %d has line %d", i, h.Line)
				}
				levels[h.ConfLevel] = true
			}
			for _, l := range tc.levels {
				if !levels[l] {
					t.Errorf("no row with confidence level %q (have %v)", l, levels)
				}
			}
		})
	}
}

func TestParseFIRMSArchiveTypesAndGzipCopy(t *testing.T) {
	data, err := os.ReadFile("testdata/modis_archive_type.csv")
	if err != nil {
		t.Fatal(err)
	}
	hs, _, err := parseAll(t, data, 10)
	if err != nil {
		t.Fatal(err)
	}
	var types []int
	for _, h := range hs {
		types = append(types, h.Type)
	}
	if len(types) != 3 || types[0] != 0 || types[1] != 2 || types[2] != 3 {
		t.Fatalf("types %v, want [0 2 3]", types)
	}
}

func TestParseAcqTime(t *testing.T) {
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "0033", want: 33 * time.Minute},
		{in: "33", want: 33 * time.Minute},
		{in: "5", want: 5 * time.Minute},
		{in: "0", want: 0},
		{in: "612", want: 6*time.Hour + 12*time.Minute},
		{in: "1504", want: 15*time.Hour + 4*time.Minute},
		{in: "2359", want: 23*time.Hour + 59*time.Minute},
		{in: "15:04", want: 15*time.Hour + 4*time.Minute},
		{in: "2400", bad: true},
		{in: "2460", bad: true},
		{in: "0160", bad: true},
		{in: "12345", bad: true},
		{in: "", bad: true},
		{in: "+5", bad: true},
		{in: "-5", bad: true},
		{in: "1a", bad: true},
	}
	for _, tc := range tests {
		got, err := parseAcq("2026-03-14", tc.in)
		switch {
		case tc.bad && err == nil:
			t.Errorf("acq_time %q: accepted as %v", tc.in, got)
		case !tc.bad && err != nil:
			t.Errorf("acq_time %q: %v", tc.in, err)
		case !tc.bad && !got.Equal(day.Add(tc.want)):
			t.Errorf("acq_time %q = %v, want %v", tc.in, got, day.Add(tc.want))
		}
	}
	for _, d := range []string{"2026/03/14", "14-03-2026", "2026-02-30", ""} {
		if _, err := parseAcq(d, "0100"); err == nil {
			t.Errorf("acq_date %q accepted", d)
		}
	}
}

func TestParseConfidence(t *testing.T) {
	tests := []struct{ in, conf, level string }{
		{"l", "low", "low"}, {"N", "nominal", "nominal"}, {"h", "high", "high"},
		{"low", "low", "low"}, {"Nominal", "nominal", "nominal"}, {"HIGH", "high", "high"},
		{"0", "0", "low"}, {"29", "29", "low"}, {"30", "30", "nominal"}, {"79", "79", "nominal"}, {"80", "80", "high"},
		{"100", "100", "high"}, {"", "", ""},
	}
	for _, tc := range tests {
		c, l, err := parseConfidence(tc.in)
		if err != nil || c != tc.conf || l != tc.level {
			t.Errorf("%q → %q %q %v; want %q %q", tc.in, c, l, err, tc.conf, tc.level)
		}
	}
	for _, in := range []string{"101", "-1", "maybe", "5.5"} {
		if _, _, err := parseConfidence(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestParseFIRMSBadRowsKeepGoodOnes(t *testing.T) {
	data, err := os.ReadFile("testdata/mixed_bad_rows.csv")
	if err != nil {
		t.Fatal(err)
	}
	hs, res, err := parseAll(t, data, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || hs[0].Line != 2 || hs[1].Line != 9 {
		t.Fatalf("good rows %+v, want lines 2 and 9", hs)
	}
	wantBad := map[int]string{3: "latitude", 4: "acq_time", 5: "acq_date", 6: "fields", 7: "confidence"}
	if res.BadCount != len(wantBad) || len(res.Bad) != len(wantBad) {
		t.Fatalf("bad %d %+v, want %d", res.BadCount, res.Bad, len(wantBad))
	}
	for _, b := range res.Bad {
		if w, ok := wantBad[b.Line]; !ok || !strings.Contains(b.Reason, w) {
			t.Errorf("bad row line %d reason %q; want line in %v mentioning %q", b.Line, b.Reason, wantBad, w)
		}
	}
	// maxBad limits the list, not the count.
	_, res, err = parseAll(t, data, 2)
	if err != nil || res.BadCount != 5 || len(res.Bad) != 2 {
		t.Fatalf("maxBad 2: count %d list %d err %v", res.BadCount, len(res.Bad), err)
	}
}

func TestParseFIRMSFileErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"blank lines only", "\n\n"},
		{"no latitude", "lat_x,longitude,acq_date,acq_time\n1,2,2026-01-01,0101\n"},
		{"no acq_time", "latitude,longitude,acq_date\n1,2,2026-01-01\n"},
		{"not csv header", "\"unterminated\n"},
	}
	for _, tc := range tests {
		_, _, err := parseAll(t, []byte(tc.in), 10)
		if !errors.Is(err, ErrBadFile) || !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("%s: err %v, want ErrBadFile", tc.name, err)
		}
	}
	// BOM, CRLF and a quoted field are fine.
	in := "\ufefflatitude,longitude,acq_date,acq_time,satellite,scan,track\r\n\"25.1\",100.1,2026-01-01,101,N,0.4,0.4\r\n"
	hs, res, err := parseAll(t, []byte(in), 10)
	if err != nil || res.Rows != 1 || hs[0].Instrument != "VIIRS" || hs[0].Acquired.Hour() != 1 || hs[0].Acquired.Minute() != 1 {
		t.Fatalf("BOM/CRLF: %+v %+v %v", hs, res, err)
	}
	// Too many rows.
	var b strings.Builder
	b.WriteString(viirsHeader)
	for i := 0; i < 5; i++ {
		b.WriteString(viirsRow(25.1, 100.1+float64(i)/100, t0, "N", 1))
	}
	_, err = ParseFIRMS(strings.NewReader(b.String()), 10, 4, func(Hotspot) error { return nil })
	if !errors.Is(err, ErrTooManyRows) || !errors.Is(err, errs.ErrTooLarge) {
		t.Fatalf("5 rows with max 4: %v", err)
	}
}

func FuzzParseFIRMS(f *testing.F) {
	for _, p := range []string{"testdata/viirs_noaa20_api_instrument.csv", "testdata/modis_archive_type.csv",
		"testdata/viirs_country_china.csv", "testdata/mixed_bad_rows.csv"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("latitude,longitude,acq_date,acq_time,satellite\n1,2,2026-01-01,5,N\n\"x\ny\",1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		last := 0
		res, err := ParseFIRMS(bytes.NewReader(data), 1000, 0, func(h Hotspot) error {
			if h.Lat < -90 || h.Lat > 90 || h.Lon < -180 || h.Lon > 180 || h.Lat != h.Lat {
				t.Fatalf("position out of range: %+v", h)
			}
			if h.Instrument != "VIIRS" && h.Instrument != "MODIS" || h.Satellite == "" || h.Scan <= 0 || h.Track <= 0 {
				t.Fatalf("incomplete hotspot: %+v", h)
			}
			if h.Acquired.Location() != time.UTC || h.Acquired.Second() != 0 {
				t.Fatalf("acquired %v", h.Acquired)
			}
			if h.Line <= last || h.Line > lines {
				t.Fatalf("line %d after %d (of %d)", h.Line, last, lines)
			}
			last = h.Line
			return nil
		})
		if err != nil && !errors.Is(err, ErrBadFile) {
			t.Fatalf("error %v is not ErrBadFile", err)
		}
		if res.Rows+res.BadCount > lines {
			t.Fatalf("%d rows + %d bad from %d lines", res.Rows, res.BadCount, lines)
		}
		for _, b := range res.Bad {
			if b.Line < 2 || b.Line > lines || b.Reason == "" {
				t.Fatalf("bad row %+v of %d lines", b, lines)
			}
		}
	})
}

// FIRMS has no multi-line fields: a stray quote spoils its own line only, never the
// rows after it.
func TestParseFIRMSStrayQuoteIsOneBadRow(t *testing.T) {
	var rows []string
	for i := 0; i < 5; i++ {
		rows = append(rows, viirsRow(25.1, 100.1+float64(i)/100, t0, "N", 1))
	}
	tests := []struct {
		name string
		row  int // 0-based data row to spoil
		mod  func(string) string
	}{
		{"unterminated quoted field in row 2", 1, func(r string) string { return `"` + r }},
		{"bare quote inside a field in row 2", 1, func(r string) string { return strings.Replace(r, "330.5", `33"0.5`, 1) }},
		{"quote opened at the end of row 2", 1, func(r string) string { return strings.TrimSuffix(r, "\n") + `,"` + "\n" }},
		{"unterminated quoted field in the first row", 0, func(r string) string { return `"` + r }},
		{"unterminated quoted field in the last row", 4, func(r string) string { return `"` + r }},
		{"quoted field closed on the same line is fine", -1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := append([]string(nil), rows...)
			if tc.row >= 0 {
				rs[tc.row] = tc.mod(rs[tc.row])
			} else {
				rs[1] = strings.Replace(rs[1], "330.5", `"330.5"`, 1)
			}
			hs, res, err := parseAll(t, []byte(viirsHeader+strings.Join(rs, "")), 10)
			if err != nil {
				t.Fatal(err)
			}
			wantGood, wantBad := 4, 1
			if tc.row < 0 {
				wantGood, wantBad = 5, 0
			}
			if res.Rows != wantGood || len(hs) != wantGood || res.BadCount != wantBad {
				t.Fatalf("good %d, bad %d %+v; want %d good, %d bad", res.Rows, res.BadCount, res.Bad, wantGood, wantBad)
			}
			if wantBad == 1 && res.Bad[0].Line != tc.row+2 {
				t.Errorf("bad row at line %d, want %d", res.Bad[0].Line, tc.row+2)
			}
			var want []int
			for i := range rs {
				if i != tc.row {
					want = append(want, i+2)
				}
			}
			for i, h := range hs {
				if h.Line != want[i] {
					t.Errorf("good row %d at line %d, want %d", i, h.Line, want[i])
				}
			}
		})
	}
}

// A byte order mark before the header is dropped before the CSV is read, so a quoted
// first column name is still recognised.
func TestParseFIRMSHeaderBOM(t *testing.T) {
	row := "25.1,100.1,2026-01-01,0101,N\n"
	for _, header := range []string{
		"\ufefflatitude,longitude,acq_date,acq_time,satellite\n",
		"\ufeff\"latitude\",longitude,acq_date,acq_time,satellite\n",
		"\ufeff\"latitude\",\"longitude\",\"acq_date\",\"acq_time\",\"satellite\"\r\n",
	} {
		hs, res, err := parseAll(t, []byte(header+row), 10)
		if err != nil || res.Rows != 1 || res.BadCount != 0 || hs[0].Lat != 25.1 || hs[0].Line != 2 {
			t.Errorf("header %q: %+v %+v %v", header, hs, res, err)
		}
	}
}

// Satellites are stored under one code whatever spelling the file uses.
func TestCanonicalSatellite(t *testing.T) {
	for in, want := range map[string]string{
		"T": "T", "t": "T", "Terra": "T", "TERRA": "T", "A": "A", "Aqua": "A", " aqua ": "A",
		"N": "N", "NPP": "N", "Suomi NPP": "N", "Suomi-NPP": "N", "SNPP": "N",
		"N20": "N20", "NOAA-20": "N20", "NOAA 20": "N20", "J1": "N20", "1": "N20",
		"N21": "N21", "NOAA-21": "N21", "J2": "N21", "2": "N21",
		"GOES-16": "GOES-16", "": "",
	} {
		if got := canonicalSatellite(in); got != want {
			t.Errorf("canonicalSatellite(%q) = %q, want %q", in, got, want)
		}
	}
}
