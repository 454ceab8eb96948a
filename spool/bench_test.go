package spool

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppend measures Append throughput with ~200-byte records in batches
// of 512 while a reader drains and commits, against a baseline of plain
// os.File.Write of the same framed bytes in the same process. It reports
// records/s and the ratio to the baseline (1.0 = as fast as raw appends).
func BenchmarkAppend(b *testing.B) {
	const batch = 512
	recs := make([][]byte, batch)
	for i := range recs {
		recs[i] = bytes.Repeat([]byte{'a' + byte(i%26)}, 200)
	}
	var framed []byte
	for _, r := range recs {
		framed = appendFrame(framed, r)
	}
	batches := b.N/batch + 1

	// Baseline: the same bytes written to a plain file.
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	for i := 0; i < batches; i++ {
		if _, err := f.Write(framed); err != nil {
			b.Fatal(err)
		}
	}
	raw := time.Since(t0)
	f.Close()

	for _, tc := range []struct {
		name string
		sync time.Duration
	}{{"sync=1s", time.Second}, {"sync=every-append", 0}} {
		s, err := Open(b.TempDir(), Config{MaxBytes: 256 << 20, SegmentBytes: 64 << 20, SyncInterval: tc.sync}, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // the reader, as the InfluxDB writer would run it
			defer wg.Done()
			for {
				bt, err := s.Read(ctx, 5000)
				if err != nil {
					return
				}
				_ = s.Commit(bt.End)
			}
		}()
		b.ResetTimer()
		t1 := time.Now()
		for i := 0; i < batches; i++ {
			if err := s.Append(ctx, recs...); err != nil {
				b.Fatal(err)
			}
		}
		el := time.Since(t1)
		b.StopTimer()
		cancel()
		wg.Wait()
		s.Close()
		n := float64(batches * batch)
		b.ReportMetric(n/el.Seconds(), tc.name+"_records/s")
		if tc.sync > 0 {
			b.ReportMetric(raw.Seconds()/el.Seconds(), "ratio_vs_raw_write")
		}
		b.Logf("%s: %.0f records/s (raw file writes of the same bytes: %.0f records/s, ratio %.2f)",
			tc.name, n/el.Seconds(), n/raw.Seconds(), raw.Seconds()/el.Seconds())
	}
}

// BenchmarkAppendConcurrent shows group commit: 16 appenders of one record
// each with fsync on every write; the records/s must be far above 1/fsync.
func BenchmarkAppendConcurrent(b *testing.B) {
	s, err := Open(b.TempDir(), Config{MaxBytes: 256 << 20, SegmentBytes: 64 << 20, SyncInterval: 0}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			bt, err := s.Read(ctx, 5000)
			if err != nil {
				return
			}
			_ = s.Commit(bt.End)
		}
	}()
	defer func() { cancel(); wg.Wait(); s.Close() }()
	rec := bytes.Repeat([]byte("r"), 200)
	b.SetParallelism(8)
	t0 := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Append(context.Background(), rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "records/s")
}
