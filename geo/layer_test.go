package geo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paulmach/orb"

	"github.com/lookoutfire/lookout/errs"
)

const boundaries = "../../shared/testdata/boundaries/"

func TestBadLayers(t *testing.T) {
	sq := `[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]]]`
	zone := func(id, level, parent string) string {
		p := ""
		if parent != "" {
			p = `,"parent":"` + parent + `"`
		}
		return `{"type":"Feature","id":"` + id + `","properties":{"name":"n","level":"` + level + `"` + p + `},"geometry":{"type":"Polygon","coordinates":` + sq + `}}`
	}
	coll := func(feats ...string) string {
		return `{"type":"FeatureCollection","features":[` + strings.Join(feats, ",") + `]}`
	}
	cases := []struct {
		name, layer, body string
		want              []string // substrings of the error
	}{
		{"zero features", LayerForests, `{"type":"FeatureCollection","features":[]}`, []string{"0 features"}},
		{"not json", LayerForests, `{"type":`, []string{"not GeoJSON"}},
		{"empty body", LayerForests, ``, []string{"empty document"}},
		{"geometry not collection", LayerForests, `{"type":"Polygon","coordinates":` + sq + `}`, []string{`top-level type "Polygon"`}},
		{"open ring", LayerForests, coll(`{"type":"Feature","id":"f7","geometry":{"type":"Polygon","coordinates":[[[107,31],[107.1,31],[107.1,31.1],[107,31.1]]]}}`),
			[]string{`feature #1 (id "f7")`, "not closed"}},
		{"too few positions", LayerForests, coll(`{"type":"Feature","id":"tiny","geometry":{"type":"Polygon","coordinates":[[[107,31],[107.1,31],[107,31]]]}}`),
			[]string{`id "tiny"`, "at least 4"}},
		{"latitude out of range", LayerForests, coll(`{"type":"Feature","id":"up","geometry":{"type":"Polygon","coordinates":[[[107,31],[107.1,31],[107.1,95],[107,31]]]}}`),
			[]string{`id "up"`, "position 3", "not a valid"}},
		{"NaN as a string", LayerForests, coll(`{"type":"Feature","id":"nan","geometry":{"type":"Polygon","coordinates":[[["NaN",31],[107.1,31],[107.1,31.1],["NaN",31]]]}}`),
			[]string{`id "nan"`, "bad feature"}},
		{"number overflow", LayerForests, coll(`{"type":"Feature","id":"big","geometry":{"type":"Polygon","coordinates":[[[1e999,31],[107.1,31],[107.1,31.1],[1e999,31]]]}}`),
			[]string{`id "big"`}},
		{"wrong geometry type", LayerForests, coll(`{"type":"Feature","id":"ln","geometry":{"type":"LineString","coordinates":[[107,31],[107.1,31]]}}`),
			[]string{`id "ln"`, "LineString", "want Polygon or MultiPolygon"}},
		{"no geometry", LayerForests, coll(`{"type":"Feature","id":"ng","geometry":null}`), []string{`id "ng"`, "no geometry"}},
		{"no id", LayerForests, coll(`{"type":"Feature","geometry":{"type":"Polygon","coordinates":` + sq + `}}`), []string{"feature #1", "no id"}},
		{"duplicate id", LayerForests, coll(
			`{"type":"Feature","id":"a","geometry":{"type":"Polygon","coordinates":`+sq+`}}`,
			`{"type":"Feature","id":"a","geometry":{"type":"Polygon","coordinates":`+sq+`}}`), []string{`feature #2 (id "a")`, "duplicate"}},
		{"not a feature", LayerForests, coll(`{"type":"Polygon","id":"x","coordinates":` + sq + `}`), []string{`id "x"`, "want Feature"}},
		{"unknown crs", LayerForests, coll(`{"type":"Feature","id":"a","geometry":{"type":"Polygon","coordinates":` + sq + `}}`), []string{"unknown coordinate system"}},
		{"zone parent missing", LayerZones, coll(zone("c", "county", ""), zone("t", "town", "ghost")), []string{`zone "t"`, `parent "ghost" does not exist`}},
		{"zone cycle", LayerZones, coll(zone("a", "town", "b"), zone("b", "town", "a")), []string{"cycle"}},
		{"zone self parent", LayerZones, coll(zone("a", "town", "a")), []string{`id "a"`, "own parent"}},
		{"zone wrong nesting", LayerZones, coll(zone("v", "village", ""), zone("t", "town", "v")), []string{`zone "t" (town)`, `parent "v" is a village`}},
		{"zone bad level", LayerZones, coll(zone("p", "province", "")), []string{`id "p"`, `level "province"`}},
		{"zone bad duty", LayerZones, coll(`{"type":"Feature","id":"d","properties":{"level":"county","duty":[{"name":"x"}]},"geometry":{"type":"Polygon","coordinates":` + sq + `}}`),
			[]string{`id "d"`, "duty contact 1 needs a name and a phone"}},
		{"bow-tie ring", LayerForests, coll(`{"type":"Feature","id":"bow","geometry":{"type":"Polygon","coordinates":[[[107,31],[107.1,31.1],[107.1,31],[107,31.1],[107,31]]]}}`),
			[]string{`id "bow"`, "outer ring crosses itself near [107.05 31.05]"}},
		{"hole crossing the shell", LayerForests, coll(`{"type":"Feature","id":"hx","geometry":{"type":"Polygon","coordinates":[` + sq[1:len(sq)-1] + `,[[107.05,31.05],[107.2,31.05],[107.2,31.06],[107.05,31.06],[107.05,31.05]]]}}`),
			[]string{`id "hx"`, "hole 1", "outer ring", "crosses", "near [107.1 31.05]"}},
		{"hole outside the shell", LayerForests, coll(`{"type":"Feature","id":"ho","geometry":{"type":"Polygon","coordinates":[` + sq[1:len(sq)-1] + `,[[107.2,31.2],[107.3,31.2],[107.3,31.3],[107.2,31.2]]]}}`),
			[]string{`id "ho"`, "hole 1 lies outside the outer ring"}},
		{"hole inside a hole", LayerForests, coll(`{"type":"Feature","id":"hh","geometry":{"type":"Polygon","coordinates":[` + sq[1:len(sq)-1] + `,[[107.01,31.01],[107.09,31.01],[107.09,31.09],[107.01,31.09],[107.01,31.01]],[[107.04,31.04],[107.06,31.04],[107.06,31.06],[107.04,31.04]]]}}`),
			[]string{`id "hh"`, "hole 2 lies inside hole 1"}},
		{"ring doubling back", LayerForests, coll(`{"type":"Feature","id":"sp","geometry":{"type":"Polygon","coordinates":[[[107,31],[107.1,31],[107.1,31.1],[107.05,31.1],[107.05,31.2],[107.05,31.1],[107,31.1],[107,31]]]}}`),
			[]string{`id "sp"`, "outer ring doubles back on itself at [107.05 31.2]"}},
		{"second polygon crossing itself", LayerForests, coll(`{"type":"Feature","id":"mp","geometry":{"type":"MultiPolygon","coordinates":[` + sq + `,[[[108,31],[108.1,31.1],[108.1,31],[108,31.1],[108,31]]]]}}`),
			[]string{`id "mp"`, "polygon 2 outer ring crosses itself"}},
		{"polygon inside another polygon", LayerForests, coll(`{"type":"Feature","id":"pp","geometry":{"type":"MultiPolygon","coordinates":[` + sq + `,[[[107.02,31.02],[107.05,31.02],[107.05,31.05],[107.02,31.02]]]]}}`),
			[]string{`id "pp"`, "polygon 2 lies inside polygon 1"}},
		{"polygons overlapping", LayerForests, coll(`{"type":"Feature","id":"po","geometry":{"type":"MultiPolygon","coordinates":[` + sq + `,[[[107.05,31.05],[107.2,31.05],[107.2,31.2],[107.05,31.2],[107.05,31.05]]]]}}`),
			[]string{`id "po"`, "crosses", "polygon 1 outer ring", "polygon 2 outer ring"}},
		// zero-area rings: a point-sized forest or hole
		{"ring of one repeated position", LayerForests, coll(`{"type":"Feature","id":"pt","geometry":{"type":"Polygon","coordinates":[[[107.05,31.05],[107.05,31.05],[107.05,31.05],[107.05,31.05]]]}}`),
			[]string{`id "pt"`, "ring 1 encloses no area: all its positions are the same"}},
		{"hole of one repeated position", LayerForests, coll(`{"type":"Feature","id":"ph","geometry":{"type":"Polygon","coordinates":[` + sq[1:len(sq)-1] + `,[[107.05,31.05],[107.05,31.05],[107.05,31.05],[107.05,31.05]]]}}`),
			[]string{`id "ph"`, "ring 2 encloses no area"}},
		{"point polygon in a MultiPolygon", LayerForests, coll(`{"type":"Feature","id":"pm","geometry":{"type":"MultiPolygon","coordinates":[` + sq + `,[[[108,31],[108,31],[108,31],[108,31],[108,31]]]]}}`),
			[]string{`id "pm"`, "polygon 2 ring 1 encloses no area"}},
		{"ring of two positions", LayerForests, coll(`{"type":"Feature","id":"p2","geometry":{"type":"Polygon","coordinates":[[[107,31],[107.1,31],[107.1,31],[107,31]]]}}`),
			[]string{`id "p2"`, "ring 1 encloses no area: only 2 distinct positions"}},
		// polygons of one MultiPolygon overlapping without a proper crossing
		{"polygons overlapping along a shared edge", LayerForests, coll(`{"type":"Feature","id":"os","geometry":{"type":"MultiPolygon","coordinates":[` +
			`[[[107,31],[107.04,31],[107.04,31.04],[107,31.04],[107,31]]],[[[107,31],[107.04,31.04],[106.96,31.04],[107,31]]]]}}`),
			[]string{`id "os"`, "polygon 1 overlaps polygon 2 at [107 31]"}},
		{"triangle inscribed in a square", LayerForests, coll(`{"type":"Feature","id":"oi","geometry":{"type":"MultiPolygon","coordinates":[` +
			`[[[107,31],[107.04,31],[107.04,31.04],[107,31.04],[107,31]]],[[[107.02,31],[107.04,31.02],[107.02,31.04],[107.02,31]]]]}}`),
			[]string{`id "oi"`, "polygon 1 overlaps polygon 2 at [107.02 31]"}},
		{"polygon repeated", LayerForests, coll(`{"type":"Feature","id":"od","geometry":{"type":"MultiPolygon","coordinates":[` + sq + `,` + sq + `]}}`),
			[]string{`id "od"`, "polygon 1 overlaps polygon 2 at [107 31]"}},
		{"polygon repeated clockwise", LayerForests, coll(`{"type":"Feature","id":"oc","geometry":{"type":"MultiPolygon","coordinates":[` + sq +
			`,[[[107,31],[107,31.1],[107.1,31.1],[107.1,31],[107,31]]]]}}`),
			[]string{`id "oc"`, "polygon 1 overlaps polygon 2 at [107 31]"}},
		// pinwheel: every corner of the common square is a vertex of one on an
		// edge of the other, and no vertex or edge midpoint lies inside the other
		{"polygons overlapping between touch points", LayerForests, coll(`{"type":"Feature","id":"ow","geometry":{"type":"MultiPolygon","coordinates":[` +
			`[[[107,31],[107.1,31],[107.01,31.01],[106.91,31.01],[107,31]]],[[[107.01,31],[107.01,31.1],[107,31.01],[107,30.91],[107.01,31]]]]}}`),
			[]string{`id "ow"`, "polygon 1 overlaps polygon 2 at [107 31]"}},
		// an island reaching out of its lake through the lake's corner and a
		// point on its shore: its first vertex off the shore is in the lake
		{"island overlapping its hole's rim", LayerForests, coll(`{"type":"Feature","id":"oh","geometry":{"type":"MultiPolygon","coordinates":[` +
			`[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]],[[107.02,31.02],[107.08,31.02],[107.08,31.08],[107.02,31.08],[107.02,31.02]]],` +
			`[[[107.02,31.02],[107.05,31.04],[107.02,31.06],[107.01,31.04],[107.02,31.02]]]]}}`),
			[]string{`id "oh"`, "polygon 1 overlaps polygon 2 at [107.02 31.02]"}},
		// a hole leaving its shell where it only meets it (no proper crossing):
		// its first vertex is inside, or none of its vertices is off the shell
		{"hole poking out through shell corners", LayerForests, coll(`{"type":"Feature","id":"hc","geometry":{"type":"Polygon","coordinates":[` + sq[1:len(sq)-1] +
			`,[[107.05,31.05],[107.1,31.1],[107.15,31.05],[107.1,31],[107.05,31.05]]]}}`),
			[]string{`id "hc"`, "hole 1 reaches outside the outer ring at [107.1 31]"}},
		{"hole poking out through points on the shell's edge", LayerForests, coll(`{"type":"Feature","id":"he","geometry":{"type":"Polygon","coordinates":[` + sq[1:len(sq)-1] +
			`,[[107.05,31.05],[107.1,31.02],[107.15,31.05],[107.1,31.08],[107.05,31.05]]]}}`),
			[]string{`id "he"`, "hole 1 reaches outside the outer ring at [107.1 31.02]"}},
		{"hole in a notch of its shell, every vertex on the shell", LayerForests, coll(`{"type":"Feature","id":"hn","geometry":{"type":"Polygon","coordinates":[` +
			`[[107,31],[107.1,31],[107.1,31.1],[107.06,31.1],[107.06,31.04],[107.04,31.04],[107.04,31.1],[107,31.1],[107,31]],` +
			`[[107.05,31.04],[107.06,31.07],[107.04,31.07],[107.05,31.04]]]}}`),
			[]string{`id "hn"`, "hole 1 reaches outside the outer ring at [107.04 31.07]"}},
		// a hole sharing a stretch of its shell's border (partly outside, or
		// from inside): the rings overlap, refused as before
		{"hole partly outside sharing a shell edge", LayerForests, coll(`{"type":"Feature","id":"hs","geometry":{"type":"Polygon","coordinates":[` + sq[1:len(sq)-1] +
			`,[[107.05,31.02],[107.1,31.02],[107.1,31.08],[107.15,31.05],[107.05,31.02]]]}}`),
			[]string{`id "hs"`, "hole 1 runs along outer ring"}},
		{"hole sharing a stretch of the shell's border from inside", LayerForests, coll(`{"type":"Feature","id":"hi","geometry":{"type":"Polygon","coordinates":[` + sq[1:len(sq)-1] +
			`,[[107.05,31.05],[107.1,31.02],[107.1,31.08],[107.05,31.05]]]}}`),
			[]string{`id "hi"`, "hole 1 runs along outer ring"}},
		// two holes overlapping where they only meet: their first vertices off
		// each other's boundary are outside the other
		{"holes overlapping where they touch", LayerForests, coll(`{"type":"Feature","id":"hv","geometry":{"type":"Polygon","coordinates":[` + sq[1:len(sq)-1] +
			`,[[107.02,31.02],[107.02,31.06],[107.06,31.06],[107.06,31.02],[107.02,31.02]],[[107.02,31.02],[107.06,31.06],[107.07,31.01],[107.02,31.02]]]}}`),
			[]string{`id "hv"`, "hole 1 overlaps hole 2 at [107.02 31.02]"}},
		{"hole inscribed in another hole", LayerForests, coll(`{"type":"Feature","id":"hd","geometry":{"type":"Polygon","coordinates":[` + sq[1:len(sq)-1] +
			`,[[107.02,31.02],[107.06,31.02],[107.06,31.06],[107.02,31.06],[107.02,31.02]],[[107.04,31.02],[107.06,31.04],[107.04,31.06],[107.02,31.04],[107.04,31.02]]]}}`),
			[]string{`id "hd"`, "hole 1 overlaps hole 2 at [107.02 31.04]"}},
		{"polygon 2's hole poking out of its shell", LayerForests, coll(`{"type":"Feature","id":"hm","geometry":{"type":"MultiPolygon","coordinates":[` + sq +
			`,[[[108,31],[108.1,31],[108.1,31.1],[108,31.1],[108,31]],[[108.05,31.05],[108.1,31.1],[108.15,31.05],[108.1,31],[108.05,31.05]]]]}}`),
			[]string{`id "hm"`, "polygon 2 hole 1 reaches outside the outer ring at [108.1 31]"}},
		// rings whose touches close a loop cut the inside in pieces
		{"hole touching the shell at two points", LayerForests, coll(`{"type":"Feature","id":"h2","geometry":{"type":"Polygon","coordinates":[` + sq[1:len(sq)-1] +
			`,[[107,31.05],[107.05,31.03],[107.1,31.05],[107.05,31.07],[107,31.05]]]}}`),
			[]string{`id "h2"`, "hole 1 touches outer ring at [107.1 31.05]", "cuts the polygon's inside in pieces"}},
		{"holes touching each other at two points", LayerForests, coll(`{"type":"Feature","id":"hp","geometry":{"type":"Polygon","coordinates":[` + sq[1:len(sq)-1] +
			`,[[107.05,31.03],[107.05,31.07],[107.02,31.05],[107.05,31.03]],[[107.05,31.03],[107.08,31.05],[107.05,31.07],[107.065,31.05],[107.05,31.03]]]}}`),
			[]string{`id "hp"`, "hole 2 touches hole 1 at [107.05 31.07]"}},
		{"shell, hole, hole and back to the shell", LayerForests, coll(`{"type":"Feature","id":"hl","geometry":{"type":"Polygon","coordinates":[` + sq[1:len(sq)-1] +
			`,[[107,31.05],[107.05,31.04],[107.05,31.06],[107,31.05]],[[107.05,31.06],[107.06,31.03],[107.1,31.05],[107.05,31.06]]]}}`),
			[]string{`id "hl"`, "hole 2 touches outer ring at [107.1 31.05]"}},
		{"polygon 2's hole touching its shell twice", LayerForests, coll(`{"type":"Feature","id":"hq","geometry":{"type":"MultiPolygon","coordinates":[` + sq +
			`,[[[108,31],[108.1,31],[108.1,31.1],[108,31.1],[108,31]],[[108,31.05],[108.05,31.03],[108.1,31.05],[108.05,31.07],[108,31.05]]]]}}`),
			[]string{`id "hq"`, "polygon 2 hole 1 touches polygon 2 outer ring at [108.1 31.05]"}},
		{"mask point without radius", LayerMasks, coll(`{"type":"Feature","id":"m","geometry":{"type":"Point","coordinates":[107,31]}}`), []string{`id "m"`, "radius_m"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := mustLayers(t, DefaultConfig())
			good := coll(`{"type":"Feature","id":"keep","properties":{"level":"county"},"geometry":{"type":"Polygon","coordinates":` + sq + `}}`)
			if err := l.Replace(c.layer, []byte(good), ""); err != nil {
				t.Fatalf("good layer: %v", err)
			}
			before := l.Current()
			crs := ""
			if c.name == "unknown crs" {
				crs = "bd09"
			}
			err := l.Replace(c.layer, []byte(c.body), crs)
			if err == nil {
				t.Fatal("bad layer accepted")
			}
			if !errors.Is(err, errs.ErrInvalid) || !errors.Is(err, ErrBadLayer) {
				t.Errorf("error %v does not wrap ErrBadLayer/errs.ErrInvalid", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if l.Current() != before {
				t.Error("the index changed after a failed Replace")
			}
			if c.layer == LayerForests && len(l.Current().Locate(orb.Point{107.05, 31.05}).Forests) != 1 {
				t.Error("the old forest layer no longer answers")
			}
		})
	}
	l := mustLayers(t, DefaultConfig())
	if err := l.Replace("rivers", []byte(coll()), ""); !errors.Is(err, ErrUnknownLayer) || !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("unknown layer: %v", err)
	}
}

// TestRealBoundaries loads the two real county outlines (DataV GeoAtlas
// format, GCJ-02): Pingchang is a FeatureCollection with one 7-part
// MultiPolygon, Fengdu a bare array of one Feature.
// TestValidPolygonsAccepted: what the validity check must not refuse —
// shapes forest inventories really contain.
func TestValidPolygonsAccepted(t *testing.T) {
	cases := map[string]string{ // Polygon coordinates, or a whole geometry
		// a hole meeting the shell at one vertex
		"hole touching the shell": `[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]],[[107,31],[107.05,31.02],[107.02,31.05],[107,31]]]`,
		// the same position twice in a row, and three positions on a line
		"repeated and collinear positions": `[[[107,31],[107.05,31],[107.05,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]]]`,
		// two holes side by side, touching each other at a vertex
		"holes touching": `[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]],[[107.02,31.02],[107.05,31.05],[107.02,31.08],[107.02,31.02]],[[107.05,31.05],[107.08,31.02],[107.08,31.08],[107.05,31.05]]]`,
		// a hole's vertex on the shell's edge, and the shell's (reflex) vertex on a hole's edge
		"hole touching the shell's edge":        `[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]],[[107.1,31.05],[107.06,31.07],[107.06,31.03],[107.1,31.05]]]`,
		"shell's vertex touching a hole's edge": `[[[107,31],[107.1,31],[107.1,31.1],[107.05,31.06],[107,31.1],[107,31]],[[107.03,31.06],[107.05,31.02],[107.07,31.06],[107.03,31.06]]]`,
		// two holes touching each other and the shell at one point, and a hole's vertex on another hole's edge
		"holes touching the shell at one point": `[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]],[[107,31],[107.05,31.02],[107.02,31.05],[107,31]],[[107,31],[107.08,31.005],[107.08,31.015],[107,31]]]`,
		// a chain without a loop: hole 1 on the shell, hole 2 on hole 1 only
		"chain of touching holes":           `[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]],[[107,31.05],[107.04,31.03],[107.04,31.07],[107,31.05]],[[107.04,31.07],[107.08,31.06],[107.07,31.09],[107.04,31.07]]]`,
		"hole touching another hole's edge": `[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]],[[107.02,31.02],[107.05,31.02],[107.05,31.08],[107.02,31.08],[107.02,31.02]],[[107.05,31.05],[107.08,31.03],[107.08,31.07],[107.05,31.05]]]`,
		// clockwise rings: a clockwise shell and a counterclockwise hole touching it at a corner
		"clockwise shell with a hole touching it": `[[[107,31],[107,31.1],[107.1,31.1],[107.1,31],[107,31]],[[107.1,31.1],[107.05,31.08],[107.08,31.05],[107.1,31.1]]]`,
		// an island in a lake: polygon 2 inside polygon 1's hole
		"island in a hole": `{"type":"MultiPolygon","coordinates":[[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]],[[107.02,31.02],[107.08,31.02],[107.08,31.08],[107.02,31.08],[107.02,31.02]]],[[[107.04,31.04],[107.06,31.04],[107.06,31.06],[107.04,31.04]]]]}`,
		// two polygons of one MultiPolygon sharing a stretch of border, as DataV county outlines do
		"polygons sharing a border": `{"type":"MultiPolygon","coordinates":[[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]]],[[[107.1,31.02],[107.2,31.02],[107.2,31.08],[107.1,31.08],[107.1,31.02]]]]}`,
		// parts of one MultiPolygon meeting at a corner, one of them clockwise
		"polygons touching at a corner": `{"type":"MultiPolygon","coordinates":[[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]]],[[[107.1,31.1],[107.1,31.2],[107.2,31.2],[107.2,31.1],[107.1,31.1]]]]}`,
		// three parts meeting at one point, sharing the borders between them
		"three polygons meeting at a point": `{"type":"MultiPolygon","coordinates":[[[[107.05,31.05],[107,31],[107.1,31],[107.05,31.05]]],[[[107.05,31.05],[107.1,31],[107.1,31.1],[107.05,31.05]]],[[[107.05,31.05],[107.1,31.1],[107,31.1],[107,31],[107.05,31.05]]]]}`,
		// clockwise neighbours sharing a border with a vertex of one on the other's edge
		"clockwise polygons sharing a border": `{"type":"MultiPolygon","coordinates":[[[[107,31],[107,31.1],[107.1,31.1],[107.1,31],[107,31]]],[[[107.1,31.02],[107.1,31.08],[107.2,31.08],[107.2,31.02],[107.1,31.02]]]]}`,
		// an island filling its lake exactly, and one touching the lake shore at a vertex
		"island filling a hole":    `{"type":"MultiPolygon","coordinates":[[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]],[[107.02,31.02],[107.08,31.02],[107.08,31.08],[107.02,31.08],[107.02,31.02]]],[[[107.02,31.02],[107.08,31.02],[107.08,31.08],[107.02,31.08],[107.02,31.02]]]]}`,
		"island touching its hole": `{"type":"MultiPolygon","coordinates":[[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]],[[107.02,31.02],[107.08,31.02],[107.08,31.08],[107.02,31.08],[107.02,31.02]]],[[[107.05,31.02],[107.06,31.05],[107.04,31.05],[107.05,31.02]]]]}`,
		// a ring touching itself at a vertex (the ESRI form of a hole on the edge)
		"ring touching itself": `[[[107,31],[107.1,31],[107.1,31.1],[107.05,31.1],[107.07,31.05],[107.03,31.05],[107.05,31.1],[107,31.1],[107,31]]]`,
	}
	for name, coords := range cases {
		t.Run(name, func(t *testing.T) {
			geom := `{"type":"Polygon","coordinates":` + coords + `}`
			if strings.HasPrefix(coords, "{") { // a whole geometry
				geom = coords
			}
			body := `{"type":"FeatureCollection","features":[{"type":"Feature","id":"ok","geometry":` + geom + `}]}`
			if err := mustLayers(t, DefaultConfig()).Replace(LayerForests, []byte(body), ""); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

func TestRealBoundaries(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Forests = LayerFile{Path: boundaries + "511923_pingchang_gcj02.json", CRS: "gcj02", IDProperty: "adcode"}
	cfg.Zones = LayerFile{Path: boundaries + "500230_fengdu_gcj02.json", CRS: "gcj02", IDProperty: "adcode"}
	// Fengdu's properties say level "district": as a zone layer it must be refused, naming it.
	if _, err := NewLayers(cfg); err == nil || !strings.Contains(err.Error(), `id "500230"`) || !strings.Contains(err.Error(), `level "district"`) {
		t.Fatalf("DataV county as a zone layer: %v", err)
	}
	cfg.Zones = LayerFile{}
	cfg.Masks = LayerFile{Path: boundaries + "500230_fengdu_gcj02.json", CRS: "gcj02", IDProperty: "adcode"}
	l, err := NewLayers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ix := l.Current()
	if c := ix.Counts(); c[LayerForests] != 1 || c[LayerMasks] != 1 {
		t.Fatalf("counts %v", c)
	}
	// Pingchang's town centre (GCJ-02 "center" property 107.101937, 31.562814).
	centre := GCJ02ToWGS84(orb.Point{107.101937, 31.562814})
	if loc := ix.Locate(centre); len(loc.Forests) != 1 || loc.Forests[0] != "511923" || loc.DistanceM != 0 {
		t.Errorf("Pingchang centre: %+v", loc)
	}
	// 50 km east of the county's eastern edge (107.58 E): outside, nothing within 5 km.
	far := destination(orb.Point{107.58, 31.56}, 90, 50000)
	if loc := ix.Locate(far); len(loc.Forests) != 0 || loc.DistanceM != -1 {
		t.Errorf("50 km away: %+v", loc)
	}
	// 3 km east of the easternmost vertex: outside, and the boundary is at
	// most 3 km away (that vertex) and not much nearer.
	east := orb.Point{-180, 0}
	for _, pg := range ix.forests.shapes[0].polys {
		for _, p := range pg.outer.pts {
			if p[0] > east[0] {
				east = p
			}
		}
	}
	if loc := ix.Locate(destination(east, 90, 3000)); len(loc.Forests) != 0 || loc.NearestForest != "511923" ||
		loc.DistanceM > 3000.01 || loc.DistanceM < 2500 || loc.NearForest {
		t.Errorf("3 km east of the easternmost vertex: %+v", loc)
	}
	// Fengdu (as a polygon mask here): its centre is covered.
	if m := ix.Locate(GCJ02ToWGS84(orb.Point{107.73248, 29.866424})).Mask; m != "500230" {
		t.Errorf("Fengdu centre mask %q", m)
	}
	// The GCJ-02 offset is a few hundred metres: a point just inside the GCJ-02
	// outline near a vertex must not be trusted blindly; check the shift itself.
	raw := orb.Point{107.101937, 31.562814}
	if d := Distance(raw, centre); d < 200 || d > 800 {
		t.Errorf("GCJ-02 → WGS84 shift %.0f m, want a few hundred metres", d)
	}
}

func TestBareArrayAndFeatureIDs(t *testing.T) {
	sq := `{"type":"Polygon","coordinates":[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]]]}`
	body := `[{"type":"Feature","id":17,"properties":{},"geometry":` + sq + `}]`
	l := mustLayers(t, DefaultConfig())
	if err := l.Replace(LayerForests, []byte(body), ""); err != nil {
		t.Fatal(err)
	}
	if got := l.Current().Locate(orb.Point{107.05, 31.05}).Forests; len(got) != 1 || got[0] != "17" {
		t.Errorf("numeric feature id: %v", got)
	}
}

func TestLayersPersistAndReload(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Dir = dir
	l := mustLayers(t, cfg)
	if err := l.Replace(LayerZones, testZones(t), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "zones.geojson")); err != nil {
		t.Fatal(err)
	}
	l2 := mustLayers(t, cfg)
	if got := l2.Current().ZonePath("g1"); len(got) != 4 {
		t.Errorf("reloaded zone path %v", got)
	}
	zone, forest := l2.TagPoint(31.01, 107.01)
	if zone != "g1" || forest != "" {
		t.Errorf("TagPoint = %q, %q", zone, forest)
	}
	if z, f := l2.TagPoint(0, 0); z != "" || f != "" {
		t.Error("TagPoint(0,0) tagged")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key string
		mut func(*Config)
	}{
		{"search_radius_m", func(c *Config) { c.SearchRadiusM = 0 }},
		{"near_forest_m", func(c *Config) { c.NearForestM = c.SearchRadiusM + 1 }},
		{"camera_range_m", func(c *Config) { c.CameraRangeM = -1 }},
		{"min_baseline_m", func(c *Config) { c.MinBaselineM = -5 }},
		{"min_crossing_deg", func(c *Config) { c.MinCrossingDeg = 90 }},
		{"max_layer_bytes", func(c *Config) { c.MaxLayerBytes = 10 }},
		{"zones.crs", func(c *Config) { c.Zones.CRS = "bd09" }},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		c.mut(&cfg)
		if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), c.key+":") {
			t.Errorf("%s: %v", c.key, err)
		}
	}
	cfg := DefaultConfig()
	cfg.Forests.Path = "/nonexistent/forests.geojson"
	if _, err := NewLayers(cfg); err == nil {
		t.Error("missing layer file accepted")
	}
}

// FuzzParseLayer: no input may panic the layer parser, and whatever it accepts
// must answer queries.
func FuzzParseLayer(f *testing.F) {
	// small inputs only: the fuzzer crawls on the 80 KB real outlines
	f.Add([]byte(`[{"type":"Feature","properties":{"adcode":500230,"name":"丰都县","level":"district","parent":{"adcode":500000}},"geometry":{"type":"MultiPolygon","coordinates":[[[[107.70,29.61],[107.71,29.62],[107.69,29.63],[107.70,29.61]]]]}}]`), uint8(0))
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","id":"a","properties":{"level":"county"},"geometry":{"type":"Polygon","coordinates":[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]]]}}]}`), uint8(1))
	f.Add([]byte(`[{"type":"Feature","id":"m","properties":{"radius_m":100},"geometry":{"type":"Point","coordinates":[107,31]}}]`), uint8(2))
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","id":"a","geometry":{"type":"MultiPolygon","coordinates":[[[[1,1]]],[]]}}]}`), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		name := []string{LayerForests, LayerZones, LayerMasks}[int(which)%3]
		ly, err := parseLayer(name, data, "", "id", DefaultConfig().SearchRadiusM)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		var ix *Index
		switch name {
		case LayerForests:
			ix = newIndex(DefaultConfig(), ly, nil, nil)
		case LayerZones:
			ix = newIndex(DefaultConfig(), nil, ly, nil)
		default:
			ix = newIndex(DefaultConfig(), nil, nil, ly)
		}
		for _, p := range []orb.Point{{107.05, 31.05}, {0, 0}, {1, 1}} {
			ix.Locate(p)
			ix.RayForests(p, 45, 20000)
		}
	})
}

