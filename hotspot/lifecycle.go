package hotspot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AssignRequest hands a report to a unit and person (manual (re)assignment).
type AssignRequest struct {
	Unit     string `json:"unit"`
	Assignee string `json:"assignee"`
	Phone    string `json:"phone"`
}

// VerifyRequest marks that someone is on the way to check the report on the ground.
type VerifyRequest struct {
	Verifier string `json:"verifier"`
}

// CloseRequest is the one-form close-out.
type CloseRequest struct {
	Outcome      string    `json:"outcome"`  // one of Outcomes()
	Verifier     string    `json:"verifier"` // who checked on the ground
	VerifiedAt   time.Time `json:"verified_at"`
	Note         string    `json:"note"`
	CorrectedLat *float64  `json:"corrected_lat,omitempty"` // where the fire really was, if not at the pixel centre
	CorrectedLon *float64  `json:"corrected_lon,omitempty"`
}

// ReopenRequest says why a closed report is reopened.
type ReopenRequest struct {
	Reason string `json:"reason"`
}

// Validate checks a close-out against the clock (verified_at may not lie in the future).
func (c CloseRequest) Validate(now time.Time) error {
	switch {
	case !ValidOutcome(c.Outcome):
		return fmt.Errorf("outcome %q: want one of %s: %w", c.Outcome, strings.Join(Outcomes(), ", "), ErrBadClose)
	case strings.TrimSpace(c.Verifier) == "":
		return fmt.Errorf("verifier: required: %w", ErrBadClose)
	case c.VerifiedAt.IsZero():
		return fmt.Errorf("verified_at: required: %w", ErrBadClose)
	case c.VerifiedAt.After(now.Add(5 * time.Minute)):
		return fmt.Errorf("verified_at: in the future: %w", ErrBadClose)
	case strings.TrimSpace(c.Note) == "":
		return fmt.Errorf("note: required: %w", ErrBadClose)
	case (c.CorrectedLat == nil) != (c.CorrectedLon == nil):
		return fmt.Errorf("corrected_lat/corrected_lon: give both or neither: %w", ErrBadClose)
	case c.CorrectedLat != nil && (*c.CorrectedLat < -90 || *c.CorrectedLat > 90 || *c.CorrectedLon < -180 || *c.CorrectedLon > 180):
		return fmt.Errorf("corrected position out of range: %w", ErrBadClose)
	}
	return nil
}

// transition runs fn on report id inside a transaction after checking its status is one
// of from, records history and publishes the result. With forward set (the action's
// name), a merged id stands for the report it was merged into (followed to the end of
// the chain): fn runs on that report, the merged one's history notes the forwarding, and
// the result is that report. Without, a merged id is refused naming the report it went to.
func (s *Service) transition(ctx context.Context, id int64, actor string, from []Status, forward string,
	fn func(tx *sql.Tx, r Report, now time.Time) error) (Report, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Report{}, fmt.Errorf("hotspot: begin: %w", err)
	}
	defer tx.Rollback()
	r, err := getReport(ctx, tx, id)
	if err != nil {
		return r, err
	}
	if forward != "" && r.Status == StatusMerged {
		if r, err = mergedTarget(ctx, tx, r); err != nil {
			return r, err
		}
	}
	ok := false
	for _, f := range from {
		ok = ok || r.Status == f
	}
	switch {
	case ok:
	case r.ID != id:
		return r, fmt.Errorf("report %d was merged into %d, which is %s: %w", id, r.ID, r.Status, ErrWrongStatus)
	case r.Status == StatusMerged:
		return r, fmt.Errorf("report %d is merged into %d: %w", id, r.MergedInto, ErrWrongStatus)
	default:
		return r, fmt.Errorf("report %d is %s: %w", id, r.Status, ErrWrongStatus)
	}
	now := s.clk.Now()
	if err := fn(tx, r, now); err != nil {
		return r, err
	}
	if r.ID != id {
		if err := addHistory(ctx, tx, id, now, actor, "forwarded", StatusMerged, StatusMerged,
			map[string]any{"to": r.ID, "action": forward}); err != nil {
			return r, err
		}
	}
	r, err = getReport(ctx, tx, r.ID)
	if err != nil {
		return r, err
	}
	if err := tx.Commit(); err != nil {
		return r, fmt.Errorf("hotspot: commit: %w", err)
	}
	markOverdue(&r, now)
	s.publish(r)
	return r, nil
}

