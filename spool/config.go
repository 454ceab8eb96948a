// Package spool is the gateway's durable, append-only, bounded disk queue of
// encoded readings: ingest appends (and only then acknowledges the MQTT message),
// the InfluxDB writer reads in order and commits once InfluxDB holds the data.
// A full spool blocks appenders — backpressure to the broker — and never drops.
package spool

import (
	"errors"
	"time"
)

// Config is the "spool" section. Dir defaults to {data_dir}/spool when empty.
type Config struct {
	Dir          string        `yaml:"dir"`           // spool directory; "" = {data_dir}/spool
	MaxBytes     int64         `yaml:"max_bytes"`     // total bytes of unsent data before appenders block
	SegmentBytes int64         `yaml:"segment_bytes"` // size at which a new segment file is started
	SyncInterval time.Duration `yaml:"sync_interval"` // fsync period (0 = fsync every append batch)
}

// DefaultConfig is 1 GiB of backlog, 64 MiB segments, fsync once a second.
func DefaultConfig() Config {
	return Config{MaxBytes: 1 << 30, SegmentBytes: 64 << 20, SyncInterval: time.Second}
}

// Validate names the first bad key.
func (c Config) Validate() error {
	switch {
	case c.MaxBytes < 1<<20:
		return errors.New("max_bytes: must be at least 1 MiB")
	case c.SegmentBytes < 4096 || c.SegmentBytes > c.MaxBytes:
		return errors.New("segment_bytes: must be between 4 KiB and max_bytes")
	case c.SyncInterval < 0:
		return errors.New("sync_interval: must be >= 0")
	}
	return nil
}
