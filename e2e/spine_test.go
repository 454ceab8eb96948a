package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookoutfire/lookout/internal/testenv"
)

// 10,000 readings of every class through the embedded broker → exactly 10,000 points.
func TestEmbeddedBroker10kReadings(t *testing.T) {
	in := testenv.StartInflux(t)
	g := startGateway(t, in, "")
	rs := genReadings(10000, time.Now().Add(-time.Hour), "emb")
	publish(t, "tcp://"+g.MQTTAddr, "e2e-pub", rs, 0, 200)
	waitPoints(t, in, 10000, 2*time.Minute)
}

// The same through a real Mosquitto with the gateway as a persistent-session client.
func TestMosquitto10kReadings(t *testing.T) {
	in := testenv.StartInflux(t)
	mq := testenv.StartMosquitto(t)
	g := startGateway(t, in, mq.URL)
	waitSubscribed(t, g)
	rs := genReadings(10000, time.Now().Add(-time.Hour), "mq")
	publish(t, mq.URL, "e2e-pub", rs, 0, 200)
	waitPoints(t, in, 10000, 2*time.Minute)
}

// InfluxDB stopped for 30 s in the middle of a stream, then restarted: every
// reading is in InfluxDB afterwards, and the spool held them meanwhile.
func TestInfluxDownThirtySeconds(t *testing.T) {
	in := testenv.StartInflux(t)
	g := startGateway(t, in, "")
	const n = 8000
	rs := genReadings(n, time.Now().Add(-time.Hour), "down")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		publish(t, "tcp://"+g.MQTTAddr, "e2e-pub", rs, 200, 100) // ~40 s of stream
	}()
	time.Sleep(5 * time.Second)
	in.Stop()
	stoppedAt := time.Now()
	time.Sleep(15 * time.Second)
	if b := g.metric(t, "lookout_spool_bytes"); b <= 0 {
		t.Errorf("spool holds %v bytes while InfluxDB is down; want > 0", b)
	}
	time.Sleep(30*time.Second - time.Since(stoppedAt))
	in.Restart()
	in.WaitReady(t)
	wg.Wait()
	waitPoints(t, in, n, 3*time.Minute)
}

// The gateway killed with SIGKILL in the middle of a stream (external Mosquitto,
// persistent session), then restarted: every reading is in InfluxDB.
func TestGatewaySIGKILLMidStream(t *testing.T) {
	in := testenv.StartInflux(t)
	mq := testenv.StartMosquitto(t)
	g := startGateway(t, in, mq.URL)
	waitSubscribed(t, g)
	const n = 10000
	rs := genReadings(n, time.Now().Add(-time.Hour), "kill")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		publish(t, mq.URL, "e2e-pub", rs, 1000, 200) // ~10 s of stream
	}()
	time.Sleep(3 * time.Second)
	g.kill()
	time.Sleep(2 * time.Second)
	g.start()
	wg.Wait()
	waitPoints(t, in, n, 3*time.Minute)
}

// A malformed reading is rejected, counted by reason and dead-lettered; the
// next reading flows.
func TestMalformedReadingIsDeadLetteredAndNextFlows(t *testing.T) {
	in := testenv.StartInflux(t)
	g := startGateway(t, in, "")
	url := "tcp://" + g.MQTTAddr

	dead := make(chan paho.Message, 4)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("e2e-dl"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("fire/deadletter/#", 1, func(_ paho.Client, m paho.Message) { dead <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	now := time.Now().Add(-time.Minute).UnixMilli()
	bad := reading{topic: "fire/station/dl-st-001/telemetry",
		payload: []byte(fmt.Sprintf(`{"ts":%d,"air_temp_c":21,"rh_pct":140,"wind_speed_ms":2,"wind_dir_deg":10,"precip_mm":0}`, now))}
	good := genReadings(4, time.Now().Add(-time.Minute), "dl")
	publish(t, url, "e2e-pub", append([]reading{bad}, good...), 0, 1)

	select {
	case m := <-dead:
		if m.Topic() != "fire/deadletter/out_of_range" {
			t.Errorf("dead letter topic = %q, want fire/deadletter/out_of_range", m.Topic())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no dead letter published")
	}
	waitPoints(t, in, 4, time.Minute)
	if v := g.metric(t, `lookout_ingest_rejected_total{reason="out_of_range"}`); v != 1 {
		t.Errorf("rejected out_of_range = %v, want 1", v)
	}
}

func waitSubscribed(t *testing.T, g *gateway) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var r struct {
			Ready      bool `json:"ready"`
			Components []struct {
				Name  string `json:"name"`
				Ready bool   `json:"ready"`
			} `json:"components"`
		}
		_ = g.getJSON("/readyz", &r)
		for _, c := range r.Components {
			if c.Name == "mqtt" && c.Ready {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("gateway never subscribed to the external broker")
}
