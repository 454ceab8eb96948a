package hotspot

import (
	"math"

	"github.com/paulmach/orb"

	"github.com/lookoutfire/lookout/geo"
)

// GeoLocator adapts geo's run-time layers to Locator, so the gateway and the CLI
// match hotspots against the same forests, zones and masks as the device readings.
// Each call reads the layers' current Index, so an uploaded layer applies to the next
// import without a restart.
type GeoLocator struct {
	Layers *geo.Layers
}

// Locate tags a point with geo's forests, zone path (innermost first), nearest forest and mask.
func (g GeoLocator) Locate(lat, lon float64) Place {
	return placeOf(g.Layers.Current().Locate(orb.Point{lon, lat}))
}

// Within reports whether the point lies in a zone or within about metres of one. geo
// has no distance-to-zone query, so the buffer is probed (see AreaWithin).
func (g GeoLocator) Within(lat, lon, metres float64) bool {
	ix := g.Layers.Current()
	return AreaWithin(func(la, lo float64) bool { return len(ix.Locate(orb.Point{lo, la}).Zones) > 0 }, lat, lon, metres)
}

func placeOf(l geo.Location) Place {
	p := Place{Forests: l.Forests, NearestForest: l.NearestForest, DistanceM: l.DistanceM, Mask: l.Mask}
	if len(l.Zones) > 0 {
		p.Zones = make([]Zone, len(l.Zones))
		for i, z := range l.Zones {
			p.Zones[i] = Zone{ID: z.ID, Name: z.Name, Level: z.Level, Parent: z.Parent}
			for _, c := range z.Duty {
				p.Zones[i].Duty = append(p.Zones[i].Duty, Contact{Name: c.Name, Phone: c.Phone, Role: c.Role})
			}
		}
	}
	return p
}

// areaProbes is the number of probe bearings per ring in AreaWithin.
const areaProbes = 16

// AreaWithin decides "inside the area, or within metres of it" from a point-in-area
// test alone: the point itself, then rings at metres/2 and metres probed every 22.5°.
// A zone edge within metres is found unless only a sliver of the zone, narrower than
// about 0.4 × metres, reaches towards the point; for a buffer meant to keep pixel
// centres that fall just over the county line that is close enough.
func AreaWithin(inArea func(lat, lon float64) bool, lat, lon, metres float64) bool {
	if inArea(lat, lon) {
		return true
	}
	if metres <= 0 {
		return false
	}
	cosLat := math.Max(0.01, math.Cos(lat*math.Pi/180))
	for _, r := range []float64{metres / 2, metres} {
		dLat := r / 1000 / kmPerDegLat
		dLon := r / 1000 / (kmPerDegLon * cosLat)
		for k := 0; k < areaProbes; k++ {
			a := 2 * math.Pi * float64(k) / areaProbes
			if inArea(lat+dLat*math.Cos(a), lon+dLon*math.Sin(a)) {
				return true
			}
		}
	}
	return false
}
