package hotspot

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/events"
	"github.com/lookoutfire/lookout/store"
)

// Domain errors; each wraps an errs kind so the HTTP edge can map it.
var (
	ErrReportNotFound = fmt.Errorf("hotspot report %w", errs.ErrNotFound)
	ErrPhotoNotFound  = fmt.Errorf("photo %w", errs.ErrNotFound)
	ErrWrongStatus    = fmt.Errorf("hotspot report status: %w", errs.ErrConflict)
	ErrBadClose       = fmt.Errorf("hotspot close-out %w", errs.ErrInvalid)
	ErrBadRequest     = fmt.Errorf("hotspot request %w", errs.ErrInvalid)
	ErrBadPhoto       = fmt.Errorf("photo %w", errs.ErrInvalid)
	ErrPhotoTooLarge  = fmt.Errorf("photo %w", errs.ErrTooLarge)
)

// EventType is published (with a Report) whenever a report changes.
const EventType = "hotspot.report"

// Class is a hotspot's or report's priority by where it lies; it sets the deadline.
type Class string

// Classes, most urgent first.
const (
	ClassForest     Class = "forest"
	ClassNearForest Class = "near_forest"
	ClassElsewhere  Class = "elsewhere"
	ClassHeatSource Class = "heat_source" // on a mask (known industrial heat source) or FIRMS type 1/2
)

func (c Class) rank() int {
	switch c {
	case ClassForest:
		return 0
	case ClassNearForest:
		return 1
	case ClassElsewhere:
		return 2
	}
	return 3
}

// Status is a report's lifecycle step.
type Status string

// Statuses: new → assigned → verifying → closed (→ reopened to assigned/new); merged is
// terminal and points to the report that absorbed it.
const (
	StatusNew       Status = "new"
	StatusAssigned  Status = "assigned"
	StatusVerifying Status = "verifying"
	StatusClosed    Status = "closed"
	StatusMerged    Status = "merged"
)

func (s Status) open() bool { return s == StatusNew || s == StatusAssigned || s == StatusVerifying }

