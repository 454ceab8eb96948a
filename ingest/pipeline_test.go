package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lookoutfire/lookout/clock"
)

// memSpool is an in-memory Appender that can be told to fail.
type memSpool struct {
	mu   sync.Mutex
	recs []string
	err  error
}

func (m *memSpool) Append(_ context.Context, recs ...[]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	for _, r := range recs {
		m.recs = append(m.recs, string(r))
	}
	return nil
}

type pubRec struct {
	mu    sync.Mutex
	topic []string
	body  [][]byte
}

func (p *pubRec) Publish(topic string, payload []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.topic = append(p.topic, topic)
	p.body = append(p.body, payload)
	return nil
}

type obs struct {
	mu sync.Mutex
	rs []Reading
}

func (o *obs) Observe(r Reading) { o.mu.Lock(); o.rs = append(o.rs, r); o.mu.Unlock() }

type admitFunc func(r *Reading) error

func (f admitFunc) Admit(r *Reading) error { return f(r) }

// encodeStub renders device and kind only: the pipeline's job is to call the encoder per reading.
func encodeStub(dst []byte, r *Reading) []byte {
	return append(dst, fmt.Sprintf("%s_%s,device_id=%s\n", r.Class, r.Kind, r.DeviceID)...)
}

type fixture struct {
	p     *Pipeline
	spool *memSpool
	pub   *pubRec
	obs   *obs
	reg   *prometheus.Registry
	now   time.Time
}

