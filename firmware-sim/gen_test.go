package main

import (
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/registry"
)

func seedDevices(t testing.TB) []registry.Device {
	t.Helper()
	devs, err := registry.ReadFile("../seeds/devices.yaml", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return devs
}

var lim = ingest.DefaultConfig().Limits

// decodeOK decodes m as the gateway would at time now and fails the test on a reject.
func decodeOK(t *testing.T, m message, now time.Time) ingest.Reading {
	t.Helper()
	r, err := ingest.Decode("fire", m.topic, m.payload, now, lim)
	if err != nil {
		t.Fatalf("%s %s: %v", m.topic, m.payload, err)
	}
	return r
}

// TestGeneratedPayloadsDecode runs every seed device through two simulated
// days (every 7 minutes, all message kinds, faults and frequent alarms) and
// checks that each payload passes the gateway's validation, that the fault and
// alarm events actually occur, and that the values behave like the field.
func TestGeneratedPayloadsDecode(t *testing.T) {
	devs := seedDevices(t)
	start := time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC)
	events := map[string]int{}
	kinds := map[ingest.Kind]int{}
	var elecNormal, elecN int
	var tempAt15, tempAt03, n15, n03 float64
	for i, d := range devs {
		sd := newSimDevice(d, "fire", uint64(i), start)
		if i%3 == 0 {
			sd.setLowBattery()
		}
		if d.Class == ingest.ClassSmoke && i%2 == 0 {
			sd.setTamper()
		}
		for step := range 48 * 60 / 7 {
			now := start.Add(time.Duration(step) * 7 * time.Minute)
			var ms []message
			ms = append(ms, sd.heartbeat(now))
			ms = append(ms, sd.telemetry(now, 0.05)...)
			if d.Class == ingest.ClassCamera {
				ms = append(ms, sd.detection(now))
			}
			ms = append(ms, sd.takeEvents(now)...)
			ms = append(ms, sd.loadMessage(now))
			for _, m := range ms {
				r := decodeOK(t, m, now.Add(time.Second))
				kinds[r.Kind]++
				if r.Kind == ingest.KindEvent {
					ev, _ := r.String("event")
					events[string(d.Class)+"/"+ev]++
				}
				if r.Class == ingest.ClassElec && r.Kind == ingest.KindTelemetry {
					if a, _ := r.Bool("alarm"); !a {
						res, _ := r.Floats("residual_current_ma")
						for _, v := range res {
							elecN++
							if v >= 100 && v <= 200 {
								elecNormal++
							}
						}
					}
				}
				if r.Class == ingest.ClassStation && r.Kind == ingest.KindTelemetry {
					temp, _ := r.Float("air_temp_c")
					switch now.In(cst).Hour() {
					case 15:
						tempAt15, n15 = tempAt15+temp, n15+1
					case 3:
						tempAt03, n03 = tempAt03+temp, n03+1
					}
				}
				if !r.Time.Equal(now.Truncate(time.Millisecond)) {
					t.Fatalf("%s: ts %v, want %v", m.topic, r.Time, now)
				}
			}
		}
	}
	for _, k := range []ingest.Kind{ingest.KindTelemetry, ingest.KindHeartbeat, ingest.KindEvent, ingest.KindDetection} {
		if kinds[k] == 0 {
			t.Errorf("no %s messages generated", k)
		}
	}
	for _, e := range []string{"smoke/alarm", "smoke/alarm_cleared", "smoke/low_battery", "smoke/tamper",
		"station/low_battery", "elec/residual_alarm", "elec/alarm_cleared"} {
		if events[e] == 0 {
			t.Errorf("event %s never generated (got %v)", e, events)
		}
	}
	if share := float64(elecNormal) / float64(elecN); share < 0.9 {
		t.Errorf("only %.0f%% of normal residual currents within 100–200 mA", share*100)
	}
	if tempAt15/n15 < tempAt03/n03+8 {
		t.Errorf("no diurnal cycle: mean %.1f °C at 15:00 vs %.1f °C at 03:00", tempAt15/n15, tempAt03/n03)
	}
}