// Report is one fire event to verify: a cluster of hotspots with its place, assignee,
// deadline and close-out.
type Report struct {
	ID                int64      `json:"id"`
	Status            Status     `json:"status"`
	Class             Class      `json:"class"`
	ZoneID            string     `json:"zone_id"`
	ZonePath          string     `json:"zone_path"` // outermost → innermost names, " / " separated
	Forest            string     `json:"forest"`
	Mask              string     `json:"mask,omitempty"`
	Unit              string     `json:"unit"`
	Assignee          string     `json:"assignee"`
	AssigneePhone     string     `json:"assignee_phone"`
	Lat               float64    `json:"lat"`
	Lon               float64    `json:"lon"`
	FirstSeen         time.Time  `json:"first_seen"`
	LastSeen          time.Time  `json:"last_seen"`
	Hotspots          int        `json:"hotspots"`
	MaxFRP            float64    `json:"max_frp"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
	Deadline          *time.Time `json:"deadline,omitempty"`
	EscalatedAt       *time.Time `json:"escalated_at,omitempty"`
	Overdue           bool       `json:"overdue"`
	VerifyingAt       *time.Time `json:"verifying_at,omitempty"`
	ClosedAt          *time.Time `json:"closed_at,omitempty"`
	Outcome           string     `json:"outcome,omitempty"`
	Verifier          string     `json:"verifier,omitempty"`
	VerifiedAt        *time.Time `json:"verified_at,omitempty"`
	Note              string     `json:"note,omitempty"`
	CorrectedLat      *float64   `json:"corrected_lat,omitempty"`
	CorrectedLon      *float64   `json:"corrected_lon,omitempty"`
	ConfirmedByCamera bool       `json:"confirmed_by_camera"`
	MergedInto        int64      `json:"merged_into,omitempty"`
	zoneIDs           string
}

// Deps are the components a Service uses. DB and Locator are required; the rest
// default to no-ops (no escalation, no events, wall clock, no cameras/evidence).
type Deps struct {
	DB         *sql.DB
	Locator    Locator
	Escalator  Escalator
	Events     events.Publisher
	Clock      clock.Clock
	Cameras    Cameras
	Evidence   Evidence
	User       func(*http.Request) string // the acting user; "" → "anonymous"
	HTTPClient *http.Client               // for URL poll sources; nil → a client with poll_timeout
	Registerer prometheus.Registerer      // nil → metrics not registered
	Logger     *slog.Logger               // poll imports are logged here; nil → slog.Default()
}

// Service is the hotspot workflow: imports, reports, deadlines, corroboration and the
// HTTP handlers. It is safe for concurrent use; imports are serialised.
type Service struct {
	cfg      Config
	db       *sql.DB
	loc      Locator
	esc      Escalator
	pub      events.Publisher
	clk      clock.Clock
	cams     Cameras
	ev       Evidence
	user     func(*http.Request) string
	client   *http.Client
	importMu sync.Mutex
	m        metrics
	log      *slog.Logger

	dirMu   sync.Mutex
	dirSeen map[string]map[string]fileStamp // folder source → file → stamp at its last poll

	resolveMu  sync.Mutex
	unresolved map[int64]pendingClear // report → an overdue alert whose Resolve failed; retried by RunDue

	// escMu keeps an overdue claim and its alert together against merges: an
	// import's transaction never runs between RunDue claiming a report and
	// raising its alert, so the merge that absorbs the report sees the alert it
	// decides about (and clears it when another escalation carries on).
	escMu sync.Mutex
}

type metrics struct {
	rows        *prometheus.CounterVec
	escalations prometheus.Counter
	importSecs  prometheus.Histogram
	polls       *prometheus.CounterVec
}

// New migrates the hotspot tables and returns a Service.
func New(ctx context.Context, cfg Config, d Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("hotspot config: %w", err)
	}
	if d.DB == nil || d.Locator == nil {
		return nil, errors.New("hotspot: DB and Locator are required")
	}
	if cfg.PhotoDir == "" {
		return nil, errors.New("hotspot: photo_dir must be set (the gateway defaults it to <data_dir>/photos)")
	}
	if err := store.Migrate(ctx, d.DB, "hotspot", migrations()); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, db: d.DB, loc: d.Locator, esc: d.Escalator, pub: d.Events, clk: d.Clock,
		cams: d.Cameras, ev: d.Evidence, user: d.User, client: d.HTTPClient, log: d.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.pub == nil {
		s.pub = events.Discard{}
	}
	if s.clk == nil {
		s.clk = clock.Real{}
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: cfg.PollTimeout}
	}
	s.m = metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_hotspot_rows_total",
			Help: "FIRMS rows imported, by result (new, duplicate, bad, outside_area)."}, []string{"result"}),
		escalations: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_hotspot_escalations_total",
			Help: "Overdue hotspot reports escalated."}),
		importSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lookout_hotspot_import_seconds",
			Help: "Duration of one FIRMS import (parse, match, cluster, store).", Buckets: prometheus.ExponentialBuckets(0.01, 3, 8)}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_hotspot_polls_total",
			Help: "Poll source checks, by source and result (imported, unchanged, error)."}, []string{"source", "result"}),
	}
	if d.Registerer != nil {
		for _, c := range []prometheus.Collector{s.m.rows, s.m.escalations, s.m.importSecs, s.m.polls} {
			if err := d.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("hotspot metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Config returns the service's settings.
func (s *Service) Config() Config { return s.cfg }

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func timePtr(v int64) *time.Time {
	if v == 0 {
		return nil
	}
	t := time.Unix(v, 0).UTC()
	return &t
}

const reportCols = `id, status, class, zone_id, zone_path, zone_ids, forest, mask, unit, assignee, assignee_phone,
	lat, lon, first_seen, last_seen, hotspots, max_frp, created_at, updated_at, deadline, escalated_at, overdue,
	verifying_at, closed_at, outcome, verifier, verified_at, note, corrected_lat, corrected_lon,
	confirmed_by_camera, merged_into`

type scanner interface{ Scan(dest ...any) error }

func scanReport(sc scanner) (Report, error) {
	var r Report
	var first, last, created, updated, deadline, escalated, verifying, closed, verified int64
	var overdue, confirmed int
	var clat, clon sql.NullFloat64
	err := sc.Scan(&r.ID, &r.Status, &r.Class, &r.ZoneID, &r.ZonePath, &r.zoneIDs, &r.Forest, &r.Mask, &r.Unit,
		&r.Assignee, &r.AssigneePhone, &r.Lat, &r.Lon, &first, &last, &r.Hotspots, &r.MaxFRP, &created, &updated,
		&deadline, &escalated, &overdue, &verifying, &closed, &r.Outcome, &r.Verifier, &verified, &r.Note,
		&clat, &clon, &confirmed, &r.MergedInto)
	if err != nil {
		return r, err
	}
	r.FirstSeen, r.LastSeen = time.Unix(first, 0).UTC(), time.Unix(last, 0).UTC()
	r.CreatedAt, r.UpdatedAt = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	r.Deadline, r.EscalatedAt, r.VerifyingAt = timePtr(deadline), timePtr(escalated), timePtr(verifying)
	r.ClosedAt, r.VerifiedAt = timePtr(closed), timePtr(verified)
	r.Overdue, r.ConfirmedByCamera = overdue != 0, confirmed != 0
	if clat.Valid && clon.Valid {
		r.CorrectedLat, r.CorrectedLon = &clat.Float64, &clon.Float64
	}
	return r, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func getReport(ctx context.Context, q querier, id int64) (Report, error) {
	r, err := scanReport(q.QueryRowContext(ctx, `SELECT `+reportCols+` FROM hotspot_reports WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%d: %w", id, ErrReportNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("hotspot: load report %d: %w", id, err)
	}
	return r, nil
}

