package geo

import (
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

// Columns LocateCSV appends to every row.
const (
	ColForestID       = "forest_id"         // containing forest ids, ";"-separated
	ColZonePath       = "zone_path"         // zone ids innermost first, ";"-separated
	ColForestDistance = "forest_distance_m" // 0 inside, metres to the nearest forest, empty when none within the radius
)

// LocateCSV is the batch form of Locate for `gateway geo locate`: it copies a
// CSV with a header naming lat and lon (or latitude and longitude, as FIRMS
// files do) and appends forest_id, zone_path and forest_distance_m to each row.
// A row whose position does not parse stops the run with its line number.
func LocateCSV(ix *Index, in io.Reader, out io.Writer) error {
	r := csv.NewReader(in)
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
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) {
		case "lat", "latitude":
			latCol = i
		case "lon", "lng", "longitude":
			lonCol = i
		}
	}
	if latCol < 0 || lonCol < 0 {
		return fmt.Errorf("csv header %q has no lat and lon columns: %w", strings.Join(header, ","), errs.ErrInvalid)
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

// TriangulateJSON is the batch form of Triangulate for `gateway geo
// triangulate`: a JSON array of {"lat","lon","bearing_deg"} in, one
// {"lat","lon","error_m"} out (or the reason no fix exists).
func TriangulateJSON(in io.Reader, out io.Writer, minBaselineM, minAngleDeg float64) error {
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	var s []Sighting
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("want a JSON array of {\"lat\",\"lon\",\"bearing_deg\"}: %v: %w", err, errs.ErrInvalid)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("trailing data after the JSON array: %w", errs.ErrInvalid)
	}
	fix, err := Triangulate(s, minBaselineM, minAngleDeg)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(fix)
}
