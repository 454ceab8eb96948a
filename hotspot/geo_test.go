package hotspot

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/geo"
)

// seedLayers loads the demo county (seeds/) through the real geo package.
func seedLayers(t testing.TB) *geo.Layers {
	t.Helper()
	c := geo.DefaultConfig()
	c.Forests.Path, c.Zones.Path, c.Masks.Path = "../seeds/forests.geojson", "../seeds/zones.geojson", "../seeds/masks.geojson"
	l, err := geo.NewLayers(c)
	if err != nil {
		t.Fatalf("seed layers: %v", err)
	}
	return l
}

func TestGeoLocatorOnSeeds(t *testing.T) {
	g := GeoLocator{Layers: seedLayers(t)}
	p := g.Locate(31.575, 106.925)
	if len(p.Forests) != 1 || p.Forests[0] != "F-QS-001" || p.DistanceM != 0 || len(p.Zones) != 3 ||
		p.Zones[0].ID != "qs-v11" || p.Zones[2].ID != "qs" || p.Zones[0].Parent != "qs-t1" || len(p.Zones[0].Duty) == 0 || p.Zones[0].Duty[0].Phone == "" {
		t.Fatalf("in forest: %+v", p)
	}
	if p := g.Locate(31.445, 106.93); p.Mask != "M-QS-001" {
		t.Fatalf("kiln: %+v", p)
	}
	for _, tc := range []struct {
		lat, lon float64
		want     bool
	}{{31.5, 107.1, true}, {31.5, 107.215, true}, {31.5, 107.25, false}, {25, 100, false}} {
		if got := g.Within(tc.lat, tc.lon, 2000); got != tc.want {
			t.Errorf("within %v,%v: %v", tc.lat, tc.lon, got)
		}
	}
}

// TestDemoFlow is the "done when": a file dropped into the folder becomes reports
// in the right villages, a verifier closes one with an outcome and a photo through the API,
// and the statistics and exports show it.
func TestDemoFlow(t *testing.T) {
	drop := t.TempDir()
	e := newEnv(t, func(c *Config, d *Deps) {
		d.Locator = GeoLocator{Layers: seedLayers(t)}
		c.Sources = []SourceConfig{{Name: "drop", Dir: drop}}
	})
	srv := testServer(t, e)
	acq := time.Date(2026, 3, 14, 5, 27, 0, 0, time.UTC)
	csv := viirsHeader +
		viirsRow(31.575, 106.925, acq, "N", 6) + // F-QS-001, 鹤岭村
		viirsRow(31.43, 107.05, acq, "N", 3) + // F-QS-008, 石桥一网格
		viirsRow(31.445, 106.93, acq, "N", 20) + // brick kiln
		viirsRow(31.5, 107.215, acq, "N", 1) + // 1.4 km outside the county: kept
		viirsRow(31.5, 107.25, acq, "N", 1) // 4.7 km outside: dropped
	if err := os.WriteFile(filepath.Join(drop, "VIIRS_NRT_2026-03-14.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	// The first poll notes the file; the next one takes it, unchanged since.
	for _, now := range []time.Time{e.clk.Now(), e.clk.Advance(e.cfg.PollInterval)} {
		if err := e.svc.Poll(context.Background(), now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(drop, "done", "VIIRS_NRT_2026-03-14.csv")); err != nil {
		t.Fatal(err)
	}
	reports := listAll(t, e, ListFilter{})
	if len(reports) != 4 {
		t.Fatalf("%d reports", len(reports))
	}
	v11 := reportAt(t, e, 31.575, 106.925)
	if v11.ZoneID != "qs-v11" || v11.Class != ClassForest || v11.Forest != "F-QS-001" || v11.Assignee != "朱国庆" ||
		!strings.HasSuffix(v11.ZonePath, "鹤岭村 Heling Village") {
		t.Fatalf("鹤岭村 report %+v", v11)
	}
	if g := reportAt(t, e, 31.43, 107.05); g.ZoneID != "qs-g311" || g.Assignee != "赵春梅" || g.Class != ClassForest {
		t.Fatalf("石桥一网格 report %+v", g)
	}
	if k := reportAt(t, e, 31.445, 106.93); k.Class != ClassHeatSource || k.Mask != "M-QS-001" || k.ZoneID != "qs-v12" {
		t.Fatalf("kiln report %+v", k)
	}

	// Close through the API with a photo.
	ct, body := multipartBody(t, [][2]string{{"IMG_0001.JPG", string(jpegBytes(t))}}, nil)
	if st := do(t, "POST", fmt.Sprintf("%s/api/v1/hotspots/reports/%d/photos", srv.URL, v11.ID), ct, body, nil); st != 201 {
		t.Fatalf("photo: %d", st)
	}
	e.clk.Advance(40 * time.Minute)
	if st := postJSON(t, fmt.Sprintf("%s/api/v1/hotspots/reports/%d/close", srv.URL, v11.ID),
		CloseRequest{Outcome: "农事用火", Verifier: "朱国庆", VerifiedAt: e.clk.Now(), Note: "烧秸秆, 已扑灭"}, nil); st != 200 {
		t.Fatalf("close: %d", st)
	}
	var st Stats
	do(t, "GET", srv.URL+"/api/v1/hotspots/stats", "", nil, &st)
	found := false
	for _, z := range st.Zones {
		if z.ZoneID == "qs-v11" {
			found = z.Received == 1 && z.Closed == 1 && z.VerifiedOnTime == 1 && z.ByOutcome["农事用火"] == 1
		}
	}
	if !found || st.Total.Received != 4 || st.Total.Closed != 1 {
		t.Fatalf("stats %+v", st)
	}
	resp, err := srv.Client().Get(srv.URL + "/api/v1/hotspots/export.csv?status=closed")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if out := string(raw); err != nil || !strings.Contains(out, "农事用火") || !strings.Contains(out, "qs-v11") {
		t.Fatalf("csv export: %s", out)
	}
	var d Detail
	do(t, "GET", fmt.Sprintf("%s/api/v1/hotspots/reports/%d", srv.URL, v11.ID), "", nil, &d)
	if len(d.Photos) != 1 || d.Photos[0].ContentType != "image/jpeg" || d.Status != StatusClosed {
		t.Fatalf("detail %+v", d)
	}
}
