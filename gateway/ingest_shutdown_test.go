package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookoutfire/lookout/alerting"
	"github.com/lookoutfire/lookout/config"
	"github.com/lookoutfire/lookout/internal/testenv"
	"github.com/lookoutfire/lookout/registry"
)

// TestShutdownWithSpoolFull: InfluxDB is down and the spool is full, so a
// device's QoS 1 publish waits in the embedded broker for spool space. Stopping
// the gateway must not wait for InfluxDB: Run returns within seconds and the
// publish is left unacknowledged, for the device to send again.
func TestShutdownWithSpoolFull(t *testing.T) {
	var cfg config.Config
	a := testApp(t, func(c *config.Config) {
		c.HTTP.Addr = "127.0.0.1:0"
		c.MQTT.EmbeddedAddr = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
		c.Influx.URL = "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) // nothing listens: InfluxDB is down
		c.Spool.MaxBytes, c.Spool.SegmentBytes = 1<<20, 1<<20
		c.Auth.InsecureDev = true // anonymous MQTT
		cfg = *c
	})
	if err := a.devices.Create(context.Background(), registry.Device{ID: "sm-1", Class: "smoke", Name: "alarm", Lat: 31.5, Lon: 107.0}); err != nil {
		t.Fatal(err)
	}
	// One record that leaves less room than any reading needs: the spool is full.
	if err := a.spool.Append(context.Background(), bytes.Repeat([]byte("x"), 1<<20-100)); err != nil {
		t.Fatal(err)
	}

	cancel, done := runApp(t, a)
	defer cancel()
	c := testenv.MQTTClient(t, cfg.MQTT.EmbeddedAddr, "sm-1")
	tok := c.Publish("fire/smoke/sm-1/telemetry", 1, false,
		`{"alarm":false,"smoke_db_m":0.01,"temperature_c":21.5,"battery_pct":80,"rssi_dbm":-75,"tamper":false}`)
	blocked := func() bool { return metricValue(t, a, "lookout_spool_blocked_total") >= 1 }
	for deadline := time.Now().Add(10 * time.Second); !blocked(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the publish never reached the full spool")
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = a.spool.Close() // frees the blocked publish, so Run ends before Cleanup closes the rest
		<-done
		t.Fatal("gateway shutdown hangs while a publish waits for spool space")
	}
	if tok.WaitTimeout(100*time.Millisecond) && tok.Error() == nil {
		t.Fatal("the publish was acknowledged although its reading was not stored")
	}
	if acc, _ := a.pipeline.Counts(); acc != 0 {
		t.Fatalf("pipeline accepted %d readings", acc)
	}
}

// TestShutdownEvaluatesEveryAckedAlarm: a burst of smoke alarms is acknowledged
// by the embedded broker and the gateway is stopped at once. Every alarm that
// was acknowledged (stored) is also evaluated before Run returns: stopping
// intake comes first, and the alerting engine drains its queue after.
func TestShutdownEvaluatesEveryAckedAlarm(t *testing.T) {
	var cfg config.Config
	a := testApp(t, func(c *config.Config) {
		c.HTTP.Addr = "127.0.0.1:0"
		c.MQTT.EmbeddedAddr = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
		c.Influx.URL = "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) // down: readings wait in the spool
		c.Auth.InsecureDev = true                                              // anonymous MQTT
		cfg = *c
	})
	const n = 12 // ~50 ms an alarm under -race: a tenth of the 5 s drain bound, room for a loaded machine
	ctx := context.Background()
	for i := range n {
		d := registry.Device{ID: fmt.Sprintf("sm-%03d", i), Class: "smoke", Name: "alarm", Lat: 31.5, Lon: 107.0}
		if err := a.devices.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	cancel, done := runApp(t, a)
	defer cancel()
	var toks []paho.Token
	for i := range n {
		id := fmt.Sprintf("sm-%03d", i)
		c := testenv.MQTTClient(t, cfg.MQTT.EmbeddedAddr, id)
		toks = append(toks, c.Publish("fire/smoke/"+id+"/event", 1, false, `{"event":"alarm","smoke_db_m":0.4}`))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("alarm %d not acknowledged: %v", i, tok.Error())
		}
	}
	queued := metricValue(t, a, "lookout_alerting_queue_depth")
	cancel() // at once: alarms are still waiting for evaluation
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not stop")
	}
	alerts, err := a.alerts.List(ctx, alerting.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, al := range alerts {
		if al.Type == alerting.TypeSmokeAlarm {
			got++
		}
	}
	t.Logf("%d alarms queued for evaluation at the stop", int(queued))
	if got != n {
		t.Fatalf("%d of %d acknowledged alarms became alerts", got, n)
	}
}

// runApp runs a until the returned cancel, waiting for it to start; done
// gets Run's result.
func runApp(t *testing.T, a *App) (context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.started:
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("gateway did not start")
	}
	return cancel, done
}

// metricValue is the value of a's first series of metric name (a counter or
// a gauge), or -1 when a has no such metric.
func metricValue(t *testing.T, a *App, name string) float64 {
	t.Helper()
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		if m := mf.GetMetric()[0]; m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		} else if m.GetGauge() != nil {
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// TestShutdownHungIsBounded: a component that ignores its context must not
// keep the gateway from exiting. Run gives up after the shutdown limit with
// ErrShutdownHung, and Close leaves the stores alone (closing them under a
// live component could hang again; the stores are crash-safe).
func TestShutdownHungIsBounded(t *testing.T) {
	a := testApp(t, func(c *config.Config) {
		c.HTTP.Addr = "127.0.0.1:0"
		c.MQTT.EmbeddedAddr = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
		c.Auth.InsecureDev = true
	})
	release := make(chan struct{})
	a.extra = append(a.extra, func(context.Context) error { <-release; return nil })
	a.shutdownLimit = time.Second
	cancel, done := runApp(t, a)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrShutdownHung) {
			t.Fatalf("Run: %v, want ErrShutdownHung", err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("Run waits for a stuck component without limit")
	}
	a.Close()
	if err := a.db.PingContext(context.Background()); err != nil {
		t.Fatalf("Close closed the database under a running component: %v", err)
	}
	close(release)
	select {
	case <-a.stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the shutdown did not finish once the component returned")
	}
	a.hung = false // the component is done: the test's cleanup may close the stores
}
