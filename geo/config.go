// Package geo answers where things are: forests, responsibility zones, masks and camera bearings.
//
// Every alert, hotspot and reading needs to know at once whether it lies in a
// forest, how far from one, which village and town answer for it and who is on
// duty there. Layers are loaded from GeoJSON, validated, converted to WGS84 and
// indexed (an R-tree over feature bounds plus a per-ring edge index) into an
// immutable Index; a layer update builds a new Index and swaps a pointer, so
// readers never block.
package geo

import (
	"errors"
	"fmt"
)

// Config holds the geo settings (YAML section "geo"). Keep every field documented
// with a yaml tag; env overrides are derived from the path (LOOKOUT_GEO_<KEY>).
type Config struct {
	// SearchRadiusM bounds the nearest-forest search of Locate (metres): a point
	// farther than this from every forest reports no nearest forest.
	SearchRadiusM float64 `yaml:"search_radius_m"`
	// NearForestM is the "near forest" buffer (metres) that Location.NearForest
	// and hotspot priorities use; must not exceed search_radius_m.
	NearForestM float64 `yaml:"near_forest_m"`
	// CameraRangeM is how far a camera bearing ray is followed (metres).
	CameraRangeM float64 `yaml:"camera_range_m"`
	// MinBaselineM: two cameras closer than this give no usable cross-bearing fix.
	MinBaselineM float64 `yaml:"min_baseline_m"`
	// MinCrossingDeg: bearing rays crossing at a narrower angle give no fix.
	MinCrossingDeg float64 `yaml:"min_crossing_deg"`
	// MaxLayerBytes caps a GeoJSON layer upload (PUT /api/v1/geo/{layer}).
	MaxLayerBytes int64 `yaml:"max_layer_bytes"`
	// Dir keeps layers uploaded at run time (<dir>/<layer>.geojson, WGS84) so a
	// restart does not lose them; a file there wins over the configured path.
	// "" keeps uploads in memory only.
	Dir string `yaml:"dir"`
	// Forests, Zones and Masks name the layer files loaded at start ("" = empty layer).
	Forests LayerFile `yaml:"forests"`
	Zones   LayerFile `yaml:"zones"`
	Masks   LayerFile `yaml:"masks"`
}

// LayerFile names one GeoJSON layer file and how to read it.
type LayerFile struct {
	Path string `yaml:"path"` // GeoJSON FeatureCollection (or a bare array of Features); "" = none
	// CRS of the file's coordinates: "wgs84" (default) or "gcj02" (Chinese web-map
	// data; converted to WGS84 on load).
	CRS string `yaml:"crs"`
	// IDProperty names the feature property holding the id; when the property is
	// absent the GeoJSON feature "id" is used.
	IDProperty string `yaml:"id_property"`
}

// CRS names accepted for layers and queries.
const (
	CRSWGS84 = "wgs84"
	CRSGCJ02 = "gcj02"
)

// DefaultConfig returns the settings that make `make run` work.
func DefaultConfig() Config {
	return Config{
		SearchRadiusM:  5000,
		NearForestM:    500,
		CameraRangeM:   20000,
		MinBaselineM:   100,
		MinCrossingDeg: 10,
		MaxLayerBytes:  64 << 20,
		Forests:        LayerFile{CRS: CRSWGS84, IDProperty: "id"},
		Zones:          LayerFile{CRS: CRSWGS84, IDProperty: "id"},
		Masks:          LayerFile{CRS: CRSWGS84, IDProperty: "id"},
	}
}

// Validate reports the first bad setting, naming its key relative to the section.
func (c Config) Validate() error {
	switch {
	case !(c.SearchRadiusM > 0 && c.SearchRadiusM <= 100000):
		return errors.New("search_radius_m: must be in (0, 100000]")
	case !(c.NearForestM >= 0 && c.NearForestM <= c.SearchRadiusM):
		return errors.New("near_forest_m: must be in [0, search_radius_m]")
	case !(c.CameraRangeM > 0 && c.CameraRangeM <= 100000):
		return errors.New("camera_range_m: must be in (0, 100000]")
	case !(c.MinBaselineM >= 0):
		return errors.New("min_baseline_m: must be >= 0")
	case !(c.MinCrossingDeg >= 0 && c.MinCrossingDeg < 90):
		return errors.New("min_crossing_deg: must be in [0, 90)")
	case c.MaxLayerBytes < 1024:
		return errors.New("max_layer_bytes: must be >= 1024")
	}
	for _, l := range []struct {
		name string
		f    LayerFile
	}{{"forests", c.Forests}, {"zones", c.Zones}, {"masks", c.Masks}} {
		if _, err := normCRS(l.f.CRS); err != nil {
			return fmt.Errorf("%s.crs: %w", l.name, err)
		}
	}
	return nil
}

// normCRS maps "" to wgs84 and rejects unknown systems.
func normCRS(s string) (string, error) {
	switch s {
	case "", CRSWGS84, "WGS84", "EPSG:4326":
		return CRSWGS84, nil
	case CRSGCJ02, "GCJ02", "GCJ-02", "gcj-02":
		return CRSGCJ02, nil
	}
	return "", fmt.Errorf("unknown coordinate system %q (want wgs84 or gcj02)", s)
}
