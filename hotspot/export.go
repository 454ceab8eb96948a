package hotspot

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ZoneStats is the feedback count for one zone (a zone counts the reports of every zone inside it).
type ZoneStats struct {
	ZoneID         string         `json:"zone_id"`
	Zone           string         `json:"zone"`
	Received       int            `json:"received"`
	Open           int            `json:"open"`
	Closed         int            `json:"closed"`
	VerifiedOnTime int            `json:"verified_on_time"`
	Overdue        int            `json:"overdue"`
	ByOutcome      map[string]int `json:"by_outcome"`
}

// Stats are the per-zone statistics for reports created in [Since, Until).
type Stats struct {
	Since time.Time   `json:"since"`
	Until time.Time   `json:"until"`
	Total ZoneStats   `json:"total"`
	Zones []ZoneStats `json:"zones"`
}

// Stats counts reports created in [since, until) per zone: received, still open, closed,
// verified on time (closed before the deadline, or without one), overdue (escalated,
// closed late or open past the deadline) and closed by outcome.
func (s *Service) Stats(ctx context.Context, since, until time.Time) (Stats, error) {
	if until.IsZero() {
		until = s.clk.Now().Add(time.Second)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+reportCols+` FROM hotspot_reports
		WHERE status<>'merged' AND created_at>=? AND created_at<?`, since.Unix(), until.Unix())
	if err != nil {
		return Stats{}, fmt.Errorf("hotspot: stats: %w", err)
	}
	defer rows.Close()
	now := s.clk.Now()
	st := Stats{Since: since, Until: until, Total: ZoneStats{ZoneID: "", Zone: "total", ByOutcome: map[string]int{}}}
	byZone := map[string]*ZoneStats{}
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return st, fmt.Errorf("hotspot: stats: %w", err)
		}
		markOverdue(&r, now)
		targets := []*ZoneStats{&st.Total}
		ids := strings.Split(strings.Trim(r.zoneIDs, "|"), "|")
		names := strings.Split(r.ZonePath, " / ")
		for i, id := range ids {
			if id == "" {
				continue
			}
			z := byZone[id]
			if z == nil {
				z = &ZoneStats{ZoneID: id, ByOutcome: map[string]int{}}
				if len(names) == len(ids) {
					z.Zone = strings.Join(names[:i+1], " / ")
				}
				byZone[id] = z
			}
			targets = append(targets, z)
		}
		for _, z := range targets {
			z.Received++
			switch {
			case r.Status == StatusClosed:
				z.Closed++
				z.ByOutcome[r.Outcome]++
				if !r.Overdue {
					z.VerifiedOnTime++
				}
			default:
				z.Open++
			}
			if r.Overdue {
				z.Overdue++
			}
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("hotspot: stats: %w", err)
	}
	for _, z := range byZone {
		st.Zones = append(st.Zones, *z)
	}
	sort.Slice(st.Zones, func(i, j int) bool { return st.Zones[i].Zone < st.Zones[j].Zone })
	if st.Zones == nil {
		st.Zones = []ZoneStats{}
	}
	return st, nil
}

// csvHeader is the column list of the CSV export (stable: spreadsheets depend on it).
func csvHeader() []string {
	return []string{"id", "status", "class", "zone_id", "zone_path", "forest", "lat", "lon", "first_seen_utc",
		"last_seen_utc", "hotspots", "max_frp", "created_at_utc", "deadline_utc", "overdue", "unit", "assignee",
		"outcome", "verifier", "verified_at_utc", "closed_at_utc", "corrected_lat", "corrected_lon", "confirmed_by_camera", "note"}
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtFloat(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', 5, 64)
}

// csvCell defuses spreadsheet formula injection: a text cell that starts with = + - @ or a
// control character is prefixed with a quote.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteCSV writes reports as CSV with their outcomes.
func WriteCSV(w io.Writer, reports []Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader()); err != nil {
		return err
	}
	for _, r := range reports {
		first, last, created := r.FirstSeen, r.LastSeen, r.CreatedAt
		rec := []string{strconv.FormatInt(r.ID, 10), string(r.Status), string(r.Class), csvCell(r.ZoneID), csvCell(r.ZonePath),
			csvCell(r.Forest), strconv.FormatFloat(r.Lat, 'f', 5, 64), strconv.FormatFloat(r.Lon, 'f', 5, 64),
			fmtTime(&first), fmtTime(&last), strconv.Itoa(r.Hotspots), strconv.FormatFloat(r.MaxFRP, 'f', 2, 64),
			fmtTime(&created), fmtTime(r.Deadline), strconv.FormatBool(r.Overdue), csvCell(r.Unit), csvCell(r.Assignee),
			r.Outcome, csvCell(r.Verifier), fmtTime(r.VerifiedAt), fmtTime(r.ClosedAt), fmtFloat(r.CorrectedLat),
			fmtFloat(r.CorrectedLon), strconv.FormatBool(r.ConfirmedByCamera), csvCell(r.Note)}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteGeoJSON writes reports as an RFC 7946 FeatureCollection of points (WGS84): the
// corrected position when the verifier gave one, else the hotspots' centroid.
func WriteGeoJSON(w io.Writer, reports []Report) error {
	type geometry struct {
		Type        string     `json:"type"`
		Coordinates [2]float64 `json:"coordinates"`
	}
	type feature struct {
		Type       string   `json:"type"`
		ID         int64    `json:"id"`
		Geometry   geometry `json:"geometry"`
		Properties Report   `json:"properties"`
	}
	fc := struct {
		Type     string    `json:"type"`
		Features []feature `json:"features"`
	}{Type: "FeatureCollection", Features: make([]feature, 0, len(reports))}
	for _, r := range reports {
		lon, lat := r.Lon, r.Lat
		if r.CorrectedLat != nil && r.CorrectedLon != nil {
			lon, lat = *r.CorrectedLon, *r.CorrectedLat
		}
		fc.Features = append(fc.Features, feature{Type: "Feature", ID: r.ID,
			Geometry: geometry{Type: "Point", Coordinates: [2]float64{lon, lat}}, Properties: r})
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(fc)
}
