package ingest

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTopic(t *testing.T) {
	long := strings.Repeat("a", 64)
	cases := []struct {
		prefix, topic string
		class         Class
		dev           string
		kind          Kind
		field         string // "" = accepted; else the Reject.Field
	}{
		{"fire", "fire/smoke/SA-0001/telemetry", ClassSmoke, "SA-0001", KindTelemetry, ""},
		{"fire", "fire/station/ws.12_b/event", ClassStation, "ws.12_b", KindEvent, ""},
		{"fire", "fire/elec/E1/heartbeat", ClassElec, "E1", KindHeartbeat, ""},
		{"fire", "fire/camera/cam-7/detection", ClassCamera, "cam-7", KindDetection, ""},
		{"fire", "fire/camera/cam-7/event", ClassCamera, "cam-7", KindEvent, ""},
		{"fire", "fire/camera/" + long + "/heartbeat", ClassCamera, long, KindHeartbeat, ""},
		{"org/fire", "org/fire/smoke/S1/event", ClassSmoke, "S1", KindEvent, ""},

		{"fire", "fire/camera/" + long + "a/heartbeat", "", "", "", "device_id"},
		{"fire", "fire/smoke//telemetry", "", "", "", "device_id"},
		{"fire", "fire/smoke/+/telemetry", "", "", "", "device_id"},
		{"fire", "fire/smoke/#/telemetry", "", "", "", "device_id"},
		{"fire", "fire/smoke/-S1/telemetry", "", "", "", "device_id"},
		{"fire", "fire/smoke/.S1/telemetry", "", "", "", "device_id"},
		{"fire", "fire/smoke/S 1/telemetry", "", "", "", "device_id"},
		{"fire", "fire/smoke/S\u00e91/telemetry", "", "", "", "device_id"},
		{"fire", "fire/smoke/S1/telemetry/extra", "", "", "", "kind"},
		{"fire", "fire/smoke/S1/telemetry/", "", "", "", "kind"},
		{"fire", "fire/smoke/S1", "", "", "", "kind"},
		{"fire", "fire/smoke", "", "", "", "kind"},
		{"fire", "fire/", "", "", "", "kind"},
		{"fire", "fire", "", "", "", "prefix"},
		{"fire", "", "", "", "", "prefix"},
		{"fire", "/fire/smoke/S1/telemetry", "", "", "", "prefix"},
		{"fire", "fires/smoke/S1/telemetry", "", "", "", "prefix"},
		{"fire", "Fire/smoke/S1/telemetry", "", "", "", "prefix"},
		{"fire", "fire/deadletter/bad_json/x", "", "", "", "class"},
		{"fire", "fire/Smoke/S1/telemetry", "", "", "", "class"},
		{"fire", "fire/smoke/S1/Telemetry", "", "", "", "kind"},
		{"fire", "fire/smoke/S1/detection", "", "", "", "kind"},
		{"fire", "fire/station/S1/detection", "", "", "", "kind"},
		{"fire", "fire/elec/S1/detection", "", "", "", "kind"},
		{"fire", "fire/camera/S1/telemetry", "", "", "", "kind"},
	}
	for _, tc := range cases {
		t.Run(tc.topic, func(t *testing.T) {
			c, d, k, err := ParseTopic(tc.prefix, tc.topic)
			if tc.field == "" {
				if err != nil || c != tc.class || d != tc.dev || k != tc.kind {
					t.Fatalf("got %q %q %q %v, want %q %q %q", c, d, k, err, tc.class, tc.dev, tc.kind)
				}
				return
			}
			var rej *Reject
			if !errors.As(err, &rej) || rej.Reason != ReasonBadTopic || rej.Field != tc.field {
				t.Fatalf("got %q %q %q %v, want bad_topic on %s", c, d, k, err, tc.field)
			}
		})
	}
}

func TestClassKinds(t *testing.T) {
	for _, c := range Classes {
		if !c.Sends(KindHeartbeat) || !c.Sends(KindEvent) {
			t.Errorf("%s must send heartbeat and event", c)
		}
		if c.Sends(KindDetection) != (c == ClassCamera) {
			t.Errorf("%s detection: only cameras detect", c)
		}
		for _, k := range c.Kinds() {
			sch := schemaFor(c, k)
			if sch == nil {
				t.Errorf("%s %s has no schema", c, k)
				continue
			}
			// Decode tracks seen fields in a uint64 (2 bits for ts, device_id).
			if len(sch.fields) > 62 {
				t.Errorf("%s %s: %d fields do not fit the seen mask", c, k, len(sch.fields))
			}
			names := map[string]bool{"ts": true, "device_id": true}
			for _, f := range sch.fields {
				if names[f.name] {
					t.Errorf("%s %s: field %s defined twice", c, k, f.name)
				}
				names[f.name] = true
				if f.typ == tNums && (f.minLen < 1 || f.maxLen > 4 || f.minLen > f.maxLen) {
					t.Errorf("%s %s: %s array bounds %d..%d do not fit the 4-slot buffer", c, k, f.name, f.minLen, f.maxLen)
				}
			}
		}
	}
	if Class("water").Sends(KindTelemetry) || len(Class("").Kinds()) != 0 {
		t.Error("unknown class sends something")
	}
}

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"fire/smoke/SA-0001/telemetry", "fire/camera/c.1/detection", "fire/elec/E_1/heartbeat",
		"fire/station/W1/event", "fire/smoke/+/telemetry", "fire//x/y", "fire/smoke/S1/a/b", "$share/g/fire/smoke/S1/event"} {
		f.Add("fire", s)
	}
	f.Add("a/b", "a/b/elec/X/event")
	f.Fuzz(func(t *testing.T, prefix, topic string) {
		c, d, k, err := ParseTopic(prefix, topic)
		if err != nil {
			var rej *Reject
			if !errors.As(err, &rej) || rej.Reason != ReasonBadTopic || rej.Field == "" {
				t.Fatalf("error %v is not a bad_topic reject with a field", err)
			}
			return
		}
		if !c.Valid() || !k.Valid() || !c.Sends(k) || !ValidDeviceID(d) || strings.ContainsAny(d, "+#/ \x00") {
			t.Fatalf("accepted %q %q %q from %q", c, d, k, topic)
		}
		want := string(c) + "/" + d + "/" + string(k)
		if prefix != "" {
			want = prefix + "/" + want
		}
		if want != topic {
			t.Fatalf("parts %q do not rebuild topic %q", want, topic)
		}
	})
}
