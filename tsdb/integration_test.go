package tsdb

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/internal/testenv"
	"github.com/lookoutfire/lookout/spool"
)

// These tests run against a real influxd 1.8 (internal/testenv); they fail,
// never skip, when it is missing.

var base = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)

// reading i of a mixed stream: four classes, 50 devices, distinct times.
func reading(i int) *ingest.Reading {
	r := &ingest.Reading{DeviceID: fmt.Sprintf("dev-%03d", i%50), Kind: ingest.KindTelemetry,
		Time: base.Add(time.Duration(i) * time.Millisecond), Zone: "z-" + fmt.Sprint(i%3)}
	switch i % 4 {
	case 0:
		r.Class = ingest.ClassSmoke
		r.Fields = map[string]any{"alarm": false, "smoke_db_m": 0.01, "battery_pct": float64(i % 100), "tamper": false}
	case 1:
		r.Class = ingest.ClassStation
		r.Fields = map[string]any{"air_temp_c": 20 + float64(i%10), "rh_pct": 40.0, "wind_speed_ms": 3.5}
	case 2:
		r.Class = ingest.ClassElec
		r.Fields = map[string]any{"residual_current_ma": []float64{float64(i % 30), 2}, "cable_temp_c": []float64{30}, "alarm": false}
	default:
		r.Class, r.Kind = ingest.ClassCamera, ingest.KindDetection
		r.Fields = map[string]any{"label": "smoke", "score": 0.9, "pan_deg": 120.0}
	}
	return r
}

// countAll sums the points of the four measurements reading() produces.
func countAll(t testing.TB, in *testenv.Influx) int64 {
	return in.Count(t, "smoke_telemetry", "battery_pct") + in.Count(t, "station_telemetry", "air_temp_c") +
		in.Count(t, "elec_telemetry", "residual_current_ma_1") + in.Count(t, "camera_detection", "score")
}

