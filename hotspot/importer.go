package hotspot

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lookoutfire/lookout/errs"
)

// ImportResult sums up one import.
type ImportResult struct {
	Source         string     `json:"source"`
	Rows           int        `json:"rows"`         // good rows parsed
	New            int        `json:"new"`          // hotspots stored
	Duplicate      int        `json:"duplicate"`    // already known (same satellite, time, position)
	Bad            int        `json:"bad"`          // rows rejected
	OutsideArea    int        `json:"outside_area"` // outside the zone layer + area_buffer_m
	BadRows        []RowError `json:"bad_rows,omitempty"`
	ReportsCreated int        `json:"reports_created"`
	ReportsUpdated int        `json:"reports_updated"` // existing open reports that gained hotspots
	ReportsMerged  int        `json:"reports_merged"`  // existing reports folded into another
	Reports        []int64    `json:"reports,omitempty"`
	DurationMS     int64      `json:"duration_ms"`
}

// Progress receives import progress: phase is "parse" (done = rows read), "match",
// "cluster" or "store" (done of total).
type Progress func(phase string, done, total int)

// incoming is one parsed, in-area hotspot with its match.
type incoming struct {
	Hotspot
	class    Class
	forest   string
	mask     string
	zoneID   string
	zonePath string
	zoneIDs  string
	unit     string
	duty     Contact
	latE4    int64
	lonE4    int64
}

type identity struct {
	acq          int64
	inst, sat    string
	latE4, lonE4 int64
}

func (in *incoming) key() identity {
	return identity{in.Acquired.Unix(), in.Instrument, in.Satellite, in.latE4, in.lonE4}
}

// classify turns a place into the hotspot's class and report fields.
func (s *Service) match(h Hotspot, p Place) incoming {
	in := incoming{Hotspot: h, latE4: int64(math.Round(h.Lat * 1e4)), lonE4: int64(math.Round(h.Lon * 1e4))}
	switch {
	case p.Mask != "":
		in.class, in.mask = ClassHeatSource, p.Mask
	case h.Type == 1 || h.Type == 2:
		in.class, in.mask = ClassHeatSource, fmt.Sprintf("FIRMS type %d", h.Type)
	case len(p.Forests) > 0:
		in.class, in.forest = ClassForest, p.Forests[0]
	case p.NearestForest != "" && p.DistanceM >= 0 && p.DistanceM <= s.cfg.NearForestM:
		in.class, in.forest = ClassNearForest, p.NearestForest
	default:
		in.class = ClassElsewhere
	}
	if len(p.Zones) > 0 {
		in.zoneID = p.Zones[0].ID
		names := make([]string, len(p.Zones))
		ids := make([]string, len(p.Zones))
		for i, z := range p.Zones {
			names[len(p.Zones)-1-i] = z.Name
			ids[len(p.Zones)-1-i] = z.ID
		}
		in.zonePath = strings.Join(names, " / ")
		in.zoneIDs = "|" + strings.Join(ids, "|") + "|"
		// The innermost zone's unit answers; when it has nobody on duty, the next zone out does.
		in.unit = p.Zones[0].Name
		for _, z := range p.Zones {
			if len(z.Duty) > 0 {
				in.duty, in.unit = z.Duty[0], z.Name
				break
			}
		}
	}
	return in
}

