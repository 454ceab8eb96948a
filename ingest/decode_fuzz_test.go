package ingest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzTopics are the topics FuzzDecode aims payloads at: every protocol pair
// plus a few wrong ones.
var fuzzTopics = func() []string {
	var ts []string
	for _, c := range Classes {
		for _, k := range c.Kinds() {
			ts = append(ts, topicOf(c, k))
		}
	}
	return append(ts, "fire/smoke/S1/detection", "fire/camera/C 1/detection", "fire/x/y/z")
}()

// FuzzDecode feeds arbitrary bytes to Decode on every topic. Decode must never
// panic, every error must be a *Reject with a listed reason and a detail, and
// an accepted Reading must satisfy the protocol invariants and agree with
// encoding/json's reading of the same payload (so the hand-written scanner
// cannot accept anything that is not JSON, nor misread a value).
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "valid", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		base := strings.TrimSuffix(filepath.Base(p), ".json")
		for i, tp := range fuzzTopics {
			if strings.HasSuffix(tp, "/"+base[strings.IndexByte(base, '_')+1:]) && strings.HasPrefix(tp, "fire/"+base[:strings.IndexByte(base, '_')]+"/") {
				f.Add(uint8(i), b)
			}
		}
	}
	for _, s := range []string{`{}`, `{"uptime_s":1,"fw":"a"}`, `{"uptime_s":1e999,"fw":"a"}`, `{"fw":"\ud800\udc00","uptime_s":0}`,
		`{"residual_current_ma":[1,2,3,4],"cable_temp_c":[-50]}`, `{"event":"alarm"}`, `{"box":[0,0,1,1]}`, `[`, `{"a":{"b":[[]]}}`} {
		for i := range fuzzTopics {
			f.Add(uint8(i), []byte(s))
		}
	}
	lim := testLimits()
	lim.MaxSnapshot = 1 << 10
	f.Fuzz(func(t *testing.T, ti uint8, payload []byte) {
		topic := fuzzTopics[int(ti)%len(fuzzTopics)]
		r, err := Decode("fire", topic, payload, testNow, lim)
		if err != nil {
			var rej *Reject
			if !errors.As(err, &rej) || !knownReason(rej.Reason) || rej.Detail == "" {
				t.Fatalf("error %#v is not a reject with a known reason and a detail", err)
			}
			return
		}
		checkInvariants(t, topic, payload, r, testNow, lim)
		agreesWithEncodingJSON(t, payload, r)
	})
}

func agreesWithEncodingJSON(t *testing.T, payload []byte, r Reading) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatalf("accepted a payload encoding/json refuses: %v", err)
	}
	n := 0
	for k, v := range m {
		switch k {
		case "ts":
			continue
		case "device_id":
			if v != r.DeviceID {
				t.Fatalf("device_id %v accepted on topic device %q", v, r.DeviceID)
			}
			continue
		case "snapshot_jpeg":
			img, err := base64.StdEncoding.DecodeString(v.(string))
			if err != nil || string(img) != string(r.Snapshot) {
				t.Fatalf("snapshot differs from encoding/json + base64 (%v)", err)
			}
			continue
		}
		n++
		got, ok := r.Fields[k]
		if !ok {
			t.Fatalf("payload key %q missing from Fields", k)
		}
		switch v := v.(type) {
		case float64:
			if g, ok := got.(float64); !ok || (g != v && !(math.IsNaN(g) && math.IsNaN(v))) {
				t.Fatalf("%s: got %#v, encoding/json %#v", k, got, v)
			}
		case bool, string:
			if got != v {
				t.Fatalf("%s: got %#v, encoding/json %#v", k, got, v)
			}
		case []any:
			g, ok := got.([]float64)
			if !ok || len(g) != len(v) {
				t.Fatalf("%s: got %#v, encoding/json %#v", k, got, v)
			}
			for i := range v {
				if x, ok := v[i].(float64); !ok || x != g[i] {
					t.Fatalf("%s[%d]: got %v, encoding/json %#v", k, i, g[i], v[i])
				}
			}
		default:
			t.Fatalf("%s: accepted JSON value of type %T", k, v)
		}
	}
	if n != len(r.Fields) {
		t.Fatalf("Fields has %d entries, payload %d", len(r.Fields), n)
	}
}
