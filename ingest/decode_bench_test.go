package ingest

import (
	"encoding/json"
	"runtime"
	"testing"
	"time"
)

// BenchmarkDecode measures Decode on each class's example message. Besides
// ns/op and allocs it reports, as "x_json", how many times faster Decode is than
// encoding/json's generic path (Unmarshal into map[string]any, which does no
// validation at all) on the same payload, timed in the same process, so the
// number means something on any machine, and "cpu-ns/op", an estimate of the
// CPU time per Decode that is not inflated by waiting for a busy CPU.
func BenchmarkDecode(b *testing.B) {
	for _, c := range Classes {
		for _, k := range c.Kinds() {
			topic := topicOf(c, k)
			payload := []byte(validPayload(b, c, k))
			lim := testLimits()
			b.Run(string(c)+"_"+string(k), func(b *testing.B) {
				if _, err := Decode("fire", topic, payload, testNow, lim); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				b.ResetTimer()
				// Decode and the baseline run interleaved in small chunks, so
				// both see the same contention on a shared machine; only
				// Decode is inside the benchmark timer.
				const chunk = 256
				var ours, base time.Duration
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0, cpuOK := threadCPU()
				for done := 0; done < b.N; {
					n := min(chunk, b.N-done)
					t0 := time.Now()
					for i := 0; i < n; i++ {
						if _, err := Decode("fire", topic, payload, testNow, lim); err != nil {
							b.Fatal(err)
						}
					}
					t1 := time.Now()
					b.StopTimer()
					for i := 0; i < n; i++ {
						var m map[string]any
						if err := json.Unmarshal(payload, &m); err != nil {
							b.Fatal(err)
						}
					}
					t2 := time.Now()
					b.StartTimer()
					ours += t1.Sub(t0)
					base += t2.Sub(t1)
					done += n
				}
				b.ReportMetric(float64(base)/float64(ours), "x_json")
				if cpu1, ok := threadCPU(); ok && cpuOK {
					// Both loops ran on this thread; split its CPU time by
					// their wall-time shares to estimate Decode's CPU cost.
					cpu := float64(cpu1-cpu0) * float64(ours) / float64(ours+base)
					b.ReportMetric(cpu/float64(b.N), "cpu-ns/op")
				}
			})
		}
	}
}

// BenchmarkDecodeReject measures the reject path (a typical malformed message),
// which runs under the same load when a device misbehaves.
func BenchmarkDecodeReject(b *testing.B) {
	payload := []byte(`{"ts":1748764800000,"residual_current_ma":[112,98.5,130,0,7],"cable_temp_c":[36.1]}`)
	lim := testLimits()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Decode("fire", "fire/elec/E1/telemetry", payload, testNow, lim); ReasonOf(err) != ReasonOutOfRange {
			b.Fatal(err)
		}
	}
}
