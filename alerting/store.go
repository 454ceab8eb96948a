package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lookoutfire/lookout/store"
)

// schema is append-only (store.Migrate identifies steps by index). Times are Unix
// milliseconds UTC. The partial unique index is what makes "one active alert per
// (source, type)" hold under concurrent raises: the upsert below targets it.
var schema = []string{
	`CREATE TABLE alert (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		source TEXT NOT NULL, type TEXT NOT NULL,
		severity TEXT NOT NULL, sev_rank INTEGER NOT NULL,
		cleared INTEGER NOT NULL DEFAULT 0, acked INTEGER NOT NULL DEFAULT 0,
		zone TEXT NOT NULL DEFAULT '', forest TEXT NOT NULL DEFAULT '',
		lat REAL NOT NULL DEFAULT 0, lon REAL NOT NULL DEFAULT 0,
		message TEXT NOT NULL DEFAULT '', details TEXT NOT NULL DEFAULT '{}',
		count INTEGER NOT NULL DEFAULT 1,
		first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
		acked_at INTEGER, acked_by TEXT NOT NULL DEFAULT '',
		cleared_at INTEGER, cleared_by TEXT NOT NULL DEFAULT '',
		incident_id INTEGER NOT NULL DEFAULT 0)`,
	`CREATE UNIQUE INDEX alert_one_active ON alert(source, type) WHERE cleared = 0`,
	`CREATE INDEX alert_last_seen ON alert(last_seen)`,
	`CREATE TABLE alert_audit (
		id INTEGER PRIMARY KEY AUTOINCREMENT, alert_id INTEGER NOT NULL,
		at INTEGER NOT NULL, action TEXT NOT NULL, user TEXT NOT NULL DEFAULT '', note TEXT NOT NULL DEFAULT '')`,
	`CREATE INDEX alert_audit_alert ON alert_audit(alert_id, id)`,
	`CREATE TABLE escalation (
		alert_id INTEGER PRIMARY KEY, step INTEGER NOT NULL, next_at INTEGER,
		done INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '')`,
	`CREATE INDEX escalation_due ON escalation(done, next_at)`,
	`CREATE TABLE alert_call (
		id INTEGER PRIMARY KEY AUTOINCREMENT, alert_id INTEGER NOT NULL, step INTEGER NOT NULL,
		zone_id TEXT NOT NULL, zone_name TEXT NOT NULL, zone_level TEXT NOT NULL,
		name TEXT NOT NULL, phone TEXT NOT NULL, role TEXT NOT NULL,
		at INTEGER NOT NULL, outcome TEXT NOT NULL, answered_at INTEGER, answered_by TEXT NOT NULL DEFAULT '')`,
	`CREATE INDEX alert_call_alert ON alert_call(alert_id, id)`,
	`CREATE TABLE incident (
		id INTEGER PRIMARY KEY AUTOINCREMENT, opened_at INTEGER NOT NULL, last_at INTEGER NOT NULL,
		lat REAL NOT NULL, lon REAL NOT NULL, zone TEXT NOT NULL DEFAULT '', severity TEXT NOT NULL)`,
	`CREATE TABLE incident_alert (incident_id INTEGER NOT NULL, alert_id INTEGER NOT NULL, at INTEGER NOT NULL,
		PRIMARY KEY (incident_id, alert_id))`,
	`CREATE TABLE fwi_station (
		station TEXT PRIMARY KEY, zone TEXT NOT NULL DEFAULT '', lat REAL NOT NULL,
		ffmc REAL NOT NULL, dmc REAL NOT NULL, dc REAL NOT NULL,
		last_day TEXT NOT NULL DEFAULT '', rain_acc REAL NOT NULL DEFAULT 0, level INTEGER NOT NULL DEFAULT 0,
		fwi REAL NOT NULL DEFAULT 0, updated INTEGER NOT NULL)`,
	`CREATE TABLE fwi_daily (
		station TEXT NOT NULL, day TEXT NOT NULL, obs_at INTEGER NOT NULL,
		temp REAL, rh REAL, wind_kmh REAL, rain REAL, ffmc REAL, dmc REAL, dc REAL,
		isi REAL, bui REAL, fwi REAL, dsr REAL, level INTEGER, PRIMARY KEY (station, day))`,
	`CREATE TABLE event_log (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, at INTEGER NOT NULL, data TEXT NOT NULL)`,
	`CREATE TABLE webhook_outbox (
		id INTEGER PRIMARY KEY AUTOINCREMENT, webhook TEXT NOT NULL, event_id INTEGER NOT NULL,
		event_type TEXT NOT NULL, body BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
		next_at INTEGER NOT NULL, delivered_at INTEGER, dead INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '')`,
	`CREATE INDEX webhook_outbox_due ON webhook_outbox(delivered_at, dead, next_at)`,
	// Alert messages for MQTT (mqttoutbox.go): a row lives until the broker has
	// it, so unlike webhook_outbox there is no delivered/dead state to keep.
	`CREATE TABLE mqtt_outbox (
		id INTEGER PRIMARY KEY AUTOINCREMENT, alert_id INTEGER NOT NULL, event_id INTEGER NOT NULL,
		topic TEXT NOT NULL, payload BLOB NOT NULL, created_at INTEGER NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '')`,
	// Incidents close once every alert in them is cleared (incident.go); a
	// closed incident takes no new alerts, so joining searches the open ones.
	`ALTER TABLE incident ADD COLUMN closed_at INTEGER`,
	`ALTER TABLE incident ADD COLUMN close_reason TEXT NOT NULL DEFAULT ''`,
	// Incidents whose alerts were all cleared before closing existed close at
	// their last clear, without an event (they are history). The reason is
	// IncidentAllCleared spelled out: an applied step must never change.
	`UPDATE incident SET close_reason = 'all_cleared',
		closed_at = COALESCE((SELECT MAX(a.cleared_at) FROM incident_alert ia JOIN alert a ON a.id = ia.alert_id
			WHERE ia.incident_id = incident.id), last_at)
		WHERE EXISTS (SELECT 1 FROM incident_alert ia WHERE ia.incident_id = incident.id)
		AND NOT EXISTS (SELECT 1 FROM incident_alert ia JOIN alert a ON a.id = ia.alert_id
			WHERE ia.incident_id = incident.id AND a.cleared = 0)`,
	`CREATE INDEX incident_open ON incident(last_at) WHERE closed_at IS NULL`,
	// Who closed an incident by hand (IncidentClosedByOperator); '' when its
	// alerts were all cleared one by one (IncidentAllCleared).
	`ALTER TABLE incident ADD COLUMN closed_by TEXT NOT NULL DEFAULT ''`,
	// The chain of zones an escalation calls, fixed when it starts (JSON, see
	// escalation.go); '' on rows from before: they follow the live path.
	`ALTER TABLE escalation ADD COLUMN path TEXT NOT NULL DEFAULT ''`,
}

