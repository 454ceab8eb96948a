package hotspot

// migrations are the hotspot component's tables (store.Migrate: append only, never edit).
// Times are unix seconds UTC; 0 means "not set".
func migrations() []string {
	return []string{
		`CREATE TABLE hotspot_reports (
			id INTEGER PRIMARY KEY,
			status TEXT NOT NULL,
			class TEXT NOT NULL,
			zone_id TEXT NOT NULL DEFAULT '',
			zone_path TEXT NOT NULL DEFAULT '',
			zone_ids TEXT NOT NULL DEFAULT '',
			forest TEXT NOT NULL DEFAULT '',
			mask TEXT NOT NULL DEFAULT '',
			unit TEXT NOT NULL DEFAULT '',
			assignee TEXT NOT NULL DEFAULT '',
			assignee_phone TEXT NOT NULL DEFAULT '',
			lat REAL NOT NULL DEFAULT 0,
			lon REAL NOT NULL DEFAULT 0,
			first_seen INTEGER NOT NULL DEFAULT 0,
			last_seen INTEGER NOT NULL DEFAULT 0,
			hotspots INTEGER NOT NULL DEFAULT 0,
			max_frp REAL NOT NULL DEFAULT 0,
			created_at INTEGER NOT NULL,
			updated_at INTEGER NOT NULL,
			deadline INTEGER NOT NULL DEFAULT 0,
			escalated_at INTEGER NOT NULL DEFAULT 0,
			overdue INTEGER NOT NULL DEFAULT 0,
			verifying_at INTEGER NOT NULL DEFAULT 0,
			closed_at INTEGER NOT NULL DEFAULT 0,
			outcome TEXT NOT NULL DEFAULT '',
			verifier TEXT NOT NULL DEFAULT '',
			verified_at INTEGER NOT NULL DEFAULT 0,
			note TEXT NOT NULL DEFAULT '',
			corrected_lat REAL,
			corrected_lon REAL,
			confirmed_by_camera INTEGER NOT NULL DEFAULT 0,
			merged_into INTEGER NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX hotspot_reports_status ON hotspot_reports(status, deadline)`,
		`CREATE INDEX hotspot_reports_created ON hotspot_reports(created_at)`,
		`CREATE TABLE hotspot_hotspots (
			id INTEGER PRIMARY KEY,
			report_id INTEGER NOT NULL REFERENCES hotspot_reports(id),
			instrument TEXT NOT NULL,
			satellite TEXT NOT NULL,
			acquired INTEGER NOT NULL,
			lat_e4 INTEGER NOT NULL,
			lon_e4 INTEGER NOT NULL,
			lat REAL NOT NULL,
			lon REAL NOT NULL,
			scan REAL NOT NULL,
			track REAL NOT NULL,
			bright REAL NOT NULL,
			bright2 REAL NOT NULL,
			frp REAL NOT NULL,
			confidence TEXT NOT NULL,
			conf_level TEXT NOT NULL,
			version TEXT NOT NULL,
			daynight TEXT NOT NULL,
			type INTEGER NOT NULL,
			country TEXT NOT NULL,
			class TEXT NOT NULL,
			forest TEXT NOT NULL,
			zone_id TEXT NOT NULL,
			mask TEXT NOT NULL,
			source TEXT NOT NULL,
			imported_at INTEGER NOT NULL
		)`,
		// A hotspot's identity: instrument, satellite, acquisition minute, position to 1e-4° (≈ 11 m,
		// far below a 375 m pixel, coarse enough to absorb re-formatting of the coordinates).
		`CREATE UNIQUE INDEX hotspot_hotspots_identity ON hotspot_hotspots(acquired, instrument, satellite, lat_e4, lon_e4)`,
		`CREATE INDEX hotspot_hotspots_report ON hotspot_hotspots(report_id)`,
		`CREATE TABLE hotspot_history (
			id INTEGER PRIMARY KEY,
			report_id INTEGER NOT NULL REFERENCES hotspot_reports(id),
			at INTEGER NOT NULL,
			actor TEXT NOT NULL,
			action TEXT NOT NULL,
			from_status TEXT NOT NULL,
			to_status TEXT NOT NULL,
			detail TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX hotspot_history_report ON hotspot_history(report_id, id)`,
		`CREATE TABLE hotspot_photos (
			id TEXT PRIMARY KEY,
			report_id INTEGER NOT NULL REFERENCES hotspot_reports(id),
			file TEXT NOT NULL,
			content_type TEXT NOT NULL,
			size INTEGER NOT NULL,
			sha256 TEXT NOT NULL,
			uploaded_by TEXT NOT NULL,
			uploaded_at INTEGER NOT NULL
		)`,
		`CREATE INDEX hotspot_photos_report ON hotspot_photos(report_id)`,
		`CREATE TABLE hotspot_sources (
			name TEXT PRIMARY KEY,
			etag TEXT NOT NULL DEFAULT '',
			last_modified TEXT NOT NULL DEFAULT '',
			last_polled INTEGER NOT NULL DEFAULT 0,
			last_error TEXT NOT NULL DEFAULT ''
		)`,
		// Satellites are identified by one code (T, A, N, N20, N21; canonicalSatellite):
		// rewrite rows stored under archive names (Terra, NOAA-20 …). A row whose canonical
		// twin is already stored (the same detection imported under both spellings) is left
		// as it is (OR IGNORE) rather than failing the start; identities are compared in
		// canonical form, so it can cause no new duplicate.
		`UPDATE OR IGNORE hotspot_hotspots SET satellite =
			CASE upper(replace(replace(replace(trim(satellite), ' ', ''), '-', ''), '_', ''))
			WHEN 'T' THEN 'T' WHEN 'TERRA' THEN 'T'
			WHEN 'A' THEN 'A' WHEN 'AQUA' THEN 'A'
			WHEN 'N' THEN 'N' WHEN 'NPP' THEN 'N' WHEN 'SNPP' THEN 'N' WHEN 'SUOMINPP' THEN 'N'
			WHEN 'N20' THEN 'N20' WHEN 'NOAA20' THEN 'N20' WHEN 'J1' THEN 'N20' WHEN 'JPSS1' THEN 'N20' WHEN '1' THEN 'N20'
			WHEN 'N21' THEN 'N21' WHEN 'NOAA21' THEN 'N21' WHEN 'J2' THEN 'N21' WHEN 'JPSS2' THEN 'N21' WHEN '2' THEN 'N21'
			ELSE satellite END
			WHERE satellite NOT IN ('T', 'A', 'N', 'N20', 'N21')`,
	}
}
