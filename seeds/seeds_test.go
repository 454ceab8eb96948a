package seeds

import (
	"encoding/json"
	"math"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/planar"

	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/registry"
)

func load(t *testing.T, path string) *geojson.FeatureCollection {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := geojson.UnmarshalFeatureCollection(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(fc.Features) == 0 {
		t.Fatalf("%s: no features", path)
	}
	return fc
}

// polys returns a feature's polygons (a Polygon is a one-element list).
func polys(t *testing.T, f *geojson.Feature) []orb.Polygon {
	t.Helper()
	switch g := f.Geometry.(type) {
	case orb.Polygon:
		return []orb.Polygon{g}
	case orb.MultiPolygon:
		return g
	}
	t.Fatalf("feature %v: geometry %s, want Polygon or MultiPolygon", f.ID, f.Geometry.GeoJSONType())
	return nil
}

// onBoundary reports whether p lies on one of r's edges (within ~1 cm).
func onBoundary(r orb.Ring, p orb.Point) bool {
	for i := 0; i+1 < len(r); i++ {
		a, b := r[i], r[i+1]
		cross := (b[0]-a[0])*(p[1]-a[1]) - (b[1]-a[1])*(p[0]-a[0])
		if math.Abs(cross) > 1e-12 {
			continue
		}
		if p[0] >= math.Min(a[0], b[0])-1e-9 && p[0] <= math.Max(a[0], b[0])+1e-9 &&
			p[1] >= math.Min(a[1], b[1])-1e-9 && p[1] <= math.Max(a[1], b[1])+1e-9 {
			return true
		}
	}
	return false
}

// within reports whether every vertex and edge midpoint of inner lies inside
// (or on) outer's exterior ring.
func within(inner, outer orb.Ring) bool {
	for i := 0; i+1 < len(inner); i++ {
		a, b := inner[i], inner[i+1]
		mid := orb.Point{(a[0] + b[0]) / 2, (a[1] + b[1]) / 2}
		for _, pt := range []orb.Point{a, mid} {
			if !planar.RingContains(outer, pt) && !onBoundary(outer, pt) {
				return false
			}
		}
	}
	return true
}

// inPoly: inside the exterior ring (edges count) and not strictly inside a hole.
func inPoly(p orb.Polygon, pt orb.Point) bool {
	if !planar.RingContains(p[0], pt) {
		return false
	}
	for _, h := range p[1:] {
		if planar.RingContains(h, pt) && !onBoundary(h, pt) {
			return false
		}
	}
	return true
}

func checkRings(t *testing.T, id any, p orb.Polygon) {
	t.Helper()
	for i, r := range p {
		if len(r) < 4 || r[0] != r[len(r)-1] {
			t.Errorf("%v ring %d: not closed or fewer than 4 positions", id, i)
		}
		// RFC 7946: exterior rings counter-clockwise, holes clockwise.
		if ccw := r.Orientation() == orb.CCW; ccw != (i == 0) {
			t.Errorf("%v ring %d: wrong winding (exterior CCW, holes CW)", id, i)
		}
		for _, pt := range r {
			if pt[0] < 106 || pt[0] > 108 || pt[1] < 31 || pt[1] > 32 {
				t.Errorf("%v: position %v outside the demo area (lon/lat order?)", id, pt)
			}
		}
	}
}

type zone struct {
	id, level, parent string
	poly              orb.Polygon
}

var levels = []string{"county", "town", "village", "grid"}
var phoneRE = regexp.MustCompile(`^1[3-9]\d{9}$`)

func loadZones(t *testing.T) (map[string]zone, zone) {
	t.Helper()
	fc := load(t, "zones.geojson")
	zones := map[string]zone{}
	var county zone
	for _, f := range fc.Features {
		id, _ := f.Properties["id"].(string)
		if id == "" || f.ID != id {
			t.Fatalf("zone feature %v: properties.id %q must be set and equal the feature id", f.ID, id)
		}
		if _, dup := zones[id]; dup {
			t.Fatalf("zone %s twice", id)
		}
		ps := polys(t, f)
		if len(ps) != 1 {
			t.Fatalf("zone %s: want one polygon", id)
		}
		checkRings(t, id, ps[0])
		z := zone{id: id, level: f.Properties.MustString("level", ""), poly: ps[0]}
		z.parent, _ = f.Properties["parent"].(string)
		if !slices.Contains(levels, z.level) {
			t.Errorf("zone %s: level %q", id, z.level)
		}
		if name, _ := f.Properties["name"].(string); name == "" {
			t.Errorf("zone %s: no name", id)
		}
		duty, _ := f.Properties["duty"].([]any)
		if len(duty) == 0 {
			t.Errorf("zone %s: no duty contacts", id)
		}
		for _, d := range duty {
			c, _ := d.(map[string]any)
			name, _ := c["name"].(string)
			phone, _ := c["phone"].(string)
			role, _ := c["role"].(string)
			if name == "" || role == "" || !phoneRE.MatchString(phone) || len(c) != 3 {
				t.Errorf("zone %s: bad duty contact %v (want name, phone 1xxxxxxxxxx, role)", id, c)
			}
		}
		if z.level == "county" {
			if county.id != "" || z.parent != "" {
				t.Fatalf("zone %s: want exactly one county, without parent", id)
			}
			county = z
		}
		zones[id] = z
	}
	if county.id == "" {
		t.Fatal("no county zone")
	}
	return zones, county
}

func TestZonesNest(t *testing.T) {
	zones, county := loadZones(t)
	count := map[string]int{}
	for _, z := range zones {
		count[z.level]++
		if z.level == "county" {
			continue
		}
		p, ok := zones[z.parent]
		if !ok {
			t.Errorf("zone %s: parent %q does not exist", z.id, z.parent)
			continue
		}
		if slices.Index(levels, p.level) != slices.Index(levels, z.level)-1 {
			t.Errorf("zone %s (%s): parent %s is a %s", z.id, z.level, p.id, p.level)
		}
		if !within(z.poly[0], p.poly[0]) {
			t.Errorf("zone %s is not inside its parent %s", z.id, p.id)
		}
		// siblings must not overlap: no vertex strictly inside a sibling
		for _, s := range zones {
			if s.id == z.id || s.parent != z.parent {
				continue
			}
			for _, pt := range z.poly[0] {
				if planar.RingContains(s.poly[0], pt) && !onBoundary(s.poly[0], pt) {
					t.Errorf("zones %s and %s overlap at %v", z.id, s.id, pt)
				}
			}
		}
	}
	if count["town"] < 2 || count["village"] < 3 || count["grid"] < 3 {
		t.Errorf("want 2+ towns, 3+ villages, 3+ grids; have %v", count)
	}
	// The towns tile the county exactly.
	var towns float64
	for _, z := range zones {
		if z.level == "town" {
			towns += planar.Area(z.poly)
		}
	}
	if c := planar.Area(county.poly); math.Abs(towns-c) > 1e-9 {
		t.Errorf("towns cover %.9f deg², county is %.9f", towns, c)
	}
}

type forest struct {
	id    string
	polys []orb.Polygon
}

func loadForests(t *testing.T, county zone) []forest {
	t.Helper()
	fc := load(t, "forests.geojson")
	var out []forest
	holes, multi := 0, 0
	seen := map[string]bool{}
	for _, f := range fc.Features {
		id, _ := f.Properties["id"].(string)
		if id == "" || f.ID != id || seen[id] {
			t.Fatalf("forest %v: want a unique properties.id equal to the feature id", f.ID)
		}
		seen[id] = true
		ps := polys(t, f)
		if len(ps) > 1 {
			multi++
		}
		for _, p := range ps {
			checkRings(t, id, p)
			if !within(p[0], county.poly[0]) {
				t.Errorf("forest %s leaves the county", id)
			}
			for _, h := range p[1:] {
				holes++
				if !within(h, p[0]) {
					t.Errorf("forest %s: hole outside its exterior ring", id)
				}
			}
		}
		out = append(out, forest{id, ps})
	}
	if len(out) < 10 || holes < 2 || multi < 1 {
		t.Errorf("want 10+ forests, 2+ holes, 1+ MultiPolygon; have %d, %d, %d", len(out), holes, multi)
	}
	return out
}

func TestForestsAndMasks(t *testing.T) {
	_, county := loadZones(t)
	loadForests(t, county)
	fc := load(t, "masks.geojson")
	for _, f := range fc.Features {
		switch g := f.Geometry.(type) {
		case orb.Point:
			if r, _ := f.Properties["radius_m"].(float64); r <= 0 {
				t.Errorf("mask %v: a point mask needs radius_m > 0", f.ID)
			}
			if !planar.RingContains(county.poly[0], g) {
				t.Errorf("mask %v outside the county", f.ID)
			}
		case orb.Polygon:
			checkRings(t, f.ID, g)
			if !within(g[0], county.poly[0]) {
				t.Errorf("mask %v outside the county", f.ID)
			}
		default:
			t.Errorf("mask %v: %s, want Point or Polygon", f.ID, f.Geometry.GeoJSONType())
		}
	}
}

func TestDevicesPlacedConsistently(t *testing.T) {
	zones, county := loadZones(t)
	forests := loadForests(t, county)
	devs, err := registry.ReadFile("devices.yaml", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	perClass := map[ingest.Class]int{}
	byID := map[string]registry.Device{}
	for _, d := range devs {
		perClass[d.Class]++
		byID[d.ID] = d
		pt := orb.Point{d.Lon, d.Lat}
		if !planar.RingContains(county.poly[0], pt) {
			t.Errorf("%s at %v is outside the county", d.ID, pt)
		}
		z, ok := zones[d.Zone]
		if !ok {
			t.Errorf("%s: zone %q does not exist", d.ID, d.Zone)
		} else if !inPoly(z.poly, pt) {
			t.Errorf("%s: not inside its zone %s", d.ID, d.Zone)
		} else {
			// the declared zone is the innermost one: no child zone contains the device
			for _, c := range zones {
				if c.parent == d.Zone && inPoly(c.poly, pt) {
					t.Errorf("%s: zone %s, but its child %s contains the device", d.ID, d.Zone, c.id)
				}
			}
		}
		in := ""
		for _, f := range forests {
			for _, p := range f.polys {
				if inPoly(p, pt) {
					in = f.id
				}
			}
		}
		if in != d.Forest {
			t.Errorf("%s: forest %q declared, stands in %q", d.ID, d.Forest, in)
		}
		if d.Class == ingest.ClassCamera && (d.PanDeg == nil || d.HFOVDeg == nil) {
			t.Errorf("%s: camera without pan_deg/hfov_deg", d.ID)
		}
	}
	for _, c := range ingest.Classes {
		if perClass[c] < 3 {
			t.Errorf("class %s: %d devices, want at least 3", c, perClass[c])
		}
	}
	// The CSV example is a subset of the YAML registry and agrees with it.
	rows, err := registry.ReadFile("devices.csv", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		y, ok := byID[r.ID]
		a, _ := json.Marshal(r)
		b, _ := json.Marshal(y)
		if !ok || string(a) != string(b) {
			t.Errorf("devices.csv row %s differs from devices.yaml:\n%s\n%s", r.ID, a, b)
		}
	}
}
