package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lookoutfire/lookout/hotspot"
)

// TestCmdHotspotsImport runs `gateway hotspots import` against the demo county: the
// rows inside the county become reports, the one far away is counted outside, and a
// second run of the same file adds nothing.
func TestCmdHotspotsImport(t *testing.T) {
	dir := t.TempDir()
	csv := "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,confidence,version,bright_ti5,frp,daynight\n" +
		"31.575,106.925,340,0.4,0.4,2026-03-14,527,N,nominal,2.0NRT,290,6,D\n" +
		"31.43,107.05,335,0.4,0.4,2026-03-14,0527,N,high,2.0NRT,290,3,D\n" +
		"35.0,110.0,335,0.4,0.4,2026-03-14,0527,N,high,2.0NRT,290,3,D\n"
	file := filepath.Join(dir, "firms.csv")
	if err := os.WriteFile(file, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"hotspots", "import", "--data-dir", filepath.Join(dir, "data"), "--config", filepath.Join(dir, "none.yaml"),
		"--set", "geo.forests.path=../seeds/forests.geojson", "--set", "geo.zones.path=../seeds/zones.geojson",
		"--set", "geo.masks.path=../seeds/masks.geojson", file}
	os.WriteFile(filepath.Join(dir, "none.yaml"), nil, 0o644)
	for run, want := range []hotspot.ImportResult{{Rows: 3, New: 2, OutsideArea: 1, ReportsCreated: 2}, {Rows: 3, Duplicate: 2, OutsideArea: 1}} {
		var out, errb bytes.Buffer
		if code := dispatch(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("run %d: exit %d: %s", run, code, errb.String())
		}
		var got hotspot.ImportResult
		sc := bufio.NewScanner(&out)
		if !sc.Scan() || json.Unmarshal(sc.Bytes(), &got) != nil {
			t.Fatalf("run %d: output %q", run, out.String())
		}
		if got.Rows != want.Rows || got.New != want.New || got.Duplicate != want.Duplicate || got.OutsideArea != want.OutsideArea ||
			got.ReportsCreated != want.ReportsCreated || got.Source != "cli:firms.csv" {
			t.Errorf("run %d: %+v, want %+v", run, got, want)
		}
		if !strings.Contains(errb.String(), "outside the area") {
			t.Errorf("run %d: summary missing: %s", run, errb.String())
		}
	}
	var errb bytes.Buffer
	if code := dispatch(context.Background(), []string{"hotspots", "import", "--data-dir", dir}, nil, &bytes.Buffer{}, &errb); code != 1 {
		t.Errorf("no files: exit %d", code)
	}
	if code := dispatch(context.Background(), []string{"hotspots"}, nil, &bytes.Buffer{}, &errb); code != 0 || !strings.Contains(errb.String(), "usage") {
		t.Errorf("no subcommand: exit %d %s", code, errb.String())
	}
}
