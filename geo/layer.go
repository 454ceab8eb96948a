package geo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/tidwall/rtree"

	"github.com/lookoutfire/lookout/errs"
)

// Layer names, as used in PUT/GET /api/v1/geo/{layer} and in Replace.
const (
	LayerForests = "forests"
	LayerZones   = "zones"
	LayerMasks   = "masks"
)

// Zone levels, outermost first. A zone's parent must be of an outer level.
const (
	LevelCounty  = "county"
	LevelTown    = "town"
	LevelVillage = "village"
	LevelGrid    = "grid"
)

var levelRank = map[string]int{LevelCounty: 0, LevelTown: 1, LevelVillage: 2, LevelGrid: 3}

// Sentinels. Each wraps errs.ErrInvalid (or errs.ErrNotFound) so the HTTP edge
// maps them without knowing geo.
var (
	// ErrBadLayer: a layer upload or file failed validation; the message names the feature.
	ErrBadLayer = fmt.Errorf("bad geo layer: %w", errs.ErrInvalid)
	// ErrUnknownLayer: the layer name is not forests, zones or masks.
	ErrUnknownLayer = fmt.Errorf("geo layer %w", errs.ErrNotFound)
)

// Contact is one duty contact of a zone, called in turn by the 叫应 chain.
type Contact struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
	Role  string `json:"role,omitempty"`
}

// Zone is one responsibility zone (county, town, village or grid) with the
// people on duty for it.
type Zone struct {
	ID     string    `json:"id"`
	Name   string    `json:"name"`
	Level  string    `json:"level"`
	Parent string    `json:"parent,omitempty"`
	Duty   []Contact `json:"duty"`
}

// poly is a polygon: outer ring plus holes.
type poly struct {
	outer ring
	holes []ring
}

// contains: inside or on the outer ring, and not strictly inside a hole (a
// point on a hole's boundary is on the polygon's boundary, hence inside).
func (pg *poly) contains(p orb.Point) bool {
	if in, _ := pg.outer.contains(p); !in {
		return false
	}
	for i := range pg.holes {
		if in, on := pg.holes[i].contains(p); in && !on {
			return false
		}
	}
	return true
}

// shape is a prepared (multi)polygon.
type shape struct {
	polys []poly
	bound box
}

func newShape(mp orb.MultiPolygon) shape {
	s := shape{bound: emptyBox()}
	for _, pg := range mp {
		p := poly{outer: newRing(pg[0])}
		for _, h := range pg[1:] {
			p.holes = append(p.holes, newRing(h))
		}
		s.bound.extend(orb.Point{p.outer.bound.minX, p.outer.bound.minY})
		s.bound.extend(orb.Point{p.outer.bound.maxX, p.outer.bound.maxY})
		s.polys = append(s.polys, p)
	}
	return s
}

func (s *shape) contains(p orb.Point) bool {
	if !s.bound.contains(p) {
		return false
	}
	for i := range s.polys {
		if s.polys[i].contains(p) {
			return true
		}
	}
	return false
}

// nearest lowers *best (squared scaled metres) to the closest boundary point.
func (s *shape) nearest(p orb.Point, kx, ky float64, best *float64, at *orb.Point) {
	if s.bound.dist2(p, kx, ky) >= *best {
		return
	}
	for i := range s.polys {
		s.polys[i].outer.nearest(p, kx, ky, best, at)
		for j := range s.polys[i].holes {
			s.polys[i].holes[j].nearest(p, kx, ky, best, at)
		}
	}
}

// firstCrossing is the smallest t in [0,1] where a→b meets the boundary (+Inf if never).
func (s *shape) firstCrossing(a, b orb.Point, sb box) float64 {
	best := math.Inf(1)
	if !s.bound.intersects(sb) {
		return best
	}
	for i := range s.polys {
		best = math.Min(best, s.polys[i].outer.firstCrossing(a, b, sb))
		for j := range s.polys[i].holes {
			best = math.Min(best, s.polys[i].holes[j].firstCrossing(a, b, sb))
		}
	}
	return best
}

// circle is a mask disc (a point heat source with a radius).
type circle struct {
	c orb.Point
	r float64 // metres
}

// layer is one parsed, validated and indexed layer. Immutable once built.
type layer struct {
	name   string
	ids    []string
	shapes []shape  // polygons (masks: zero shape for circles)
	disc   []circle // masks only: r > 0 for point masks
	tree   rtree.RTreeG[int32]
	grid   *cellGrid  // containment grid (nil: use the tree; masks with discs)
	near   *nearIndex // forests: nearest-forest index (nil: use the tree)
	raw    []byte     // normalized FeatureCollection (WGS84) served by GET

	// zones only
	zones []Zone
	depth []int // distance from the top of the hierarchy
	byID  map[string]int32
}

