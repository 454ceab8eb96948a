package alerting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lookoutfire/lookout/ingest"
)

// Station fire danger. The FWI System wants one noon observation per day, but
// stations report every few minutes. The rule: the day's noon reading is the
// FIRST reading of the station at or after 12:00 local standard time
// (fire_danger.timezone; China has no DST) and before 12:00 + noon_window. It is
// decided the moment it arrives, so no timer is needed and a restart cannot pick
// a second one (the day is stored). precip_mm (rain since the previous report) is
// summed between noon readings, which is the 24 h rain the FWI expects; a day
// with no reading in the window is skipped and its rain rolls into the next day.
// Codes carry on from the last computed day (start-up 85/6/15 for a new station).

// StationDanger is a station's latest fire-danger state.
type StationDanger struct {
	Station string    `json:"station"`
	Zone    string    `json:"zone,omitempty"`
	Day     string    `json:"day"`
	Indices Indices   `json:"indices"`
	Level   Level     `json:"level"`
	ObsAt   time.Time `json:"obs_at"`
}

// fwiState is a station's carried state as stored in fwi_station. The engine
// keeps a copy per station (under fwiMu) so that the readings between two noons,
// nearly all of them, cost no SQLite round trip: the row is written only when
// something in it changes (rain accumulated, zone or latitude moved, a new noon
// computed). fwi_station.updated is therefore the time of the last change. The
// copy is loaded from the row on a station's first reading after start, and
// dropped when a write fails so the next reading reloads it. One entry per
// station that ever reported: bounded by the device registry.
type fwiState struct {
	codes   Codes
	lastDay string
	acc     float64
	zone    string
	lat     float64
	stored  bool // a row exists with exactly these values
}

// fwiStateOf returns the cached state of a station, loading it on first use.
// The caller holds fwiMu.
func (e *Engine) fwiStateOf(ctx context.Context, station string) (*fwiState, error) {
	if st, ok := e.fwiCache[station]; ok {
		return st, nil
	}
	st := &fwiState{codes: StartupCodes}
	err := e.db.QueryRowContext(ctx, `SELECT ffmc, dmc, dc, last_day, rain_acc, zone, lat FROM fwi_station WHERE station = ?`, station).
		Scan(&st.codes.FFMC, &st.codes.DMC, &st.codes.DC, &st.lastDay, &st.acc, &st.zone, &st.lat)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		st.codes, st.lastDay, st.acc, st.zone, st.lat = StartupCodes, "", 0, "", 0
	case err != nil:
		return nil, fmt.Errorf("alerting: fwi state: %w", err)
	default:
		st.stored = true
	}
	e.fwiCache[station] = st
	return st, nil
}

