package alerting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lookoutfire/lookout/errs"
)

// Incident groups alerts that are probably the same fire: evidence from
// different sources (camera fix, smoke alarm, hotspot, station danger) within
// incident.radius_m and incident.window of each other. It closes when every
// alert in it is cleared, one by one or all at once by an operator
// (CloseIncident), with "incident.closed"; a closed incident takes no new
// alerts, so later evidence nearby opens a new one.
type Incident struct {
	ID          int64      `json:"id"`
	OpenedAt    time.Time  `json:"opened_at"`
	LastAt      time.Time  `json:"last_at"`
	Lat         float64    `json:"lat"`
	Lon         float64    `json:"lon"`
	Zone        string     `json:"zone,omitempty"`
	Severity    Severity   `json:"severity"`
	ClosedAt    *time.Time `json:"closed_at,omitempty"`    // absent while open
	CloseReason string     `json:"close_reason,omitempty"` // IncidentAllCleared or IncidentClosedByOperator
	ClosedBy    string     `json:"closed_by,omitempty"`    // the operator, for IncidentClosedByOperator
	Evidence    []Evidence `json:"evidence"`
}

// IncidentAllCleared is the close reason of an incident whose alerts were all
// cleared. Acknowledged alerts keep their incident open: acked means someone
// is on the way, not that the fire is out.
const IncidentAllCleared = "all_cleared"

// IncidentClosedByOperator is the close reason of an incident an operator
// closed as a whole (CloseIncident), clearing its remaining alerts; ClosedBy
// names the operator. It tells "we declared it over" from "every source
// reported it over".
const IncidentClosedByOperator = "closed_by_operator"

// Sentinel errors of the incident close.
var (
	ErrIncidentNotFound = fmt.Errorf("incident %w", errs.ErrNotFound)
	ErrIncidentClosed   = fmt.Errorf("incident already closed (%w)", errs.ErrConflict)
)

