package geo

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/paulmach/orb"

	"github.com/lookoutfire/lookout/errs"
)

func cliIndex(t testing.TB) *Index {
	l := mustLayers(t, DefaultConfig())
	if err := l.Replace(LayerForests, fc(t,
		feat("F1", orb.Polygon{rect(107.0, 31.0, 107.01, 31.01)}, nil),
		feat("F2", orb.Polygon{rect(107.005, 31.005, 107.02, 31.02)}, nil),
	), ""); err != nil {
		t.Fatal(err)
	}
	if err := l.Replace(LayerZones, testZones(t), ""); err != nil {
		t.Fatal(err)
	}
	return l.Current()
}

func TestLocateCSV(t *testing.T) {
	ix := cliIndex(t)
	in := "id,Latitude,Longitude,note\n" +
		"a,31.002,107.002,\"inside F1, grid g1\"\n" +
		"b,31.007,107.007,both\n" +
		"c,31.03,107.015,north of F2\n" +
		"d,31.3,107.3,far\n"
	var out bytes.Buffer
	if err := LocateCSV(ix, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := []string{"id", "Latitude", "Longitude", "note", "forest_id", "zone_path", "forest_distance_m"}
	if strings.Join(rows[0], ",") != strings.Join(wantHeader, ",") {
		t.Fatalf("header %v", rows[0])
	}
	want := map[string][3]string{
		"a": {"F1", "g1;v1;t1;c1", "0.0"},
		"b": {"F1;F2", "g1;v1;t1;c1", "0.0"},
		"c": {"", "g1;v1;t1;c1", ""}, // distance checked numerically below
		"d": {"", "c1", ""},
	}
	for _, r := range rows[1:] {
		if len(r) != 7 {
			t.Fatalf("row %v has %d columns", r, len(r))
		}
		w := want[r[0]]
		if r[4] != w[0] || r[5] != w[1] {
			t.Errorf("row %s: forest %q zones %q, want %q %q", r[0], r[4], r[5], w[0], w[1])
		}
		switch r[0] {
		case "c": // 0.01° of latitude north of F2's top edge
			d, err := strconv.ParseFloat(r[6], 64)
			if err != nil || d < 1105 || d > 1112 {
				t.Errorf("row c distance %q, want ~1109 m", r[6])
			}
		default:
			if r[6] != w[2] {
				t.Errorf("row %s distance %q, want %q", r[0], r[6], w[2])
			}
		}
	}
	if rows[1][3] != "inside F1, grid g1" {
		t.Errorf("quoted field not preserved: %q", rows[1][3])
	}
}

func TestLocateCSVErrors(t *testing.T) {
	ix := cliIndex(t)
	cases := []struct{ name, in, msg string }{
		{"empty", "", "empty input"},
		{"no lat column", "x,y\n1,2\n", "no lat and lon"},
		{"bad number", "lat,lon\n31,107\nabc,107\n", "line 3"},
		{"out of range", "lat,lon\n91,107\n", "line 2"},
		{"short row", "id,lat,lon\n1\n", "line 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := LocateCSV(ix, strings.NewReader(c.in), &bytes.Buffer{})
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %v, want ErrInvalid mentioning %q", err, c.msg)
			}
		})
	}
}

func TestTriangulateJSON(t *testing.T) {
	fire := orb.Point{107.2, 31.3}
	s := []Sighting{sight(destination(fire, 180, 9000), fire, 0), sight(destination(fire, 270, 12000), fire, 0)}
	b, _ := json.Marshal(s)
	var out bytes.Buffer
	if err := TriangulateJSON(bytes.NewReader(b), &out, 100, 10); err != nil {
		t.Fatal(err)
	}
	var f map[string]float64
	if err := json.Unmarshal(out.Bytes(), &f); err != nil {
		t.Fatal(err)
	}
	if len(f) != 3 || Distance(orb.Point{f["lon"], f["lat"]}, fire) > 2 || !(f["error_m"] > 0) {
		t.Errorf("output %s", out.String())
	}
	for _, c := range []struct{ in, msg string }{
		{`[{"lat":31,"lon":107,"bearing_deg":10},{"lat":31,"lon":107.0001,"bearing_deg":80}]`, "too close"},
		{`{"lat":31}`, "JSON array"},
		{`[{"lat":31,"lon":107,"bearing":10}]`, "JSON array"},
		{`[] []`, "trailing"},
	} {
		if err := TriangulateJSON(strings.NewReader(c.in), &bytes.Buffer{}, 100, 10); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want %q", c.in, err, c.msg)
		}
	}
}

