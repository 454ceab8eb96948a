package broker

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/store"
)

type deviceMap map[string]string

func (m deviceMap) DeviceClass(id string) (string, bool) { c, ok := m[id]; return c, ok }

type authEnv struct {
	tb    *testBroker
	st    *auth.Store
	ma    *auth.MQTTAuth
	reg   *prometheus.Registry
	creds map[string]string
}

func startAuthBroker(t *testing.T) *authEnv {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "auth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	cfg := auth.DefaultConfig()
	st, err := auth.OpenStore(ctx, db, cfg, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	devs := deviceMap{"smoke-a": "smoke", "smoke-b": "smoke", "cam-1": "camera"}
	ma, err := auth.NewMQTTAuth(st, devs, "fire", cfg, clock.Real{}, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	env := &authEnv{st: st, ma: ma, reg: reg, creds: map[string]string{}}
	for _, u := range []struct {
		name string
		kind auth.MQTTKind
	}{{"smoke-a", auth.MQTTDevice}, {"smoke-b", auth.MQTTDevice}, {"ops", auth.MQTTMonitor}, {"ghost", auth.MQTTDevice}} {
		pw, err := st.IssueMQTT(ctx, u.name, u.kind)
		if err != nil {
			t.Fatal(err)
		}
		env.creds[u.name] = pw
	}
	env.tb = startTestBroker(t, Limits{}, mqtt.Hook(NewAuthHook(ma)))
	return env
}

func (e *authEnv) client(t *testing.T, clientID, user, pass string) (paho.Client, error) {
	return e.clientWill(t, clientID, user, pass, "")
}

// clientWill is client with a retained QoS 1 will on willTopic ("" = none).
func (e *authEnv) clientWill(t *testing.T, clientID, user, pass, willTopic string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker("tcp://" + e.tb.addr).SetClientID(clientID).
		SetUsername(user).SetPassword(pass).SetConnectTimeout(3 * time.Second).SetAutoReconnect(false).SetConnectRetry(false).
		SetProtocolVersion(4) // paho otherwise retries a refused CONNECT as MQTT 3.1
	if willTopic != "" {
		o.SetWill(willTopic, "forged", 1, true)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, context.DeadlineExceeded
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

func (e *authEnv) refusals(reason string) float64 {
	mfs, _ := e.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "lookout_mqtt_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

func TestEmbeddedBrokerAuthentication(t *testing.T) {
	e := startAuthBroker(t)
	cases := []struct {
		name, clientID, user, pass string
		reason                     string // "" = accepted
	}{
		{"device with its password", "smoke-a", "smoke-a", e.creds["smoke-a"], ""},
		{"monitor", "ops@1", "ops", e.creds["ops"], ""},
		{"anonymous", "anon", "", "", auth.ReasonNoCredentials},
		{"wrong password", "smoke-a", "smoke-a", e.creds["smoke-b"], auth.ReasonBadPassword},
		{"unknown user", "nobody", "nobody", "whatever-password", auth.ReasonUnknownUser},
		{"device posing as another client id", "smoke-b", "smoke-a", e.creds["smoke-a"], auth.ReasonClientIDMismatch},
		{"credentials but not in registry", "ghost", "ghost", e.creds["ghost"], auth.ReasonUnknownDevice},
		{"monitor with the old dash suffix", "ops-1", "ops", e.creds["ops"], auth.ReasonClientIDMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.refusals(c.reason)
			_, err := e.client(t, c.clientID, c.user, c.pass)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if got := e.refusals(c.reason); got != before+1 {
				t.Fatalf("refusals{%s} went %v → %v", c.reason, before, got)
			}
		})
	}
}

// TestDeviceCannotPublishAsAnother: device A's publish to device B's topic is
// dropped (never reaches ingest nor a monitor), counted, and A's own publishes flow.
func TestDeviceCannotPublishAsAnother(t *testing.T) {
	e := startAuthBroker(t)
	mon, err := e.client(t, "ops@mon", "ops", e.creds["ops"])
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]int{}
	if tok := mon.Subscribe("fire/#", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		got[m.Topic()]++
		mu.Unlock()
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	a, err := e.client(t, "smoke-a", "smoke-a", e.creds["smoke-a"])
	if err != nil {
		t.Fatal(err)
	}
	before := e.refusals(auth.ReasonACLPublish)
	for _, topic := range []string{"fire/smoke/smoke-b/event", "fire/camera/smoke-a/event", "fire/alerts/x", "fire/smoke/smoke-a"} {
		if tok := a.Publish(topic, 0, false, `{"forged":true}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	// The own-topic QoS 1 publish is acknowledged only after ingest ran, and
	// the broker handles one client's packets in order: the forged ones were
	// decided before it.
	if tok := a.Publish("fire/smoke/smoke-a/event", 1, false, `{}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if n := e.tb.received.Load(); n != 1 {
		t.Fatalf("ingest received %d messages, want only the device's own 1", n)
	}
	if r := e.refusals(auth.ReasonACLPublish); r != before+4 {
		t.Fatalf("acl_publish refusals %v → %v, want +4", before, r)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		mu.Lock()
		own := got["fire/smoke/smoke-a/event"]
		mu.Unlock()
		if own == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["fire/smoke/smoke-a/event"] != 1 || len(got) != 1 {
		t.Fatalf("monitor saw %v, want only the device's own topic", got)
	}
	// A QoS 1 forged publish on MQTT 3.1.1 ends the forger's connection.
	if tok := a.Publish("fire/smoke/smoke-b/event", 1, false, `{}`); tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
		t.Fatal("forged QoS 1 publish was acknowledged")
	}
}

func TestDeviceSubscriptionACL(t *testing.T) {
	e := startAuthBroker(t)
	a, err := e.client(t, "smoke-a", "smoke-a", e.creds["smoke-a"])
	if err != nil {
		t.Fatal(err)
	}
	cmds := make(chan string, 4)
	tok := a.Subscribe("fire/cmd/smoke-a", 1, func(_ paho.Client, m paho.Message) { cmds <- string(m.Payload()) })
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if q := tok.(*paho.SubscribeToken).Result()["fire/cmd/smoke-a"]; q != 1 {
		t.Fatalf("own command topic granted QoS %d", q)
	}
	before := e.refusals(auth.ReasonACLSubscribe)
	for _, f := range []string{"fire/#", "fire/cmd/smoke-b", "fire/cmd/+", "#"} {
		tok := a.Subscribe(f, 1, nil)
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		if q := tok.(*paho.SubscribeToken).Result()[f]; q != 0x80 {
			t.Fatalf("device subscription %q granted (code %#x)", f, q)
		}
	}
	if r := e.refusals(auth.ReasonACLSubscribe); r != before+4 {
		t.Fatalf("acl_subscribe %v → %v", before, r)
	}
	// The gateway (inline client) can command the device.
	if err := e.tb.Publish("fire/cmd/smoke-a", []byte("test-alarm"), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-cmds:
		if m != "test-alarm" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("command not delivered")
	}
	// A monitor may not publish anything.
	mon, err := e.client(t, "ops", "ops", e.creds["ops"])
	if err != nil {
		t.Fatal(err)
	}
	if tok := mon.Publish("fire/smoke/smoke-a/event", 1, false, `{}`); tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
		t.Fatal("monitor publish acknowledged")
	}
	if n := e.tb.received.Load(); n != 0 {
		t.Fatalf("monitor publish reached ingest (%d)", n)
	}
}

// A will message is published by the broker on the client's behalf, and
// mochi's will delivery checks no ACL: its topic is checked at CONNECT, so a
// device cannot forge another's command or an alert, nor a monitor publish.
func TestWillTopicMustPassThePublishACL(t *testing.T) {
	e := startAuthBroker(t)
	cases := []struct {
		name, clientID, user, will string
		ok                         bool
	}{
		{"device will on its own topic", "smoke-a", "smoke-a", "fire/smoke/smoke-a/event", true},
		{"device will on another device's commands", "smoke-a", "smoke-a", "fire/cmd/smoke-b", false},
		{"device will on the alerts", "smoke-a", "smoke-a", "fire/alerts/critical/x", false},
		{"device will on the dead letters", "smoke-b", "smoke-b", "fire/deadletter/forged", false},
		{"monitor will anywhere", "ops@w", "ops", "fire/alerts/smoke/forged", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.refusals(auth.ReasonACLPublish)
			cl, err := e.clientWill(t, c.clientID, c.user, e.creds[c.user], c.will)
			if c.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				cl.Disconnect(0)
				return
			}
			if err == nil {
				t.Fatal("connected with a will its account may not publish")
			}
			if after := e.refusals(auth.ReasonACLPublish); after != before+1 {
				t.Errorf("refusals{%s} %v → %v, want +1", auth.ReasonACLPublish, before, after)
			}
		})
	}
}

// Disconnect closes an account's open connections (its credentials were
// revoked or rotated) and leaves the others alone.
func TestDisconnectClosesTheAccountsConnections(t *testing.T) {
	e := startAuthBroker(t)
	lost := make(chan string, 4)
	connect := func(clientID, user string) paho.Client {
		t.Helper()
		o := paho.NewClientOptions().AddBroker("tcp://" + e.tb.addr).SetClientID(clientID).
			SetUsername(user).SetPassword(e.creds[user]).SetAutoReconnect(false).SetConnectRetry(false).SetProtocolVersion(4).
			SetConnectionLostHandler(func(paho.Client, error) { lost <- clientID })
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", clientID, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(0) })
		return c
	}
	connect("smoke-a", "smoke-a")
	b := connect("smoke-b", "smoke-b")
	if n := e.tb.Disconnect("smoke-a"); n != 1 {
		t.Fatalf("closed %d connections, want 1", n)
	}
	select {
	case who := <-lost:
		if who != "smoke-a" {
			t.Fatalf("%s lost its connection, want smoke-a", who)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("smoke-a still connected")
	}
	time.Sleep(100 * time.Millisecond)
	if !b.IsConnectionOpen() {
		t.Error("smoke-b was disconnected too")
	}
}

// A device's retained publish is stored as a reading but not retained: a later
// subscriber must not be greeted with a stale reading as if it were current.
func TestDeviceReadingsAreNotRetained(t *testing.T) {
	e := startAuthBroker(t)
	dev, err := e.client(t, "smoke-a", "smoke-a", e.creds["smoke-a"])
	if err != nil {
		t.Fatal(err)
	}
	if tok := dev.Publish("fire/smoke/smoke-a/heartbeat", 1, true, `{"uptime_s":1}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	if n := e.tb.received.Load(); n != 1 {
		t.Fatalf("ingest received %d, want the reading", n)
	}
	mon, err := e.client(t, "ops@late", "ops", e.creds["ops"])
	if err != nil {
		t.Fatal(err)
	}
	// mochi sends the PUBACK before it fans the publish out, so a subscriber
	// this quick may still get it live; only the RETAIN flag tells a stored
	// copy from that.
	got := make(chan string, 4)
	if tok := mon.Subscribe("fire/#", 1, func(_ paho.Client, m paho.Message) {
		if m.Retained() {
			got <- m.Topic()
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case topic := <-got:
		t.Fatalf("a later subscriber got a retained %s", topic)
	case <-time.After(300 * time.Millisecond):
	}
}
