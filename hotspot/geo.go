package hotspot

import (
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

// Within reports whether the point lies in a zone or within metres of one
// (geodesic distance to the nearest zone boundary, exact).
func (g GeoLocator) Within(lat, lon, metres float64) bool {
	return g.Layers.Current().NearZone(orb.Point{lon, lat}, metres)
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