func (l *layer) len() int {
	if l == nil {
		return 0
	}
	return len(l.ids)
}

// emptyLayer is a layer with no features.
func emptyLayer(name string) *layer {
	return &layer{name: name, raw: []byte(`{"type":"FeatureCollection","features":[]}`), byID: map[string]int32{}}
}

// parseLayer decodes, validates, converts (gcj02 → WGS84) and indexes a layer;
// searchRadiusM is the nearest-forest radius the forests index is prepared for.
func parseLayer(name string, data []byte, crs, idProp string, searchRadiusM float64) (*layer, error) {
	switch name {
	case LayerForests, LayerZones, LayerMasks:
	default:
		return nil, fmt.Errorf("%q (want forests, zones or masks): %w", name, ErrUnknownLayer)
	}
	crs, err := normCRS(crs)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadLayer, name, err)
	}
	if idProp == "" {
		idProp = "id"
	}
	raws, err := splitFeatures(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadLayer, name, err)
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("%w: %s: the collection has 0 features", ErrBadLayer, name)
	}
	l := &layer{name: name, byID: map[string]int32{}}
	fc := geojson.NewFeatureCollection()
	seen := map[string]int{}
	for i, raw := range raws {
		f, id, err := decodeFeature(raw, idProp)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %s: %v", ErrBadLayer, name, nameFeature(i, id), err)
		}
		if j, dup := seen[id]; dup {
			return nil, fmt.Errorf("%w: %s: %s: duplicate id (also feature #%d)", ErrBadLayer, name, nameFeature(i, id), j+1)
		}
		seen[id] = i
		if err := l.add(f, id, crs); err != nil {
			return nil, fmt.Errorf("%w: %s: %s: %v", ErrBadLayer, name, nameFeature(i, id), err)
		}
		f.ID = id
		fc.Append(f)
	}
	if name == LayerZones {
		if err := l.linkZones(); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadLayer, name, err)
		}
	}
	l.buildIndex(searchRadiusM)
	if l.raw, err = json.Marshal(fc); err != nil {
		return nil, fmt.Errorf("geo: encode %s: %w", name, err)
	}
	return l, nil
}

func nameFeature(i int, id string) string {
	if id == "" {
		return fmt.Sprintf("feature #%d", i+1)
	}
	return fmt.Sprintf("feature #%d (id %q)", i+1, id)
}

// splitFeatures accepts a FeatureCollection or a bare JSON array of Features
// (the DataV/GeoAtlas export form) and returns the raw features.
func splitFeatures(data []byte) ([]json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	if len(data) == 0 {
		return nil, errors.New("empty document")
	}
	if data[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(data, &raws); err != nil {
			return nil, fmt.Errorf("not a JSON array of Features: %v", err)
		}
		return raws, nil
	}
	var top struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not GeoJSON: %v", err)
	}
	if top.Type != "FeatureCollection" {
		return nil, fmt.Errorf("top-level type %q: want a FeatureCollection (or a bare array of Features)", top.Type)
	}
	return top.Features, nil
}

// decodeFeature parses one feature and extracts its id. On error the id is
// still returned when it can be read, so the message names the feature.
func decodeFeature(raw json.RawMessage, idProp string) (*geojson.Feature, string, error) {
	var loose struct {
		Type       string         `json:"type"`
		ID         any            `json:"id"`
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(raw, &loose); err != nil {
		return nil, "", fmt.Errorf("not a JSON object: %v", err)
	}
	id := idString(loose.Properties[idProp])
	if id == "" {
		id = idString(loose.ID)
	}
	if loose.Type != "Feature" {
		return nil, id, fmt.Errorf("type %q: want Feature", loose.Type)
	}
	f, err := geojson.UnmarshalFeature(raw)
	if err != nil {
		return nil, id, fmt.Errorf("bad feature: %v", err)
	}
	if id == "" {
		return nil, "", fmt.Errorf("no id: set the feature \"id\" or the %q property", idProp)
	}
	if f.Properties == nil {
		f.Properties = geojson.Properties{}
	}
	return f, id, nil
}

func idString(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	}
	return ""
}

