// Package alerting turns readings and health events into alerts with one lifecycle, fire danger, incidents and the 叫应 escalation chain.
package alerting

// Config holds the alerting settings (YAML section "alerting"). Keep every field documented
// with a yaml tag; env overrides are derived from the path (LOOKOUT_ALERTING_<KEY>).
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