func newFixture(t *testing.T, admit Admitter) *fixture {
	t.Helper()
	now := time.Date(2026, 4, 1, 4, 0, 0, 0, time.UTC)
	f := &fixture{spool: &memSpool{}, pub: &pubRec{}, obs: &obs{}, reg: prometheus.NewRegistry(), now: now}
	p, err := NewPipeline(DefaultConfig(), Deps{Admitter: admit, Appender: f.spool, Encode: encodeStub,
		Publisher: f.pub, Observers: []Observer{f.obs}, Clock: clock.NewFake(now), Registerer: f.reg,
		SnapshotDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	return f
}

func smokeMsg(dev string, ts time.Time, extra string) Message {
	return Message{Topic: "fire/smoke/" + dev + "/telemetry", Payload: []byte(fmt.Sprintf(
		`{"ts":%d,"alarm":false,"smoke_db_m":0.01,"temperature_c":21.5,"battery_pct":80,"rssi_dbm":-75,"tamper":false%s}`, ts.UnixMilli(), extra))}
}

func TestPipelineStoresValidAndDeadLettersInvalid(t *testing.T) {
	f := newFixture(t, nil)
	msgs := []Message{
		smokeMsg("sm-1", f.now.Add(-time.Minute), ""),
		smokeMsg("sm-2", f.now.Add(-time.Minute), `,"battery_pct":200`), // duplicate key → rejected
		{Topic: "fire/smoke/sm-3/telemetry", Payload: []byte(`{not json`)},
		smokeMsg("sm-4", f.now.Add(-time.Minute), ""),
	}
	if err := f.p.HandleBatch(context.Background(), msgs); err != nil {
		t.Fatalf("HandleBatch: %v", err)
	}
	if got := len(f.spool.recs); got != 2 {
		t.Fatalf("spooled %d records, want 2: %q", got, f.spool.recs)
	}
	if !strings.Contains(f.spool.recs[0], "device_id=sm-1") || !strings.Contains(f.spool.recs[1], "device_id=sm-4") {
		t.Errorf("records out of order or wrong: %q", f.spool.recs)
	}
	if len(f.obs.rs) != 2 {
		t.Errorf("observers saw %d readings, want 2", len(f.obs.rs))
	}
	if len(f.pub.topic) != 2 {
		t.Fatalf("dead letters = %v, want 2", f.pub.topic)
	}
	var dl DeadLetter
	if err := json.Unmarshal(f.pub.body[1], &dl); err != nil {
		t.Fatal(err)
	}
	if f.pub.topic[1] != "fire/deadletter/bad_json" || dl.Reason != ReasonBadJSON || dl.Topic != "fire/smoke/sm-3/telemetry" || dl.PayloadB64 == "" {
		t.Errorf("dead letter %s = %+v", f.pub.topic[1], dl)
	}
	if v := testutil.ToFloat64(f.p.m.rejected.WithLabelValues(string(ReasonBadJSON))); v != 1 {
		t.Errorf("bad_json counter = %v, want 1", v)
	}
	if acc, rej := f.p.Counts(); acc != 2 || rej != 2 {
		t.Errorf("counts = %d/%d, want 2/2", acc, rej)
	}
}

func TestPipelineSpoolFailureIsNotAcked(t *testing.T) {
	f := newFixture(t, nil)
	f.spool.err = errors.New("disk full")
	err := f.p.Handle(context.Background(), smokeMsg("sm-1", f.now, "").Topic, smokeMsg("sm-1", f.now, "").Payload)
	if err == nil {
		t.Fatal("Handle returned nil although the spool failed: the message would be acked and lost")
	}
	if len(f.obs.rs) != 0 {
		t.Error("observers saw a reading that was never stored")
	}
}

func TestPipelineAdmitterRejects(t *testing.T) {
	f := newFixture(t, admitFunc(func(r *Reading) error {
		if r.DeviceID == "stranger" {
			return Rejectf(ReasonUnknownDevice, "", "device %q is not registered", r.DeviceID)
		}
		r.Zone, r.Lat, r.Lon = "village-1", 31.5, 107.1
		return nil
	}))
	_ = f.p.HandleBatch(context.Background(), []Message{smokeMsg("stranger", f.now, ""), smokeMsg("known", f.now, "")})
	if len(f.pub.topic) != 1 || f.pub.topic[0] != "fire/deadletter/unknown_device" {
		t.Errorf("dead letters = %v", f.pub.topic)
	}
	if len(f.obs.rs) != 1 || f.obs.rs[0].Zone != "village-1" {
		t.Errorf("observed = %+v", f.obs.rs)
	}
}

func TestPipelineConcurrentHandle(t *testing.T) {
	f := newFixture(t, nil)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				m := smokeMsg(fmt.Sprintf("sm-%d", w), f.now.Add(-time.Duration(i)*time.Second), "")
				if err := f.p.Handle(context.Background(), m.Topic, m.Payload); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if len(f.spool.recs) != 1600 {
		t.Fatalf("spooled %d, want 1600", len(f.spool.recs))
	}
}

// TestPipelineStampsReadingsWithoutTS: a reading without ts is stored at
// gateway time, and no two of them share a timestamp — not in one batch, not
// across batches read at the same clock value. InfluxDB keeps one point per
// measurement, tags and time, so a shared timestamp would silently drop all
// but one of them.
func TestPipelineStampsReadingsWithoutTS(t *testing.T) {
	f := newFixture(t, nil) // the fake clock never moves: the worst case
	noTS := Message{Topic: "fire/smoke/sm-1/telemetry", Payload: []byte(
		`{"alarm":false,"smoke_db_m":0.01,"temperature_c":21.5,"battery_pct":80,"rssi_dbm":-75,"tamper":false}`)}
	for batch := 0; batch < 2; batch++ {
		if err := f.p.HandleBatch(context.Background(), []Message{noTS, noTS, smokeMsg("sm-1", f.now.Add(-time.Minute), ""), noTS}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.p.Handle(context.Background(), noTS.Topic, noTS.Payload); err != nil {
		t.Fatal(err)
	}
	var last time.Time
	n := 0
	for _, r := range f.obs.rs {
		if r.Time.Equal(f.now.Add(-time.Minute)) {
			continue // the device's own ts is kept as sent
		}
		n++
		if r.Time.Before(f.now) || r.Time.After(f.now.Add(time.Millisecond)) {
			t.Errorf("reading without ts stamped %v, gateway time is %v", r.Time, f.now)
		}
		if !r.Time.After(last) {
			t.Errorf("reading %d without ts stamped %v, not after the previous one (%v)", n, r.Time, last)
		}
		last = r.Time
	}
	if n != 7 {
		t.Fatalf("observed %d readings without ts, want 7", n)
	}
}

// Two different messages of one device stamped in the same millisecond are
// both stored: InfluxDB keeps one point per series and time, and an
// electrical monitor's residual_alarm and temp_alarm, or a camera's smoke and
// fire hit on one frame, are one series (measurement and device). Each gets
// a sub-millisecond offset derived from its content, so a message sent twice
// (a QoS 1 resend) still lands on the same point.
func TestPipelineSameMillisecond(t *testing.T) {
	f := newFixture(t, nil)
	ts := f.now.Add(-time.Minute)
	ev := func(event string) Message {
		return Message{Topic: "fire/elec/em-1/event",
			Payload: []byte(fmt.Sprintf(`{"ts":%d,"event":%q,"channel":1}`, ts.UnixMilli(), event))}
	}
	rfc := Message{Topic: "fire/elec/em-1/event",
		Payload: []byte(`{"ts":"` + ts.Format(time.RFC3339Nano) + `","event":"arc_fault","channel":2}`)}
	msgs := []Message{ev("residual_alarm"), ev("temp_alarm"), ev("residual_alarm"), rfc}
	if err := f.p.HandleBatch(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if len(f.obs.rs) != len(msgs) {
		t.Fatalf("observed %d readings, want %d", len(f.obs.rs), len(msgs))
	}
	times := make([]time.Time, len(f.obs.rs))
	for i, r := range f.obs.rs {
		times[i] = r.StoreTime
		if !r.StoreTime.Truncate(time.Millisecond).Equal(ts) {
			t.Errorf("reading %d stored at %v, outside the device's millisecond %v", i, r.StoreTime, ts)
		}
		if !r.Time.Equal(ts) {
			t.Errorf("reading %d has time %v, want the device's %v (alerting and the API use it)", i, r.Time, ts)
		}
	}
	if times[0].Equal(times[1]) || times[0].Equal(times[3]) || times[1].Equal(times[3]) {
		t.Errorf("different messages share a time: %v", times)
	}
	if !times[0].Equal(times[2]) {
		t.Errorf("the same message sent twice got two times: %v and %v", times[0], times[2])
	}
}
