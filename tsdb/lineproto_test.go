package tsdb

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
	protocol "github.com/influxdata/line-protocol"

	"github.com/lookoutfire/lookout/ingest"
)

var t0 = time.Date(2025, 7, 1, 12, 0, 0, 123456789, time.UTC)

func TestEncodeReading(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    ingest.Reading
		want string
	}{
		{"smoke telemetry", ingest.Reading{DeviceID: "sm-001", Class: ingest.ClassSmoke, Kind: ingest.KindTelemetry, Time: t0,
			Zone: "z-north", Fields: map[string]any{"alarm": false, "smoke_db_m": 0.02, "temperature_c": 21.0, "battery_pct": 97.0}},
			`smoke_telemetry,device_id=sm-001,zone=z-north alarm=false,battery_pct=97,smoke_db_m=0.02,temperature_c=21 1751371200123456789`},
		{"elec arrays flattened", ingest.Reading{DeviceID: "el-7", Class: ingest.ClassElec, Kind: ingest.KindTelemetry, Time: t0,
			Forest: "f-1", Zone: "z", Fields: map[string]any{"residual_current_ma": []float64{12, 30.5}, "arc_fault": true}},
			`elec_telemetry,device_id=el-7,forest=f-1,zone=z arc_fault=true,residual_current_ma_1=12,residual_current_ma_2=30.5 1751371200123456789`},
		{"strings escaped", ingest.Reading{DeviceID: "cam 1,a=b", Class: ingest.ClassCamera, Kind: ingest.KindDetection, Time: t0,
			Fields: map[string]any{"label": `smo"ke\`, "score": 0.5}},
			`camera_detection,device_id=cam\ 1\,a\=b label="smo\"ke\\",score=0.5 1751371200123456789`},
		{"store time wins", ingest.Reading{DeviceID: "el-7", Class: ingest.ClassElec, Kind: ingest.KindEvent, Time: t0,
			StoreTime: t0.Add(417), Fields: map[string]any{"event": "temp_alarm"}},
			`elec_event,device_id=el-7 event="temp_alarm" 1751371200123457206`},
		{"no time uses received", ingest.Reading{DeviceID: "st-1", Class: ingest.ClassStation, Kind: ingest.KindHeartbeat,
			Received: time.Unix(5, 0), Fields: map[string]any{"fw": "1.2.3", "uptime_s": 3600.0}},
			`station_heartbeat,device_id=st-1 fw="1.2.3",uptime_s=3600 5000000000`},
		{"big and small floats stay floats", ingest.Reading{DeviceID: "d", Class: ingest.ClassStation, Kind: ingest.KindTelemetry, Time: t0,
			Fields: map[string]any{"a": 1e21, "b": -1.5e-7, "c": 0.0}},
			`station_telemetry,device_id=d a=1e+21,b=-1.5e-07,c=0 1751371200123456789`},
		{"NaN, Inf and snapshots left out", ingest.Reading{DeviceID: "d", Class: ingest.ClassCamera, Kind: ingest.KindDetection, Time: t0,
			Snapshot: []byte{0xff, 0xd8}, Fields: map[string]any{"a": math.NaN(), "b": math.Inf(1), "c": 1.0, "d": []float64{math.NaN(), 2}}},
			`camera_detection,device_id=d c=1,d_2=2 1751371200123456789`},
		{"nothing storable", ingest.Reading{DeviceID: "d", Class: ingest.ClassSmoke, Kind: ingest.KindEvent, Time: t0,
			Fields: map[string]any{"x": math.NaN(), "y": nil}}, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := EncodeReading([]byte("prefix|"), &tc.r)
			if !bytes.HasPrefix(got, []byte("prefix|")) {
				t.Fatalf("dst prefix lost: %q", got)
			}
			if s := string(got[len("prefix|"):]); s != tc.want {
				t.Fatalf("got  %s\nwant %s", s, tc.want)
			}
			if tc.want != "" {
				mustParse(t, got[len("prefix|"):])
			}
		})
	}
}

func TestEncodePoint(t *testing.T) {
	for _, tc := range []struct {
		name   string
		meas   string
		tags   map[string]string
		fields map[string]any
		ts     time.Time
		want   string
	}{
		{"fire danger", "fire_danger", map[string]string{"zone": "z1", "station": "st-1"},
			map[string]any{"fwi": 23.4, "class": "high", "ffmc": 88}, t0,
			`fire_danger,station=st-1,zone=z1 class="high",ffmc=88,fwi=23.4 1751371200123456789`},
		{"ints are floats", "m", nil, map[string]any{"i": 7, "u": uint8(3), "f": float32(0.5)}, time.Time{},
			`m f=0.5,i=7,u=3`},
		{"empty tags dropped", "m", map[string]string{"": "x", "a": ""}, map[string]any{"v": 1.0}, time.Time{}, `m v=1`},
		{"comment-like measurement", "#m", nil, map[string]any{"v": 1.0}, time.Time{}, `_m v=1`},
		{"measurement escapes", "a b,c=d", nil, map[string]any{"v": 1.0}, time.Time{}, `a\ b\,c=d v=1`},
		{"control characters", "m\n", map[string]string{"t\tk": "v\r\n"}, map[string]any{"f\n": "line1\nline2\r"}, time.Time{},
			"m_,t_k=v__ f_=\"line1\nline2 \""},
		{"backslashes", `m\`, map[string]string{`k\`: `a\b`, `x`: `c\,d`}, map[string]any{`f\=`: 1.0}, time.Time{},
			`m_,k_=a\b,x=c_\,d f_\==1`},
		{"unknown types dropped", "m", nil, map[string]any{"a": struct{}{}, "b": true}, time.Time{}, `m b=true`},
		{"no measurement", "", nil, map[string]any{"v": 1.0}, time.Time{}, ``},
		{"explicit field beats flattened", "m", nil, map[string]any{"a": []float64{1, 2}, "a_2": 9.0}, time.Time{}, `m a_1=1,a_2=9`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(EncodePoint(nil, tc.meas, tc.tags, tc.fields, tc.ts))
			if got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
			if got != "" {
				mustParse(t, []byte(got))
			}
		})
	}
}

func mustParse(t testing.TB, line []byte) protocol.Metric {
	t.Helper()
	ms, err := protocol.NewParser(protocol.NewMetricHandler()).Parse(append(line, '\n'))
	if err != nil || len(ms) != 1 {
		t.Fatalf("line %q does not parse as one point: %v (%d metrics)", line, err, len(ms))
	}
	return ms[0]
}

// FuzzEncodePoint checks that whatever names and values go in, the line parses
// as exactly one point with the same values; names that need no rewriting come
// back unchanged.
func FuzzEncodePoint(f *testing.F) {
	f.Add("smoke_telemetry", "device_id", "sm-001", "battery_pct", "ok", 97.5, true, int64(1751371200000000000))
	f.Add("a b,c", "k=1", `v\`, `f"`, "quote\"back\\slash\nnl", -1e300, false, int64(-5))
	f.Add("#x", "", "", "", "", 0.0, false, int64(0))
	f.Add(`\`, `\\`, `,=`, "\t", "\r\f", math.SmallestNonzeroFloat64, true, int64(1))
	f.Fuzz(func(t *testing.T, meas, tk, tv, fk, sv string, fv float64, bv bool, ts int64) {
		tags := map[string]string{tk: tv}
		fields := map[string]any{fk + "_f": fv, fk + "_b": bv, fk + "_s": sv}
		tm := time.Unix(0, ts)
		line := EncodePoint(nil, meas, tags, fields, tm)
		if meas == "" {
			if len(line) != 0 {
				t.Fatalf("no measurement but got %q", line)
			}
			return
		}
		if bytes.IndexByte(line, '\n') >= 0 && !strings.Contains(sv, "\n") {
			t.Fatalf("newline outside a string value: %q", line)
		}
		m := mustParse(t, line)
		if clean(meas) && meas[0] != '#' && m.Name() != meas {
			t.Fatalf("measurement %q came back as %q", meas, m.Name())
		}
		if tk != "" && tv != "" && clean(tk) && clean(tv) {
			if got := tagsOf(m)[tk]; got != tv {
				t.Fatalf("tag %q=%q came back as %q (line %q)", tk, tv, got, line)
			}
		}
		if m.Time().UnixNano() != ts && ts != 0 {
			t.Fatalf("time %d came back as %d", ts, m.Time().UnixNano())
		}
		if !clean(fk) {
			return
		}
		got := fieldsOf(m)
		if !math.IsNaN(fv) && !math.IsInf(fv, 0) {
			if g, ok := got[fk+"_f"].(float64); !ok || g != fv {
				t.Fatalf("float %v came back as %#v (line %q)", fv, got[fk+"_f"], line)
			}
		}
		if g, ok := got[fk+"_b"].(bool); !ok || g != bv {
			t.Fatalf("bool %v came back as %#v", bv, got[fk+"_b"])
		}
		want := strings.NewReplacer("\r", " ", "\f", " ").Replace(sv)
		if g, ok := got[fk+"_s"].(string); !ok || g != want {
			t.Fatalf("string %q came back as %#v (line %q)", sv, got[fk+"_s"], line)
		}
	})
}

// clean: a name the encoder writes without rewriting (escaping aside).
func clean(s string) bool {
	return s != "" && !strings.ContainsAny(s, "\\") && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// BenchmarkEncodeReading times EncodeReading for a smoke and an elec reading
// and, interleaved in the same loop (so machine load hits both alike), the
// client library's own route for the same point: write.NewPoint encoded by
// influxdata/line-protocol. It reports our ns/op and speedup = baseline/ours.
func BenchmarkEncodeReading(b *testing.B) {
	elec := &ingest.Reading{DeviceID: "el-00042", Class: ingest.ClassElec, Kind: ingest.KindTelemetry, Time: t0, Zone: "z-north", Forest: "f-pine",
		Fields: map[string]any{"residual_current_ma": []float64{12, 30.5, 7, 1}, "cable_temp_c": []float64{31.5, 32, 30.1, 29.9},
			"arc_fault": false, "alarm": false}}
	smoke := &ingest.Reading{DeviceID: "sm-00042", Class: ingest.ClassSmoke, Kind: ingest.KindTelemetry, Time: t0, Zone: "z-north",
		Fields: map[string]any{"alarm": false, "smoke_db_m": 0.02, "temperature_c": 21.5, "battery_pct": 97.0, "rssi_dbm": -71.0, "tamper": false}}
	for _, r := range []*ingest.Reading{smoke, elec} {
		b.Run(string(r.Class), func(b *testing.B) {
			flat := map[string]any{} // the client has no arrays: flatten as we do
			for k, v := range r.Fields {
				if a, ok := v.([]float64); ok {
					for i, x := range a {
						flat[k+"_"+strconv.Itoa(i+1)] = x
					}
				} else {
					flat[k] = v
				}
			}
			buf := make([]byte, 0, 512)
			var lbuf bytes.Buffer
			enc := protocol.NewEncoder(&lbuf)
			var ours, theirs time.Duration
			b.ReportAllocs()
			for done := 0; done < b.N; {
				n := min(1000, b.N-done)
				t1 := time.Now()
				for i := 0; i < n; i++ {
					buf = EncodeReading(buf[:0], r)
				}
				t2 := time.Now()
				for i := 0; i < n; i++ {
					lbuf.Reset()
					p := write.NewPoint(string(r.Class)+"_"+string(r.Kind),
						map[string]string{"device_id": r.DeviceID, "forest": r.Forest, "zone": r.Zone}, flat, r.Time)
					if _, err := enc.Encode(p); err != nil {
						b.Fatal(err)
					}
				}
				ours += t2.Sub(t1)
				theirs += time.Since(t2)
				done += n
			}
			b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "ours_ns/op")
			b.ReportMetric(float64(theirs)/float64(ours), "speedup_vs_client_point")
		})
	}
}

func tagsOf(m protocol.Metric) map[string]string {
	out := map[string]string{}
	for _, t := range m.TagList() {
		out[t.Key] = t.Value
	}
	return out
}

func fieldsOf(m protocol.Metric) map[string]any {
	out := map[string]any{}
	for _, f := range m.FieldList() {
		out[f.Key] = f.Value
	}
	return out
}