// TestDetectionEdgeCameras: a camera whose id uses the whole 63–64 bytes the
// protocol allows, or whose registered hfov is a narrow zoom, still produces
// detections the gateway accepts, with the hfov exactly as registered and a
// track_id within its 64 bytes.
func TestDetectionEdgeCameras(t *testing.T) {
	now := time.Date(2025, 4, 2, 6, 0, 0, 0, time.UTC)
	cases := []struct {
		id   string
		hfov float64
	}{
		{strings.Repeat("c", 64), 58},
		{"cam-" + strings.Repeat("9", 59), 58}, // 63 bytes
		{"cam-tele", 0.04},                     // printed with one decimal this was 0.0
		{"cam-tele2", 0.001},
		{strings.Repeat("z", 64), 0.049},
		{"cam-wide", 180},
		{"cam-odd", 33.3333333333},
	}
	for i, tc := range cases {
		pan, hfov := 10.0, tc.hfov
		d := registry.Device{ID: tc.id, Class: ingest.ClassCamera, Name: "edge", Lat: 31.5, Lon: 107, PanDeg: &pan, HFOVDeg: &hfov}
		if _, err := (registry.Input{ID: d.ID, Class: string(d.Class), Name: d.Name, Lat: &d.Lat, Lon: &d.Lon,
			PanDeg: d.PanDeg, HFOVDeg: d.HFOVDeg}).Device(time.Minute); err != nil {
			t.Fatalf("%s: the registry refuses the fixture: %v", tc.id, err)
		}
		sd := newSimDevice(d, "fire", uint64(i), now)
		sd.track = 1_000_000_000 // a long-running camera
		for range 3 {
			r := decodeOK(t, sd.detection(now), now)
			if got, _ := r.Float("hfov_deg"); got != tc.hfov {
				t.Errorf("%s: hfov_deg %v, want %v", tc.id, got, tc.hfov)
			}
			if id, ok := r.String("track_id"); !ok || id == "" || len(id) > 64 {
				t.Errorf("%s: track_id %q (%d bytes)", tc.id, id, len(id))
			}
		}
	}
}

// TestMalformedRejected checks that every malformed variant is refused by the
// gateway's decoder with the reason it was built to trigger.
func TestMalformedRejected(t *testing.T) {
	devs := seedDevices(t)
	now := time.Date(2025, 4, 2, 6, 0, 0, 0, time.UTC)
	for i, d := range devs {
		sd := newSimDevice(d, "fire", uint64(i), now)
		for v, mk := range malformedKinds {
			m := sd.malformed(now, v, lim.MaxPayload)
			_, err := ingest.Decode("fire", m.topic, m.payload, now, lim)
			if got := ingest.ReasonOf(err); got != mk.reason {
				t.Errorf("%s/%s: reason %q (%v), want %q; payload %.120s", d.ID, mk.name, got, err, mk.reason, m.payload)
			}
		}
	}
}

func TestParseFlags(t *testing.T) {
	cases := []struct {
		args []string
		err  string
	}{
		{nil, ""},
		{[]string{"--speed", "60", "--offline", "2", "--low-battery", "--tamper", "--malformed-rate", "0.01", "--alarm-every", "5m", "--shared-conn"}, ""},
		{[]string{"--load", "1000", "--load-conns", "2", "--inflight", "64"}, ""},
		{[]string{"--speed", "0"}, "--speed"},
		{[]string{"--malformed-rate", "1.5"}, "--malformed-rate"},
		{[]string{"--offline", "-1"}, "--offline"},
		{[]string{"--inflight", "0"}, "--inflight"},
		{[]string{"--password", "x"}, "--username"},
		{[]string{"--credentials", "f", "--username", "u"}, "exclude"},
		{[]string{"--nonsense"}, "not defined"},
	}
	for _, tc := range cases {
		var sb strings.Builder
		_, err := parseFlags(tc.args, &sb)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.err)
		}
	}
}