// TestTriangulateJSONMissingFields: a sighting without lat, lon or
// bearing_deg used to decode as 0 (a missing lon put the camera at longitude
// 0 and gave a "fix" at 55N 53E); it is refused, naming the sighting.
func TestTriangulateJSONMissingFields(t *testing.T) {
	good := `{"lat":31.22,"lon":107.2,"bearing_deg":315}`
	cases := []struct{ name, second, msg string }{
		// the reviewer's case: read as lon 0, this gave a fix at 55.05N 53.41E
		{"no lon", `{"lat":31.3,"bearing_deg":45}`, `sighting 2 (array index 1) has no "lon"`},
		{"no lat", `{"lon":107.1,"bearing_deg":90}`, `sighting 2 (array index 1) has no "lat"`},
		{"no bearing", `{"lat":31.3,"lon":107.1}`, `sighting 2 (array index 1) has no "bearing_deg"`},
		{"null lon", `{"lat":31.3,"lon":null,"bearing_deg":90}`, `has no "lon"`},
		{"empty object", `{}`, `has no "lat", "lon", "bearing_deg"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := TriangulateJSON(strings.NewReader("["+good+","+c.second+"]"), &out, 100, 10)
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %v, want ErrInvalid mentioning %q (output %q)", err, c.msg, out.String())
			}
		})
	}
	// zeros written out are real positions and bearings, not missing ones
	in := `[{"lat":0.0,"lon":0,"bearing_deg":45},{"lat":0,"lon":0.1,"bearing_deg":315}]`
	if err := TriangulateJSON(strings.NewReader(in), &bytes.Buffer{}, 100, 10); err != nil {
		t.Errorf("explicit zeros: %v", err)
	}
}

// TestLocateCSVByteOrderMark: Excel's and R's "CSV UTF-8" start with a BOM,
// and R's write.csv quotes the header; the BOM is not part of the first field.
func TestLocateCSVByteOrderMark(t *testing.T) {
	ix := cliIndex(t)
	cases := []struct{ name, in, header string }{
		{"quoted header", "\ufeff\"lat\",\"lon\"\n31.002,107.002\n", "lat,lon"},
		{"quoted header with id", "\ufeff\"id\",\"lat\",\"lon\"\n\"a\",31.002,107.002\n", "id,lat,lon"},
		{"bare header", "\ufefflat,lon\n31.002,107.002\n", "lat,lon"},
		{"no BOM", "\"lat\",\"lon\"\n31.002,107.002\n", "lat,lon"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := LocateCSV(ix, strings.NewReader(c.in), &out); err != nil {
				t.Fatal(err)
			}
			bom := strings.HasPrefix(c.in, "\ufeff")
			if strings.HasPrefix(out.String(), "\ufeff") != bom {
				t.Errorf("output %q: BOM kept %v, want %v", out.String(), !bom, bom)
			}
			rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(out.String(), "\ufeff"))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if want := c.header + ",forest_id,zone_path,forest_distance_m"; len(rows) != 2 || strings.Join(rows[0], ",") != want {
				t.Fatalf("rows %q, want header %q and one row", rows, want)
			}
			if r := rows[1]; r[len(r)-3] != "F1" {
				t.Errorf("row %q: forest %q, want F1", r, r[len(r)-3])
			}
		})
	}
}

func FuzzLocateCSV(f *testing.F) {
	f.Add("lat,lon\n31.002,107.002\n31.3,107.3\n")
	f.Add("id,latitude,longitude\n\"a,b\",1e3,2\n")
	f.Add("lon,lat\n-181,0\nNaN,NaN\n")
	ix := cliIndex(f)
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		if err := LocateCSV(ix, strings.NewReader(in), &out); err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		// whatever was accepted comes back as CSV with three more columns per row
		rows, err := csv.NewReader(&out).ReadAll()
		if err != nil {
			t.Fatalf("output is not CSV: %v", err)
		}
		if len(rows) == 0 {
			t.Fatal("no header in output")
		}
	})
}

func FuzzTriangulateJSON(f *testing.F) {
	f.Add(`[{"lat":31,"lon":107,"bearing_deg":45},{"lat":31,"lon":107.1,"bearing_deg":315}]`)
	f.Add(`[{"lat":31,"lon":107,"bearing_deg":1e308},{"lat":-31,"lon":-107,"bearing_deg":-1e308}]`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		err := TriangulateJSON(strings.NewReader(in), &out, 100, 10)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		var fix Fix
		if err := json.Unmarshal(out.Bytes(), &fix); err != nil {
			t.Fatalf("output %q: %v", out.String(), err)
		}
		if checkPoint(orb.Point{fix.Lon, fix.Lat}) != nil || !(fix.ErrorM >= 0) {
			t.Fatalf("fix out of range: %+v", fix)
		}
	})
}