// Assign (re)assigns an open report; a report being verified goes back to assigned.
func (s *Service) Assign(ctx context.Context, id int64, actor string, req AssignRequest) (Report, error) {
	if strings.TrimSpace(req.Assignee) == "" {
		return Report{}, fmt.Errorf("assignee: required: %w", ErrBadRequest)
	}
	return s.transition(ctx, id, actor, []Status{StatusNew, StatusAssigned, StatusVerifying}, "", func(tx *sql.Tx, r Report, now time.Time) error {
		unit := req.Unit
		if unit == "" {
			unit = r.Unit
		}
		if _, err := tx.ExecContext(ctx, `UPDATE hotspot_reports SET status='assigned', unit=?, assignee=?, assignee_phone=?,
			updated_at=? WHERE id=?`, unit, req.Assignee, req.Phone, now.Unix(), r.ID); err != nil {
			return fmt.Errorf("hotspot: assign: %w", err)
		}
		return addHistory(ctx, tx, r.ID, now, actor, "assigned", r.Status, StatusAssigned,
			map[string]any{"unit": unit, "assignee": req.Assignee, "phone": req.Phone})
	})
}

// StartVerifying records that the check on the ground has started and who does it (the
// verifier is required: a report being verified cannot be verified again, so a name left
// out could not be added later). On a merged report's id it acts on the report it was
// merged into.
func (s *Service) StartVerifying(ctx context.Context, id int64, actor string, req VerifyRequest) (Report, error) {
	if strings.TrimSpace(req.Verifier) == "" {
		return Report{}, fmt.Errorf("verifier: required: %w", ErrBadRequest)
	}
	return s.transition(ctx, id, actor, []Status{StatusNew, StatusAssigned}, "verifying", func(tx *sql.Tx, r Report, now time.Time) error {
		if _, err := tx.ExecContext(ctx, `UPDATE hotspot_reports SET status='verifying', verifying_at=?, verifier=?, updated_at=?
			WHERE id=?`, now.Unix(), req.Verifier, now.Unix(), r.ID); err != nil {
			return fmt.Errorf("hotspot: verify: %w", err)
		}
		return addHistory(ctx, tx, r.ID, now, actor, "verifying", r.Status, StatusVerifying, map[string]any{"verifier": req.Verifier})
	})
}

// Close records the verification result. A report closed after its deadline stays
// counted as overdue. On a merged report's id it closes the report it was merged into.
// Once committed, the overdue alerts of the report and of the reports merged into it
// are cleared (Escalator.Resolve), so their 叫应 chains stop; a failed clear is retried
// by RunDue.
func (s *Service) Close(ctx context.Context, id int64, actor string, req CloseRequest) (Report, error) {
	if err := req.Validate(s.clk.Now()); err != nil {
		return Report{}, err
	}
	var escalated []int64
	r, err := s.transition(ctx, id, actor, []Status{StatusNew, StatusAssigned, StatusVerifying}, "closed", func(tx *sql.Tx, r Report, now time.Time) error {
		overdue := r.Overdue || (r.Deadline != nil && now.After(*r.Deadline))
		if _, err := tx.ExecContext(ctx, `UPDATE hotspot_reports SET status='closed', closed_at=?, outcome=?, verifier=?,
			verified_at=?, note=?, corrected_lat=?, corrected_lon=?, overdue=?, updated_at=? WHERE id=?`,
			now.Unix(), req.Outcome, req.Verifier, req.VerifiedAt.Unix(), req.Note, req.CorrectedLat, req.CorrectedLon,
			overdue, now.Unix(), r.ID); err != nil {
			return fmt.Errorf("hotspot: close: %w", err)
		}
		var err error
		if escalated, err = escalatedFamily(ctx, tx, r.ID); err != nil {
			return err
		}
		return addHistory(ctx, tx, r.ID, now, actor, "closed", r.Status, StatusClosed, req)
	})
	if err != nil {
		return r, err
	}
	s.resolveOverdue(ctx, escalated, fmt.Sprintf("hotspot report %d closed: %s", r.ID, req.Outcome))
	return r, nil
}

// mergedTarget follows a merged report's merged_into chain to the report that holds its
// hotspots now. Survivors are always older (lower id), so the chain ends; the bound only
// guards against a damaged table.
func mergedTarget(ctx context.Context, q querier, r Report) (Report, error) {
	for hops := 0; r.Status == StatusMerged; hops++ {
		if r.MergedInto == 0 || hops == 100 {
			return r, fmt.Errorf("hotspot: report %d: broken merge chain", r.ID)
		}
		next, err := getReport(ctx, q, r.MergedInto)
		if err != nil {
			return r, err
		}
		r = next
	}
	return r, nil
}