// add validates one feature's geometry and properties and appends it.
func (l *layer) add(f *geojson.Feature, id, crs string) error {
	if f.Geometry == nil {
		return errors.New("no geometry")
	}
	if l.name == LayerMasks {
		if pt, ok := f.Geometry.(orb.Point); ok {
			if err := checkPoint(pt); err != nil {
				return err
			}
			if crs == CRSGCJ02 {
				pt = GCJ02ToWGS84(pt)
			}
			r, ok := f.Properties["radius_m"].(float64)
			if !ok || !(r > 0 && r <= 50000) {
				return errors.New("a point mask needs a radius_m property in (0, 50000]")
			}
			f.Geometry = pt
			l.ids = append(l.ids, id)
			l.shapes = append(l.shapes, shape{})
			l.disc = append(l.disc, circle{c: pt, r: r})
			return nil
		}
	}
	var mp orb.MultiPolygon
	switch g := f.Geometry.(type) {
	case orb.Polygon:
		mp = orb.MultiPolygon{g}
	case orb.MultiPolygon:
		mp = g
	default:
		want := "Polygon or MultiPolygon"
		if l.name == LayerMasks {
			want = "Point (with radius_m), Polygon or MultiPolygon"
		}
		return fmt.Errorf("geometry type %s: want %s", f.Geometry.GeoJSONType(), want)
	}
	mp, err := checkMultiPolygon(mp, crs)
	if err != nil {
		return err
	}
	if len(mp) == 1 {
		f.Geometry = mp[0]
	} else {
		f.Geometry = mp
	}
	if l.name == LayerZones {
		z, err := zoneProps(f.Properties, id)
		if err != nil {
			return err
		}
		l.byID[id] = int32(len(l.zones))
		l.zones = append(l.zones, z)
	}
	l.ids = append(l.ids, id)
	l.shapes = append(l.shapes, newShape(mp))
	if l.name == LayerMasks {
		l.disc = append(l.disc, circle{})
	}
	return nil
}

func checkPoint(p orb.Point) error {
	if math.IsNaN(p[0]) || math.IsNaN(p[1]) || math.IsInf(p[0], 0) || math.IsInf(p[1], 0) ||
		p[0] < -180 || p[0] > 180 || p[1] < -90 || p[1] > 90 {
		return fmt.Errorf("coordinate [%v, %v] is not a valid longitude, latitude", p[0], p[1])
	}
	return nil
}

// checkMultiPolygon validates rings (closed, valid coordinates, no crossings,
// holes inside their shell: see valid.go) and returns a copy in WGS84.
func checkMultiPolygon(mp orb.MultiPolygon, crs string) (orb.MultiPolygon, error) {
	if len(mp) == 0 {
		return nil, errors.New("empty geometry")
	}
	out := make(orb.MultiPolygon, len(mp))
	for pi, pg := range mp {
		if len(pg) == 0 {
			return nil, fmt.Errorf("polygon %d has no rings", pi+1)
		}
		out[pi] = make(orb.Polygon, len(pg))
		for ri, r := range pg {
			where := fmt.Sprintf("polygon %d ring %d", pi+1, ri+1)
			if len(mp) == 1 {
				where = fmt.Sprintf("ring %d", ri+1)
			}
			if len(r) < 4 {
				return nil, fmt.Errorf("%s has %d positions: a closed ring needs at least 4", where, len(r))
			}
			if r[0] != r[len(r)-1] {
				return nil, fmt.Errorf("%s is not closed: first position %v differs from last %v", where, r[0], r[len(r)-1])
			}
			nr := make(orb.Ring, len(r))
			for k, p := range r {
				if err := checkPoint(p); err != nil {
					return nil, fmt.Errorf("%s position %d: %v", where, k+1, err)
				}
				if crs == CRSGCJ02 {
					p = GCJ02ToWGS84(p)
				}
				nr[k] = p
			}
			nr[len(nr)-1] = nr[0] // keep closed exactly after conversion
			switch distinctPositions(nr, 3) {
			case 1:
				return nil, fmt.Errorf("%s encloses no area: all its positions are the same", where)
			case 2:
				return nil, fmt.Errorf("%s encloses no area: only 2 distinct positions (a ring needs at least 3)", where)
			}
			out[pi][ri] = nr
		}
	}
	if err := checkAreas(out); err != nil {
		return nil, err
	}
	return out, nil
}

// zoneProps reads and checks a zone feature's properties.
func zoneProps(p geojson.Properties, id string) (Zone, error) {
	z := Zone{ID: id}
	z.Name, _ = p["name"].(string)
	z.Level, _ = p["level"].(string)
	if _, ok := levelRank[z.Level]; !ok {
		return z, fmt.Errorf("level %q: want county, town, village or grid", z.Level)
	}
	switch v := p["parent"].(type) {
	case nil:
	case string:
		z.Parent = strings.TrimSpace(v)
	case float64:
		z.Parent = idString(v)
	default:
		return z, errors.New("parent must be the enclosing zone's id (a string)")
	}
	if z.Parent == id {
		return z, errors.New("a zone cannot be its own parent")
	}
	if d, ok := p["duty"]; ok && d != nil {
		b, err := json.Marshal(d)
		if err != nil {
			return z, fmt.Errorf("duty: %v", err)
		}
		if err := json.Unmarshal(b, &z.Duty); err != nil {
			return z, errors.New("duty must be a list of {name, phone, role}")
		}
		for i, c := range z.Duty {
			if strings.TrimSpace(c.Name) == "" || strings.TrimSpace(c.Phone) == "" {
				return z, fmt.Errorf("duty contact %d needs a name and a phone", i+1)
			}
		}
	}
	if z.Duty == nil {
		z.Duty = []Contact{}
	}
	return z, nil
}

