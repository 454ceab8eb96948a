// Package hotspot runs the satellite hotspot verification workflow: import NASA FIRMS
// files, match each hotspot to the area, forests, zones and masks, cluster pixels into
// fire events (reports), assign them to the innermost zone's duty contact, track the
// verification deadline (escalating overdue reports through the 叫应 chain), close them
// with an outcome and photos, and feed the results back as lists, CSV, GeoJSON and stats.
//
// It depends on geo, alerting, the camera registry and the evidence stores only through
// the small interfaces in deps.go, so the gateway adapts the real components and tests
// use fakes.
package hotspot

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Config holds the hotspot settings (YAML section "hotspot"). Keep every field documented
// with a yaml tag; env overrides are derived from the path (LOOKOUT_HOTSPOT_<KEY>).
type Config struct {
	// AreaBufferM widens the zone layer's area: hotspots up to this far outside the
	// outermost zone are still kept, because a pixel centre is not the fire.
	AreaBufferM float64 `yaml:"area_buffer_m"`
	// NearForestM is how far outside a forest a hotspot still counts as "near forest".
	NearForestM float64 `yaml:"near_forest_m"`
	// ClusterDistanceM: hotspots whose pixel footprints lie within this distance join one report.
	ClusterDistanceM float64 `yaml:"cluster_distance_m"`
	// ClusterWindow: ... and whose acquisition times lie within this window of each other.
	ClusterWindow time.Duration `yaml:"cluster_window"`
	// DeadlineForest, DeadlineNearForest, DeadlineElsewhere: time from a report's creation
	// to its verified close-out, by class; overdue reports escalate.
	DeadlineForest     time.Duration `yaml:"deadline_forest"`
	DeadlineNearForest time.Duration `yaml:"deadline_near_forest"`
	DeadlineElsewhere  time.Duration `yaml:"deadline_elsewhere"`
	// DeadlineHeatSource applies to reports made only of hotspots on a known heat source
	// (mask); 0 = no deadline, no escalation.
	DeadlineHeatSource time.Duration `yaml:"deadline_heat_source"`
	// CorroborationRadiusM and CorroborationWindow bound the cameras, detections, alerts and
	// fire-danger readings shown beside a report (window applies before and after).
	CorroborationRadiusM float64       `yaml:"corroboration_radius_m"`
	CorroborationWindow  time.Duration `yaml:"corroboration_window"`
	// PhotoDir is where close-out photos are stored; "" = <data_dir>/photos (set by the gateway).
	PhotoDir string `yaml:"photo_dir"`
	// MaxPhotoBytes caps one uploaded photo.
	MaxPhotoBytes int64 `yaml:"max_photo_bytes"`
	// PhotoTypes are the accepted photo types, checked by content sniffing (subset of
	// image/jpeg, image/png, image/webp).
	PhotoTypes []string `yaml:"photo_types"`
	// MaxImportBytes caps one uploaded or polled FIRMS file.
	MaxImportBytes int64 `yaml:"max_import_bytes"`
	// MaxImportRows caps the rows of one import (the batch is clustered in memory).
	MaxImportRows int `yaml:"max_import_rows"`
	// MaxBadRows is how many bad rows an import result lists in detail (all are counted).
	MaxBadRows int `yaml:"max_bad_rows"`
	// PollInterval is the default interval of a poll source that sets none.
	PollInterval time.Duration `yaml:"poll_interval"`
	// PollTimeout bounds one HTTP fetch of a URL source.
	PollTimeout time.Duration `yaml:"poll_timeout"`
	// Sources are polled for new FIRMS files: a URL (conditional GET) or a folder (new
	// files are imported and moved to done/ or failed/).
	Sources []SourceConfig `yaml:"sources"`
}

// SourceConfig is one poll source; exactly one of URL and Dir is set.
type SourceConfig struct {
	Name     string        `yaml:"name"`     // stable name; keys the stored ETag/Last-Modified
	URL      string        `yaml:"url"`      // http(s) URL of a FIRMS CSV
	Dir      string        `yaml:"dir"`      // folder watched for *.csv / *.txt / *.gz files
	Interval time.Duration `yaml:"interval"` // 0 = poll_interval
}

// Outcomes returns the accepted close-out categories in display order: the categories
// field apps use; 工业热源 (industrial heat source) and 误报 (false detection) mean "not a fire".
func Outcomes() []string {
	return []string{"林火", "草原火", "农事用火", "生活用火", "垃圾焚烧", "民俗用火", "施工用火", "吸烟", "工业热源", "误报", "其他"}
}

