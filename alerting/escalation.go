package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The 叫应 chain: an alert at or above escalation.min_severity is called to the
// duty contacts of its innermost zone. If nobody acknowledges within the deadline
// for the level of the zone called and the alert's severity, the parent zone is
// called, and so on up to the county. The timer (step, next_at) lives in SQLite
// with next_at already computed, so a restarted gateway picks up exactly where it
// was, with the deadline that was armed; RunDue advances every timer whose
// next_at has passed.

// deadline is the time the duty contacts of a zone at level have to acknowledge
// an alert of severity s: escalation.level_deadlines when it names both, else
// the severity's deadline.
func (e *Engine) deadline(level string, s Severity) time.Duration {
	if d, ok := e.levelDeadlines[strings.ToLower(level)][s]; ok {
		return d
	}
	switch s {
	case Critical:
		return e.cfg.Escalation.CriticalDeadline
	case Major:
		return e.cfg.Escalation.MajorDeadline
	}
	return e.cfg.Escalation.OtherDeadline
}

// zonePath is the chain of zones called for an alert in zone, innermost
// first. An alert with no zone, or one the zones layer does not know (a device
// outside the county outline, a zone id from an older layer), is called to
// escalation.fallback_zone and its parents: a fire must reach somebody.
func (e *Engine) zonePath(zone string) []Zone {
	if e.dir == nil {
		return nil
	}
	var path []Zone
	if zone != "" {
		path = e.dir.ZonePath(zone)
	}
	if len(path) == 0 && e.cfg.Escalation.FallbackZone != "" {
		path = e.dir.ZonePath(e.cfg.Escalation.FallbackZone)
	}
	return path
}

// ChainZone is one zone of an escalation's chain, as stored when the chain
// started: enough to name it in the record, and to show operators who comes
// next, even if it has gone from the zones layer by the time it is called.
type ChainZone struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Level string `json:"level"`
}

// encodeChain is the stored form of a chain of zones (escalation.path).
func encodeChain(path []Zone) string {
	c := make([]ChainZone, len(path))
	for i, z := range path {
		c[i] = ChainZone{z.ID, z.Name, z.Level}
	}
	b, _ := json.Marshal(c) // strings only: cannot fail
	return string(b)
}

// chain resolves the stored chain of a's escalation against the live zones
// layer: each zone with its current duty contacts, and whether it has gone
// from the layer (then it has no contacts and is passed over). Rows from before
// chains were stored ("") and unreadable ones follow the live path of a's zone.
func (e *Engine) chain(stored string, a Alert) (path []Zone, gone []bool) {
	var c []ChainZone
	if stored == "" || json.Unmarshal([]byte(stored), &c) != nil {
		path = e.zonePath(a.Zone)
		return path, make([]bool, len(path))
	}
	path, gone = make([]Zone, len(c)), make([]bool, len(c))
	for i, cz := range c {
		if e.dir != nil {
			if live := e.dir.ZonePath(cz.ID); len(live) > 0 && live[0].ID == cz.ID {
				path[i] = live[0]
				continue
			}
		}
		path[i], gone[i] = Zone{ID: cz.ID, Name: cz.Name, Level: cz.Level}, true
	}
	return path, gone
}

