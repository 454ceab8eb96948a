package ingest

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSnapshotPruner(t *testing.T) {
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	type file struct {
		name string
		age  time.Duration
		size int
	}
	tests := []struct {
		name     string
		keep     time.Duration
		maxBytes int64
		files    []file
		left     []string
	}{
		{"nothing over the limits", time.Hour, 1000,
			[]file{{"cam-1/a.jpg", time.Minute, 100}, {"cam-2/b.jpg", 2 * time.Minute, 100}},
			[]string{"cam-1/a.jpg", "cam-2/b.jpg"}},
		{"too old", time.Hour, 1000,
			[]file{{"cam-1/old.jpg", 2 * time.Hour, 10}, {"cam-1/new.jpg", time.Minute, 10}},
			[]string{"cam-1/new.jpg"}},
		{"too big: oldest first, across cameras", 24 * time.Hour, 250,
			[]file{{"cam-1/a.jpg", 3 * time.Minute, 100}, {"cam-2/b.jpg", 2 * time.Minute, 100}, {"cam-1/c.jpg", time.Minute, 100}},
			[]string{"cam-1/c.jpg", "cam-2/b.jpg"}},
		{"other files are not touched", time.Hour, 1,
			[]file{{"cam-1/notes.txt", 48 * time.Hour, 100}, {"cam-1/x.jpg", 48 * time.Hour, 100}},
			[]string{"cam-1/notes.txt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				p := filepath.Join(dir, f.name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, make([]byte, f.size), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(p, now.Add(-f.age), now.Add(-f.age)); err != nil {
					t.Fatal(err)
				}
			}
			cfg := DefaultConfig()
			cfg.SnapshotKeep, cfg.SnapshotMaxBytes = tc.keep, tc.maxBytes
			p := NewSnapshotPruner(dir, cfg, prometheus.NewRegistry())
			n, err := p.Prune(now)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(dir, path)
					left = append(left, filepath.ToSlash(rel))
				}
				return nil
			})
			sort.Strings(left)
			if len(left) != len(tc.left) {
				t.Fatalf("left %v, want %v", left, tc.left)
			}
			for i := range left {
				if left[i] != tc.left[i] {
					t.Fatalf("left %v, want %v", left, tc.left)
				}
			}
			if want := len(tc.files) - len(tc.left); n != want || testutil.ToFloat64(p.pruned) != float64(want) {
				t.Errorf("pruned %d (metric %v), want %d", n, testutil.ToFloat64(p.pruned), want)
			}
		})
	}
	// No snapshot directory yet: nothing to do, no error.
	p := NewSnapshotPruner(filepath.Join(t.TempDir(), "none"), DefaultConfig(), prometheus.NewRegistry())
	if n, err := p.Prune(now); n != 0 || err != nil {
		t.Fatalf("missing dir: %d %v", n, err)
	}
}