// closeIfSettled closes incident id, inside the caller's transaction, when it
// is open and none of its alerts is active, recording reason and by, and
// returns id if it did (0 otherwise). The conditional update makes the close
// happen once, whichever clear (or late join of a cleared alert) settles the
// incident.
func closeIfSettled(ctx context.Context, x execer, id int64, at time.Time, reason, by string) (int64, error) {
	if id == 0 {
		return 0, nil
	}
	res, err := x.ExecContext(ctx, `UPDATE incident SET closed_at = ?, close_reason = ?, closed_by = ? WHERE id = ? AND closed_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM incident_alert ia JOIN alert a ON a.id = ia.alert_id
			WHERE ia.incident_id = incident.id AND a.cleared = 0)`, ms(at), reason, by, id)
	if err != nil {
		return 0, fmt.Errorf("alerting: close incident %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return 0, err
	}
	return id, nil
}

// publishIncident announces an incident lifecycle event with the incident as
// stored (evidence included).
func (e *Engine) publishIncident(ctx context.Context, typ string, id int64) {
	inc, err := e.incident(ctx, id)
	if err != nil {
		e.log.Error("alerting: incident event", "type", typ, "incident", id, "err", err)
		return
	}
	e.hub.Publish(typ, inc)
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

// joinIncident attaches a fire-evidence alert to the nearest recent open
// incident, opening one when the alert has a position and none is near. Alerts
// without a position (zone-wide danger, an unfixed camera bearing) only join an
// incident of the same zone. An alert cleared between being raised and joining
// settles the incident here, as its clear could not.
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
	rows, err := tx.QueryContext(ctx, `SELECT id, lat, lon, zone, severity FROM incident WHERE closed_at IS NULL AND last_at >= ?
		ORDER BY last_at DESC LIMIT 500`,
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
	closed, err := closeIfSettled(ctx, tx, best, now, IncidentAllCleared, "")
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("alerting: incident: %w", err)
	}
	e.publishIncident(ctx, typ, best)
	if closed != 0 {
		e.publishIncident(ctx, "incident.closed", closed)
	}
	return best, nil
}

const incidentCols = `id, opened_at, last_at, lat, lon, zone, severity, closed_at, close_reason, closed_by`

func scanIncident(r rowScanner) (Incident, error) {
	var in Incident
	var opened, last int64
	var closed sql.NullInt64
	if err := r.Scan(&in.ID, &opened, &last, &in.Lat, &in.Lon, &in.Zone, &in.Severity, &closed, &in.CloseReason, &in.ClosedBy); err != nil {
		return in, err
	}
	in.OpenedAt, in.LastAt, in.ClosedAt = fromMS(opened), fromMS(last), nullMS(closed)
	return in, nil
}

func (e *Engine) incident(ctx context.Context, id int64) (Incident, error) {
	in, err := scanIncident(e.db.QueryRowContext(ctx, `SELECT `+incidentCols+` FROM incident WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("%w: %d", ErrIncidentNotFound, id)
	}
	if err != nil {
		return in, fmt.Errorf("alerting: incident: %w", err)
	}
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

// IncidentState selects incidents by whether they are closed.
type IncidentState string

// Incident states for listing; IncidentsAll ("") is both.
const (
	IncidentsAll   IncidentState = ""
	IncidentOpen   IncidentState = "open"
	IncidentClosed IncidentState = "closed"
)

// ParseIncidentState accepts open, closed, all or "" (all).
func ParseIncidentState(s string) (IncidentState, error) {
	switch v := IncidentState(strings.TrimSpace(s)); v {
	case IncidentsAll, IncidentOpen, IncidentClosed:
		return v, nil
	case "all":
		return IncidentsAll, nil
	}
	return "", fmt.Errorf("%w: state %q (want open, closed or all)", ErrBadQuery, s)
}

// IncidentFilter selects incidents for listing.
type IncidentFilter struct {
	State IncidentState
	Since time.Time // last evidence at or after
	Limit int       // 1..500; 500 when out of range
}

// incidentsQuery is the listing query of a state, taking since (ms) and limit.
// The open one's WHERE implies incident_open's, so SQLite reads that partial
// index (in last_at, rowid order: no sort) instead of every incident ever.
func incidentsQuery(state IncidentState) (string, error) {
	where := `last_at >= ?`
	switch state {
	case IncidentsAll:
	case IncidentOpen:
		where = `closed_at IS NULL AND ` + where
	case IncidentClosed:
		where = `closed_at IS NOT NULL AND ` + where
	default:
		return "", fmt.Errorf("%w: state %q", ErrBadQuery, state)
	}
	return `SELECT ` + incidentCols + ` FROM incident WHERE ` + where + ` ORDER BY last_at DESC, id DESC LIMIT ?`, nil
}

// Incidents lists the incidents of f, newest last evidence first.
func (e *Engine) Incidents(ctx context.Context, f IncidentFilter) ([]Incident, error) {
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	q, err := incidentsQuery(f.State)
	if err != nil {
		return nil, err
	}
	rows, err := e.db.QueryContext(ctx, q, ms(f.Since), limit)
	if err != nil {
		return nil, fmt.Errorf("alerting: incidents: %w", err)
	}
	out := []Incident{}
	var ids []int64
	for rows.Next() {
		in, err := scanIncident(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("alerting: incidents: %w", err)
		}
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

// CloseIncident is an operator declaring an open incident over: every active
// alert in it is cleared by user with note, each exactly as a clear by hand
// (the clear step with its audit entry, then its escalation stopped and
// alert.cleared), and the incident then closes by the usual rule, no active
// alert left, with reason IncidentClosedByOperator and ClosedBy user; one
// incident.closed follows. It all happens in one transaction, so a device's
// clear or a new alert cannot slip in between and settle the incident under
// another reason. A closed incident is ErrIncidentClosed, an unknown one
// ErrIncidentNotFound.
func (e *Engine) CloseIncident(ctx context.Context, id int64, user, note string) (Incident, error) {
	if user == "" {
		return Incident{}, fmt.Errorf("%w: closing user is required", ErrBadQuery)
	}
	now := e.clk.Now()
	cleared, err := e.st.closeIncident(ctx, id, now, user, note)
	if err != nil {
		return Incident{}, err
	}
	// The close is committed: a timer that fails to stop here is stopped by
	// runEscalations when it comes due, so the failure is not answered as one
	// the operator would retry into a 409.
	for _, a := range cleared {
		e.stopAfterCommit(ctx, a.ID, now, "cleared", user)
		e.announce("alert.cleared", a)
	}
	inc, err := e.incident(ctx, id)
	if err != nil {
		return inc, err
	}
	e.hub.Publish("incident.closed", inc)
	return inc, nil
}

// closeIncident clears the active alerts of open incident id with clearQuery
// (audited) and closes it for the operator, in one transaction, returning the
// alerts it cleared.
func (s *alertStore) closeIncident(ctx context.Context, id int64, at time.Time, user, note string) ([]Alert, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("alerting: close incident %d: %w", id, err)
	}
	defer tx.Rollback()
	var closedAt sql.NullInt64
	var reason, by string
	err = tx.QueryRowContext(ctx, `SELECT closed_at, close_reason, closed_by FROM incident WHERE id = ?`, id).Scan(&closedAt, &reason, &by)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %d", ErrIncidentNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("alerting: close incident %d: %w", id, err)
	}
	if closedAt.Valid {
		how := reason
		if by != "" {
			how += " by " + by
		}
		return nil, fmt.Errorf("%w: incident %d was closed at %s (%s)", ErrIncidentClosed, id,
			fromMS(closedAt.Int64).Format(time.RFC3339), how)
	}
	rows, err := tx.QueryContext(ctx, `SELECT a.id FROM incident_alert ia JOIN alert a ON a.id = ia.alert_id
		WHERE ia.incident_id = ? AND a.cleared = 0 ORDER BY a.id`, id)
	if err != nil {
		return nil, fmt.Errorf("alerting: close incident %d: %w", id, err)
	}
	var ids []int64
	for rows.Next() {
		var aid int64
		if err := rows.Scan(&aid); err != nil {
			rows.Close()
			return nil, fmt.Errorf("alerting: close incident %d: %w", id, err)
		}
		ids = append(ids, aid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alerting: close incident %d: %w", id, err)
	}
	cleared := make([]Alert, 0, len(ids))
	for _, aid := range ids {
		a, err := stepTx(ctx, tx, aid, at, user, note, "cleared", clearQuery)
		if err != nil {
			return nil, err
		}
		cleared = append(cleared, a)
	}
	closed, err := closeIfSettled(ctx, tx, id, at, IncidentClosedByOperator, user)
	if err != nil {
		return nil, err
	}
	if closed == 0 { // cannot happen inside the transaction; never report a close that did not happen
		return nil, fmt.Errorf("alerting: close incident %d: still has active alerts", id)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("alerting: close incident %d: %w", id, err)
	}
	for _, a := range cleared {
		s.idx.remove(a.Source, a.Type, a.ID)
	}
	return cleared, nil
}
