package ingest

import (
	"encoding/json"
	"testing"
	"time"
)

// BenchmarkDecode measures Decode on each class's example message. Besides
// ns/op and allocs it reports, as "x_json", how many times faster Decode is than
// encoding/json's generic path (Unmarshal into map[string]any, which does no
// validation at all) on the same payload, timed in the same process, so the
// number means something on any machine.
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
				start := time.Now()
				for i := 0; i < b.N; i++ {
					if _, err := Decode("fire", topic, payload, testNow, lim); err != nil {
						b.Fatal(err)
					}
				}
				ours := time.Since(start)
				b.StopTimer()
				start = time.Now()
				for i := 0; i < b.N; i++ {
					var m map[string]any
					if err := json.Unmarshal(payload, &m); err != nil {
						b.Fatal(err)
					}
				}
				base := time.Since(start)
				b.ReportMetric(float64(base)/float64(ours), "x_json")
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
