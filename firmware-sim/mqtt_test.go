package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/internal/testenv"
)

// collector subscribes to fire/# at QoS 1 and keeps every message.
type collector struct {
	mu   sync.Mutex
	msgs []received
}

type received struct {
	topic   string
	payload []byte
	at      time.Time
}

func collect(t *testing.T, url string) *collector {
	t.Helper()
	col := &collector{}
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID("sim-test-collector").SetCleanSession(true).
		SetOrderMatters(false)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("collector connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe("fire/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		col.mu.Lock()
		col.msgs = append(col.msgs, received{m.Topic(), append([]byte(nil), m.Payload()...), time.Now()})
		col.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return col
}

func (c *collector) snapshot() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]received(nil), c.msgs...)
}

func (c *collector) waitFor(t *testing.T, n int, d time.Duration) []received {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if got := c.snapshot(); len(got) >= n {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := c.snapshot()
	t.Fatalf("collector got %d messages, want %d", len(got), n)
	return got
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testOptions(t *testing.T, broker string, args ...string) options {
	t.Helper()
	o, err := parseFlags(append([]string{"--devices", "../seeds/devices.yaml", "--broker", broker, "--stats-every", "0"}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestLoadThroughMosquitto: --load publishes exactly N valid, distinct
// readings through a real broker and reports a rate.
func TestLoadThroughMosquitto(t *testing.T) {
	mq := testenv.StartMosquitto(t)
	col := collect(t, mq.URL)
	const n = 3000
	o := testOptions(t, mq.URL, "--load", "3000", "--load-conns", "3", "--inflight", "64")
	res, err := runLoad(t.Context(), o, seedDevices(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.n != n || res.failed != 0 || res.rate() <= 0 {
		t.Fatalf("result %v", res)
	}
	t.Log(res)
	col.waitFor(t, n, 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	got := col.snapshot()
	if len(got) != n {
		t.Fatalf("collector got %d, want exactly %d", len(got), n)
	}
	seen := map[time.Time]bool{}
	classes := map[ingest.Class]int{}
	now := time.Now()
	for _, m := range got {
		r, err := ingest.Decode("fire", m.topic, m.payload, now, lim)
		if err != nil {
			t.Fatalf("%s %s: %v", m.topic, m.payload, err)
		}
		if seen[r.Time] {
			t.Fatalf("timestamp %v twice: readings would collapse into one point", r.Time)
		}
		seen[r.Time] = true
		classes[r.Class]++
	}
	for _, c := range ingest.Classes {
		if classes[c] == 0 {
			t.Errorf("no %s readings in the load mix", c)
		}
	}
}

// TestSimulateFaults runs the fleet time-lapsed (1 min = 50 ms) with every
// fault switched on and checks what arrives at the broker.
func TestSimulateFaults(t *testing.T) {
	mq := testenv.StartMosquitto(t)
	col := collect(t, mq.URL)
	o := testOptions(t, mq.URL, "--speed", "1200", "--offline", "3", "--offline-after", "20m",
		"--low-battery", "--tamper", "--malformed-rate", "0.1", "--alarm-every", "30m", "--detect-every", "5m", "--seed", "3")
	devs := seedDevices(t)
	p := makePlan(o, devs)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
	defer cancel()
	if err := simulate(ctx, o, devs, nil, quiet()); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	got := col.snapshot()
	// Each device's offline clock starts when it does (after the devices
	// before it have connected), and it sends a heartbeat at once: its first
	// arrival marks its start. The margin covers delivery delays.
	first := map[string]time.Time{}
	for _, m := range got {
		if r, err := ingest.Decode("fire", m.topic, m.payload, m.at, lim); err == nil {
			if f, ok := first[r.DeviceID]; !ok || m.at.Before(f) {
				first[r.DeviceID] = m.at
			}
		}
	}
	const margin = 500 * time.Millisecond
	silentFrom := func(id string) time.Time { return first[id].Add(scale(o.offlineAfter, o.speed) + margin) }
	perDevice := map[string]int{}
	late := map[string]int{}
	events := map[string]int{}
	var malformed int
	for _, m := range got {
		r, err := ingest.Decode("fire", m.topic, m.payload, m.at, lim)
		if err != nil {
			malformed++
			continue
		}
		perDevice[r.DeviceID]++
		if m.at.After(silentFrom(r.DeviceID)) {
			late[r.DeviceID]++
		}
		// a fault shows as an event or in the telemetry (an event may have
		// been replaced by a malformed message)
		if ev, ok := r.String("event"); ok {
			events[string(r.Class)+"/"+ev]++
		}
		if v, _ := r.Bool("tamper"); v {
			events["smoke/tamper"]++
		}
		if v, _ := r.Bool("alarm"); v && r.Class == ingest.ClassSmoke {
			events["smoke/alarm"]++
		}
		if v, ok := r.Float("battery_pct"); ok && v < 13 && r.Class == ingest.ClassSmoke {
			events["smoke/low_battery"]++
		}
	}
	for _, d := range devs {
		switch {
		case perDevice[d.ID] == 0:
			t.Errorf("%s published nothing", d.ID)
		case p.offline[d.ID] && late[d.ID] > 0:
			t.Errorf("%s should be silent after %v but sent %d", d.ID, o.offlineAfter, late[d.ID])
		case !p.offline[d.ID] && late[d.ID] == 0 && silentFrom(d.ID).Before(end.Add(-margin)):
			t.Errorf("%s went silent without being told to", d.ID)
		}
	}
	if len(p.offline) != 3 {
		t.Errorf("plan silences %d devices, want 3", len(p.offline))
	}
	if malformed == 0 || malformed > len(got)/4 {
		t.Errorf("%d of %d messages malformed at rate 0.1", malformed, len(got))
	}
	for _, e := range []string{"smoke/alarm", "smoke/tamper", "smoke/low_battery"} {
		if events[e] == 0 {
			t.Errorf("no %s event (events: %v)", e, events)
		}
	}
}

func TestCredentialsFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "creds.yaml")
	if err := os.WriteFile(p, []byte("smoke-0001: s3cret\ncam-0001: \"p:w\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := loadCredentials(p)
	if err != nil || m["smoke-0001"] != "s3cret" || m["cam-0001"] != "p:w" {
		t.Fatalf("%v %v", m, err)
	}
	if err := os.WriteFile(p, []byte("- a\n- b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCredentials(p); err == nil || !strings.Contains(err.Error(), "map") {
		t.Fatalf("list accepted: %v", err)
	}
	// shared connection cannot carry per-device credentials
	o := testOptions(t, "tcp://127.0.0.1:1", "--shared-conn")
	if err := simulate(t.Context(), o, seedDevices(t), m, quiet()); err == nil || !strings.Contains(err.Error(), "per device") {
		t.Fatalf("shared-conn with credentials: %v", err)
	}
}
