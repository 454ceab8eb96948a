package registry

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/store"
)

// schema is the registry's migration list; append only (see store.Migrate).
// Times are Unix milliseconds (NULL = unknown) so no driver time parsing is
// involved; health columns are rewritten by the periodic flush.
var schema = []string{
	`CREATE TABLE registry_devices (
		id          TEXT PRIMARY KEY,
		class       TEXT NOT NULL,
		name        TEXT NOT NULL,
		lat         REAL NOT NULL,
		lon         REAL NOT NULL,
		zone        TEXT NOT NULL DEFAULT '',
		forest      TEXT NOT NULL DEFAULT '',
		installed   INTEGER,
		interval_ms INTEGER NOT NULL,
		firmware    TEXT NOT NULL DEFAULT '',
		rtsp_url    TEXT NOT NULL DEFAULT '',
		pan_deg     REAL,
		hfov_deg    REAL,
		auto        INTEGER NOT NULL DEFAULT 0,
		last_seen   INTEGER,
		battery_pct REAL,
		rssi_dbm    REAL,
		state       TEXT NOT NULL DEFAULT 'never',
		updated     INTEGER NOT NULL
	)`,
	`CREATE INDEX registry_devices_zone ON registry_devices(zone)`,
	// zone holds the zone in effect (derived by geo, else configured);
	// configured_zone what the API or a devices file set. Rows from before this
	// step had only the first: it is the best guess of the second.
	`ALTER TABLE registry_devices ADD COLUMN configured_zone TEXT NOT NULL DEFAULT ''`,
	`UPDATE registry_devices SET configured_zone = zone`,
	// Ids deleted through the registry, so the start-up seed does not bring
	// them back (see SeedFile); an id leaves it when it is created again.
	`CREATE TABLE registry_deleted (
		id      TEXT PRIMARY KEY,
		deleted INTEGER NOT NULL
	)`,
}

func migrate(ctx context.Context, db *sql.DB) error {
	if err := store.Migrate(ctx, db, "registry", schema); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return nil
}

func msOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMs(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

func floatOrNull(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// insertDevice writes a new device row and forgets the id as deleted (it is
// registered again), in one transaction.
func insertDevice(ctx context.Context, db *sql.DB, d Device, now time.Time) error {
	state := d.State
	if state == "" {
		state = StateNever
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("registry: insert %s: %w", d.ID, err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO registry_devices (id, class, name, lat, lon, zone, configured_zone, forest,
		installed, interval_ms, firmware, rtsp_url, pan_deg, hfov_deg, auto, last_seen, battery_pct, rssi_dbm, state, updated)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		d.ID, string(d.Class), d.Name, d.Lat, d.Lon, d.Zone, d.ConfiguredZone, d.Forest, msOrNull(d.Installed),
		d.Interval.Milliseconds(), d.Firmware, d.RTSPURL, floatOrNull(d.PanDeg), floatOrNull(d.HFOVDeg), d.AutoRegistered,
		msOrNull(d.LastSeen), floatOrNull(d.Battery), floatOrNull(d.RSSI), state, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("registry: insert %s: %w", d.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM registry_deleted WHERE id = ?`, d.ID); err != nil {
		return fmt.Errorf("registry: insert %s: %w", d.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("registry: insert %s: %w", d.ID, err)
	}
	return nil
}

func updateStatic(ctx context.Context, db *sql.DB, d Device, now time.Time) error {
	_, err := db.ExecContext(ctx, `UPDATE registry_devices SET class=?, name=?, lat=?, lon=?, zone=?, configured_zone=?,
		forest=?, installed=?, interval_ms=?, firmware=?, rtsp_url=?, pan_deg=?, hfov_deg=?, auto=?, updated=? WHERE id=?`,
		string(d.Class), d.Name, d.Lat, d.Lon, d.Zone, d.ConfiguredZone, d.Forest, msOrNull(d.Installed), d.Interval.Milliseconds(),
		d.Firmware, d.RTSPURL, floatOrNull(d.PanDeg), floatOrNull(d.HFOVDeg), d.AutoRegistered, now.UnixMilli(), d.ID)
	if err != nil {
		return fmt.Errorf("registry: update %s: %w", d.ID, err)
	}
	return nil
}

// deleteDevice removes a device's row and remembers its id as deleted, in one
// transaction.
func deleteDevice(ctx context.Context, db *sql.DB, id string, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("registry: delete %s: %w", id, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM registry_devices WHERE id = ?`, id); err != nil {
		return fmt.Errorf("registry: delete %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO registry_deleted (id, deleted) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET deleted = excluded.deleted`, id, now.UnixMilli()); err != nil {
		return fmt.Errorf("registry: delete %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("registry: delete %s: %w", id, err)
	}
	return nil
}

// deletedIDs returns the ids deleted through the registry and not created since.
func (g *Registry) deletedIDs(ctx context.Context) (map[string]bool, error) {
	rows, err := g.db.QueryContext(ctx, `SELECT id FROM registry_deleted`)
	if err != nil {
		return nil, fmt.Errorf("registry: deleted ids: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("registry: deleted ids: %w", err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registry: deleted ids: %w", err)
	}
	return out, nil
}

// load reads every device into memory.
func (g *Registry) load(ctx context.Context) error {
	rows, err := g.db.QueryContext(ctx, `SELECT id, class, name, lat, lon, zone, configured_zone, forest, installed,
		interval_ms, firmware, rtsp_url, pan_deg, hfov_deg, auto, last_seen, battery_pct, rssi_dbm, state
		FROM registry_devices`)
	if err != nil {
		return fmt.Errorf("registry: load: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			d                     Device
			class, state          string
			installed, lastSeen   sql.NullInt64
			intervalMs            int64
			pan, hfov, batt, rssi sql.NullFloat64
		)
		if err := rows.Scan(&d.ID, &class, &d.Name, &d.Lat, &d.Lon, &d.Zone, &d.ConfiguredZone, &d.Forest, &installed, &intervalMs,
			&d.Firmware, &d.RTSPURL, &pan, &hfov, &d.AutoRegistered, &lastSeen, &batt, &rssi, &state); err != nil {
			return fmt.Errorf("registry: load: %w", err)
		}
		d.Class = ingest.Class(class)
		d.Installed = fromMs(installed)
		d.Interval = time.Duration(intervalMs) * time.Millisecond
		if d.Interval <= 0 {
			d.Interval = g.cfg.DefaultInterval
		}
		if pan.Valid {
			v := pan.Float64
			d.PanDeg = &v
		}
		if hfov.Valid {
			v := hfov.Float64
			d.HFOVDeg = &v
		}
		if !validState(state) {
			state = StateNever
		}
		e := &entry{d: d, lastSeen: fromMs(lastSeen), state: state,
			battery: batt.Float64, hasBattery: batt.Valid, rssi: rssi.Float64, hasRSSI: rssi.Valid}
		g.put(e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("registry: load: %w", err)
	}
	return nil
}

// healthRow is what a flush writes for one device.
type healthRow struct {
	d     Device // full snapshot
	isNew bool
}

// writeHealth writes the rows in one transaction.
func writeHealth(ctx context.Context, db *sql.DB, rows []healthRow, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("registry: flush: %w", err)
	}
	defer tx.Rollback()
	upd, err := tx.PrepareContext(ctx, `UPDATE registry_devices SET zone=?, forest=?, firmware=?, last_seen=?,
		battery_pct=?, rssi_dbm=?, state=?, updated=? WHERE id=?`)
	if err != nil {
		return fmt.Errorf("registry: flush: %w", err)
	}
	defer upd.Close()
	for _, r := range rows {
		d := r.d
		if r.isNew {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO registry_devices (id, class, name, lat, lon,
				installed, interval_ms, auto, state, updated) VALUES (?,?,?,?,?,?,?,?,?,?)`,
				d.ID, string(d.Class), d.Name, d.Lat, d.Lon, msOrNull(d.Installed), d.Interval.Milliseconds(),
				d.AutoRegistered, d.State, now.UnixMilli()); err != nil {
				return fmt.Errorf("registry: flush: insert %s: %w", d.ID, err)
			}
		}
		if _, err := upd.ExecContext(ctx, d.Zone, d.Forest, d.Firmware, msOrNull(d.LastSeen), floatOrNull(d.Battery),
			floatOrNull(d.RSSI), d.State, now.UnixMilli(), d.ID); err != nil {
			return fmt.Errorf("registry: flush: update %s: %w", d.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("registry: flush: commit: %w", err)
	}
	return nil
}
