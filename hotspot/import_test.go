package hotspot

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lookoutfire/lookout/errs"
)

func importFile(t *testing.T, e *testEnv, path string) ImportResult {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := e.svc.Import(context.Background(), path, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func listAll(t *testing.T, e *testEnv, f ListFilter) []Report {
	t.Helper()
	rs, err := e.svc.List(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func reportAt(t *testing.T, e *testEnv, lat, lon float64) Report {
	t.Helper()
	for _, r := range listAll(t, e, ListFilter{}) {
		if haversineM(r.Lat, r.Lon, lat, lon) < 1000 {
			return r
		}
	}
	t.Fatalf("no report near %v,%v", lat, lon)
	return Report{}
}

func TestImportMatchAssignAndIdempotent(t *testing.T) {
	e := newEnv(t, nil)
	res := importFile(t, e, "testdata/viirs_noaa20_api_instrument.csv")
	if res.Rows != 4 || res.New != 4 || res.Duplicate != 0 || res.Bad != 0 || res.OutsideArea != 0 || res.ReportsCreated != 3 {
		t.Fatalf("first import: %+v", res)
	}
	// The two adjacent N20 pixels at 00:33 in forest F1, village V11: one report for Li Wei.
	r := reportAt(t, e, 25.212, 100.22)
	want := Report{Status: StatusAssigned, Class: ClassForest, ZoneID: "v11", ZonePath: "County / T1 / V11", Forest: "F1",
		Unit: "V11", Assignee: "Li Wei", AssigneePhone: "300", Hotspots: 2, MaxFRP: 12.9}
	if r.Status != want.Status || r.Class != want.Class || r.ZoneID != want.ZoneID || r.ZonePath != want.ZonePath ||
		r.Forest != want.Forest || r.Unit != want.Unit || r.Assignee != want.Assignee || r.AssigneePhone != want.AssigneePhone ||
		r.Hotspots != want.Hotspots || r.MaxFRP != want.MaxFRP {
		t.Errorf("forest report %+v", r)
	}
	if r.Deadline == nil || !r.Deadline.Equal(t0.Add(time.Hour)) {
		t.Errorf("forest deadline %v, want %v", r.Deadline, t0.Add(time.Hour))
	}
	if want := time.Date(2026, 3, 14, 0, 33, 0, 0, time.UTC); !r.FirstSeen.Equal(want) || !r.LastSeen.Equal(want) {
		t.Errorf("seen %v–%v", r.FirstSeen, r.LastSeen)
	}
	// East half: town T2's duty; elsewhere → 4 h.
	r2 := reportAt(t, e, 25.30012, 100.41233)
	if r2.Class != ClassElsewhere || r2.ZoneID != "t2" || r2.Assignee != "Zhao Min" || !r2.Deadline.Equal(t0.Add(4*time.Hour)) {
		t.Errorf("T2 report %+v", r2)
	}
	// West half outside V11: T1 has nobody on duty, so the county's contact answers.
	r3 := reportAt(t, e, 25.10244, 100.05518)
	if r3.ZoneID != "t1" || r3.Unit != "County" || r3.Assignee != "Chen Jun" || r3.ZonePath != "County / T1" {
		t.Errorf("T1 report %+v", r3)
	}
	hist, err := e.svc.History(context.Background(), r.ID)
	if err != nil || len(hist) != 2 || hist[0].Action != "created" || hist[1].Action != "assigned" || hist[1].Actor != "system" {
		t.Errorf("history %+v %v", hist, err)
	}
	if e.ev.count() != 3 {
		t.Errorf("%d events, want 3", e.ev.count())
	}

	// Same file again: nothing new.
	res = importFile(t, e, "testdata/viirs_noaa20_api_instrument.csv")
	if res.Rows != 4 || res.New != 0 || res.Duplicate != 4 || res.ReportsCreated != 0 || res.ReportsUpdated != 0 {
		t.Fatalf("re-import: %+v", res)
	}
	// Same hotspots re-formatted (4 decimals, padded time, words for confidence): still known.
	csv := viirsHeader + viirsRow(25.2103, 100.2199, time.Date(2026, 3, 14, 0, 33, 0, 0, time.UTC), "N20", 5.31)
	if res = e.importString(t, csv); res.New != 0 || res.Duplicate != 1 {
		t.Fatalf("re-formatted: %+v", res)
	}
	// A different satellite at the same place and time is a new hotspot (joins the report).
	csv = viirsHeader + viirsRow(25.2103, 100.2199, time.Date(2026, 3, 14, 0, 33, 0, 0, time.UTC), "N21", 5.31)
	if res = e.importString(t, csv); res.New != 1 || res.ReportsUpdated != 1 || res.ReportsCreated != 0 {
		t.Fatalf("other satellite: %+v", res)
	}
	if got := len(listAll(t, e, ListFilter{})); got != 3 {
		t.Errorf("%d reports, want 3", got)
	}
	if v := testutil.ToFloat64(e.svc.m.rows.WithLabelValues("duplicate")); v != 5 {
		t.Errorf("duplicate counter %v, want 5", v)
	}
	if v := testutil.ToFloat64(e.svc.m.rows.WithLabelValues("new")); v != 5 {
		t.Errorf("new counter %v, want 5", v)
	}
}

func TestImportDuplicatesInsideOneFile(t *testing.T) {
	e := newEnv(t, nil)
	row := viirsRow(25.2, 100.3, t0.Add(-time.Hour), "N", 3)
	res := e.importString(t, viirsHeader+row+row+row)
	if res.New != 1 || res.Duplicate != 2 || res.ReportsCreated != 1 {
		t.Fatalf("%+v", res)
	}
}

func TestImportOutsideAreaBadRowsAndClasses(t *testing.T) {
	e := newEnv(t, nil)
	at := time.Date(2026, 3, 14, 1, 30, 0, 0, time.UTC)
	csv := viirsHeader +
		viirsRow(30.0, 110.0, at, "N", 1) + // far away
		viirsRow(25.2, 100.53, at, "N", 1) + // 3 km east of the county: outside the 2 km buffer
		viirsRow(25.2, 100.51, at, "N", 1) + // 1 km east of the county: kept by the buffer
		viirsRow(25.4, 100.01, at, "N", 1) + // on mask M1
		viirsRow(25.226, 100.145, at, "N", 1) + // ~500 m west of F1: near forest
		"25.1,100.3,330,0.4,0.4,2026-03-14,0130,N,VIIRS,x,2.0NRT,290,1,N\n" + // bad confidence
		viirsRow(25.05, 100.45, at, "N", 1) // elsewhere in T2
	res := e.importString(t, csv)
	if res.Rows != 6 || res.OutsideArea != 2 || res.New != 4 || res.Bad != 1 || len(res.BadRows) != 1 || res.BadRows[0].Line != 7 {
		t.Fatalf("%+v", res)
	}
	tests := []struct {
		lat, lon float64
		class    Class
		deadline time.Duration
		zone     string
		status   Status
	}{
		{25.2, 100.51, ClassElsewhere, 4 * time.Hour, "", StatusNew},
		{25.4, 100.01, ClassHeatSource, 0, "t1", StatusAssigned},
		{25.226, 100.145, ClassNearForest, 2 * time.Hour, "v11", StatusAssigned},
		{25.05, 100.45, ClassElsewhere, 4 * time.Hour, "t2", StatusAssigned},
	}
	for _, tc := range tests {
		r := reportAt(t, e, tc.lat, tc.lon)
		if r.Class != tc.class || r.ZoneID != tc.zone || r.Status != tc.status {
			t.Errorf("%v,%v: class %s zone %q status %s; want %s %q %s", tc.lat, tc.lon, r.Class, r.ZoneID, r.Status, tc.class, tc.zone, tc.status)
		}
		switch {
		case tc.deadline == 0 && r.Deadline != nil:
			t.Errorf("%v,%v: deadline %v, want none", tc.lat, tc.lon, r.Deadline)
		case tc.deadline != 0 && (r.Deadline == nil || !r.Deadline.Equal(t0.Add(tc.deadline))):
			t.Errorf("%v,%v: deadline %v, want %v", tc.lat, tc.lon, r.Deadline, t0.Add(tc.deadline))
		}
	}
	if r := reportAt(t, e, 25.4, 100.01); r.Mask != "M1" {
		t.Errorf("mask %q", r.Mask)
	}
	if r := reportAt(t, e, 25.226, 100.145); r.Forest != "F1" {
		t.Errorf("near forest: forest %q", r.Forest)
	}
}

func TestImportBadRowsFixture(t *testing.T) {
	e := newEnv(t, nil)
	res := importFile(t, e, "testdata/mixed_bad_rows.csv")
	if res.Rows != 2 || res.Bad != 5 || res.New != 2 || res.ReportsCreated != 1 {
		t.Fatalf("%+v", res)
	}
	var lines []int
	for _, b := range res.BadRows {
		lines = append(lines, b.Line)
	}
	if len(lines) != 5 || lines[0] != 3 || lines[4] != 7 {
		t.Fatalf("bad lines %v", lines)
	}
}

// An acquisition time more than an hour (MaxAcquiredAhead) after the service clock's now, or
// before 2000, is a bad row with its line and reason; it makes no report. The clock,
// not the wall clock, decides: once it has moved on, the row is good.
func TestImportRefusesFutureAndAncientDates(t *testing.T) {
	e := newEnv(t, nil) // clock at t0, 2026-03-14 08:00Z
	csv := viirsHeader +
		viirsRow(25.05, 100.45, t0.Add(30*time.Minute), "N", 1) + // line 2: within the allowance (a slow clock)
		viirsRow(25.3, 100.3, t0.Add(2*time.Hour), "N", 1) + // line 3: 2 h ahead
		viirsRow(25.1, 100.05, t0.AddDate(1, 0, 0), "N", 1) + // line 4: next year (the field report's typo)
		viirsRow(25.4, 100.4, time.Date(1999, 12, 31, 23, 0, 0, 0, time.UTC), "N", 1) + // line 5: before FIRMS
		viirsRow(30.0, 110.0, t0.AddDate(1, 0, 0), "N", 1) // line 6: outside the area, but bad first
	res := e.importString(t, csv)
	if res.Rows != 1 || res.New != 1 || res.Bad != 4 || res.ReportsCreated != 1 || res.OutsideArea != 0 || len(res.BadRows) != 4 {
		t.Fatalf("%+v", res)
	}
	for i, want := range []struct {
		line   int
		reason string
	}{
		{3, "acquired 2026-03-14 10:00Z is in the future"},
		{4, "acquired 2027-03-14 08:00Z is in the future"},
		{5, "acquired 1999-12-31 23:00Z is before 2000-01-01"},
		{6, "in the future"},
	} {
		if b := res.BadRows[i]; b.Line != want.line || !strings.Contains(b.Reason, want.reason) {
			t.Errorf("bad row %d: %+v, want line %d %q", i, b, want.line, want.reason)
		}
	}
	for _, r := range listAll(t, e, ListFilter{}) {
		if r.FirstSeen.After(e.clk.Now().Add(time.Hour)) {
			t.Errorf("report %d first seen %v, in the future", r.ID, r.FirstSeen)
		}
	}
	// Two hours on, the same rows' 10:00 pixel is in the past: imported.
	e.clk.Advance(2 * time.Hour)
	if res := e.importString(t, csv); res.New != 1 || res.Duplicate != 1 || res.Bad != 3 {
		t.Fatalf("after the clock moved on: %+v", res)
	}
}

func TestImportArchiveTypeIsHeatSource(t *testing.T) {
	e := newEnv(t, nil)
	res := importFile(t, e, "testdata/modis_archive_type.csv")
	if res.New != 3 || res.ReportsCreated != 3 {
		t.Fatalf("%+v", res)
	}
	// This row also lies on mask M1: the known heat source names it.
	if r := reportAt(t, e, 25.4011, 100.0123); r.Class != ClassHeatSource || r.Mask != "M1" || r.Deadline != nil {
		t.Errorf("type 2 row: %+v", r)
	}
	// Off any mask, FIRMS's own type 1/2 (volcano, static land source) still marks a heat source.
	res = e.importString(t, "latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_t31,frp,daynight,type\n"+
		"25.05,100.45,320,1,1,2024-04-02,0315,Terra,MODIS,80,6.1,296,10,D,2\n")
	if r := reportAt(t, e, 25.05, 100.45); res.New != 1 || r.Class != ClassHeatSource || r.Mask != "FIRMS type 2" || r.Deadline != nil {
		t.Errorf("type 2 off mask: %+v", r)
	}
	if r := reportAt(t, e, 25.2211, 100.3102); r.Class != ClassElsewhere {
		t.Errorf("type 0 row: %+v", r)
	}
}

func TestImportJoinsMergesAndUpgradesOpenReports(t *testing.T) {
	e := newEnv(t, nil)
	at := time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC)
	// Two reports in T2 about 3 km apart (elsewhere, 4 h).
	e.importString(t, viirsHeader+viirsRow(25.05, 100.40, at, "N", 1))
	e.clk.Advance(10 * time.Minute)
	e.importString(t, viirsHeader+viirsRow(25.05, 100.43, at, "N", 2))
	a, b := reportAt(t, e, 25.05, 100.40), reportAt(t, e, 25.05, 100.43)
	if a.ID == b.ID {
		t.Fatal("3 km apart: one report")
	}
	// A later pass lights the pixels between them: both reports become one (the older survives).
	e.clk.Advance(10 * time.Minute)
	later := at.Add(5 * time.Hour)
	res := e.importString(t, viirsHeader+viirsRow(25.05, 100.41, later, "N20", 3)+viirsRow(25.05, 100.42, later, "N20", 4))
	if res.New != 2 || res.ReportsCreated != 0 || res.ReportsUpdated != 1 || res.ReportsMerged != 1 {
		t.Fatalf("bridge: %+v", res)
	}
	open := listAll(t, e, ListFilter{})
	if len(open) != 1 || open[0].ID != a.ID || open[0].Hotspots != 4 || open[0].MaxFRP != 4 {
		t.Fatalf("after merge: %+v", open)
	}
	if !open[0].LastSeen.Equal(later) || !open[0].FirstSeen.Equal(at) {
		t.Errorf("seen %v–%v", open[0].FirstSeen, open[0].LastSeen)
	}
	// The survivor keeps its own (earlier) deadline.
	if !open[0].Deadline.Equal(t0.Add(4 * time.Hour)) {
		t.Errorf("deadline %v", open[0].Deadline)
	}
	merged, err := e.svc.Report(context.Background(), b.ID)
	if err != nil || merged.Status != StatusMerged || merged.MergedInto != a.ID {
		t.Fatalf("merged report %+v %v", merged, err)
	}
	if hs, _ := e.svc.Hotspots(context.Background(), b.ID); len(hs) != 0 {
		t.Errorf("merged report still holds %d hotspots", len(hs))
	}
	if ms := listAll(t, e, ListFilter{Status: StatusMerged}); len(ms) != 1 || ms[0].ID != b.ID {
		t.Errorf("merged list %+v", ms)
	}

	// A forest pixel 1 km away raises an "elsewhere" report to forest: deadline created+1 h.
	e2 := newEnv(t, nil)
	e2.importString(t, viirsHeader+viirsRow(25.22, 100.262, at, "N", 1)) // T2, just east of F1
	r := reportAt(t, e2, 25.22, 100.262)
	if r.Class != ClassElsewhere && r.Class != ClassNearForest {
		t.Fatalf("start class %s", r.Class)
	}
	e2.clk.Advance(30 * time.Minute)
	res = e2.importString(t, viirsHeader+viirsRow(25.22, 100.249, at.Add(time.Hour), "N", 1))
	r2, _ := e2.svc.Report(context.Background(), r.ID)
	if res.ReportsUpdated != 1 || r2.Class != ClassForest || !r2.Deadline.Equal(r.CreatedAt.Add(time.Hour)) || r2.Hotspots != 2 {
		t.Fatalf("upgrade: %+v\n%+v", res, r2)
	}
}

func TestImportClosedReportDoesNotAbsorb(t *testing.T) {
	e := newEnv(t, nil)
	at := time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC)
	e.importString(t, viirsHeader+viirsRow(25.05, 100.40, at, "N", 1))
	r := reportAt(t, e, 25.05, 100.40)
	if _, err := e.svc.Close(context.Background(), r.ID, "u", CloseRequest{Outcome: "农事用火", Verifier: "Zhao Min",
		VerifiedAt: t0, Note: "straw burning"}); err != nil {
		t.Fatal(err)
	}
	res := e.importString(t, viirsHeader+viirsRow(25.05, 100.401, at.Add(2*time.Hour), "N", 1))
	if res.ReportsCreated != 1 || res.ReportsUpdated != 0 {
		t.Fatalf("%+v", res)
	}
}

func TestImportGzipAndLimits(t *testing.T) {
	data, err := os.ReadFile("testdata/viirs_noaa20_api_instrument.csv")
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	e := newEnv(t, nil)
	res, err := e.svc.Import(context.Background(), "gz", bytes.NewReader(gz.Bytes()), nil)
	if err != nil || res.New != 4 {
		t.Fatalf("gzip: %+v %v", res, err)
	}
	// Truncated gzip: a bad file, not a server error.
	_, err = e.svc.Import(context.Background(), "gz", bytes.NewReader(gz.Bytes()[:gz.Len()/2]), nil)
	if !errors.Is(err, ErrBadFile) {
		t.Fatalf("truncated gzip: %v", err)
	}
	// Over max_import_bytes: refused whole, nothing stored.
	small := newEnv(t, func(c *Config, _ *Deps) { c.MaxImportBytes = 200 })
	_, err = small.svc.Import(context.Background(), "big", bytes.NewReader(data), nil)
	if !errors.Is(err, ErrImportTooLarge) || !errors.Is(err, errs.ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if rs := listAll(t, small, ListFilter{}); len(rs) != 0 {
		t.Fatalf("partial import stored %d reports", len(rs))
	}
	// A file that is not FIRMS at all.
	_, err = e.svc.Import(context.Background(), "x", strings.NewReader("hello,world\n1,2\n"), nil)
	if !errors.Is(err, ErrBadFile) {
		t.Fatalf("not firms: %v", err)
	}
}

func TestImportCancelled(t *testing.T) {
	e := newEnv(t, nil)
	var b strings.Builder
	b.WriteString(viirsHeader)
	for i := 0; i < 10000; i++ {
		b.WriteString(viirsRow(25.01+float64(i%400)/1000, 100.01+float64(i/400)/100, t0.Add(-time.Hour), "N", 1))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.svc.Import(ctx, "x", strings.NewReader(b.String()), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled import: %v", err)
	}
	if rs := listAll(t, e, ListFilter{}); len(rs) != 0 {
		t.Fatalf("cancelled import stored %d reports", len(rs))
	}
}

const modisHeader = "latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_t31,frp,daynight,type\n"

// modisRow formats one MODIS row; typ "" leaves the archive type empty.
func modisRow(lat, lon float64, at time.Time, sat, typ string) string {
	return fmt.Sprintf("%.5f,%.5f,320.1,1.0,1.0,%s,%s,%s,MODIS,80,6.1,296.0,10.0,D,%s\n",
		lat, lon, at.Format("2006-01-02"), at.Format("1504"), sat, typ)
}

// NRT files name satellites by code (T, A, N, N20, N21), archive files by name (Terra,
// Aqua, Suomi NPP, NOAA-20 …): the same detection from both is one hotspot.
func TestImportSatelliteAliasesAreOneHotspot(t *testing.T) {
	at := time.Date(2026, 3, 14, 1, 30, 0, 0, time.UTC)
	modis := func(sat string) string { return modisHeader + modisRow(25.05, 100.45, at, sat, "0") }
	viirs := func(sat string) string { return viirsHeader + viirsRow(25.05, 100.45, at, sat, 1) }
	tests := []struct {
		first, second, stored string
		file                  func(string) string
	}{
		{"T", "Terra", "T", modis},
		{"Aqua", "A", "A", modis},
		{"N", "Suomi NPP", "N", viirs},
		{"NPP", "N", "N", viirs},
		{"N20", "NOAA-20", "N20", viirs},
		{"J1", "N20", "N20", viirs},
		{"N21", "NOAA-21", "N21", viirs},
		{"J2", "N21", "N21", viirs},
	}
	for _, tc := range tests {
		t.Run(tc.first+"/"+tc.second, func(t *testing.T) {
			e := newEnv(t, nil)
			if res := e.importString(t, tc.file(tc.first)); res.New != 1 {
				t.Fatalf("first: %+v", res)
			}
			if res := e.importString(t, tc.file(tc.second)); res.New != 0 || res.Duplicate != 1 || res.ReportsUpdated != 0 {
				t.Fatalf("second spelling imported again: %+v", res)
			}
			hs, err := e.svc.Hotspots(context.Background(), reportAt(t, e, 25.05, 100.45).ID)
			if err != nil || len(hs) != 1 || hs[0].Satellite != tc.stored {
				t.Fatalf("stored %+v %v, want one hotspot from %s", hs, err, tc.stored)
			}
		})
	}
}

// satelliteMigration is the step of migrations() that normalises stored satellites.
const satelliteMigration = 11

// Rows stored before satellites were normalised are rewritten by a migration; a row
// whose normalised twin already exists is left alone rather than failing the start.
func TestMigrationNormalisesStoredSatellites(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	at := time.Date(2026, 3, 14, 1, 30, 0, 0, time.UTC)
	e.importString(t, modisHeader+modisRow(25.05, 100.45, at, "T", "0")+modisRow(25.3, 100.3, at, "A", "0"))
	e.importString(t, viirsHeader+viirsRow(25.1, 100.4, at, "N20", 1))
	// As an older gateway stored archive rows: names instead of codes, and one detection twice.
	db := e.deps.DB
	for _, q := range []string{
		`UPDATE hotspot_hotspots SET satellite='Terra' WHERE satellite='T'`,
		`UPDATE hotspot_hotspots SET satellite='NOAA-20' WHERE satellite='N20'`,
		`INSERT INTO hotspot_hotspots(report_id, instrument, satellite, acquired, lat_e4, lon_e4, lat, lon, scan, track,
			bright, bright2, frp, confidence, conf_level, version, daynight, type, country, class, forest, zone_id, mask,
			source, imported_at)
			SELECT report_id, instrument, 'Aqua', acquired, lat_e4, lon_e4, lat, lon, scan, track, bright, bright2, frp,
			confidence, conf_level, version, daynight, type, country, class, forest, zone_id, mask, source, imported_at
			FROM hotspot_hotspots WHERE satellite='A'`,
		`DELETE FROM schema_migrations WHERE component='hotspot' AND step>=` + fmt.Sprint(satelliteMigration),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	d := e.deps
	d.Registerer = nil
	svc, err := New(ctx, e.cfg, d)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT satellite FROM hotspot_hotspots ORDER BY satellite`)
	if err != nil {
		t.Fatal(err)
	}
	var sats []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		sats = append(sats, s)
	}
	rows.Close()
	if got := strings.Join(sats, " "); got != "A Aqua N20 T" {
		t.Fatalf("stored satellites %q, want \"A Aqua N20 T\"", got)
	}
	// The archive spellings of the stored detections are known now.
	res, err := svc.Import(ctx, "archive", strings.NewReader(modisHeader+modisRow(25.05, 100.45, at, "Terra", "0")+
		modisRow(25.3, 100.3, at, "Aqua", "0")), nil)
	if err != nil || res.New != 0 || res.Duplicate != 2 {
		t.Fatalf("archive re-import: %+v %v", res, err)
	}
	res, err = svc.Import(ctx, "archive", strings.NewReader(viirsHeader+viirsRow(25.1, 100.4, at, "NOAA-20", 1)), nil)
	if err != nil || res.New != 0 || res.Duplicate != 1 {
		t.Fatalf("archive re-import: %+v %v", res, err)
	}
}

// Raising a report's class brings its deadline forward, but never into the past: a
// report nobody was sent to (no deadline) gets the new class's full deadline from now,
// one already being worked on at least half of it.
func TestUpgradeDeadlineNeverInThePast(t *testing.T) {
	at := time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC)
	elsewhere := viirsHeader + viirsRow(25.22, 100.262, at, "N", 1)             // T2, 1.2 km east of F1
	heatSource := modisHeader + modisRow(25.22, 100.262, at, "T", "2")          // FIRMS static land source
	forest := viirsHeader + viirsRow(25.22, 100.249, at.Add(time.Hour), "N", 1) // in F1, 1.3 km west
	tests := []struct {
		name    string
		first   string
		after   time.Duration
		want    func(created, now time.Time) time.Time
		wantWas Class
	}{
		{"elsewhere, 30 min in: forest deadline from creation", elsewhere, 30 * time.Minute,
			func(c, _ time.Time) time.Time { return c.Add(time.Hour) }, ClassElsewhere},
		{"elsewhere, 50 min in: half the forest deadline left", elsewhere, 50 * time.Minute,
			func(_, n time.Time) time.Time { return n.Add(30 * time.Minute) }, ClassElsewhere},
		{"elsewhere, 3 h in: half the forest deadline left", elsewhere, 3 * time.Hour,
			func(_, n time.Time) time.Time { return n.Add(30 * time.Minute) }, ClassElsewhere},
		{"elsewhere, 3 h 45 min in: the old deadline is sooner", elsewhere, 3*time.Hour + 45*time.Minute,
			func(c, _ time.Time) time.Time { return c.Add(4 * time.Hour) }, ClassElsewhere},
		{"heat source without deadline, 10 h in: the full forest deadline", heatSource, 10 * time.Hour,
			func(_, n time.Time) time.Time { return n.Add(time.Hour) }, ClassHeatSource},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			ctx := context.Background()
			e.importString(t, tc.first)
			r := reportAt(t, e, 25.22, 100.262)
			if r.Class != tc.wantWas {
				t.Fatalf("start class %s, want %s", r.Class, tc.wantWas)
			}
			now := e.clk.Advance(tc.after)
			if res := e.importString(t, forest); res.ReportsUpdated != 1 || res.ReportsCreated != 0 {
				t.Fatalf("upgrade: %+v", res)
			}
			r2, err := e.svc.Report(ctx, r.ID)
			if err != nil || r2.Class != ClassForest || r2.Deadline == nil {
				t.Fatalf("after upgrade %+v %v", r2, err)
			}
			if want := tc.want(r.CreatedAt, now); !r2.Deadline.Equal(want) {
				t.Errorf("deadline %v (%v from now), want %v", r2.Deadline, r2.Deadline.Sub(now), want)
			}
			if err := e.svc.RunDue(ctx, now); err != nil || len(e.esc.raised()) != 0 || r2.Overdue {
				t.Errorf("escalated at once by the upgrade: %v %+v", err, e.esc.raised())
			}
		})
	}
}
