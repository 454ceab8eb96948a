package tsdb

import (
	"context"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/lookoutfire/lookout/internal/testenv"
)

// BenchmarkSpoolToInflux measures the whole path against a local influxd:
// encode → spool.Append → Writer → InfluxDB, until InfluxDB holds every point.
// The baseline, in the same process and on the same influxd, posts the same
// lines pre-joined in batches of the same size straight through
// influxdb-client-go (no spool, no encoding). Reports points/s for both and
// the ratio (pipeline/baseline). Run with -benchtime 1x.
func BenchmarkSpoolToInflux(b *testing.B) {
	const n = 100000
	in := testenv.StartInflux(b)
	for i := 0; i < b.N; i++ {
		// Baseline: direct blocking writes into another database.
		in.Query(b, "DROP DATABASE baseline")
		in.Query(b, "CREATE DATABASE baseline")
		cfg := influxConfig(in)
		lines := make([]string, n)
		for j := range lines {
			lines[j] = string(EncodeReading(nil, reading(j)))
		}
		client := influxdb2.NewClientWithOptions(in.URL, "", influxdb2.DefaultOptions().SetUseGZip(cfg.Gzip))
		wapi := client.WriteAPIBlocking("", "baseline/autogen")
		t0 := time.Now()
		for j := 0; j < n; j += cfg.BatchSize {
			end := min(j+cfg.BatchSize, n)
			if err := wapi.WriteRecord(context.Background(), lines[j:end]...); err != nil {
				b.Fatal(err)
			}
		}
		baseline := time.Since(t0)
		client.Close()

		// Pipeline into "lookout".
		in.Query(b, "DROP DATABASE lookout")
		in.Query(b, "CREATE DATABASE lookout")
		r := startRig(b, b.TempDir(), cfg)
		t1 := time.Now()
		appendReadings(b, r.sp, 0, n)
		waitDrained(b, r)
		pipeline := time.Since(t1)
		r.stop(b)
		if got := countAll(b, in); got != n {
			b.Fatalf("influx holds %d points, want %d", got, n)
		}
		b.ReportMetric(n/pipeline.Seconds(), "points/s")
		b.ReportMetric(n/baseline.Seconds(), "baseline_points/s")
		b.ReportMetric(baseline.Seconds()/pipeline.Seconds(), "ratio")
		b.Logf("pipeline %.0f points/s, direct client writes %.0f points/s, ratio %.2f",
			n/pipeline.Seconds(), n/baseline.Seconds(), baseline.Seconds()/pipeline.Seconds())
	}
}

func waitDrained(b *testing.B, r *rig) {
	deadline := time.Now().Add(5 * time.Minute)
	for r.sp.Stats().Records > 0 {
		if time.Now().After(deadline) {
			b.Fatal("spool not drained in 5 min")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
