// Package geo answers where things are: forests, responsibility zones, masks and camera bearings.
package geo

// Config holds the geo settings (YAML section "geo"). Keep every field documented
// with a yaml tag; env overrides are derived from the path (LOOKOUT_GEO_<KEY>).
type Config struct {
}

// DefaultConfig returns the settings that make `make run` work.
func DefaultConfig() Config {
	return Config{}
}

// Validate reports the first bad setting, naming its key relative to the section.
func (c Config) Validate() error {
	return nil
}
