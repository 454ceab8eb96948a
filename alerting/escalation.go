package alerting

import (
	"context"
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

func (e *Engine) zonePath(zone string) []Zone {
	if e.dir == nil || zone == "" {
		return nil
	}
	return e.dir.ZonePath(zone)
}

func (e *Engine) startEscalation(ctx context.Context, a Alert, now time.Time) error {
	res, err := e.db.ExecContext(ctx, `INSERT INTO escalation (alert_id, step, next_at) VALUES (?, -1, NULL) ON CONFLICT DO NOTHING`, a.ID)
	if err != nil {
		return fmt.Errorf("alerting: start escalation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // already escalating
	}
	return e.escalateFrom(ctx, a, 0, now)
}

// escalateFrom calls the first zone at or after step that has duty contacts and
// arms its deadline, or ends the chain when the path is exhausted.
func (e *Engine) escalateFrom(ctx context.Context, a Alert, step int, now time.Time) error {
	path := e.zonePath(a.Zone)
	for ; step < len(path); step++ {
		z := path[step]
		if len(z.Duty) == 0 {
			if err := audit(ctx, e.db, a.ID, now, "no_contact", "", fmt.Sprintf("zone %s (%s) has nobody on duty", z.ID, z.Level)); err != nil {
				return err
			}
			continue
		}
		action := "called"
		if step > 0 {
			action = "escalated"
		}
		wait := e.deadline(z.Level, a.Severity)
		if err := audit(ctx, e.db, a.ID, now, action, "", fmt.Sprintf("step %d: %s %s (%s), %s to acknowledge", step, z.Level, z.Name, z.ID, wait)); err != nil {
			return err
		}
		for _, c := range z.Duty {
			call := Call{AlertID: a.ID, Step: step, Zone: z, Contact: c, Severity: a.Severity, Message: a.Message, At: now}
			outcome := "placed"
			if err := e.caller.Call(ctx, call); err != nil {
				outcome = "failed: " + err.Error()
				e.calls.WithLabelValues("failed").Inc()
			} else {
				e.calls.WithLabelValues("placed").Inc()
			}
			if _, err := e.db.ExecContext(ctx, `INSERT INTO alert_call (alert_id, step, zone_id, zone_name, zone_level, name, phone, role, at, outcome)
				VALUES (?,?,?,?,?,?,?,?,?,?)`, a.ID, step, z.ID, z.Name, z.Level, c.Name, c.Phone, c.Role, ms(now), outcome); err != nil {
				return fmt.Errorf("alerting: record call: %w", err)
			}
		}
		if _, err := e.db.ExecContext(ctx, `UPDATE escalation SET step = ?, next_at = ? WHERE alert_id = ? AND done = 0`,
			step, ms(now.Add(wait)), a.ID); err != nil {
			return fmt.Errorf("alerting: arm escalation: %w", err)
		}
		return nil
	}
	if _, err := e.db.ExecContext(ctx, `UPDATE escalation SET step = ?, next_at = NULL, done = 1, reason = 'exhausted' WHERE alert_id = ?`,
		step, a.ID); err != nil {
		return fmt.Errorf("alerting: end escalation: %w", err)
	}
	if err := audit(ctx, e.db, a.ID, now, "exhausted", "", "no further zone to call"); err != nil {
		return err
	}
	e.hub.Publish("alert.unanswered", a)
	return nil
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
	rows, err := e.db.QueryContext(ctx, `SELECT alert_id, step FROM escalation WHERE done = 0 AND next_at IS NOT NULL AND next_at <= ? ORDER BY next_at`, ms(now))
	if err != nil {
		return fmt.Errorf("alerting: due escalations: %w", err)
	}
	type due struct {
		id   int64
		step int
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.step); err != nil {
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
		if err := e.escalateFrom(ctx, a, d.step+1, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