func ms(t time.Time) int64 { return t.UTC().UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

// alertStore is the SQLite side of the alert lifecycle, with an in-memory index
// of the active alerts (activeindex.go).
type alertStore struct {
	db  *sql.DB
	idx *activeIndex
}

func openStore(ctx context.Context, db *sql.DB) (*alertStore, error) {
	if err := store.Migrate(ctx, db, "alerting", schema); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	s := &alertStore{db: db}
	var err error
	if s.idx, err = loadActiveIndex(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

const alertCols = `id, source, type, severity, cleared, acked, zone, forest, lat, lon, message, details, count,
	first_seen, last_seen, acked_at, acked_by, cleared_at, cleared_by, incident_id`

type rowScanner interface{ Scan(...any) error }

func scanAlert(r rowScanner) (Alert, error) {
	var a Alert
	var cleared, acked bool
	var details string
	var first, last int64
	var ackedAt, clearedAt sql.NullInt64
	if err := r.Scan(&a.ID, &a.Source, &a.Type, &a.Severity, &cleared, &acked, &a.Zone, &a.Forest, &a.Lat, &a.Lon,
		&a.Message, &details, &a.Count, &first, &last, &ackedAt, &a.AckedBy, &clearedAt, &a.ClearedBy, &a.Incident); err != nil {
		return a, err
	}
	a.State = stateOf(cleared, acked)
	a.FirstSeen, a.LastSeen = fromMS(first), fromMS(last)
	a.AckedAt, a.ClearedAt = nullMS(ackedAt), nullMS(clearedAt)
	if details != "" && details != "{}" {
		_ = json.Unmarshal([]byte(details), &a.Details)
	}
	return a, nil
}

// upsert raises or repeats the alert atomically and reports whether it is new.
// Severity only rises while the alert stays active; details and message follow
// the latest occurrence.
func (s *alertStore) upsert(ctx context.Context, r Raise) (Alert, bool, error) {
	details, err := json.Marshal(r.Details)
	if err != nil {
		return Alert{}, false, fmt.Errorf("%w: details: %v", ErrBadAlert, err)
	}
	if r.Details == nil {
		details = []byte("{}")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Alert{}, false, fmt.Errorf("alerting: upsert: %w", err)
	}
	defer tx.Rollback()
	at := ms(r.At)
	row := tx.QueryRowContext(ctx, `INSERT INTO alert (source, type, severity, sev_rank, zone, forest, lat, lon, message, details, first_seen, last_seen)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (source, type) WHERE cleared = 0 DO UPDATE SET
			count = count + 1,
			last_seen = MAX(last_seen, excluded.last_seen),
			severity = CASE WHEN excluded.sev_rank > sev_rank THEN excluded.severity ELSE severity END,
			sev_rank = MAX(sev_rank, excluded.sev_rank),
			message = excluded.message, details = excluded.details,
			lat = CASE WHEN excluded.lat != 0 OR excluded.lon != 0 THEN excluded.lat ELSE lat END,
			lon = CASE WHEN excluded.lat != 0 OR excluded.lon != 0 THEN excluded.lon ELSE lon END,
			zone = CASE WHEN excluded.zone != '' THEN excluded.zone ELSE zone END,
			forest = CASE WHEN excluded.forest != '' THEN excluded.forest ELSE forest END
		RETURNING `+alertCols,
		r.Source, r.Type, r.Severity, r.Severity.Rank(), r.Zone, r.Forest, r.Lat, r.Lon, r.Message, string(details), at, at)
	a, err := scanAlert(row)
	if err != nil {
		return Alert{}, false, fmt.Errorf("alerting: upsert: %w", err)
	}
	isNew := a.Count == 1
	if isNew {
		if err := audit(ctx, tx, a.ID, r.At, "raised", "", string(r.Severity)+": "+r.Message); err != nil {
			return Alert{}, false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return Alert{}, false, fmt.Errorf("alerting: upsert: %w", err)
	}
	s.idx.add(a.Source, a.Type, a.ID)
	return a, isNew, nil
}

type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func audit(ctx context.Context, x execer, id int64, at time.Time, action, user, note string) error {
	if _, err := x.ExecContext(ctx, `INSERT INTO alert_audit (alert_id, at, action, user, note) VALUES (?,?,?,?,?)`,
		id, ms(at), action, user, note); err != nil {
		return fmt.Errorf("alerting: audit: %w", err)
	}
	return nil
}

func (s *alertStore) get(ctx context.Context, id int64) (Alert, error) {
	a, err := scanAlert(s.db.QueryRowContext(ctx, `SELECT `+alertCols+` FROM alert WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("%w: %d", ErrAlertNotFound, id)
	}
	if err != nil {
		return a, fmt.Errorf("alerting: get alert: %w", err)
	}
	return a, nil
}

// active returns the active alert for (source, type), if any. The index answers
// "none" without a query for the pairs that have no active alert, which is
// nearly every rule check.
func (s *alertStore) active(ctx context.Context, source, typ string) (Alert, bool, error) {
	id := s.idx.lookup(source, typ)
	if id == 0 {
		return Alert{}, false, nil
	}
	a, err := scanAlert(s.db.QueryRowContext(ctx, `SELECT `+alertCols+` FROM alert WHERE source = ? AND type = ? AND cleared = 0`, source, typ))
	if errors.Is(err, sql.ErrNoRows) {
		s.idx.remove(source, typ, id) // stale: cleared while a repeat was being recorded
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("alerting: active alert: %w", err)
	}
	return a, true, nil
}

// ack acknowledges an alert (active or cleared) once.
func (s *alertStore) ack(ctx context.Context, id int64, at time.Time, user, note string) (Alert, error) {
	return s.step(ctx, id, at, user, note, "acked",
		`UPDATE alert SET acked = 1, acked_at = ?, acked_by = ? WHERE id = ? AND acked = 0`, nil)
}

// clear clears an active alert once. When that leaves the alert's incident
// without an active alert, the incident is closed in the same transaction and
// its id returned (0 otherwise): the clear and the close cannot come apart,
// and only the clear that settles the incident closes it.
func (s *alertStore) clear(ctx context.Context, id int64, at time.Time, user, note string) (Alert, int64, error) {
	var closed int64
	a, err := s.step(ctx, id, at, user, note, "cleared", clearQuery,
		func(tx *sql.Tx, a Alert) (err error) {
			closed, err = closeIfSettled(ctx, tx, a.Incident, at, IncidentAllCleared, "")
			return err
		})
	return a, closed, err
}

// clearQuery is the clear step's update; an operator's incident close
// (closeIncident) clears each alert with it too.
const clearQuery = `UPDATE alert SET cleared = 1, cleared_at = ?, cleared_by = ? WHERE id = ? AND cleared = 0`

// step applies one lifecycle step (the update q) with its audit entry; then,
// when non-nil, runs in the same transaction with the updated alert.
func (s *alertStore) step(ctx context.Context, id int64, at time.Time, user, note, action, q string, then func(*sql.Tx, Alert) error) (Alert, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Alert{}, fmt.Errorf("alerting: %s: %w", action, err)
	}
	defer tx.Rollback()
	a, err := stepTx(ctx, tx, id, at, user, note, action, q)
	if err != nil {
		return Alert{}, err
	}
	if then != nil {
		if err := then(tx, a); err != nil {
			return Alert{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return Alert{}, fmt.Errorf("alerting: %s: %w", action, err)
	}
	if !a.Active() {
		s.idx.remove(a.Source, a.Type, a.ID)
	}
	return a, nil
}

// stepTx is step inside the caller's transaction: the update, the audit entry
// (and for an ack the 叫应 answer), and the alert as updated. It returns
// ErrAlertNotFound or ErrAlreadyDone when the update matched nothing.
func stepTx(ctx context.Context, tx *sql.Tx, id int64, at time.Time, user, note, action, q string) (Alert, error) {
	res, err := tx.ExecContext(ctx, q, ms(at), user, id)
	if err != nil {
		return Alert{}, fmt.Errorf("alerting: %s: %w", action, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM alert WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return Alert{}, fmt.Errorf("%w: %d", ErrAlertNotFound, id)
		}
		return Alert{}, fmt.Errorf("%w: alert %d is already %s", ErrAlreadyDone, id, action)
	}
	if err := audit(ctx, tx, id, at, action, user, note); err != nil {
		return Alert{}, err
	}
	if action == "acked" {
		// The 叫应 answer: the calls of the step in progress (every duty contact
		// of the zone being called) are marked answered by whoever acked; once
		// the chain has ended unanswered, those of the zone called last. Calls
		// of the step in progress recorded after this (an ack landing while they
		// are being placed) take the answer when they are recorded
		// (escalateFrom). Acking an alert that has already cleared answers no
		// call: nobody answered them while it was on.
		if _, err := tx.ExecContext(ctx, `UPDATE alert_call SET answered_at = ?, answered_by = ?
			WHERE alert_id = ? AND answered_at IS NULL
			AND NOT EXISTS (SELECT 1 FROM alert WHERE id = ? AND cleared = 1)
			AND step = COALESCE(
				(SELECT step FROM escalation WHERE alert_id = ? AND done = 0 AND step >= 0),
				(SELECT MAX(step) FROM alert_call WHERE alert_id = ?))`, ms(at), user, id, id, id, id); err != nil {
			return Alert{}, fmt.Errorf("alerting: answer call: %w", err)
		}
	}
	a, err := scanAlert(tx.QueryRowContext(ctx, `SELECT `+alertCols+` FROM alert WHERE id = ?`, id))
	if err != nil {
		return Alert{}, fmt.Errorf("alerting: %s: %w", action, err)
	}
	return a, nil
}

func (s *alertStore) list(ctx context.Context, f Filter) ([]Alert, error) {
	var where []string
	var args []any
	if len(f.States) > 0 {
		var ors []string
		for _, st := range f.States {
			switch st {
			case ActiveUnack:
				ors = append(ors, "(cleared = 0 AND acked = 0)")
			case ActiveAck:
				ors = append(ors, "(cleared = 0 AND acked = 1)")
			case ClearedUnack:
				ors = append(ors, "(cleared = 1 AND acked = 0)")
			case ClearedAck:
				ors = append(ors, "(cleared = 1 AND acked = 1)")
			}
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	if len(f.Severity) > 0 {
		where = append(where, "severity IN (?"+strings.Repeat(",?", len(f.Severity)-1)+")")
		for _, s := range f.Severity {
			args = append(args, string(s))
		}
	}
	if f.Zone != "" {
		where = append(where, "zone = ?")
		args = append(args, f.Zone)
	}
	if !f.Since.IsZero() {
		where = append(where, "last_seen >= ?")
		args = append(args, ms(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "first_seen <= ?")
		args = append(args, ms(f.Until))
	}
	q := `SELECT ` + alertCols + ` FROM alert`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	q += fmt.Sprintf(" ORDER BY last_seen DESC, id DESC LIMIT %d", f.Limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("alerting: list alerts: %w", err)
	}
	defer rows.Close()
	out := []Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("alerting: list alerts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *alertStore) auditOf(ctx context.Context, id int64) ([]AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, action, user, note FROM alert_audit WHERE alert_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("alerting: audit: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&at, &e.Action, &e.User, &e.Note); err != nil {
			return nil, fmt.Errorf("alerting: audit: %w", err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s *alertStore) callsOf(ctx context.Context, id int64) ([]CallRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, alert_id, step, zone_id, zone_name, zone_level, name, phone, role, at, outcome, answered_at, answered_by
		FROM alert_call WHERE alert_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("alerting: calls: %w", err)
	}
	defer rows.Close()
	out := []CallRecord{}
	for rows.Next() {
		var c CallRecord
		var at int64
		var ans sql.NullInt64
		if err := rows.Scan(&c.ID, &c.AlertID, &c.Step, &c.ZoneID, &c.ZoneName, &c.Level, &c.Name, &c.Phone, &c.Role,
			&at, &c.Outcome, &ans, &c.AnswerBy); err != nil {
			return nil, fmt.Errorf("alerting: calls: %w", err)
		}
		c.At, c.Answered = fromMS(at), nullMS(ans)
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *alertStore) escalationOf(ctx context.Context, id int64) (*EscalationStatus, error) {
	var st EscalationStatus
	var next sql.NullInt64
	var chain string
	err := s.db.QueryRowContext(ctx, `SELECT step, next_at, done, reason, path FROM escalation WHERE alert_id = ?`, id).
		Scan(&st.Step, &next, &st.Done, &st.Reason, &chain)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("alerting: escalation: %w", err)
	}
	st.NextAt = nullMS(next)
	if chain != "" {
		_ = json.Unmarshal([]byte(chain), &st.Chain) // unreadable: shown without its chain
	}
	return &st, nil
}
