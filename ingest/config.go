package ingest

import (
	"errors"
	"strings"
	"time"
)

// Limits bound what a single message may be; the decoder enforces them.
type Limits struct {
	MaxPayload  int           `yaml:"max_payload"`  // bytes per MQTT payload
	MaxSnapshot int           `yaml:"max_snapshot"` // decoded bytes of a camera snapshot_jpeg
	MaxFuture   time.Duration `yaml:"max_future"`   // how far ts may be ahead of gateway time
	MaxPast     time.Duration `yaml:"max_past"`     // how far ts may lag (devices that buffered while offline)
}

// Config is the "ingest" section.
type Config struct {
	Limits           `yaml:",inline"`
	QueueSize        int           `yaml:"queue_size"`         // messages between MQTT handler and the pipeline (external broker)
	BatchSize        int           `yaml:"batch_size"`         // readings appended to the spool per write
	DeadLetter       bool          `yaml:"dead_letter"`        // publish rejects to fire/deadletter/{reason}
	TopicPrefix      string        `yaml:"topic_prefix"`       // first topic level, "fire"
	SnapshotKeep     time.Duration `yaml:"snapshot_keep"`      // camera snapshot files (data_dir/snapshots) older than this are deleted
	SnapshotMaxBytes int64         `yaml:"snapshot_max_bytes"` // and the oldest while all of them take more than this
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Limits:    Limits{MaxPayload: 256 << 10, MaxSnapshot: 160 << 10, MaxFuture: 5 * time.Minute, MaxPast: 7 * 24 * time.Hour},
		QueueSize: 4096, BatchSize: 512, DeadLetter: true, TopicPrefix: "fire",
		SnapshotKeep: 30 * 24 * time.Hour, SnapshotMaxBytes: 4 << 30,
	}
}

// Validate names the first bad key.
func (c Config) Validate() error {
	switch {
	case c.MaxPayload < 256:
		return errors.New("max_payload: must be >= 256")
	case c.MaxSnapshot < 0 || c.MaxSnapshot/3*4+4096 > c.MaxPayload:
		return errors.New("max_snapshot: base64 of it plus 4 KiB of fields must fit in max_payload")
	case c.MaxFuture < 0:
		return errors.New("max_future: must be >= 0")
	case c.MaxPast <= 0:
		return errors.New("max_past: must be > 0")
	case c.QueueSize < 1:
		return errors.New("queue_size: must be >= 1")
	case c.BatchSize < 1:
		return errors.New("batch_size: must be >= 1")
	case c.SnapshotKeep <= 0:
		return errors.New("snapshot_keep: must be > 0")
	case c.SnapshotMaxBytes < int64(c.MaxSnapshot):
		return errors.New("snapshot_max_bytes: must hold at least one snapshot (max_snapshot)")
	case c.TopicPrefix == "":
		return errors.New("topic_prefix: must be set")
	case strings.ContainsAny(c.TopicPrefix, "/+#\x00"):
		// one topic level: the ACLs, the subscription filter and the reject
		// reasons all split topics as prefix/class/device/kind
		return errors.New("topic_prefix: one topic level: no '/', '+' or '#'")
	}
	return nil
}