// Import reads one FIRMS file, keeps the hotspots inside the area, drops known ones,
// clusters the new ones with each other and with open reports' hotspots, and stores
// hotspots and reports in one transaction. Bad rows are listed, not fatal.
func (s *Service) Import(ctx context.Context, source string, r io.Reader, progress Progress) (ImportResult, error) {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	start := time.Now()
	if progress == nil {
		progress = func(string, int, int) {}
	}
	res := ImportResult{Source: source}
	var batch []incoming
	body, err := maybeGunzip(r)
	if err != nil {
		return res, fmt.Errorf("import %s: %w", source, err)
	}
	latest := s.clk.Now().Add(MaxAcquiredAhead)
	pr, err := ParseFIRMS(&capReader{r: body, left: s.cfg.MaxImportBytes}, s.cfg.MaxBadRows, s.cfg.MaxImportRows, func(h Hotspot) error {
		if err := checkAcquired(h.Acquired, latest); err != nil {
			return err
		}
		// Most rows of a national file lie far outside: one Locate answers "inside a
		// zone" for the rest, and only points in no zone pay for the buffer probe.
		p := s.loc.Locate(h.Lat, h.Lon)
		if len(p.Zones) == 0 && !s.loc.Within(h.Lat, h.Lon, s.cfg.AreaBufferM) {
			res.OutsideArea++
		} else {
			batch = append(batch, s.match(h, p))
		}
		if n := res.OutsideArea + len(batch); n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			progress("parse", n, 0)
		}
		return nil
	})
	res.Rows, res.Bad, res.BadRows = pr.Rows, pr.BadCount, pr.Bad
	if err != nil {
		return res, fmt.Errorf("import %s: %w", source, err)
	}
	progress("parse", pr.Rows, pr.Rows)
	if err := s.store(ctx, &res, batch, progress); err != nil {
		return res, fmt.Errorf("import %s: %w", source, err)
	}
	res.DurationMS = time.Since(start).Milliseconds()
	s.m.rows.WithLabelValues("new").Add(float64(res.New))
	s.m.rows.WithLabelValues("duplicate").Add(float64(res.Duplicate))
	s.m.rows.WithLabelValues("bad").Add(float64(res.Bad))
	s.m.rows.WithLabelValues("outside_area").Add(float64(res.OutsideArea))
	s.m.importSecs.Observe(time.Since(start).Seconds())
	return res, nil
}

// MaxAcquiredAhead is how far after the service clock's now a hotspot's acquisition time
// may lie. FIRMS times are UTC satellite overpass times, never in the future: a later
// one is a wrong date (or a clock far off), and would make a report first seen in the
// future. The hour covers a gateway clock running somewhat slow.
const MaxAcquiredAhead = time.Hour

// EarliestAcquired is the earliest acquisition time accepted: FIRMS data start with
// MODIS on Terra in 2000, so an earlier date is a typo (or a zero date).
var EarliestAcquired = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// checkAcquired rejects (BadRow) an acquisition time after latest or before EarliestAcquired.
func checkAcquired(at, latest time.Time) error {
	switch {
	case at.After(latest):
		return BadRow(fmt.Sprintf("acquired %s is in the future (more than %v after now, %s)",
			at.Format("2006-01-02 15:04Z"), MaxAcquiredAhead, latest.Add(-MaxAcquiredAhead).UTC().Format("2006-01-02 15:04Z")))
	case at.Before(EarliestAcquired):
		return BadRow(fmt.Sprintf("acquired %s is before %s: FIRMS has no data that old",
			at.Format("2006-01-02 15:04Z"), EarliestAcquired.Format("2006-01-02")))
	}
	return nil
}

// existingNode is an open report's hotspot loaded for clustering.
type existingNode struct {
	report                int64
	lat, lon, scan, track float64
	acq                   int64
}

