package geo

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/paulmach/orb"

	"github.com/lookoutfire/lookout/errs"
)

// utf8BOM is the byte order mark some spreadsheet and R exports put first.
const utf8BOM = "\ufeff"

// Columns LocateCSV appends to every row.
const (
	ColForestID       = "forest_id"         // containing forest ids, ";"-separated
	ColZonePath       = "zone_path"         // zone ids innermost first, ";"-separated
	ColForestDistance = "forest_distance_m" // 0 inside, metres to the nearest forest, empty when none within the radius
)

// LocateCSV is the batch form of Locate for `gateway geo locate`: it copies a
// CSV with a header naming lat and lon (or latitude and longitude, as FIRMS
// files do) and appends forest_id, zone_path and forest_distance_m to each row.
// A row whose position does not parse stops the run with its line number. A
// leading UTF-8 byte order mark (Excel's and R's "CSV UTF-8") is taken off
// before parsing, so a quoted first header field still parses, and put back
// in front of the output.
func LocateCSV(ix *Index, in io.Reader, out io.Writer) error {
	br := bufio.NewReader(in)
	bom := false
	if b, _ := br.Peek(len(utf8BOM)); string(b) == utf8BOM {
		_, _ = br.Discard(len(utf8BOM)) // just peeked: cannot fail
		bom = true
	}
	r := csv.NewReader(br)
	r.FieldsPerRecord = 0 // every row as wide as the header, so the added columns line up
	w := csv.NewWriter(out)
	header, err := r.Read()
	if err == io.EOF {
		return fmt.Errorf("empty input: want a CSV header with lat,lon: %w", errs.ErrInvalid)
	}
	if err != nil {
		return fmt.Errorf("csv header: %v: %w", err, errs.ErrInvalid)
	}
	latCol, lonCol := -1, -1
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(h)) {
		case "lat", "latitude":
			latCol = i
		case "lon", "lng", "longitude":
			lonCol = i
		}
	}
	if latCol < 0 || lonCol < 0 {
		return fmt.Errorf("csv header %q has no lat and lon columns: %w", strings.Join(header, ","), errs.ErrInvalid)
	}
	if bom {
		if _, err := io.WriteString(out, utf8BOM); err != nil {
			return err
		}
	}
	if err := w.Write(append(header, ColForestID, ColZonePath, ColForestDistance)); err != nil {
		return err
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil { // a *csv.ParseError names the line
			return fmt.Errorf("csv: %v: %w", err, errs.ErrInvalid)
		}
		line, _ := r.FieldPos(0)
		lat, e1 := strconv.ParseFloat(strings.TrimSpace(rec[latCol]), 64)
		lon, e2 := strconv.ParseFloat(strings.TrimSpace(rec[lonCol]), 64)
		p := orb.Point{lon, lat}
		if e1 != nil || e2 != nil || checkPoint(p) != nil {
			return fmt.Errorf("line %d: bad position lat=%q lon=%q: %w", line, rec[latCol], rec[lonCol], errs.ErrInvalid)
		}
		loc := ix.Locate(p)
		zones := make([]string, len(loc.Zones))
		for i, z := range loc.Zones {
			zones[i] = z.ID
		}
		dist := ""
		if loc.DistanceM >= 0 {
			dist = strconv.FormatFloat(loc.DistanceM, 'f', 1, 64)
		}
		if err := w.Write(append(rec, strings.Join(loc.Forests, ";"), strings.Join(zones, ";"), dist)); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// sightingJSON is a Sighting as read by TriangulateJSON: pointers, so that a
// missing (or null) field is told apart from a real 0 (a camera at longitude 0
// would otherwise give a confident fix thousands of kilometres away).
type sightingJSON struct {
	Lat        *float64 `json:"lat"`
	Lon        *float64 `json:"lon"`
	BearingDeg *float64 `json:"bearing_deg"`
}

// TriangulateJSON is the batch form of Triangulate for `gateway geo
// triangulate`: a JSON array of {"lat","lon","bearing_deg"} in, one
// {"lat","lon","error_m"} out (or the reason no fix exists). Every sighting
// needs all three fields; one missing or null is refused, naming the sighting.
func TriangulateJSON(in io.Reader, out io.Writer, minBaselineM, minAngleDeg float64) error {
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	var raw []sightingJSON
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("want a JSON array of {\"lat\",\"lon\",\"bearing_deg\"}: %v: %w", err, errs.ErrInvalid)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("trailing data after the JSON array: %w", errs.ErrInvalid)
	}
	s := make([]Sighting, len(raw))
	for i, r := range raw {
		var missing []string
		for _, f := range []struct {
			name string
			v    *float64
		}{{"lat", r.Lat}, {"lon", r.Lon}, {"bearing_deg", r.BearingDeg}} {
			if f.v == nil {
				missing = append(missing, strconv.Quote(f.name))
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("sighting %d (array index %d) has no %s: %w", i+1, i, strings.Join(missing, ", "), errs.ErrInvalid)
		}
		s[i] = Sighting{Lat: *r.Lat, Lon: *r.Lon, BearingDeg: *r.BearingDeg}
	}
	fix, err := Triangulate(s, minBaselineM, minAngleDeg)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(fix)
}