// Report returns one report.
func (s *Service) Report(ctx context.Context, id int64) (Report, error) {
	return getReport(ctx, s.db, id)
}

// HistoryEntry is one audited step of a report.
type HistoryEntry struct {
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	From   Status          `json:"from"`
	To     Status          `json:"to"`
	Detail json.RawMessage `json:"detail,omitempty"`
}

func addHistory(ctx context.Context, q querier, id int64, at time.Time, actor, action string, from, to Status, detail any) error {
	d := ""
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return fmt.Errorf("hotspot: history detail: %w", err)
		}
		d = string(b)
	}
	if actor == "" {
		actor = "anonymous"
	}
	_, err := q.ExecContext(ctx, `INSERT INTO hotspot_history(report_id, at, actor, action, from_status, to_status, detail)
		VALUES(?,?,?,?,?,?,?)`, id, at.Unix(), actor, action, string(from), string(to), d)
	if err != nil {
		return fmt.Errorf("hotspot: history: %w", err)
	}
	return nil
}

// History returns a report's audit trail, oldest first.
func (s *Service) History(ctx context.Context, id int64) ([]HistoryEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, actor, action, from_status, to_status, detail
		FROM hotspot_history WHERE report_id=? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("hotspot: history: %w", err)
	}
	defer rows.Close()
	var out []HistoryEntry
	for rows.Next() {
		var h HistoryEntry
		var at int64
		var d string
		if err := rows.Scan(&at, &h.Actor, &h.Action, &h.From, &h.To, &d); err != nil {
			return nil, fmt.Errorf("hotspot: history: %w", err)
		}
		h.At = time.Unix(at, 0).UTC()
		if d != "" {
			h.Detail = json.RawMessage(d)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// StoredHotspot is a hotspot as kept with its report, with its match result.
type StoredHotspot struct {
	ID int64 `json:"id"`
	Hotspot
	Class  Class  `json:"class"`
	Forest string `json:"forest"`
	ZoneID string `json:"zone_id"`
	Mask   string `json:"mask,omitempty"`
	Source string `json:"source"`
}

// Hotspots returns a report's hotspots (its evidence), oldest first.
func (s *Service) Hotspots(ctx context.Context, reportID int64) ([]StoredHotspot, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, instrument, satellite, acquired, lat, lon, scan, track, bright,
		bright2, frp, confidence, conf_level, version, daynight, type, country, class, forest, zone_id, mask, source
		FROM hotspot_hotspots WHERE report_id=? ORDER BY acquired, id`, reportID)
	if err != nil {
		return nil, fmt.Errorf("hotspot: hotspots: %w", err)
	}
	defer rows.Close()
	var out []StoredHotspot
	for rows.Next() {
		var h StoredHotspot
		var acq int64
		if err := rows.Scan(&h.ID, &h.Instrument, &h.Satellite, &acq, &h.Lat, &h.Lon, &h.Scan, &h.Track, &h.Bright,
			&h.Bright2, &h.FRP, &h.Confidence, &h.ConfLevel, &h.Version, &h.DayNight, &h.Type, &h.Country, &h.Class,
			&h.Forest, &h.ZoneID, &h.Mask, &h.Source); err != nil {
			return nil, fmt.Errorf("hotspot: hotspots: %w", err)
		}
		h.Acquired = time.Unix(acq, 0).UTC()
		out = append(out, h)
	}
	return out, rows.Err()
}

// ListFilter selects reports. Zero fields do not filter.
type ListFilter struct {
	Status   Status
	Statuses []Status // any of these (with Status, if set)
	Zone     string   // zone id: the zone itself or any zone inside it
	Class    Class
	Since    time.Time // created at or after
	Overdue  bool      // only overdue ones (escalated, or open past the deadline, or closed late)
	Limit    int       // 0 = 1000
	Offset   int
}

// List returns reports matching f, newest first. Merged reports are listed only when
// asked for by status (Status or Statuses).
func (s *Service) List(ctx context.Context, f ListFilter) ([]Report, error) {
	var where []string
	var args []any
	statuses := f.Statuses
	if f.Status != "" {
		statuses = append([]Status{f.Status}, statuses...)
	}
	switch {
	case len(statuses) > 0:
		where = append(where, "status IN (?"+strings.Repeat(",?", len(statuses)-1)+")")
		for _, st := range statuses {
			args = append(args, string(st))
		}
	default:
		where = append(where, "status<>'merged'")
	}
	if f.Zone != "" {
		where, args = append(where, "instr(zone_ids, ?) > 0"), append(args, "|"+f.Zone+"|")
	}
	if f.Class != "" {
		where, args = append(where, "class=?"), append(args, string(f.Class))
	}
	if !f.Since.IsZero() {
		where, args = append(where, "created_at>=?"), append(args, f.Since.Unix())
	}
	if f.Overdue {
		where = append(where, "(overdue=1 OR (status IN ('new','assigned','verifying') AND deadline>0 AND deadline<=?))")
		args = append(args, s.clk.Now().Unix())
	}
	if f.Limit <= 0 || f.Limit > 100_000 {
		f.Limit = 1000
	}
	q := `SELECT ` + reportCols + ` FROM hotspot_reports WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`
	args = append(args, f.Limit, f.Offset)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("hotspot: list: %w", err)
	}
	defer rows.Close()
	now := s.clk.Now()
	out := []Report{}
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, fmt.Errorf("hotspot: list: %w", err)
		}
		markOverdue(&r, now)
		out = append(out, r)
	}
	return out, rows.Err()
}

// markOverdue sets Overdue for an open report already past its deadline that RunDue
// has not reached yet, so readers never see a stale flag.
func markOverdue(r *Report, now time.Time) {
	if r.Status.open() && r.Deadline != nil && !now.Before(*r.Deadline) {
		r.Overdue = true
	}
}

func (s *Service) publish(r Report) {
	s.pub.Publish(EventType, r)
}
