package alerting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Incident groups alerts that are probably the same fire: evidence from
// different sources (camera fix, smoke alarm, hotspot, station danger) within
// incident.radius_m and incident.window of each other.
type Incident struct {
	ID       int64      `json:"id"`
	OpenedAt time.Time  `json:"opened_at"`
	LastAt   time.Time  `json:"last_at"`
	Lat      float64    `json:"lat"`
	Lon      float64    `json:"lon"`
	Zone     string     `json:"zone,omitempty"`
	Severity Severity   `json:"severity"`
	Evidence []Evidence `json:"evidence"`
}

// Evidence is one alert in an incident.
type Evidence struct {
	AlertID  int64     `json:"alert_id"`
	Source   string    `json:"source"`
	Type     string    `json:"type"`
	Severity Severity  `json:"severity"`
	At       time.Time `json:"at"`
}

func (e *Engine) isEvidence(typ string) bool {
	for _, p := range e.cfg.Incident.Types {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

// joinIncident attaches a fire-evidence alert to the nearest recent incident,
// opening one when the alert has a position and none is near. Alerts without a
// position (zone-wide danger, an unfixed camera bearing) only join an incident
// of the same zone.
func (e *Engine) joinIncident(ctx context.Context, a Alert, now time.Time) (int64, error) {
	if !e.isEvidence(a.Type) {
		return 0, nil
	}
	hasPos := a.Lat != 0 || a.Lon != 0
	if !hasPos && a.Zone == "" {
		return 0, nil
	}
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("alerting: incident: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, lat, lon, zone, severity FROM incident WHERE last_at >= ? ORDER BY last_at DESC LIMIT 500`,
		ms(now.Add(-e.cfg.Incident.Window)))
	if err != nil {
		return 0, fmt.Errorf("alerting: incident: %w", err)
	}
	var best int64
	var bestSev Severity
	bestD := e.cfg.Incident.RadiusM + 1
	for rows.Next() {
		var id int64
		var lat, lon float64
		var zone string
		var sev Severity
		if err := rows.Scan(&id, &lat, &lon, &zone, &sev); err != nil {
			rows.Close()
			return 0, fmt.Errorf("alerting: incident: %w", err)
		}
		if hasPos {
			if d := distanceM(a.Lat, a.Lon, lat, lon); d <= e.cfg.Incident.RadiusM && d < bestD {
				best, bestD, bestSev = id, d, sev
			}
		} else if zone == a.Zone && best == 0 {
			best, bestSev = id, sev
		}
	}
	rows.Close()
	typ := "incident.updated"
	switch {
	case best != 0:
		sev := bestSev
		if a.Severity.Rank() > sev.Rank() {
			sev = a.Severity
		}
		if _, err := tx.ExecContext(ctx, `UPDATE incident SET last_at = ?, severity = ? WHERE id = ?`, ms(now), sev, best); err != nil {
			return 0, fmt.Errorf("alerting: incident: %w", err)
		}
	case hasPos:
		res, err := tx.ExecContext(ctx, `INSERT INTO incident (opened_at, last_at, lat, lon, zone, severity) VALUES (?,?,?,?,?,?)`,
			ms(now), ms(now), a.Lat, a.Lon, a.Zone, a.Severity)
		if err != nil {
			return 0, fmt.Errorf("alerting: incident: %w", err)
		}
		best, _ = res.LastInsertId()
		typ = "incident.opened"
	default:
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO incident_alert (incident_id, alert_id, at) VALUES (?,?,?)`, best, a.ID, ms(now)); err != nil {
		return 0, fmt.Errorf("alerting: incident: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE alert SET incident_id = ? WHERE id = ?`, best, a.ID); err != nil {
		return 0, fmt.Errorf("alerting: incident: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("alerting: incident: %w", err)
	}
	if inc, err := e.incident(ctx, best); err == nil {
		e.hub.Publish(typ, inc)
	}
	return best, nil
}

func (e *Engine) incident(ctx context.Context, id int64) (Incident, error) {
	var in Incident
	var opened, last int64
	err := e.db.QueryRowContext(ctx, `SELECT id, opened_at, last_at, lat, lon, zone, severity FROM incident WHERE id = ?`, id).
		Scan(&in.ID, &opened, &last, &in.Lat, &in.Lon, &in.Zone, &in.Severity)
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("incident %d: %w", id, ErrAlertNotFound)
	}
	if err != nil {
		return in, fmt.Errorf("alerting: incident: %w", err)
	}
	in.OpenedAt, in.LastAt = fromMS(opened), fromMS(last)
	ev, err := e.evidence(ctx, []int64{id})
	in.Evidence = ev[id]
	if in.Evidence == nil {
		in.Evidence = []Evidence{}
	}
	return in, err
}

func (e *Engine) evidence(ctx context.Context, ids []int64) (map[int64][]Evidence, error) {
	out := map[int64][]Evidence{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := e.db.QueryContext(ctx, `SELECT ia.incident_id, a.id, a.source, a.type, a.severity, ia.at FROM incident_alert ia
		JOIN alert a ON a.id = ia.alert_id WHERE ia.incident_id IN (?`+strings.Repeat(",?", len(ids)-1)+`) ORDER BY ia.at, a.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("alerting: evidence: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var inc int64
		var ev Evidence
		var at int64
		if err := rows.Scan(&inc, &ev.AlertID, &ev.Source, &ev.Type, &ev.Severity, &at); err != nil {
			return nil, fmt.Errorf("alerting: evidence: %w", err)
		}
		ev.At = fromMS(at)
		out[inc] = append(out[inc], ev)
	}
	return out, rows.Err()
}

// Incidents lists incidents whose last evidence is at or after since, newest first.
func (e *Engine) Incidents(ctx context.Context, since time.Time, limit int) ([]Incident, error) {
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	rows, err := e.db.QueryContext(ctx, `SELECT id, opened_at, last_at, lat, lon, zone, severity FROM incident WHERE last_at >= ?
		ORDER BY last_at DESC, id DESC LIMIT ?`, ms(since), limit)
	if err != nil {
		return nil, fmt.Errorf("alerting: incidents: %w", err)
	}
	out := []Incident{}
	var ids []int64
	for rows.Next() {
		var in Incident
		var opened, last int64
		if err := rows.Scan(&in.ID, &opened, &last, &in.Lat, &in.Lon, &in.Zone, &in.Severity); err != nil {
			rows.Close()
			return nil, fmt.Errorf("alerting: incidents: %w", err)
		}
		in.OpenedAt, in.LastAt = fromMS(opened), fromMS(last)
		out = append(out, in)
		ids = append(ids, in.ID)
	}
	rows.Close()
	ev, err := e.evidence(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Evidence = ev[out[i].ID]
		if out[i].Evidence == nil {
			out[i].Evidence = []Evidence{}
		}
	}
	return out, nil
}
