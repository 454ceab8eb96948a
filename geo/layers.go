package geo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/paulmach/orb"
)

// Layers holds the current Index and replaces layers at run time. Readers call
// Current() (one atomic load) and never block; writers are serialized, build a
// complete new Index off to the side and publish it with one pointer swap, so a
// failed update leaves the old layer in place.
type Layers struct {
	cfg       Config
	mu        sync.Mutex // serializes Replace and OnReplace
	cur       atomic.Pointer[Index]
	onReplace []func(layer string)
}

// OnReplace registers f to run after every successful Replace (with the layer's
// name), so what was derived from the old map — e.g. each device's zone and
// forest in the registry — is derived again from the new one.
func (l *Layers) OnReplace(f func(layer string)) {
	l.mu.Lock()
	l.onReplace = append(l.onReplace, f)
	l.mu.Unlock()
}

// NewLayers loads the configured layer files (a layer previously uploaded to
// cfg.Dir wins over the configured path). A missing or invalid file is an error:
// the gateway must not start tagging with half its map.
func NewLayers(cfg Config) (*Layers, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("geo config: %w", err)
	}
	l := &Layers{cfg: cfg}
	var loaded [3]*layer
	for k, lf := range []struct {
		name string
		f    LayerFile
	}{{LayerForests, cfg.Forests}, {LayerZones, cfg.Zones}, {LayerMasks, cfg.Masks}} {
		path, crs, idProp := lf.f.Path, lf.f.CRS, lf.f.IDProperty
		if cfg.Dir != "" {
			saved := filepath.Join(cfg.Dir, lf.name+".geojson")
			if _, err := os.Stat(saved); err == nil {
				path, crs = saved, CRSWGS84 // saved layers are normalized to WGS84
			}
		}
		if path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("geo %s layer: %w", lf.name, err)
		}
		ly, err := parseLayer(lf.name, data, crs, idProp, cfg.SearchRadiusM)
		if err != nil {
			return nil, fmt.Errorf("geo %s layer %s: %w", lf.name, path, err)
		}
		loaded[k] = ly
	}
	l.cur.Store(newIndex(cfg, loaded[0], loaded[1], loaded[2]))
	return l, nil
}

// Config returns the settings the layers were built with.
func (l *Layers) Config() Config { return l.cfg }

// Current returns the Index in force now. Keep the pointer for one logical
// operation (so all its answers come from one version of the map).
func (l *Layers) Current() *Index { return l.cur.Load() }

// Replace parses, validates and indexes a new version of one layer (forests,
// zones or masks) given as GeoJSON in the named CRS ("" = wgs84), then swaps it
// in. On any error the old layer stays. When cfg.Dir is set the normalized layer
// is saved there first, so a restart keeps it.
func (l *Layers) Replace(layerName string, geojson []byte, crs string) error {
	idProp := "id"
	switch layerName {
	case LayerForests:
		idProp = l.cfg.Forests.IDProperty
	case LayerZones:
		idProp = l.cfg.Zones.IDProperty
	case LayerMasks:
		idProp = l.cfg.Masks.IDProperty
	}
	ly, err := parseLayer(layerName, geojson, crs, idProp, l.cfg.SearchRadiusM)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.Dir != "" {
		if err := saveFile(filepath.Join(l.cfg.Dir, layerName+".geojson"), ly.raw); err != nil {
			return fmt.Errorf("geo: save %s layer: %w", layerName, err)
		}
	}
	old := l.cur.Load()
	f, z, m := old.forests, old.zones, old.masks
	switch layerName {
	case LayerForests:
		f = ly
	case LayerZones:
		z = ly
	case LayerMasks:
		m = ly
	}
	l.cur.Store(newIndex(l.cfg, f, z, m))
	for _, cb := range l.onReplace {
		cb(layerName)
	}
	return nil
}

// saveFile writes data atomically (temp file, fsync, rename).
func saveFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".layer-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return nil
}

// TagPoint returns the innermost zone id and the first containing forest id
// for a device position ("" when none): what the ingest pipeline stores with
// every reading. The gateway adapts it to ingest.Tagger (geo does not import
// ingest, so a reading-format change never rebuilds the map code).
func (l *Layers) TagPoint(lat, lon float64) (zone, forest string) {
	if lat == 0 && lon == 0 {
		return "", "" // no position known
	}
	p := orb.Point{lon, lat}
	if checkPoint(p) != nil {
		return "", ""
	}
	ix := l.Current()
	if zi := ix.innermostZone(p); zi >= 0 {
		zone = ix.zones.ids[zi]
	}
	var buf [8]int32
	if in := ix.forests.containing(buf[:0], p); len(in) > 0 {
		forest = ix.forests.ids[in[0]]
	}
	return zone, forest
}