func waitCount(t testing.TB, what string, want int64, timeout time.Duration, count func() int64) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got int64
	for time.Now().Before(deadline) {
		if got = count(); got == want {
			return
		}
		if got > want {
			t.Fatalf("%s: %d points, more than the %d sent", what, got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: %d points after %v, want %d", what, got, timeout, want)
}

type rig struct {
	sp     *spool.Spool
	w      *Writer
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startRig(t testing.TB, dir string, cfg Config) *rig {
	t.Helper()
	reg := prometheus.NewRegistry()
	sp, err := spool.Open(dir, spool.Config{MaxBytes: 256 << 20, SegmentBytes: 1 << 20, SyncInterval: time.Second}, reg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(cfg, sp, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{sp: sp, w: w, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *rig) stop(t testing.TB) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("writer Run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("writer Run did not return after cancel")
	}
	if err := r.sp.Close(); err != nil {
		t.Errorf("spool close: %v", err)
	}
}

func (r *rig) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if labelValue(m, labels[i]) != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func influxConfig(in *testenv.Influx) Config {
	c := DefaultConfig()
	c.URL, c.Bucket, c.FlushInterval = in.URL, in.DB+"/autogen", 50*time.Millisecond
	return c
}

func appendReadings(t testing.TB, sp *spool.Spool, from, to int) {
	t.Helper()
	var recs [][]byte
	for i := from; i < to; i++ {
		recs = append(recs, EncodeReading(nil, reading(i)))
		if len(recs) == 256 || i == to-1 {
			if err := sp.Append(context.Background(), recs...); err != nil {
				t.Fatal(err)
			}
			recs = nil
		}
	}
}

func TestDeliversEveryReading(t *testing.T) {
	in := testenv.StartInflux(t)
	for _, tc := range []struct {
		name string
		gzip bool
		n    int
	}{{"gzip", true, 10000}, {"plain", false, 2000}} {
		t.Run(tc.name, func(t *testing.T) {
			db := *in
			db.DB = "deliver_" + tc.name
			in.Query(t, "CREATE DATABASE "+db.DB)
			cfg := influxConfig(&db)
			cfg.Gzip, cfg.BatchSize = tc.gzip, 1000
			r := startRig(t, t.TempDir(), cfg)
			appendReadings(t, r.sp, 0, tc.n)
			waitCount(t, "delivered", int64(tc.n), 60*time.Second, func() int64 { return countAll(t, &db) })
			waitFor(t, func() bool { return r.sp.Stats().Records == 0 })
			if !r.w.Healthy() || r.metric(t, "lookout_influx_up") != 1 {
				t.Fatal("writer not healthy after delivering")
			}
			if got := r.metric(t, "lookout_influx_points_written_total"); got != float64(tc.n) {
				t.Fatalf("points_written_total = %v, want %d", got, tc.n)
			}
			if st := r.w.Stats(); st.PointsWritten != int64(tc.n) || st.Rejected != 0 || st.LastSuccess.IsZero() {
				t.Fatalf("writer stats %+v", st)
			}
		})
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEscapingRoundTrip writes awkward device ids and strings and reads them
// back from InfluxDB unchanged.
func TestEscapingRoundTrip(t *testing.T) {
	in := testenv.StartInflux(t)
	r := startRig(t, t.TempDir(), influxConfig(in))
	odd := []string{"plain", "with space", "a,b=c", `quote"d`, `back\slash`, "ünïcødé-火", "trailing ", "=lead", "x,y z=w"}
	want := map[string]string{}
	for i, id := range odd {
		label := fmt.Sprintf(`say "hi", a=b \ %s`+"\nsecond line", id)
		want[id] = label
		rd := &ingest.Reading{DeviceID: id, Class: ingest.ClassCamera, Kind: ingest.KindDetection, Zone: "zone " + id,
			Time: base.Add(time.Duration(i) * time.Second), Fields: map[string]any{"label": label, "score": 0.5}}
		if err := AppendReading(context.Background(), r.sp, rd); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, "odd points", int64(len(odd)), 30*time.Second, func() int64 { return in.Count(t, "camera_detection", "score") })
	out := in.Query(t, `SELECT "device_id", "zone", "label" FROM "camera_detection"`)
	var res struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Results) != 1 || len(res.Results[0].Series) != 1 {
		t.Fatalf("query result %s: %v", out, err)
	}
	got := map[string]string{}
	for _, v := range res.Results[0].Series[0].Values {
		id, zone, label := v[1].(string), v[2].(string), v[3].(string)
		if zone != "zone "+id {
			t.Errorf("device %q: zone came back as %q", id, zone)
		}
		got[id] = label
	}
	for id, label := range want {
		if got[id] != label {
			t.Errorf("device %q: label %q came back as %q", id, label, got[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d devices back, want %d: %v", len(got), len(want), keys(got))
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestInfluxDownThirtySeconds stops InfluxDB for 30 s in the middle of a
// stream; everything must arrive once it is back.
func TestInfluxDownThirtySeconds(t *testing.T) {
	in := testenv.StartInflux(t)
	r := startRig(t, t.TempDir(), influxConfig(in))
	var sent atomic.Int64
	stop := make(chan struct{})
	streamDone := make(chan struct{})
	go func() { // 200 readings/s until stopped
		defer close(streamDone)
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for i := 0; ; i += 2 {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			if err := r.sp.Append(context.Background(), EncodeReading(nil, reading(i)), EncodeReading(nil, reading(i+1))); err != nil {
				t.Error(err)
				return
			}
			sent.Add(2)
		}
	}()
	waitFor(t, func() bool { return countAll(t, in) > 200 })

	in.Stop()
	waitFor(t, func() bool { return !r.w.Healthy() })
	downAt := sent.Load()
	time.Sleep(30 * time.Second)
	if st := r.sp.Stats(); st.Records < (sent.Load()-downAt)/2 || r.metric(t, "lookout_spool_lag_seconds") < 20 {
		t.Fatalf("during the outage the spool holds %d records (sent %d since), lag %vs", st.Records,
			sent.Load()-downAt, r.metric(t, "lookout_spool_lag_seconds"))
	}
	if r.metric(t, "lookout_influx_up") != 0 || r.metric(t, "lookout_influx_write_errors_total", "kind", "network") == 0 {
		t.Fatal("outage not visible in lookout_influx_up / write_errors_total{kind=network}")
	}
	in.Restart()
	in.WaitReady(t)
	time.Sleep(2 * time.Second) // the stream goes on after the restart
	close(stop)
	<-streamDone

	total := sent.Load()
	t.Logf("sent %d readings, %d of them after InfluxDB was stopped", total, total-downAt)
	waitCount(t, "after outage", total, 90*time.Second, func() int64 { return countAll(t, in) })
	waitFor(t, func() bool { return r.sp.Stats().Records == 0 && r.w.Healthy() })
	if r.w.Stats().Rejected != 0 {
		t.Fatalf("points rejected during an outage: %+v", r.w.Stats())
	}
}

// TestRejectedLineSetAside: a field type conflict and an unparsable line go to
// rejected.lp; everything around them arrives.
func TestRejectedLineSetAside(t *testing.T) {
	in := testenv.StartInflux(t)
	dir := t.TempDir()
	cfg := influxConfig(in)
	r := startRig(t, dir, cfg)
	point := func(i int, v any) []byte {
		return EncodePoint(nil, "conflict", map[string]string{"device_id": "d1"}, map[string]any{"x": v},
			base.Add(time.Duration(i)*time.Second))
	}
	var recs [][]byte
	for i := 0; i < 100; i++ {
		recs = append(recs, point(i, float64(i)))
	}
	recs = append(recs, point(100, "a string where a float lives"), []byte("this is not line protocol"))
	for i := 101; i < 201; i++ {
		recs = append(recs, point(i, float64(i)))
	}
	if err := r.sp.Append(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	waitCount(t, "good points", 200, 30*time.Second, func() int64 { return in.Count(t, "conflict", "x") })
	waitFor(t, func() bool { return r.sp.Stats().Records == 0 })
	b, err := os.ReadFile(filepath.Join(dir, RejectedFile))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	wantLines := []string{string(point(100, "a string where a float lives")), "this is not line protocol"}
	if strings.Join(lines, "\n") != strings.Join(wantLines, "\n") {
		t.Fatalf("rejected.lp holds\n%s\nwant the two bad lines", b)
	}
	if !strings.Contains(string(b), "type conflict") {
		t.Fatalf("rejected.lp does not say why: %s", b)
	}
	if got := r.metric(t, "lookout_influx_rejected_points_total"); got != 2 {
		t.Fatalf("rejected_points_total = %v, want 2", got)
	}
	if st := r.w.Stats(); st.Rejected != 2 || !st.Healthy {
		t.Fatalf("stats %+v", st)
	}
}

// TestWriterRestartResumes: the writer (spool + writer) is stopped with a
// backlog that InfluxDB never saw, and a new one on the same directory
// delivers all of it.
func TestWriterRestartResumes(t *testing.T) {
	in := testenv.StartInflux(t)
	dir := t.TempDir()
	cfg := influxConfig(in)
	r := startRig(t, dir, cfg)
	appendReadings(t, r.sp, 0, 2000)
	waitCount(t, "first part", 2000, 30*time.Second, func() int64 { return countAll(t, in) })

	in.Stop()
	appendReadings(t, r.sp, 2000, 5000)
	waitFor(t, func() bool { return !r.w.Healthy() })
	r.stop(t)
	in.Restart()
	in.WaitReady(t)
	if got := countAll(t, in); got != 2000 {
		t.Fatalf("%d points before the restart, want 2000", got)
	}

	r2 := startRig(t, dir, cfg)
	if st := r2.sp.Stats(); st.Records != 3000 {
		t.Fatalf("reopened spool holds %d records, want 3000", st.Records)
	}
	appendReadings(t, r2.sp, 5000, 6000)
	waitCount(t, "after restart", 6000, 60*time.Second, func() int64 { return countAll(t, in) })
}

// TestReadingsWithoutTSAllStored: readings that carry no ts are stored at
// gateway time through the real pipeline; several from one device in one
// batch must become several points (InfluxDB keeps one point per measurement,
// tag set and timestamp, so equal gateway times would silently drop them).
func TestReadingsWithoutTSAllStored(t *testing.T) {
	in := testenv.StartInflux(t)
	r := startRig(t, t.TempDir(), influxConfig(in))
	p, err := ingest.NewPipeline(ingest.DefaultConfig(), ingest.Deps{Appender: r.sp, Encode: EncodeReading,
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(battery int) ingest.Message {
		return ingest.Message{Topic: "fire/smoke/sm-nots/telemetry", Payload: []byte(fmt.Sprintf(
			`{"alarm":false,"smoke_db_m":0.01,"temperature_c":21.5,"battery_pct":%d,"rssi_dbm":-75,"tamper":false}`, battery))}
	}
	if err := p.HandleBatch(context.Background(), []ingest.Message{msg(80), msg(79), msg(78)}); err != nil {
		t.Fatal(err)
	}
	if err := p.HandleBatch(context.Background(), []ingest.Message{msg(77), msg(76)}); err != nil {
		t.Fatal(err)
	}
	if acc, rej := p.Counts(); acc != 5 || rej != 0 {
		t.Fatalf("pipeline accepted %d, rejected %d; want 5, 0", acc, rej)
	}
	waitFor(t, func() bool { return r.sp.Stats().Records == 0 })
	if got := in.Count(t, "smoke_telemetry", "battery_pct"); got != 5 {
		t.Fatalf("%d points stored for 5 accepted readings without ts", got)
	}
}