// linkZones checks parents exist and the hierarchy has no cycle, then that
// levels nest outward (county > town > village > grid), and computes each
// zone's depth.
func (l *layer) linkZones() error {
	l.depth = make([]int, len(l.zones))
	for i, z := range l.zones {
		d := 0
		cur := z
		visited := map[string]bool{z.ID: true}
		for cur.Parent != "" {
			pi, ok := l.byID[cur.Parent]
			if !ok {
				return fmt.Errorf("zone %q: parent %q does not exist", cur.ID, cur.Parent)
			}
			par := l.zones[pi]
			if visited[par.ID] {
				return fmt.Errorf("zone %q: nesting cycle through %q", z.ID, par.ID)
			}
			visited[par.ID] = true
			cur = par
			d++
		}
		l.depth[i] = d
	}
	for _, z := range l.zones {
		if z.Parent == "" {
			continue
		}
		par := l.zones[l.byID[z.Parent]]
		if levelRank[par.Level] >= levelRank[z.Level] {
			return fmt.Errorf("zone %q (%s): parent %q is a %s, want a level above %s",
				z.ID, z.Level, par.ID, par.Level, z.Level)
		}
	}
	return nil
}

// bound returns feature i's bounding box (circles: expanded by the radius).
func (l *layer) bound(i int) box {
	if l.disc != nil && l.disc[i].r > 0 {
		c := l.disc[i]
		kx, ky := metresPerDegree(c.c[1])
		dx, dy := c.r/kx*1.001, c.r/ky*1.001
		return box{c.c[0] - dx, c.c[1] - dy, c.c[0] + dx, c.c[1] + dy}
	}
	return l.shapes[i].bound
}

// covers reports whether feature i covers p (polygon containment or disc).
func (l *layer) covers(i int, p orb.Point) bool {
	if l.disc != nil && l.disc[i].r > 0 {
		return Distance(l.disc[i].c, p) <= l.disc[i].r
	}
	return l.shapes[i].contains(p)
}

// buildIndex prepares the R-tree over feature bounds, the containment grid
// for polygon layers (grid.go) and, for forests, the nearest-forest index for
// searches up to searchRadiusM (nearest.go; ≤ 0: none).
func (l *layer) buildIndex(searchRadiusM float64) {
	all := emptyBox()
	discs := false
	for i := range l.ids {
		b := l.bound(i)
		l.tree.Insert([2]float64{b.minX, b.minY}, [2]float64{b.maxX, b.maxY}, int32(i))
		all.extend(orb.Point{b.minX, b.minY})
		all.extend(orb.Point{b.maxX, b.maxY})
		discs = discs || (l.disc != nil && l.disc[i].r > 0)
	}
	if l.len() == 0 {
		return
	}
	if !discs {
		l.grid = newCellGrid(l.shapes, all, 0)
	}
	if l.name == LayerForests && searchRadiusM > 0 {
		l.near = newNearIndex(l, all, planarLimit(searchRadiusM), 0)
		if l.near != nil {
			l.near.adopt(l) // the rings' vertices now live in the index's arena, once
		}
	}
	l.hugePages()
}

// containing appends to dst the indexes of features covering p, in index order.
func (l *layer) containing(dst []int32, p orb.Point) []int32 {
	if l.len() == 0 {
		return dst
	}
	if l.grid != nil {
		one, many := l.grid.at(p)
		if one != 0 {
			if i := int32(one &^ (inlineBit | coveredBit)); one&coveredBit != 0 || l.shapes[i].contains(p) {
				dst = append(dst, i)
			}
			return dst
		}
		for _, e := range many {
			if i := int32(e &^ coveredBit); e&coveredBit != 0 || l.shapes[i].contains(p) {
				dst = append(dst, i)
			}
		}
		return dst
	}
	l.tree.Search([2]float64{p[0], p[1]}, [2]float64{p[0], p[1]}, func(_, _ [2]float64, i int32) bool {
		if l.covers(int(i), p) {
			dst = append(dst, i)
		}
		return true
	})
	if len(dst) > 1 {
		sort.Slice(dst, func(a, b int) bool { return dst[a] < dst[b] })
	}
	return dst
}