func (e *Engine) stationRule(ctx context.Context, r ingest.Reading) error {
	temp, okT := r.Float("air_temp_c")
	rh, okH := r.Float("rh_pct")
	wind, okW := r.Float("wind_speed_ms")
	rain, _ := r.Float("precip_mm")
	e.fwiMu.Lock()
	defer e.fwiMu.Unlock()

	lat := r.Lat
	if lat == 0 && r.Lon == 0 {
		lat = e.cfg.FireDanger.DefaultLat
	}
	st, err := e.fwiStateOf(ctx, r.DeviceID)
	if err != nil {
		return err
	}
	codes, lastDay := st.codes, st.lastDay
	local := r.Time.In(e.tz)
	day := local.Format("2006-01-02")
	noon := time.Date(local.Year(), local.Month(), local.Day(), 12, 0, 0, 0, e.tz)
	// A reading from before the last computed noon (a station backfilling its
	// buffer) belongs to a day that is already done: its rain was due in that
	// day's codes, and it must not recompute an older day over a newer one.
	// ISO dates compare as strings.
	late := lastDay != "" && (day < lastDay || day == lastDay && local.Before(noon))
	if late {
		return nil
	}
	acc := st.acc
	if rain > 0 {
		acc += rain
	}
	isNoon := okT && okH && okW && day != lastDay && !local.Before(noon) && local.Before(noon.Add(e.cfg.FireDanger.NoonWindow))
	now := e.clk.Now()
	if !isNoon {
		if st.stored && acc == st.acc && r.Zone == st.zone && lat == st.lat {
			return nil // nothing in the row would change
		}
		_, err := e.db.ExecContext(ctx, `INSERT INTO fwi_station (station, zone, lat, ffmc, dmc, dc, rain_acc, updated) VALUES (?,?,?,?,?,?,?,?)
			ON CONFLICT (station) DO UPDATE SET rain_acc = excluded.rain_acc, zone = excluded.zone, lat = excluded.lat, updated = excluded.updated`,
			r.DeviceID, r.Zone, lat, codes.FFMC, codes.DMC, codes.DC, acc, ms(now))
		if err != nil {
			delete(e.fwiCache, r.DeviceID)
			return fmt.Errorf("alerting: fwi state: %w", err)
		}
		st.acc, st.zone, st.lat, st.stored = acc, r.Zone, lat, true
		return nil
	}
	wx := Weather{Month: int(local.Month()), Temp: temp, RH: rh, Wind: wind * 3.6, Rain: acc, Lat: lat}
	ix, err := Step(codes, wx)
	if err != nil {
		return fmt.Errorf("station %s: %w", r.DeviceID, err)
	}
	level := LevelFor(ix.FWI, e.cfg.FireDanger.Breakpoints)
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("alerting: fwi: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO fwi_station (station, zone, lat, ffmc, dmc, dc, last_day, rain_acc, level, fwi, updated)
		VALUES (?,?,?,?,?,?,?,0,?,?,?)
		ON CONFLICT (station) DO UPDATE SET zone = excluded.zone, lat = excluded.lat, ffmc = excluded.ffmc, dmc = excluded.dmc,
			dc = excluded.dc, last_day = excluded.last_day, rain_acc = 0, level = excluded.level, fwi = excluded.fwi, updated = excluded.updated`,
		r.DeviceID, r.Zone, lat, ix.FFMC, ix.DMC, ix.DC, day, int(level), ix.FWI, ms(now)); err != nil {
		return fmt.Errorf("alerting: fwi: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO fwi_daily (station, day, obs_at, temp, rh, wind_kmh, rain, ffmc, dmc, dc, isi, bui, fwi, dsr, level)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, r.DeviceID, day, ms(r.Time), temp, rh, wx.Wind, acc,
		ix.FFMC, ix.DMC, ix.DC, ix.ISI, ix.BUI, ix.FWI, ix.DSR, int(level)); err != nil {
		return fmt.Errorf("alerting: fwi: %w", err)
	}
	if err := tx.Commit(); err != nil {
		delete(e.fwiCache, r.DeviceID)
		return fmt.Errorf("alerting: fwi: %w", err)
	}
	*st = fwiState{codes: Codes{FFMC: ix.FFMC, DMC: ix.DMC, DC: ix.DC}, lastDay: day, zone: r.Zone, lat: lat, stored: true}
	sd := StationDanger{Station: r.DeviceID, Zone: r.Zone, Day: day, Indices: ix, Level: level, ObsAt: r.Time}
	e.hub.Publish("fire_danger.daily", sd)
	if e.points != nil {
		if err := e.points.WritePoint(ctx, e.cfg.FireDanger.Measurement, map[string]string{"station": r.DeviceID, "zone": r.Zone},
			map[string]any{"ffmc": ix.FFMC, "dmc": ix.DMC, "dc": ix.DC, "isi": ix.ISI, "bui": ix.BUI, "fwi": ix.FWI,
				"dsr": ix.DSR, "level": int64(level), "temp": temp, "rh": rh, "wind_kmh": wx.Wind, "rain_24h": acc}, r.Time); err != nil {
			e.log.Warn("alerting: fwi point", "station", r.DeviceID, "err", err)
		}
	}
	return e.zoneDanger(ctx, sd)
}

// zoneDanger raises or clears the zone-wide fire-danger alert from the highest
// level any station of the zone reported for the day.
func (e *Engine) zoneDanger(ctx context.Context, sd StationDanger) error {
	source := "zone:" + sd.Zone
	if sd.Zone == "" {
		source = "station:" + sd.Station
	}
	top := sd.Level
	if sd.Zone != "" {
		var max sql.NullInt64
		if err := e.db.QueryRowContext(ctx, `SELECT MAX(level) FROM fwi_station WHERE zone = ? AND last_day = ?`, sd.Zone, sd.Day).Scan(&max); err != nil {
			return fmt.Errorf("alerting: zone danger: %w", err)
		}
		if Level(max.Int64) > top {
			top = Level(max.Int64)
		}
	}
	if int(top) < e.cfg.FireDanger.AlertLevel {
		return e.Resolve(ctx, source, TypeFireDanger, fmt.Sprintf("fire danger down to %s on %s", top.Name(), sd.Day))
	}
	sev := Major
	what := "high fire danger 高火险"
	if top >= 5 {
		sev, what = Critical, "extreme fire danger 极高火险"
	}
	_, err := e.Raise(ctx, Raise{Source: source, Type: TypeFireDanger, Severity: sev, Zone: sd.Zone,
		Message: fmt.Sprintf("%s: %s, FWI %.1f at station %s on %s", what, top.Name(), sd.Indices.FWI, sd.Station, sd.Day),
		Details: map[string]any{"level": int(top), "level_name": top.Name(), "colour": top.Colour(), "fwi": round(sd.Indices.FWI, 2),
			"station": sd.Station, "day": sd.Day}, At: sd.ObsAt})
	return err
}

// Danger returns every station's latest fire-danger state.
func (e *Engine) Danger(ctx context.Context) ([]StationDanger, error) {
	rows, err := e.db.QueryContext(ctx, `SELECT d.station, s.zone, d.day, d.obs_at, d.ffmc, d.dmc, d.dc, d.isi, d.bui, d.fwi, d.dsr, d.level
		FROM fwi_daily d JOIN fwi_station s ON s.station = d.station AND s.last_day = d.day ORDER BY d.station`)
	if err != nil {
		return nil, fmt.Errorf("alerting: danger: %w", err)
	}
	defer rows.Close()
	out := []StationDanger{}
	for rows.Next() {
		var sd StationDanger
		var at int64
		var lvl int
		if err := rows.Scan(&sd.Station, &sd.Zone, &sd.Day, &at, &sd.Indices.FFMC, &sd.Indices.DMC, &sd.Indices.DC,
			&sd.Indices.ISI, &sd.Indices.BUI, &sd.Indices.FWI, &sd.Indices.DSR, &lvl); err != nil {
			return nil, fmt.Errorf("alerting: danger: %w", err)
		}
		sd.ObsAt, sd.Level = fromMS(at), Level(lvl)
		out = append(out, sd)
	}
	return out, rows.Err()
}