// ValidOutcome reports whether o is an accepted close-out category.
func ValidOutcome(o string) bool {
	for _, x := range Outcomes() {
		if x == o {
			return true
		}
	}
	return false
}

// photoExt maps an accepted photo type to the extension of the stored file.
func photoExt(contentType string) (string, bool) {
	switch contentType {
	case "image/jpeg":
		return ".jpg", true
	case "image/png":
		return ".png", true
	case "image/webp":
		return ".webp", true
	}
	return "", false
}

// DefaultConfig returns the documented defaults (CONTEXT.md: 1 h / 2 h / 4 h, 1 km / 24 h, 5 km / ±2 h).
func DefaultConfig() Config {
	return Config{
		AreaBufferM:          2000,
		NearForestM:          1000,
		ClusterDistanceM:     1000,
		ClusterWindow:        24 * time.Hour,
		DeadlineForest:       time.Hour,
		DeadlineNearForest:   2 * time.Hour,
		DeadlineElsewhere:    4 * time.Hour,
		DeadlineHeatSource:   0,
		CorroborationRadiusM: 5000,
		CorroborationWindow:  2 * time.Hour,
		MaxPhotoBytes:        10 << 20,
		PhotoTypes:           []string{"image/jpeg", "image/png", "image/webp"},
		MaxImportBytes:       64 << 20,
		MaxImportRows:        500_000,
		MaxBadRows:           100,
		PollInterval:         10 * time.Minute,
		PollTimeout:          time.Minute,
	}
}

// Validate reports the first bad setting, naming its key relative to the section.
func (c Config) Validate() error {
	switch {
	case c.AreaBufferM < 0:
		return errors.New("area_buffer_m: must be >= 0")
	case c.NearForestM < 0:
		return errors.New("near_forest_m: must be >= 0")
	case c.ClusterDistanceM < 0 || c.ClusterDistanceM > 50_000:
		return errors.New("cluster_distance_m: must be between 0 and 50000")
	case c.ClusterWindow <= 0:
		return errors.New("cluster_window: must be > 0")
	case c.DeadlineForest <= 0:
		return errors.New("deadline_forest: must be > 0")
	case c.DeadlineNearForest <= 0:
		return errors.New("deadline_near_forest: must be > 0")
	case c.DeadlineElsewhere <= 0:
		return errors.New("deadline_elsewhere: must be > 0")
	case c.DeadlineHeatSource < 0:
		return errors.New("deadline_heat_source: must be >= 0 (0 = none)")
	case c.CorroborationRadiusM <= 0:
		return errors.New("corroboration_radius_m: must be > 0")
	case c.CorroborationWindow < 0:
		return errors.New("corroboration_window: must be >= 0")
	case c.MaxPhotoBytes <= 0:
		return errors.New("max_photo_bytes: must be > 0")
	case len(c.PhotoTypes) == 0:
		return errors.New("photo_types: must list at least one type")
	case c.MaxImportBytes <= 0:
		return errors.New("max_import_bytes: must be > 0")
	case c.MaxImportRows <= 0:
		return errors.New("max_import_rows: must be > 0")
	case c.MaxBadRows < 0:
		return errors.New("max_bad_rows: must be >= 0")
	case c.PollInterval <= 0:
		return errors.New("poll_interval: must be > 0")
	case c.PollTimeout <= 0:
		return errors.New("poll_timeout: must be > 0")
	}
	for _, t := range c.PhotoTypes {
		if _, ok := photoExt(t); !ok {
			return fmt.Errorf("photo_types: %q is not one of image/jpeg, image/png, image/webp", t)
		}
	}
	names := map[string]bool{}
	for i, s := range c.Sources {
		key := fmt.Sprintf("sources[%d]", i)
		if s.Name == "" {
			return fmt.Errorf("%s.name: must be set", key)
		}
		if names[s.Name] {
			return fmt.Errorf("%s.name: duplicate %q", key, s.Name)
		}
		names[s.Name] = true
		if (s.URL == "") == (s.Dir == "") {
			return fmt.Errorf("%s: set exactly one of url and dir", key)
		}
		if s.URL != "" {
			u, err := url.Parse(s.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%s.url: must be an http(s) URL", key)
			}
		}
		if s.Interval < 0 {
			return fmt.Errorf("%s.interval: must be >= 0", key)
		}
	}
	return nil
}

// deadlineFor returns the verification deadline for a class (0 = none).
func (c Config) deadlineFor(class Class) time.Duration {
	switch class {
	case ClassForest:
		return c.DeadlineForest
	case ClassNearForest:
		return c.DeadlineNearForest
	case ClassElsewhere:
		return c.DeadlineElsewhere
	}
	return c.DeadlineHeatSource
}
