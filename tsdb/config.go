// Package tsdb writes readings to InfluxDB (v2 write API via influxdb-client-go)
// from the durable spool, in order, batched and gzipped, and keeps going while
// InfluxDB is slow or down: nothing leaves the spool until InfluxDB has it.
package tsdb

import (
	"errors"
	"time"
)

// Config is the "influx" section.
type Config struct {
	URL           string        `yaml:"url"`            // InfluxDB base URL, e.g. http://127.0.0.1:8086
	Token         string        `yaml:"token"`          // API token; empty when InfluxDB auth is off (1.8 default)
	Org           string        `yaml:"org"`            // organisation; ignored by InfluxDB 1.8
	Bucket        string        `yaml:"bucket"`         // bucket; "db/rp" on InfluxDB 1.8
	BatchSize     int           `yaml:"batch_size"`     // max points per write request
	FlushInterval time.Duration `yaml:"flush_interval"` // max time a point waits for a full batch
	Gzip          bool          `yaml:"gzip"`           // gzip request bodies
	Timeout       time.Duration `yaml:"timeout"`        // per write request
}

// DefaultConfig matches the influxd that `make run` starts.
func DefaultConfig() Config {
	return Config{URL: "http://127.0.0.1:8086", Org: "lookout", Bucket: "lookout/autogen",
		BatchSize: 5000, FlushInterval: 200 * time.Millisecond, Gzip: true, Timeout: 10 * time.Second}
}

// Validate names the first bad key.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("url: must be set")
	case c.Bucket == "":
		return errors.New("bucket: must be set")
	case c.BatchSize < 1 || c.BatchSize > 100000:
		return errors.New("batch_size: must be 1..100000")
	case c.FlushInterval <= 0:
		return errors.New("flush_interval: must be > 0")
	case c.Timeout <= 0:
		return errors.New("timeout: must be > 0")
	}
	return nil
}
