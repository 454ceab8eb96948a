package alerting

import (
	"bytes"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/lookoutfire/lookout/errs"
)

// testdata/cffdrs_test_fwi.csv is the standard FWI test dataset of Van Wagner &
// Pickett (1985), as shipped with the R package cffdrs (data/test_fwi.csv:
// 48 consecutive days at 40°N from 1985-04-13), with the expected outputs of
// cffdrs::fwi() from the package's regression file tests/data/fwi_01.csv
// (github.com/cffdrs/cffdrs_r). The expected values are printed with six
// significant digits, so the tolerance is relative 1e-4 (absolute 1e-4 near 0).

type fwiRow struct {
	w    Weather
	want Indices
}

func loadCffdrs(t *testing.T) []fwiRow {
	t.Helper()
	f, err := os.Open("testdata/cffdrs_test_fwi.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	var rows []fwiRow
	for _, r := range recs[1:] {
		n := func(k string) float64 {
			v, err := strconv.ParseFloat(r[col[k]], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		rows = append(rows, fwiRow{
			w: Weather{Month: int(n("MON")), Temp: n("TEMP"), RH: n("RH"), Wind: n("WS"), Rain: n("PREC"), Lat: n("LAT")},
			want: Indices{Codes: Codes{FFMC: n("FFMC"), DMC: n("DMC"), DC: n("DC")}, ISI: n("ISI"), BUI: n("BUI"),
				FWI: n("FWI"), DSR: n("DSR")},
		})
	}
	return rows
}

func close6(got, want float64) bool {
	return math.Abs(got-want) <= math.Max(1e-4*math.Abs(want), 1e-4)
}

func TestFWIMatchesCffdrsTestDataset(t *testing.T) {
	rows := loadCffdrs(t)
	if len(rows) != 48 {
		t.Fatalf("rows = %d, want 48", len(rows))
	}
	prev := StartupCodes
	for i, r := range rows {
		got, err := Step(prev, r.w)
		if err != nil {
			t.Fatalf("day %d: %v", i+1, err)
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"FFMC", got.FFMC, r.want.FFMC}, {"DMC", got.DMC, r.want.DMC}, {"DC", got.DC, r.want.DC},
			{"ISI", got.ISI, r.want.ISI}, {"BUI", got.BUI, r.want.BUI}, {"FWI", got.FWI, r.want.FWI}, {"DSR", got.DSR, r.want.DSR},
		} {
			if !close6(c.got, c.want) {
				t.Errorf("day %d (%d-%02d): %s = %.6g, want %.6g", i+1, r.w.Month, i, c.name, c.got, c.want)
			}
		}
		prev = got.Codes
	}
}

func TestDayLengthBands(t *testing.T) {
	// One dry July day from start-up codes: DMC and DC depend on latitude band only
	// through the day-length tables.
	tests := []struct {
		lat    float64
		le, lf float64
	}{
		{46, 12.4, 6.4}, {25, 10.1, 6.4}, {15, 10.1, 1.4}, {0, 9, 1.4}, {-15, 7.9, 1.4}, {-25, 7.9, -1.6}, {-45, 6.5, -1.6},
	}
	for _, tc := range tests {
		got := DMC(6, 20, 40, 0, tc.lat, 7)
		want := 6 + 1.894*(20+1.1)*(100-40)*tc.le*1e-4
		if !close6(got, want) {
			t.Errorf("lat %v: DMC = %v, want %v", tc.lat, got, want)
		}
		gotDC := DC(15, 20, 0, tc.lat, 7)
		wantDC := 15 + math.Max((0.36*(20+2.8)+tc.lf)/2, 0)
		if !close6(gotDC, wantDC) {
			t.Errorf("lat %v: DC = %v, want %v", tc.lat, gotDC, wantDC)
		}
	}
}

func TestStepRejectsBadWeather(t *testing.T) {
	for _, w := range []Weather{
		{Month: 0, Temp: 10, RH: 50}, {Month: 13, Temp: 10, RH: 50}, {Month: 5, RH: -1}, {Month: 5, Wind: -1},
		{Month: 5, Rain: -0.1}, {Month: 5, Temp: math.NaN()}, {Month: 5, Lat: 91},
	} {
		if _, err := Step(StartupCodes, w); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", w, err)
		}
	}
	// RH of 100 is capped, not rejected (cffdrs behaviour).
	if _, err := Step(StartupCodes, Weather{Month: 5, Temp: 10, RH: 100, Lat: 40}); err != nil {
		t.Errorf("rh 100: %v", err)
	}
}

func TestLevelFor(t *testing.T) {
	bp := DefaultConfig().FireDanger.Breakpoints
	tests := []struct {
		fwi  float64
		want Level
	}{{0, 1}, {4.99, 1}, {5, 2}, {9.9, 2}, {10, 3}, {19.99, 3}, {20, 4}, {29.9, 4}, {30, 5}, {120, 5}}
	for _, tc := range tests {
		if got := LevelFor(tc.fwi, bp); got != tc.want {
			t.Errorf("LevelFor(%v) = %v, want %v", tc.fwi, got, tc.want)
		}
	}
	if Level(4).Colour() != "orange" || !strings.Contains(Level(5).Name(), "五级") {
		t.Errorf("level names: %s %s", Level(4).Colour(), Level(5).Name())
	}
}

func TestFWICSVReproducesCffdrs(t *testing.T) {
	raw, err := os.ReadFile("testdata/cffdrs_test_fwi.csv")
	if err != nil {
		t.Fatal(err)
	}
	// Feed only the input columns, lower-case and semicolon-separated like cffdrs' data file.
	recs, _ := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	var in strings.Builder
	in.WriteString("long;lat;yr;mon;day;temp;rh;ws;prec\n")
	for _, r := range recs[1:] {
		in.WriteString(strings.Join(r[:9], ";") + "\n")
	}
	var out bytes.Buffer
	if err := FWICSV(strings.NewReader(in.String()), &out, FWICSVOptions{Lat: 55}); err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 49 || strings.Join(got[0][9:], ",") != "FFMC,DMC,DC,ISI,BUI,FWI,DSR,LEVEL" {
		t.Fatalf("output header/rows: %v (%d rows)", got[0], len(got))
	}
	for i := 1; i < len(got); i++ {
		for j := 9; j < 16; j++ {
			g, _ := strconv.ParseFloat(got[i][j], 64)
			w, _ := strconv.ParseFloat(recs[i][j], 64)
			if !close6(g, w) {
				t.Errorf("row %d col %s = %v, want %v", i, got[0][j], g, w)
			}
		}
		fwi, _ := strconv.ParseFloat(recs[i][14], 64)
		if got[i][16] != strconv.Itoa(int(LevelFor(fwi, DefaultConfig().FireDanger.Breakpoints))) {
			t.Errorf("row %d LEVEL = %s for FWI %v", i, got[i][16], fwi)
		}
	}
}

func TestFWICSVErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"missing column", "MON,TEMP,RH,WS\n4,17,42,25\n"},
		{"bad number", "MON,TEMP,RH,WS,PREC\n4,hot,42,25,0\n"},
		{"fraction month", "MON,TEMP,RH,WS,PREC\n4.5,17,42,25,0\n"},
		{"short row", "MON,TEMP,RH,WS,PREC\n4,17\n"},
		{"negative rain", "MON,TEMP,RH,WS,PREC\n4,17,42,25,-1\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := FWICSV(strings.NewReader(tc.in), &bytes.Buffer{}, FWICSVOptions{Lat: 40})
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func FuzzFWICSV(f *testing.F) {
	f.Add("MON,TEMP,RH,WS,PREC\n4,17,42,25,0\n5,20,21,25,2.4\n")
	f.Add("lat;mon;temp;rh;ws;prec\n-45;1;30;10;40;0\n")
	f.Add("MON,TEMP,RH,WS,PREC,LAT\n7,35,5,80,0,\n")
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		err := FWICSV(strings.NewReader(in), &out, FWICSVOptions{Lat: 40})
		if err != nil {
			return
		}
		recs, err := csv.NewReader(&out).ReadAll()
		if err != nil {
			t.Fatalf("output is not CSV: %v", err)
		}
		for _, r := range recs[1:] {
			for _, v := range r[len(r)-8 : len(r)-1] {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil || math.IsNaN(x) || x < 0 {
					t.Fatalf("bad index %q in %v", v, r)
				}
			}
		}
	})
}
