package hotspot

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"syscall"
	"testing"
	"time"
)

// countyRowsEnd lies after every row countyRows generates: an import on a clock set
// there finds none of them in the future.
var countyRowsEnd = time.Date(2026, 3, 16, 0, 0, 0, 0, time.UTC)

// countyRows generates n FIRMS rows over the demo county (33 × 33 km) in a few hundred
// fire events of a few pixels to a few hundred, spread over three days and two
// instruments, with 1 % of scattered single pixels and 2 % outside the county.
func countyRows(n int, seed int64) []byte {
	rng := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	b.WriteString(viirsHeader)
	type fire struct {
		lat, lon float64
		at       time.Time
	}
	base := time.Date(2026, 3, 12, 0, 0, 0, 0, time.UTC)
	fires := make([]fire, 150)
	for i := range fires {
		fires[i] = fire{31.36 + rng.Float64()*0.28, 106.86 + rng.Float64()*0.33, base.Add(time.Duration(rng.Intn(72)) * time.Hour)}
	}
	sats := []string{"N", "N20", "N21"}
	for i := 0; i < n; i++ {
		var lat, lon float64
		var at time.Time
		switch r := rng.Float64(); {
		case r < 0.02: // outside the county
			lat, lon, at = 31.8+rng.Float64(), 107.5+rng.Float64(), base
		case r < 0.03: // scattered
			lat, lon, at = 31.36+rng.Float64()*0.28, 106.86+rng.Float64()*0.33, base.Add(time.Duration(rng.Intn(72*60))*time.Minute)
		default:
			f := fires[rng.Intn(len(fires))]
			lat, lon = f.lat+rng.NormFloat64()*0.002, f.lon+rng.NormFloat64()*0.002
			at = f.at.Add(time.Duration(rng.Intn(12*60)) * time.Minute)
		}
		fmt.Fprintf(&b, "%.5f,%.5f,%.2f,%.2f,%.2f,%s,%d,%s,VIIRS,%s,2.0NRT,290.1,%.2f,%s\n",
			lat, lon, 300+rng.Float64()*60, 0.32+rng.Float64()*0.4, 0.36+rng.Float64()*0.3, at.Format("2006-01-02"),
			at.Hour()*100+at.Minute(), sats[rng.Intn(3)], []string{"l", "n", "h"}[rng.Intn(3)], rng.Float64()*40, "DN"[rng.Intn(2):][:1])
	}
	return b.Bytes()
}

// BenchmarkImport imports 100k generated FIRMS rows over the demo county into a fresh
// database: parse, match against the real geo layers (seeds/), cluster and store. It
// prints the time of one import against the 3 s target and against a parse-only pass
// over the same bytes in the same process (the baseline).
func BenchmarkImport(b *testing.B) {
	const rows = 100_000
	data := countyRows(rows, 1)
	layers := seedLayers(b)

	start := time.Now()
	parsed, err := ParseFIRMS(bytes.NewReader(data), 0, 0, func(Hotspot) error { return nil })
	if err != nil || parsed.Rows != rows {
		b.Fatalf("baseline parse: %d rows, %v", parsed.Rows, err)
	}
	parseOnly := time.Since(start)

	b.ResetTimer()
	var total, cpu time.Duration
	var last ImportResult
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnv(b, func(_ *Config, d *Deps) { d.Locator = GeoLocator{Layers: layers} })
		e.clk.Set(countyRowsEnd)
		b.StartTimer()
		t, c := time.Now(), cpuTime()
		res, err := e.svc.Import(context.Background(), "bench", bytes.NewReader(data), nil)
		total, cpu = total+time.Since(t), cpu+cpuTime()-c
		if err != nil {
			b.Fatal(err)
		}
		last = res
	}
	b.StopTimer()
	per, perCPU := total/time.Duration(b.N), cpu/time.Duration(b.N)
	if last.Rows != rows || last.New+last.Duplicate != rows-last.OutsideArea || last.ReportsCreated == 0 {
		b.Fatalf("result %+v", last)
	}
	b.ReportMetric(per.Seconds(), "s/import")
	b.ReportMetric(float64(rows)/per.Seconds(), "rows/s")
	b.ReportMetric(perCPU.Seconds(), "cpu-s/import")
	verdict := "OK"
	if per > 3*time.Second {
		verdict = "OVER TARGET"
	}
	b.Logf("100k FIRMS rows: import %.2fs (target < 3s: %s), parse-only baseline %.3fs, ratio %.1f×; new %d dup %d outside %d, %d reports",
		per.Seconds(), verdict, parseOnly.Seconds(), per.Seconds()/parseOnly.Seconds(), last.New, last.Duplicate, last.OutsideArea, last.ReportsCreated)
	fmt.Printf("BenchmarkImport: 100k rows imported+matched+clustered in %.2fs wall, %.2fs CPU (target < 3s: %s); parse-only %.3fs; ratio %.1f×; %d reports\n",
		per.Seconds(), perCPU.Seconds(), verdict, parseOnly.Seconds(), per.Seconds()/parseOnly.Seconds(), last.ReportsCreated)
}

// BenchmarkCluster times the clustering step alone on 100k county-spread pixels.
func BenchmarkCluster(b *testing.B) {
	rng := rand.New(rand.NewSource(3))
	nodes := make([]node, 100_000)
	for i := range nodes {
		nodes[i] = node{x: rng.Float64() * 33, y: rng.Float64() * 33, w: 0.375, h: 0.375, t: int64(rng.Intn(3 * 86400))}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cluster(nodes, 1, 86400)
	}
}

// cpuTime is the process's user+system CPU time: on a shared machine it tells the
// import's own cost apart from time spent waiting for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
