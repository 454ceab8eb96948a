package alerting

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/store"
)

// The rule worker is one goroutine, so its per-reading cost bounds the reading
// rate alerting keeps up with, and everything queued ahead of a smoke alarm adds
// to that alarm's latency (make bench-alert measures it end to end). These
// benchmarks time Evaluate for the non-alarm readings of each class (the
// background of a real deployment) against a new smoke alarm, the work that
// must happen per alert; readings/s is the rate one worker sustains.

func benchEngine(b *testing.B) *Engine {
	b.Helper()
	db, err := store.Open(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	e, err := New(context.Background(), Options{Config: DefaultConfig(), DB: db, Clock: clock.NewFake(t0),
		Directory: testDir(), Caller: &recCaller{}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// background returns n non-alarm readings of one class over 100 devices, values
// below every threshold, as the ingest pipeline would hand them over.
func background(class ingest.Class, n int) []ingest.Reading {
	out := make([]ingest.Reading, n)
	for i := range out {
		r := ingest.Reading{DeviceID: fmt.Sprintf("%s-%03d", class, i%100), Class: class, Kind: ingest.KindTelemetry,
			Zone: "v1", Lat: 40, Lon: 116, Time: t0.Add(time.Duration(i) * time.Second)}
		switch class {
		case ingest.ClassSmoke:
			r.Fields = map[string]any{"alarm": false, "smoke_db_m": 0.02, "temperature_c": 21.0, "battery_pct": 80.0, "rssi_dbm": -80.0, "tamper": false}
		case ingest.ClassStation:
			r.Fields = map[string]any{"air_temp_c": 18.0, "rh_pct": 40.0, "wind_speed_ms": 3.0, "wind_dir_deg": 90.0, "precip_mm": 0.0}
		case ingest.ClassElec:
			r.Fields = map[string]any{"residual_current_ma": []float64{30, 20, 12, 8}, "cable_temp_c": []float64{35, 31, 30, 29}, "alarm": false}
		case ingest.ClassCamera:
			r.Kind = ingest.KindHeartbeat
			r.Fields = map[string]any{"uptime_s": 1000.0, "fw": "2.1.0", "battery_pct": 80.0}
		}
		out[i] = r
	}
	return out
}

func BenchmarkEvaluate(b *testing.B) {
	ctx := context.Background()
	for _, class := range []ingest.Class{ingest.ClassSmoke, ingest.ClassStation, ingest.ClassElec, ingest.ClassCamera} {
		b.Run(string(class)+"_background", func(b *testing.B) {
			e := benchEngine(b)
			rs := background(class, 1000)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := e.Evaluate(ctx, rs[i%len(rs)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
		})
	}
	b.Run("smoke_alarm_new", func(b *testing.B) {
		e := benchEngine(b)
		c := e.hub.subscribe() // one SSE client, drained, as in the control room
		defer e.hub.unsubscribe(c)
		go func() {
			for {
				select {
				case <-c.ch:
				case <-c.dropped:
					return
				}
			}
		}()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r := ingest.Reading{DeviceID: fmt.Sprintf("smk-%07d", i), Class: ingest.ClassSmoke, Kind: ingest.KindEvent, Zone: "v1",
				Time: t0, Fields: map[string]any{"event": "alarm"}}
			if err := e.Evaluate(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "alarms/s")
	})
}
