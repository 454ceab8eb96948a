// Package registry keeps the device registry (SQLite) and each device's health:
// last seen, battery, signal, firmware, and online/late/offline from the device's
// own heartbeat interval, with per-zone connection rates and health events.
package registry

import (
	"errors"
	"time"
)

// Config is the "registry" section.
type Config struct {
	Seed            string        `yaml:"seed"`                                          // devices file (YAML or CSV) whose missing devices are created at start (edits and deletions made since stand); "" = none
	UnknownDevices  string        `yaml:"unknown_devices" env:"LOOKOUT_UNKNOWN_DEVICES"` // "reject" or "register"
	OfflineAfter    int           `yaml:"offline_after"`                                 // missed intervals before offline (late after 1)
	DefaultInterval time.Duration `yaml:"default_interval"`                              // expected heartbeat interval when a device has none
	CheckEvery      time.Duration `yaml:"check_every"`                                   // how often health states are re-evaluated
	// MaxDevices caps the registry so that auto-registration (unknown_devices:
	// register) cannot be used to grow memory without bound: past it, unknown
	// devices are rejected (reason unknown_device) and counted.
	MaxDevices int `yaml:"max_devices"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Seed: "seeds/devices.yaml", UnknownDevices: "reject", OfflineAfter: 3,
		DefaultInterval: 5 * time.Minute, CheckEvery: 5 * time.Second, MaxDevices: 100000}
}

// Validate names the first bad key.
func (c Config) Validate() error {
	switch {
	case c.UnknownDevices != "reject" && c.UnknownDevices != "register":
		return errors.New(`unknown_devices: must be "reject" or "register"`)
	case c.OfflineAfter < 1:
		return errors.New("offline_after: must be >= 1")
	case c.DefaultInterval <= 0:
		return errors.New("default_interval: must be > 0")
	case c.CheckEvery <= 0:
		return errors.New("check_every: must be > 0")
	case c.MaxDevices < 1:
		return errors.New("max_devices: must be >= 1")
	}
	return nil
}