// escalatedFamily returns the escalated reports among id and the reports merged into it
// (directly or through others): those whose overdue alert may still be active.
func escalatedFamily(ctx context.Context, q querier, id int64) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `WITH RECURSIVE family(id) AS (
			SELECT ? UNION SELECT r.id FROM hotspot_reports r JOIN family f ON r.merged_into = f.id WHERE r.status = 'merged')
		SELECT r.id FROM hotspot_reports r JOIN family f ON r.id = f.id WHERE r.escalated_at <> 0 ORDER BY r.id`, id)
	if err != nil {
		return nil, fmt.Errorf("hotspot: escalated reports of %d: %w", id, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var e int64
		if err := rows.Scan(&e); err != nil {
			return nil, fmt.Errorf("hotspot: escalated reports of %d: %w", id, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// pendingClear is an overdue alert clear that failed: its note, and the report's
// escalated_at when it was asked for. The retry goes ahead only while escalated_at is
// unchanged: a reopen (0) or a new escalation means a newer alert that must stand.
// (Not the report's status: a merge survivor whose own alert is cleared stays open.)
type pendingClear struct {
	note        string
	escalatedAt int64
}

// resolveOverdue clears the overdue alerts of reports after a committed close or merge.
// The change stands either way: a failed clear is kept and retried by RunDue.
func (s *Service) resolveOverdue(ctx context.Context, ids []int64, note string) {
	if s.esc == nil || len(ids) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, id := range ids {
		if err := s.esc.Resolve(ctx, id, note); err != nil {
			s.keepClear(ctx, id, note)
		}
	}
}

// keepClear records a failed clear of report id's alert for retryResolve.
func (s *Service) keepClear(ctx context.Context, id int64, note string) {
	var at int64
	if err := s.db.QueryRowContext(ctx, `SELECT escalated_at FROM hotspot_reports WHERE id=?`, id).Scan(&at); err != nil {
		at = -1 // unknown: retryResolve reads it again and goes ahead only if it still cannot tell
	}
	s.pendClear(id, pendingClear{note: note, escalatedAt: at})
}

// pendClear files a clear for retryResolve.
func (s *Service) pendClear(id int64, pc pendingClear) {
	s.resolveMu.Lock()
	defer s.resolveMu.Unlock()
	if s.unresolved == nil {
		s.unresolved = map[int64]pendingClear{}
	}
	s.unresolved[id] = pc
}

// retryResolve retries the alert clears that failed, dropping those whose report has
// been reopened or escalated again since (see pendingClear).
func (s *Service) retryResolve(ctx context.Context) error {
	s.resolveMu.Lock()
	pending := s.unresolved
	s.unresolved = nil
	s.resolveMu.Unlock()
	var errList []error
	for id, pc := range pending {
		var at int64
		err := s.db.QueryRowContext(ctx, `SELECT escalated_at FROM hotspot_reports WHERE id=?`, id).Scan(&at)
		if err == nil && pc.escalatedAt >= 0 && at != pc.escalatedAt {
			continue
		}
		if err == nil {
			err = s.esc.Resolve(ctx, id, pc.note)
		}
		if err != nil {
			s.pendClear(id, pc)
			errList = append(errList, fmt.Errorf("hotspot: clear overdue alert of report %d: %w", id, err))
		}
	}
	return errors.Join(errList...)
}

// Reopen puts a closed report back in the queue with a fresh deadline; the previous
// close-out (outcome, verifier, times, note, corrected position) is cleared and kept in
// the history. Overdue stays set: it records that the report ever missed its deadline,
// so a report closed late, reopened and closed again on time does not count as verified
// on time (Stats). The escalation is reset, so the fresh deadline escalates again.
func (s *Service) Reopen(ctx context.Context, id int64, actor string, req ReopenRequest) (Report, error) {
	if strings.TrimSpace(req.Reason) == "" {
		return Report{}, fmt.Errorf("reason: required: %w", ErrBadRequest)
	}
	return s.transition(ctx, id, actor, []Status{StatusClosed}, "", func(tx *sql.Tx, r Report, now time.Time) error {
		to := StatusNew
		if r.Assignee != "" {
			to = StatusAssigned
		}
		var deadline int64
		if d := s.cfg.deadlineFor(r.Class); d > 0 {
			deadline = now.Add(d).Unix()
		}
		if _, err := tx.ExecContext(ctx, `UPDATE hotspot_reports SET status=?, closed_at=0, outcome='', verifier='', verified_at=0,
			note='', corrected_lat=NULL, corrected_lon=NULL, verifying_at=0, deadline=?, escalated_at=0, updated_at=?
			WHERE id=?`, string(to), deadline, now.Unix(), r.ID); err != nil {
			return fmt.Errorf("hotspot: reopen: %w", err)
		}
		return addHistory(ctx, tx, r.ID, now, actor, "reopened", r.Status, to, map[string]any{"reason": req.Reason,
			"previous": map[string]any{"outcome": r.Outcome, "verifier": r.Verifier, "verified_at": r.VerifiedAt, "note": r.Note,
				"corrected_lat": r.CorrectedLat, "corrected_lon": r.CorrectedLon, "closed_at": r.ClosedAt}})
	})
}

// RunDue escalates, once each, the open reports whose deadline passed by now. A failed
// Raise leaves the report for the next step. It also retries the alert clears of closes
// and merges that failed. Call it from a loop on Clock.Now().
func (s *Service) RunDue(ctx context.Context, now time.Time) error {
	var errList []error
	if s.esc != nil {
		if err := s.retryResolve(ctx); err != nil {
			errList = append(errList, err)
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+reportCols+` FROM hotspot_reports
		WHERE status IN ('new','assigned','verifying') AND deadline>0 AND deadline<=? AND escalated_at=0 ORDER BY deadline`, now.Unix())
	if err != nil {
		return fmt.Errorf("hotspot: due reports: %w", err)
	}
	var due []Report
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("hotspot: due reports: %w", err)
		}
		due = append(due, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("hotspot: due reports: %w", err)
	}
	for _, r := range due {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.escalate(ctx, r, now); err != nil {
			errList = append(errList, err)
		}
	}
	return errors.Join(errList...)
}

// escalate claims overdue report r and raises its alert (see RunDue), under
// escMu so that no merge runs in between.
func (s *Service) escalate(ctx context.Context, r Report, now time.Time) error {
	s.escMu.Lock()
	defer s.escMu.Unlock()
	// Claim first, then raise: of two concurrent steps (or a step racing a close)
	// only the one whose UPDATE hits raises, so a report escalates exactly once.
	res, err := s.db.ExecContext(ctx, `UPDATE hotspot_reports SET escalated_at=?, overdue=1, updated_at=?
		WHERE id=? AND escalated_at=0 AND status IN ('new','assigned','verifying')`, now.Unix(), now.Unix(), r.ID)
	if err != nil {
		return fmt.Errorf("hotspot: mark escalated %d: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	if s.esc != nil {
		a := OverdueAlert{ReportID: r.ID, Source: fmt.Sprintf("hotspot:%d", r.ID), Severity: "major", Zone: r.ZoneID,
			Class: r.Class, Lat: r.Lat, Lon: r.Lon, Deadline: *r.Deadline, Assignee: r.Assignee,
			Message: fmt.Sprintf("卫星热点核查超时: report %d (%s, %s) not verified by %s", r.ID, r.Class, r.ZonePath,
				r.Deadline.Format(time.RFC3339))}
		if err := s.esc.Raise(ctx, a); err != nil {
			// Give the claim back so the next step retries.
			if _, uerr := s.db.ExecContext(ctx, `UPDATE hotspot_reports SET escalated_at=0, overdue=? WHERE id=? AND escalated_at=?`,
				r.Overdue, r.ID, now.Unix()); uerr != nil {
				err = errors.Join(err, uerr)
			}
			return fmt.Errorf("hotspot: escalate report %d: %w", r.ID, err)
		}
		// A close that committed between the claim and the raise found no alert to
		// clear: clear it now.
		if cur, err := getReport(ctx, s.db, r.ID); err == nil && cur.Status == StatusClosed {
			s.resolveOverdue(ctx, []int64{r.ID}, fmt.Sprintf("hotspot report %d closed", r.ID))
		}
	}
	s.m.escalations.Inc()
	herr := addHistory(ctx, s.db, r.ID, now, "system", "escalated", r.Status, r.Status, map[string]any{"deadline": r.Deadline})
	if nr, err := getReport(ctx, s.db, r.ID); err == nil {
		s.publish(nr)
	}
	return herr
}

// Run calls RunDue and the poll sources every tick until ctx ends. Errors are passed
// to logf (nil = dropped) so one bad source does not stop the loop.
func (s *Service) Run(ctx context.Context, tick time.Duration, logf func(error)) {
	if logf == nil {
		logf = func(error) {}
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		now := s.clk.Now()
		if err := s.RunDue(ctx, now); err != nil {
			logf(err)
		}
		if err := s.Poll(ctx, now); err != nil {
			logf(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