// TestReplaceWhileReading: readers keep answering from a consistent Index while
// layers are swapped underneath them (run with -race).
func TestReplaceWhileReading(t *testing.T) {
	l := mustLayers(t, DefaultConfig())
	a := fc(t, feat("A", orb.Polygon{rect(107.0, 31.0, 107.1, 31.1)}, nil))
	b := fc(t, feat("B", orb.Polygon{rect(107.0, 31.0, 107.1, 31.1)}, nil))
	if err := l.Replace(LayerForests, a, ""); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errc := make(chan string, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for {
				select {
				case <-done:
					errc <- ""
					return
				default:
				}
				f := l.Current().Locate(orb.Point{107.05, 31.05}).Forests
				if len(f) != 1 || (f[0] != "A" && f[0] != "B") {
					errc <- "inconsistent answer " + strings.Join(f, ",")
					return
				}
			}
		}()
	}
	for i := 0; i < 50; i++ {
		doc := a
		if i%2 == 0 {
			doc = b
		}
		if err := l.Replace(LayerForests, doc, ""); err != nil {
			t.Fatal(err)
		}
		_ = l.Replace(LayerForests, []byte(`{"type":"FeatureCollection","features":[]}`), "") // refused, no effect
	}
	close(done)
	for g := 0; g < 4; g++ {
		if msg := <-errc; msg != "" {
			t.Error(msg)
		}
	}
	if f := l.Current().Locate(orb.Point{107.05, 31.05}).Forests; len(f) != 1 || f[0] != "A" {
		t.Errorf("final layer answers %v, want [A]", f)
	}
}
