package alerting

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/ingest"
)

func station(id, zone string, at time.Time, temp, rh, windMS, rain float64) ingest.Reading {
	return ingest.Reading{DeviceID: id, Class: ingest.ClassStation, Kind: ingest.KindTelemetry, Time: at, Zone: zone,
		Lat: 40, Lon: 116, Fields: map[string]any{"air_temp_c": temp, "rh_pct": rh, "wind_speed_ms": windMS, "precip_mm": rain}}
}

// shanghai returns the UTC instant of a local (UTC+8) wall time on 1985-04-13+day.
func shanghai(day int, hh, mm int) time.Time {
	return time.Date(1985, 4, 13+day, hh, mm, 0, 0, time.FixedZone("CST", 8*3600)).UTC()
}

func TestStationNoonPickAndRain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clk := clock.NewFake(shanghai(0, 8, 0))
	h := openHarness(t, path, clk, nil)
	// Day 1 (cffdrs test day 1: 17 °C, 42 %, 25 km/h, no rain). Morning readings and
	// the 11:59 one are not noon; 12:05 is; 12:35 is a second reading of the same day.
	h.eval(t, station("st-1", "v1", shanghai(0, 9, 0), 5, 90, 1, 0))
	h.eval(t, station("st-1", "v1", shanghai(0, 11, 59), 16, 45, 7, 0))
	h.eval(t, station("st-1", "v1", shanghai(0, 12, 5), 17, 42, 25/3.6, 0))
	h.eval(t, station("st-1", "v1", shanghai(0, 12, 35), 30, 10, 20, 0))
	// Day 2: rain 1.4 + 1.0 reported through the night sums to cffdrs' 2.4 mm;
	// 14:10 is outside the 2 h window, 12:00 exactly counts.
	h.eval(t, station("st-1", "v1", shanghai(0, 18, 0), 12, 80, 2, 1.4))
	h.eval(t, station("st-1", "v1", shanghai(1, 3, 0), 10, 90, 2, 1.0))
	h.eval(t, station("st-1", "v1", shanghai(1, 12, 0), 20, 21, 25/3.6, 0))
	// Day 3 has no reading inside the window.
	h.eval(t, station("st-1", "v1", shanghai(2, 14, 10), 8.5, 40, 17/3.6, 0))

	rows := loadCffdrs(t)
	var n int
	if err := h.db.QueryRow(`SELECT COUNT(*) FROM fwi_daily WHERE station = 'st-1'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("daily rows = %d, want 2 (day 3 had no noon reading)", n)
	}
	for i, day := range []string{"1985-04-13", "1985-04-14"} {
		var ffmc, dmc, dc, fwi, rain float64
		if err := h.db.QueryRow(`SELECT ffmc, dmc, dc, fwi, rain FROM fwi_daily WHERE station = 'st-1' AND day = ?`, day).
			Scan(&ffmc, &dmc, &dc, &fwi, &rain); err != nil {
			t.Fatalf("%s: %v", day, err)
		}
		w := rows[i].want
		if !close6(ffmc, w.FFMC) || !close6(dmc, w.DMC) || !close6(dc, w.DC) || !close6(fwi, w.FWI) || !close6(rain, rows[i].w.Rain) {
			t.Errorf("%s: ffmc %v dmc %v dc %v fwi %v rain %v, want %+v rain %v", day, ffmc, dmc, dc, fwi, rain, w, rows[i].w.Rain)
		}
	}
	h.points.mu.Lock()
	if len(h.points.pts) != 2 || h.points.pts[0]["level"] != int64(LevelFor(rows[0].want.FWI, DefaultConfig().FireDanger.Breakpoints)) {
		t.Errorf("points = %v", h.points.pts)
	}
	h.points.mu.Unlock()

	// Restart: the state continues (day 4 = cffdrs day 3 from day 2's codes).
	h.db.Close()
	h2 := openHarness(t, path, clk, nil)
	h2.eval(t, station("st-1", "v1", shanghai(3, 12, 30), 8.5, 40, 17/3.6, 0))
	var ffmc float64
	if err := h2.db.QueryRow(`SELECT ffmc FROM fwi_daily WHERE station = 'st-1' AND day = '1985-04-16'`).Scan(&ffmc); err != nil {
		t.Fatal(err)
	}
	if !close6(ffmc, rows[2].want.FFMC) {
		t.Errorf("after restart FFMC = %v, want %v", ffmc, rows[2].want.FFMC)
	}
}

func TestZoneFireDangerAlert(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	// Hot, dry, windy July noon from dry codes → FWI well above 30 (level 5).
	dry := func(id string, day int, temp, rh, wind float64) {
		r := station(id, "t1", time.Date(2025, 7, 1+day, 4, 30, 0, 0, time.UTC), temp, rh, wind, 0)
		h.eval(t, r)
	}
	for _, id := range []string{"st-a", "st-b"} {
		if _, err := h.db.Exec(`INSERT INTO fwi_station (station, zone, lat, ffmc, dmc, dc, updated) VALUES (?, 't1', 40, 92, 60, 400, 0)`, id); err != nil {
			t.Fatal(err)
		}
	}
	dry("st-a", 0, 35, 10, 12)
	a, ok := h.active(t, "zone:t1", TypeFireDanger)
	if !ok || a.Severity != Critical || a.Details["level"] != 5.0 || a.Details["colour"] != "red" {
		t.Fatalf("zone alert = %+v %v", a, ok)
	}
	if got := h.caller.names(); len(got) != 1 || got[0] != "Town Duty" {
		t.Errorf("calls = %v, want the town on duty", got)
	}
	// Next day: st-a is wet (level 1) but st-b is still level ≥ 4: the zone stays alerted.
	dry("st-a", 1, 10, 95, 1)
	dry("st-b", 1, 33, 12, 10)
	if _, ok := h.active(t, "zone:t1", TypeFireDanger); !ok {
		t.Fatal("zone alert cleared while st-b is at high danger")
	}
	// Day after: both calm → cleared.
	dry("st-a", 2, 10, 95, 1)
	dry("st-b", 2, 10, 95, 1)
	if _, ok := h.active(t, "zone:t1", TypeFireDanger); ok {
		t.Fatal("zone alert still active after every station dropped below level 4")
	}
	d, err := h.e.Danger(ctx)
	if err != nil || len(d) != 2 || d[0].Level >= 4 || d[1].Level >= 4 {
		t.Fatalf("danger = %+v, %v", d, err)
	}
}

// A station backfilling its buffer sends an earlier day's noon reading after
// a later day's: the later day's codes stand, and the old day is not redone.
func TestLateNoonReadingDoesNotRewindTheDay(t *testing.T) {
	h := newHarness(t, nil)
	h.clk.Set(shanghai(1, 13, 0))
	h.eval(t, station("st-b", "v1", shanghai(0, 12, 10), 17, 42, 25/3.6, 0))
	h.eval(t, station("st-b", "v1", shanghai(1, 12, 10), 20, 21, 25/3.6, 0))
	read := func() (day string, ffmc, acc float64, d0 float64) {
		if err := h.db.QueryRow(`SELECT last_day, ffmc, rain_acc FROM fwi_station WHERE station = 'st-b'`).Scan(&day, &ffmc, &acc); err != nil {
			t.Fatal(err)
		}
		if err := h.db.QueryRow(`SELECT ffmc FROM fwi_daily WHERE station = 'st-b' AND day = '1985-04-13'`).Scan(&d0); err != nil {
			t.Fatal(err)
		}
		return
	}
	day, ffmc, acc, d0 := read()
	if day != "1985-04-14" {
		t.Fatalf("last_day = %s", day)
	}
	// The late ones: a second noon-window reading of day 0 and rain from day 0's night.
	h.eval(t, station("st-b", "v1", shanghai(0, 12, 30), 30, 10, 20, 0))
	h.eval(t, station("st-b", "v1", shanghai(1, 3, 0), 10, 90, 2, 5))
	day2, ffmc2, acc2, d02 := read()
	if day2 != day || ffmc2 != ffmc || acc2 != acc || d02 != d0 {
		t.Errorf("after late readings: last_day %s ffmc %v rain %v day-0 ffmc %v; want %s %v %v %v unchanged",
			day2, ffmc2, acc2, d02, day, ffmc, acc, d0)
	}
	// Rain after the last noon still counts towards the next day.
	h.eval(t, station("st-b", "v1", shanghai(1, 18, 0), 10, 90, 2, 1.5))
	if _, _, acc3, _ := read(); acc3 != acc+1.5 {
		t.Errorf("rain after the last noon: rain_acc %v, want %v", acc3, acc+1.5)
	}
}
