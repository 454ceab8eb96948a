// Package hotspot runs the satellite hotspot verification workflow: import, match, cluster, assign, verify, close.
package hotspot

// Config holds the hotspot settings (YAML section "hotspot"). Keep every field documented
// with a yaml tag; env overrides are derived from the path (LOOKOUT_HOTSPOT_<KEY>).
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
