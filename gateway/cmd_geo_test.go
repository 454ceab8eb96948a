package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lookoutfire/lookout/geo"
	"github.com/lookoutfire/lookout/ingest"
)

const geoTestForests = `{"type":"FeatureCollection","features":[
 {"type":"Feature","id":"F1","properties":{},"geometry":{"type":"Polygon","coordinates":[[[107.0,31.0],[107.01,31.0],[107.01,31.01],[107.0,31.01],[107.0,31.0]]]}}]}`

const geoTestZones = `{"type":"FeatureCollection","features":[
 {"type":"Feature","id":"c1","properties":{"name":"县","level":"county"},"geometry":{"type":"Polygon","coordinates":[[[106.9,30.9],[107.1,30.9],[107.1,31.1],[106.9,31.1],[106.9,30.9]]]}},
 {"type":"Feature","id":"v1","properties":{"name":"村","level":"village","parent":"c1","duty":[{"name":"王","phone":"13800000003","role":"护林员"}]},"geometry":{"type":"Polygon","coordinates":[[[107.0,31.0],[107.05,31.0],[107.05,31.05],[107.0,31.05],[107.0,31.0]]]}}]}`

func writeGeoFiles(t *testing.T) (forests, zones string) {
	t.Helper()
	dir := t.TempDir()
	forests, zones = filepath.Join(dir, "forests.geojson"), filepath.Join(dir, "zones.geojson")
	if err := os.WriteFile(forests, []byte(geoTestForests), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(zones, []byte(geoTestZones), 0o644); err != nil {
		t.Fatal(err)
	}
	return forests, zones
}

func TestCmdGeoLocate(t *testing.T) {
	forests, zones := writeGeoFiles(t)
	in := "name,lat,lon\nin,31.005,107.005\nnear,31.0145,107.005\nzone-only,31.04,107.04\nfar,35,110\n"
	var out, errb bytes.Buffer
	code := dispatch(context.Background(), []string{"geo", "locate", "--forests", forests, "--zones", zones}, strings.NewReader(in), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "name,lat,lon,forest_id,zone_path,forest_distance_m" {
		t.Fatalf("header %q", got)
	}
	want := map[string][2]string{"in": {"F1", "v1;c1"}, "near": {"", "v1;c1"}, "zone-only": {"", "v1;c1"}, "far": {"", ""}}
	for _, r := range rows[1:] {
		w := want[r[0]]
		if r[3] != w[0] || r[4] != w[1] {
			t.Errorf("%s: forest %q zones %q, want %v", r[0], r[3], r[4], w)
		}
	}
	// 0.0045° of latitude north of the forest: ~499 m; beyond 5 km: empty.
	if rows[1][5] != "0.0" || !strings.HasPrefix(rows[2][5], "49") || rows[4][5] != "" {
		t.Errorf("distances %q %q %q", rows[1][5], rows[2][5], rows[4][5])
	}
}

func TestCmdGeoErrors(t *testing.T) {
	forests, _ := writeGeoFiles(t)
	bad := filepath.Join(t.TempDir(), "open.geojson")
	if err := os.WriteFile(bad, []byte(`{"type":"FeatureCollection","features":[{"type":"Feature","id":"open1","geometry":{"type":"Polygon","coordinates":[[[107,31],[107.1,31],[107.1,31.1],[107,31.1]]]}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		args  []string
		stdin string
		msg   string
	}{
		{"no subcommand", []string{"geo"}, "", "missing subcommand"},
		{"unknown subcommand", []string{"geo", "draw"}, "", "unknown subcommand"},
		{"no layers", []string{"geo", "locate"}, "lat,lon\n", "--forests or --zones"},
		{"bad layer", []string{"geo", "locate", "--forests", bad}, "lat,lon\n", `"open1"`},
		{"bad crs", []string{"geo", "locate", "--forests", forests, "--crs", "bd09"}, "lat,lon\n", "crs"},
		{"bad csv", []string{"geo", "locate", "--forests", forests}, "x,y\n1,2\n", "no lat and lon"},
		{"refused fix", []string{"geo", "triangulate"}, `[{"lat":31,"lon":107,"bearing_deg":10},{"lat":31,"lon":107.0001,"bearing_deg":80}]`, "too close"},
		{"bad json", []string{"geo", "triangulate"}, `{`, "JSON array"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := dispatch(context.Background(), c.args, strings.NewReader(c.stdin), &out, &errb)
			if code == 0 || !strings.Contains(errb.String(), c.msg) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", code, errb.String(), c.msg)
			}
		})
	}
}

func TestCmdGeoTriangulate(t *testing.T) {
	// Two towers 10 km south and 10 km west of a fire at (107.2, 31.3): bearings 0° and
	// 90° − Δλ/2·sin φ ≈ 89.9728° (a geodesic heading east climbs off the parallel).
	in := `[{"lat":31.20979,"lon":107.2,"bearing_deg":0},{"lat":31.3,"lon":107.09514,"bearing_deg":89.9728}]`
	var out, errb bytes.Buffer
	if code := dispatch(context.Background(), []string{"geo", "triangulate"}, strings.NewReader(in), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var f struct{ Lat, Lon, ErrorM float64 }
	var raw map[string]any
	if err := json.Unmarshal(out.Bytes(), &raw); err != nil || len(raw) != 3 || raw["error_m"] == nil {
		t.Fatalf("output %s", out.String())
	}
	_ = json.Unmarshal(out.Bytes(), &f)
	if d := geoDistance(f.Lat, f.Lon, 31.3, 107.2); d > 30 {
		t.Errorf("fix %.5f,%.5f is %.0f m from the fire", f.Lat, f.Lon, d)
	}
}

func geoDistance(lat1, lon1, lat2, lon2 float64) float64 {
	return geo.Distance([2]float64{lon1, lat1}, [2]float64{lon2, lat2})
}

func TestGeoTagger(t *testing.T) {
	forests, zones := writeGeoFiles(t)
	cfg := geo.DefaultConfig()
	cfg.Forests.Path, cfg.Zones.Path = forests, zones
	layers, err := geo.NewLayers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tag := geoTagger{layers}
	r := ingest.Reading{Lat: 31.005, Lon: 107.005}
	tag.Tag(&r)
	if r.Zone != "v1" || r.Forest != "F1" {
		t.Errorf("tagged %q %q", r.Zone, r.Forest)
	}
	r = ingest.Reading{Lat: 31.005, Lon: 107.005, Zone: "assigned"}
	tag.Tag(&r)
	if r.Zone != "assigned" || r.Forest != "F1" {
		t.Errorf("explicit zone overwritten: %q %q", r.Zone, r.Forest)
	}
}
