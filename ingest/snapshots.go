package ingest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SnapshotPruner bounds the camera snapshots under a directory: files older
// than keep are deleted, then the oldest while the rest take more than
// maxBytes. Snapshots are evidence for alerts, but a camera that detects all
// day would otherwise fill the disk that the spool (no reading lost) needs.
type SnapshotPruner struct {
	dir      string
	keep     time.Duration
	maxBytes int64
	pruned   prometheus.Counter
	bytes    prometheus.Gauge
}

// NewSnapshotPruner prunes dir by the snapshot_keep and snapshot_max_bytes of
// cfg and registers its metrics.
func NewSnapshotPruner(dir string, cfg Config, reg prometheus.Registerer) *SnapshotPruner {
	p := &SnapshotPruner{dir: dir, keep: cfg.SnapshotKeep, maxBytes: cfg.SnapshotMaxBytes,
		pruned: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_ingest_snapshots_pruned_total",
			Help: "Camera snapshot files deleted by age (ingest.snapshot_keep) or total size (ingest.snapshot_max_bytes)."}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lookout_ingest_snapshot_bytes",
			Help: "Bytes of camera snapshot files kept, as of the last prune."}),
	}
	reg.MustRegister(p.pruned, p.bytes)
	return p
}

// Run prunes at once and then every `every` until ctx ends; errors go to logf.
func (p *SnapshotPruner) Run(ctx context.Context, every time.Duration, now func() time.Time, logf func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := p.Prune(now()); err != nil && logf != nil {
			logf(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type snapshotFile struct {
	path string
	mod  time.Time
	size int64
}

// Prune deletes what is over the limits at now and returns how many files it
// deleted. A missing directory is not an error (no snapshot yet).
func (p *SnapshotPruner) Prune(now time.Time) (int, error) {
	var files []snapshotFile
	err := filepath.WalkDir(p.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".jpg") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // deleted meanwhile
		}
		files = append(files, snapshotFile{path, info.ModTime(), info.Size()})
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ingest: snapshots: %w", err)
	}
	slices.SortFunc(files, func(a, b snapshotFile) int { return a.mod.Compare(b.mod) })
	var total int64
	for _, f := range files {
		total += f.size
	}
	removed := 0
	var errList []error
	for _, f := range files {
		if now.Sub(f.mod) <= p.keep && total <= p.maxBytes {
			break // sorted oldest first: the rest are newer and fit
		}
		if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errList = append(errList, err)
			continue
		}
		total -= f.size
		removed++
	}
	p.pruned.Add(float64(removed))
	p.bytes.Set(float64(total))
	if len(errList) > 0 {
		return removed, fmt.Errorf("ingest: prune snapshots: %w", errors.Join(errList...))
	}
	return removed, nil
}