func (s *Service) store(ctx context.Context, res *ImportResult, batch []incoming, progress Progress) error {
	if len(batch) == 0 {
		return nil
	}
	// Drop duplicates inside the file.
	seen := make(map[identity]struct{}, len(batch))
	fresh := batch[:0]
	minT, maxT := int64(math.MaxInt64), int64(math.MinInt64)
	minLat, maxLat, minLon, maxLon := 90.0, -90.0, 180.0, -180.0
	for _, in := range batch {
		k := in.key()
		if _, dup := seen[k]; dup {
			res.Duplicate++
			continue
		}
		seen[k] = struct{}{}
		fresh = append(fresh, in)
		minT, maxT = min(minT, k.acq), max(maxT, k.acq)
		minLat, maxLat = math.Min(minLat, in.Lat), math.Max(maxLat, in.Lat)
		minLon, maxLon = math.Min(minLon, in.Lon), math.Max(maxLon, in.Lon)
	}
	// Bulk insert on a dedicated connection with foreign key enforcement off: with it
	// on, every INSERT may abort half way and SQLite keeps a statement journal of each
	// page it touches (a third of the import's time). The report ids the hotspots
	// point to are created in this very transaction, so the key holds by construction.
	// The setting can only change outside a transaction and is restored before the
	// connection goes back to the pool.
	s.escMu.Lock() // see escMu: no overdue claim may be waiting for its alert while reports merge
	defer s.escMu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("conn: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys=OFF`); err != nil {
		return fmt.Errorf("foreign_keys: %w", err)
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys=ON`); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn }) // never reuse a connection left without keys
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()

	// Drop hotspots already stored (the write transaction holds the database lock, so
	// this check and the inserts below cannot race another importer).
	known, err := loadIdentities(ctx, tx, minT, maxT)
	if err != nil {
		return err
	}
	batch = fresh[:0]
	for _, in := range fresh {
		if _, dup := known[in.key()]; dup {
			res.Duplicate++
			continue
		}
		batch = append(batch, in)
	}
	if len(batch) == 0 {
		return tx.Commit()
	}

	// Open reports' hotspots near this batch in space and time join the clustering.
	windowS := int64(s.cfg.ClusterWindow / time.Second)
	marginKm := s.cfg.ClusterDistanceM/1000 + 10 // + the largest pixel (MODIS 4.8 km) and then some
	dLat := marginKm / kmPerDegLat
	dLon := marginKm / (kmPerDegLon * math.Max(0.05, math.Cos(math.Max(math.Abs(minLat), math.Abs(maxLat))*math.Pi/180)))
	existing, err := loadOpenNodes(ctx, tx, minT-windowS, maxT+windowS, minLat-dLat, maxLat+dLat, minLon-dLon, maxLon+dLon)
	if err != nil {
		return err
	}
	lat0, lon0 := (minLat+maxLat)/2, (minLon+maxLon)/2
	nodes := make([]node, 0, len(existing)+len(batch))
	for _, e := range existing {
		x, y := project(e.lat, e.lon, lat0, lon0)
		nodes = append(nodes, node{x: x, y: y, w: e.scan, h: e.track, t: e.acq})
	}
	for _, in := range batch {
		x, y := project(in.Lat, in.Lon, lat0, lon0)
		nodes = append(nodes, node{x: x, y: y, w: in.Scan, h: in.Track, t: in.Acquired.Unix()})
	}
	progress("cluster", 0, len(nodes))
	roots := cluster(nodes, s.cfg.ClusterDistanceM/1000, windowS)
	progress("cluster", len(nodes), len(nodes))

	type group struct {
		reports []int64
		fresh   []int
	}
	groups := map[int32]*group{}
	var order []int32
	get := func(root int32) *group {
		g := groups[root]
		if g == nil {
			g = &group{}
			groups[root] = g
			order = append(order, root)
		}
		return g
	}
	for i, e := range existing {
		g := get(roots[i])
		if !slices.Contains(g.reports, e.report) {
			g.reports = append(g.reports, e.report)
		}
	}
	for i := range batch {
		g := get(roots[len(existing)+i])
		g.fresh = append(g.fresh, i)
	}

	now := s.clk.Now()
	ins, err := newHotspotInserter(ctx, tx, res, now, progress, len(batch))
	if err != nil {
		return err
	}
	defer ins.close()
	var touched []int64
	var resolve []mergedAlerts
	for _, root := range order {
		g := groups[root]
		if len(g.fresh) == 0 {
			continue
		}
		best := batch[g.fresh[0]]
		for _, i := range g.fresh[1:] {
			if c := batch[i]; c.class.rank() < best.class.rank() || (c.class == best.class && c.Acquired.Before(best.Acquired)) {
				best = c
			}
		}
		var id int64
		if len(g.reports) == 0 {
			if id, err = s.createReport(ctx, tx, best, now); err != nil {
				return err
			}
			res.ReportsCreated++
		} else {
			slices.Sort(g.reports)
			id = g.reports[0]
			ids, err := s.absorb(ctx, tx, id, g.reports[1:], best.class, len(g.fresh), now)
			if err != nil {
				return err
			}
			if len(ids) > 0 {
				resolve = append(resolve, mergedAlerts{ids: ids, into: id})
			}
			res.ReportsUpdated++
			res.ReportsMerged += len(g.reports) - 1
		}
		touched = append(touched, id)
		for _, i := range g.fresh {
			if err := ins.add(id, &batch[i]); err != nil {
				return err
			}
		}
	}
	if err := ins.flush(); err != nil {
		return err
	}
	for _, id := range touched {
		if _, err := tx.ExecContext(ctx, `UPDATE hotspot_reports SET
			(hotspots, lat, lon, first_seen, last_seen, max_frp) =
			(SELECT COUNT(*), AVG(lat), AVG(lon), MIN(acquired), MAX(acquired), MAX(frp) FROM hotspot_hotspots WHERE report_id=?)
			WHERE id=?`, id, id); err != nil {
			return fmt.Errorf("report %d aggregates: %w", id, err)
		}
	}
	progress("store", len(batch), len(batch))
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	res.Reports = touched
	for _, m := range resolve {
		s.resolveOverdue(ctx, m.ids, fmt.Sprintf("hotspot report merged into report %d, which carries the escalation", m.into))
	}
	for _, id := range touched {
		if r, err := getReport(ctx, s.db, id); err == nil {
			s.publish(r)
		}
	}
	return nil
}

// mergedAlerts are the overdue alerts a merge into report into made redundant.
type mergedAlerts struct {
	ids  []int64
	into int64
}

func loadIdentities(ctx context.Context, tx *sql.Tx, from, to int64) (map[identity]struct{}, error) {
	rows, err := tx.QueryContext(ctx, `SELECT acquired, instrument, satellite, lat_e4, lon_e4 FROM hotspot_hotspots
		WHERE acquired BETWEEN ? AND ?`, from, to)
	if err != nil {
		return nil, fmt.Errorf("load identities: %w", err)
	}
	defer rows.Close()
	out := map[identity]struct{}{}
	for rows.Next() {
		var k identity
		if err := rows.Scan(&k.acq, &k.inst, &k.sat, &k.latE4, &k.lonE4); err != nil {
			return nil, fmt.Errorf("load identities: %w", err)
		}
		k.sat = canonicalSatellite(k.sat) // a row the satellite migration left in its old spelling
		out[k] = struct{}{}
	}
	return out, rows.Err()
}

func loadOpenNodes(ctx context.Context, tx *sql.Tx, from, to int64, lat1, lat2, lon1, lon2 float64) ([]existingNode, error) {
	rows, err := tx.QueryContext(ctx, `SELECT h.report_id, h.lat, h.lon, h.scan, h.track, h.acquired
		FROM hotspot_hotspots h JOIN hotspot_reports r ON r.id = h.report_id
		WHERE h.acquired BETWEEN ? AND ? AND h.lat BETWEEN ? AND ? AND h.lon BETWEEN ? AND ?
		AND r.status IN ('new','assigned','verifying')`, from, to, lat1, lat2, lon1, lon2)
	if err != nil {
		return nil, fmt.Errorf("load open hotspots: %w", err)
	}
	defer rows.Close()
	var out []existingNode
	for rows.Next() {
		var e existingNode
		if err := rows.Scan(&e.report, &e.lat, &e.lon, &e.scan, &e.track, &e.acq); err != nil {
			return nil, fmt.Errorf("load open hotspots: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// createReport opens a report from its best hotspot's match and assigns it to the
// innermost zone's duty contact when there is one.
func (s *Service) createReport(ctx context.Context, tx *sql.Tx, best incoming, now time.Time) (int64, error) {
	var deadline int64
	if d := s.cfg.deadlineFor(best.class); d > 0 {
		deadline = now.Add(d).Unix()
	}
	status := StatusNew
	if best.duty.Name != "" {
		status = StatusAssigned
	}
	r, err := tx.ExecContext(ctx, `INSERT INTO hotspot_reports(status, class, zone_id, zone_path, zone_ids, forest, mask,
		unit, assignee, assignee_phone, lat, lon, first_seen, last_seen, created_at, updated_at, deadline)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, string(status), string(best.class), best.zoneID, best.zonePath,
		best.zoneIDs, best.forest, best.mask, best.unit, best.duty.Name, best.duty.Phone, best.Lat, best.Lon,
		best.Acquired.Unix(), best.Acquired.Unix(), now.Unix(), now.Unix(), deadline)
	if err != nil {
		return 0, fmt.Errorf("create report: %w", err)
	}
	id, err := r.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("create report: %w", err)
	}
	if err := addHistory(ctx, tx, id, now, "system", "created", "", StatusNew, map[string]any{"class": best.class, "zone": best.zonePath}); err != nil {
		return 0, err
	}
	if status == StatusAssigned {
		if err := addHistory(ctx, tx, id, now, "system", "assigned", StatusNew, StatusAssigned,
			map[string]any{"unit": best.unit, "assignee": best.duty.Name, "phone": best.duty.Phone, "auto": true}); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// absorb adds new hotspots to the open report survivor and folds the other open reports
// the new hotspots connect it to into it: their hotspots move to the survivor (the
// oldest report), they become "merged" pointing at it, and the survivor keeps the
// earliest deadline and escalation among them, so a merge never delays or repeats an
// escalation. The escalation carried on is the earliest one's: the other merged
// reports' overdue alerts are returned, to be cleared once the merge commits.
//
// Field work is kept too: the survivor takes the most advanced open status among the
// merged reports (verifying > assigned > new) with that report's verifier and
// verifying_at, and its unit and assignee when the survivor has no assignee.
//
// A more urgent class raises the survivor's class and may bring its deadline forward
// (upgradedDeadline).
func (s *Service) absorb(ctx context.Context, tx *sql.Tx, survivor int64, others []int64, class Class, added int, now time.Time) ([]int64, error) {
	sr, err := getReport(ctx, tx, survivor)
	if err != nil {
		return nil, err
	}
	deadline, escalated, confirmed := unixOrZero(ptrTime(sr.Deadline)), unixOrZero(ptrTime(sr.EscalatedAt)), sr.ConfirmedByCamera
	newClass := sr.Class
	if class.rank() < newClass.rank() {
		newClass = class
		if d := s.cfg.deadlineFor(class); d > 0 {
			deadline = upgradedDeadline(deadline, sr.CreatedAt, now, d)
		}
	}
	status, verifier, verifyingAt := sr.Status, sr.Verifier, unixOrZero(ptrTime(sr.VerifyingAt))
	unit, assignee, phone := sr.Unit, sr.Assignee, sr.AssigneePhone
	// An escalated report's family (itself and the reports merged into it before) may
	// hold a live overdue alert; the earliest escalation carries on (the survivor's on a tie).
	carrier, carrierAt := survivor, escalated
	families := map[int64][]int64{}
	if escalated != 0 {
		if families[survivor], err = escalatedFamily(ctx, tx, survivor); err != nil {
			return nil, err
		}
	}
	for _, o := range others {
		or, err := getReport(ctx, tx, o)
		if err != nil {
			return nil, err
		}
		if or.Class.rank() < newClass.rank() {
			newClass = or.Class
		}
		deadline = minNonZero(deadline, unixOrZero(ptrTime(or.Deadline)))
		if at := unixOrZero(ptrTime(or.EscalatedAt)); at != 0 {
			if families[o], err = escalatedFamily(ctx, tx, o); err != nil {
				return nil, err
			}
			if carrierAt == 0 || at < carrierAt {
				carrier, carrierAt = o, at
			}
		}
		escalated = minNonZero(escalated, unixOrZero(ptrTime(or.EscalatedAt)))
		confirmed = confirmed || or.ConfirmedByCamera
		before := status
		if statusRank(or.Status) > statusRank(status) {
			status = or.Status
			if or.Status == StatusVerifying {
				verifier, verifyingAt = or.Verifier, unixOrZero(ptrTime(or.VerifyingAt))
			}
		}
		if assignee == "" && or.Assignee != "" {
			unit, assignee, phone = or.Unit, or.Assignee, or.AssigneePhone
		}
		if _, err := tx.ExecContext(ctx, `UPDATE hotspot_hotspots SET report_id=? WHERE report_id=?`, survivor, o); err != nil {
			return nil, fmt.Errorf("merge report %d: %w", o, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE hotspot_reports SET status='merged', merged_into=?, updated_at=? WHERE id=?`,
			survivor, now.Unix(), o); err != nil {
			return nil, fmt.Errorf("merge report %d: %w", o, err)
		}
		if err := addHistory(ctx, tx, o, now, "system", "merged", or.Status, StatusMerged, map[string]any{"into": survivor}); err != nil {
			return nil, err
		}
		if err := addHistory(ctx, tx, survivor, now, "system", "absorbed", before, status, map[string]any{"from": o, "from_status": or.Status}); err != nil {
			return nil, err
		}
	}
	var resolve []int64
	for p, fam := range families {
		if p != carrier {
			resolve = append(resolve, fam...)
		}
	}
	slices.Sort(resolve)
	overdue := 0
	if escalated != 0 || sr.Overdue {
		overdue = 1
	}
	if _, err := tx.ExecContext(ctx, `UPDATE hotspot_reports SET class=?, deadline=?, escalated_at=?, overdue=?,
		confirmed_by_camera=?, status=?, verifier=?, verifying_at=?, unit=?, assignee=?, assignee_phone=?, updated_at=? WHERE id=?`,
		string(newClass), deadline, escalated, overdue, confirmed, string(status), verifier, verifyingAt, unit, assignee, phone,
		now.Unix(), survivor); err != nil {
		return nil, fmt.Errorf("update report %d: %w", survivor, err)
	}
	return resolve, addHistory(ctx, tx, survivor, now, "system", "hotspots_added", status, status, map[string]any{"added": added, "class": newClass})
}

// statusRank orders open statuses by how far the work on the ground has got.
func statusRank(st Status) int {
	switch st {
	case StatusVerifying:
		return 2
	case StatusAssigned:
		return 1
	}
	return 0
}

// upgradedDeadline is the deadline of a report whose class was raised to one with
// deadline d: the new class's deadline counted from the report's creation, as if it had
// had that class from the start, but never so early that the crew cannot act on the
// news: at least d from now when no deadline was running (nobody had been sent, e.g. a
// known heat source), at least d/2 from now when one was. It is never later than the old
// deadline (unix seconds, 0 = none), so an upgrade never delays a report.
func upgradedDeadline(old int64, created, now time.Time, d time.Duration) int64 {
	if old == 0 {
		return now.Add(d).Unix()
	}
	due := created.Add(d)
	if floor := now.Add(d / 2); due.Before(floor) {
		due = floor
	}
	return min(old, due.Unix())
}

func ptrTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func minNonZero(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// ErrImportTooLarge means a FIRMS file exceeds max_import_bytes.
var ErrImportTooLarge = fmt.Errorf("firms file: %w", errs.ErrTooLarge)

// maybeGunzip transparently decompresses a gzip stream (FIRMS archives are often
// kept gzipped); the byte cap then applies to the decompressed text, which also
// defuses a gzip bomb.
func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(2)
	if err != nil || magic[0] != 0x1f || magic[1] != 0x8b {
		return br, nil // short or plain input: the parser reports what is wrong with it
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("gzip: %v: %w", err, ErrBadFile)
	}
	return gzipErrs{zr}, nil
}

// gzipErrs turns a corrupt or truncated gzip stream into ErrBadFile (the file is
// bad, not the server), keeping ErrImportTooLarge and other read errors as they are.
type gzipErrs struct{ r io.Reader }

func (g gzipErrs) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	var ce flate.CorruptInputError
	if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ce) {
		err = fmt.Errorf("gzip: %v: %w", err, ErrBadFile)
	}
	return n, err
}

// capReader fails (instead of silently truncating) once more than left bytes are read.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, ErrImportTooLarge
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, ErrImportTooLarge
	}
	return n, err
}

// insertBatch is how many hotspots one INSERT statement carries (25 parameters each):
// one statement per row spends more time in database/sql than in SQLite.
const insertBatch = 64

const hotspotCols = `(report_id, instrument, satellite, acquired, lat_e4, lon_e4, lat, lon, scan, track, bright,
	bright2, frp, confidence, conf_level, version, daynight, type, country, class, forest, zone_id, mask, source, imported_at)`

func insertSQL(n int) string {
	row := "(?" + strings.Repeat(",?", 24) + ")"
	return "INSERT OR IGNORE INTO hotspot_hotspots" + hotspotCols + " VALUES " + row + strings.Repeat(","+row, n-1)
}

// hotspotInserter writes hotspots in multi-row statements and counts new and duplicate rows.
type hotspotInserter struct {
	ctx      context.Context
	tx       *sql.Tx
	full     *sql.Stmt
	res      *ImportResult
	now      int64
	args     []any
	n        int
	stored   int
	total    int
	progress Progress
}

func newHotspotInserter(ctx context.Context, tx *sql.Tx, res *ImportResult, now time.Time, progress Progress, total int) (*hotspotInserter, error) {
	full, err := tx.PrepareContext(ctx, insertSQL(insertBatch))
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return &hotspotInserter{ctx: ctx, tx: tx, full: full, res: res, now: now.Unix(), progress: progress, total: total,
		args: make([]any, 0, 25*insertBatch)}, nil
}

func (w *hotspotInserter) add(report int64, in *incoming) error {
	w.args = append(w.args, report, in.Instrument, in.Satellite, in.Acquired.Unix(), in.latE4, in.lonE4,
		in.Lat, in.Lon, in.Scan, in.Track, in.Bright, in.Bright2, in.FRP, in.Confidence, in.ConfLevel, in.Version,
		in.DayNight, in.Type, in.Country, string(in.class), in.forest, in.zoneID, in.mask, w.res.Source, w.now)
	if w.n++; w.n == insertBatch {
		return w.flush()
	}
	return nil
}

func (w *hotspotInserter) flush() error {
	if w.n == 0 {
		return nil
	}
	var r sql.Result
	var err error
	if w.n == insertBatch {
		r, err = w.full.ExecContext(w.ctx, w.args...)
	} else {
		r, err = w.tx.ExecContext(w.ctx, insertSQL(w.n), w.args...)
	}
	if err != nil {
		return fmt.Errorf("insert hotspots: %w", err)
	}
	inserted, err := r.RowsAffected()
	if err != nil {
		return fmt.Errorf("insert hotspots: %w", err)
	}
	w.res.New += int(inserted)
	w.res.Duplicate += w.n - int(inserted)
	w.stored += w.n
	w.progress("store", w.stored, w.total)
	w.args, w.n = w.args[:0], 0
	return nil
}

func (w *hotspotInserter) close() { w.full.Close() }