// startEscalation creates a's timer, with its chain of zones, and places its
// first calls. The row is created already due (step -1, next_at now): if
// placing the calls fails or the gateway stops half-way, runEscalations picks
// the row up and starts the chain again, so a started chain can never be left
// without a deadline.
func (e *Engine) startEscalation(ctx context.Context, a Alert, now time.Time) error {
	stored := encodeChain(e.zonePath(a.Zone))
	// The timer is written even when shutdown has begun: the alert is already
	// stored, and an alert without its timer would never be called.
	res, err := e.db.ExecContext(context.WithoutCancel(ctx), `INSERT INTO escalation (alert_id, step, next_at, path) VALUES (?, -1, ?, ?) ON CONFLICT DO NOTHING`,
		a.ID, ms(now), stored)
	if err != nil {
		return fmt.Errorf("alerting: start escalation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // already escalating
	}
	return e.escalateFrom(ctx, a, stored, -1, now)
}

// claimStep moves a's timer from step prev to step (next_at armed, or the
// chain ended as exhausted when next is 0), but only while the chain is
// running, still at prev, and the alert is neither acknowledged nor cleared.
// Whoever claims a step places its calls; an Ack, a Clear or a concurrent
// runner that got there first makes the claim fail, and nothing is called.
func (e *Engine) claimStep(ctx context.Context, id int64, prev, step int, next time.Time) (bool, error) {
	q := `UPDATE escalation SET step = ?, next_at = ? WHERE alert_id = ? AND done = 0 AND step = ?
		AND EXISTS (SELECT 1 FROM alert WHERE id = ? AND acked = 0 AND cleared = 0)`
	args := []any{step, ms(next), id, prev, id}
	if next.IsZero() {
		q = `UPDATE escalation SET step = ?, next_at = NULL, done = 1, reason = 'exhausted' WHERE alert_id = ? AND done = 0 AND step = ?
			AND EXISTS (SELECT 1 FROM alert WHERE id = ? AND acked = 0 AND cleared = 0)`
		args = []any{step, id, prev, id}
	}
	res, err := e.db.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("alerting: claim escalation step: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("alerting: claim escalation step: %w", err)
	}
	return n == 1, nil
}

// escalateFrom moves a's chain (stored: its escalation.path) on from step
// prev: it calls every duty contact of the next zone of the chain that has
// any and arms that zone's deadline, or ends the chain when it is exhausted.
// The step is claimed before any call is placed, so a call that fails to be
// recorded is not placed again, and an alert acknowledged meanwhile is not
// called.
func (e *Engine) escalateFrom(ctx context.Context, a Alert, stored string, prev int, now time.Time) error {
	path, gone := e.chain(stored, a)
	step := prev + 1
	for step < len(path) && len(path[step].Duty) == 0 {
		step++
	}
	var wait time.Duration
	var next time.Time
	if step < len(path) {
		wait = e.deadline(path[step].Level, a.Severity)
		next = now.Add(wait)
	}
	ok, err := e.claimStep(ctx, a.ID, prev, step, next)
	if err != nil || !ok {
		return err
	}
	// The step is ours: from here every contact is called whatever fails to be
	// recorded, and the failures are returned together at the end.
	var errList []error
	for i := min(prev+1, len(path)); i < min(step, len(path)); i++ {
		z, note := path[i], "has nobody on duty"
		if gone[i] {
			note = "is no longer in the zones layer"
		}
		errList = append(errList, audit(ctx, e.db, a.ID, now, "no_contact", "", fmt.Sprintf("zone %s (%s) %s", z.ID, z.Level, note)))
	}
	if step >= len(path) {
		errList = append(errList, audit(ctx, e.db, a.ID, now, "exhausted", "", "no further zone to call"))
		e.hub.Publish("alert.unanswered", a)
		return errors.Join(errList...)
	}
	z := path[step]
	action := "called"
	if step > 0 {
		action = "escalated"
	}
	errList = append(errList, audit(ctx, e.db, a.ID, now, action, "", fmt.Sprintf("step %d: %s %s (%s), %s to acknowledge", step, z.Level, z.Name, z.ID, wait)))
	for _, c := range z.Duty {
		call := Call{AlertID: a.ID, Step: step, Zone: z, Contact: c, Severity: a.Severity, Message: a.Message, At: now}
		outcome := "placed"
		if err := e.caller.Call(ctx, call); err != nil {
			outcome = "failed: " + err.Error()
			e.calls.WithLabelValues("failed").Inc()
		} else {
			e.calls.WithLabelValues("placed").Inc()
		}
		// An ack that landed since the step was claimed answers this call too.
		res, err := e.db.ExecContext(ctx, `INSERT INTO alert_call (alert_id, step, zone_id, zone_name, zone_level, name, phone, role, at, outcome, answered_at, answered_by)
			SELECT ?,?,?,?,?,?,?,?,?,?, CASE WHEN acked = 1 THEN acked_at END, CASE WHEN acked = 1 THEN acked_by ELSE '' END
			FROM alert WHERE id = ?`, a.ID, step, z.ID, z.Name, z.Level, c.Name, c.Phone, c.Role, ms(now), outcome, a.ID)
		if err == nil {
			if n, _ := res.RowsAffected(); n == 0 {
				err = ErrAlertNotFound
			}
		}
		if err != nil {
			errList = append(errList, fmt.Errorf("alerting: record call to %s: %w", c.Name, err))
		}
	}
	return errors.Join(errList...)
}

func (e *Engine) stopEscalation(ctx context.Context, id int64, now time.Time, reason, user string) error {
	if _, err := e.db.ExecContext(ctx, `UPDATE escalation SET done = 1, next_at = NULL, reason = ? WHERE alert_id = ? AND done = 0`,
		reason, id); err != nil {
		return fmt.Errorf("alerting: stop escalation: %w", err)
	}
	return nil
}

// runEscalations advances every overdue timer by one zone.
func (e *Engine) runEscalations(ctx context.Context, now time.Time) error {
	rows, err := e.db.QueryContext(ctx, `SELECT alert_id, step, path FROM escalation WHERE done = 0 AND next_at IS NOT NULL AND next_at <= ? ORDER BY next_at`, ms(now))
	if err != nil {
		return fmt.Errorf("alerting: due escalations: %w", err)
	}
	type due struct {
		id   int64
		step int
		path string
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.step, &d.path); err != nil {
			rows.Close()
			return fmt.Errorf("alerting: due escalations: %w", err)
		}
		list = append(list, d)
	}
	rows.Close()
	var errs []error
	for _, d := range list {
		a, err := e.st.get(ctx, d.id)
		if err != nil {
			if errors.Is(err, ErrAlertNotFound) {
				_, _ = e.db.ExecContext(ctx, `UPDATE escalation SET done = 1, reason = 'gone' WHERE alert_id = ?`, d.id)
				continue
			}
			errs = append(errs, err)
			continue
		}
		if a.State != ActiveUnack {
			reason := "acked"
			if !a.Active() {
				reason = "cleared"
			}
			if err := e.stopEscalation(ctx, a.ID, now, reason, ""); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := e.escalateFrom(ctx, a, d.path, d.step, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
