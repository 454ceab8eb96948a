package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	mochiauth "github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/lookoutfire/lookout/broker"
	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/internal/testenv"
	"github.com/lookoutfire/lookout/store"
)

func testGauge(t *testing.T, g prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func outboxRows(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM mqtt_outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMQTTBackoffIsCapped(t *testing.T) {
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{
		{1, time.Second}, {2, 2 * time.Second}, {5, 16 * time.Second}, {6, 30 * time.Second}, {64, 30 * time.Second},
	} {
		if got := mqttBackoff(tc.failures); got != tc.want {
			t.Errorf("mqttBackoff(%d) = %s, want %s", tc.failures, got, tc.want)
		}
	}
}

func TestMQTTTopic(t *testing.T) {
	for _, tc := range []struct {
		zone, want string
	}{
		{"v1", "fire/alerts/critical/v1"},
		{"", "fire/alerts/critical/unknown"},
		{"a+b#", "fire/alerts/critical/a_b_"},
	} {
		if got := mqttTopic("fire/alerts", Alert{Severity: Critical, Zone: tc.zone}); got != tc.want {
			t.Errorf("zone %q: topic %q, want %q", tc.zone, got, tc.want)
		}
	}
}

// A broker that refuses the first N publishes: the message is retried with
// backoff, delivered once, and then gone from the outbox.
func TestMQTTOutboxRetriesThenDeliversOnce(t *testing.T) {
	for _, fails := range []int{0, 1, 4} {
		t.Run(strconv.Itoa(fails), func(t *testing.T) {
			h := newHarness(t, nil)
			h.mqtt.fails = fails
			ctx := context.Background()
			h.eval(t, ingest.Reading{DeviceID: "smk-m", Class: ingest.ClassSmoke, Zone: "v1", Fields: map[string]any{"alarm": true}})
			if got := testGauge(t, h.e.mq.pendingG); got != 1 {
				t.Fatalf("pending = %v before delivery, want 1", got)
			}
			for i := 0; i < fails; i++ {
				if _, err := h.e.mq.deliver(ctx, h.clk.Now()); !errors.Is(err, errBrokerDown) {
					t.Fatalf("attempt %d: err = %v, want the broker's error", i+1, err)
				}
				// Within the backoff nothing is tried.
				wait := mqttBackoff(i + 1)
				if n, err := h.e.mq.deliver(ctx, h.clk.Advance(wait-time.Millisecond)); n != 0 || err != nil {
					t.Fatalf("inside backoff: delivered %d err %v", n, err)
				}
				if h.mqtt.attempts != i+1 {
					t.Fatalf("attempts = %d inside the backoff, want %d", h.mqtt.attempts, i+1)
				}
				h.clk.Advance(time.Millisecond)
			}
			for i := 0; i < 3; i++ { // the success, then nothing left to publish
				if _, err := h.e.mq.deliver(ctx, h.clk.Advance(time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			if h.mqtt.attempts != fails+1 || len(h.mqtt.payloads) != 1 {
				t.Fatalf("attempts %d delivered %d, want %d and exactly 1", h.mqtt.attempts, len(h.mqtt.payloads), fails+1)
			}
			var msg struct {
				Event   string `json:"event"`
				EventID int64  `json:"event_id"`
				Source  string `json:"source"`
			}
			if err := json.Unmarshal(h.mqtt.payloads[0], &msg); err != nil {
				t.Fatal(err)
			}
			if h.mqtt.topics[0] != "fire/alerts/critical/v1" || msg.Event != "alert.raised" || msg.Source != "smk-m" || msg.EventID == 0 {
				t.Errorf("topic %s payload %s", h.mqtt.topics[0], h.mqtt.payloads[0])
			}
			if n := outboxRows(t, h.db); n != 0 {
				t.Errorf("outbox rows = %d after delivery", n)
			}
			if got := testGauge(t, h.e.mq.pendingG); got != 0 {
				t.Errorf("pending = %v after delivery", got)
			}
			if ok, retry := testCounter(t, h.e.mq.results.WithLabelValues("ok")), testCounter(t, h.e.mq.results.WithLabelValues("retry")); ok != 1 || retry != float64(fails) {
				t.Errorf("deliveries ok %v retry %v, want 1 and %d", ok, retry, fails)
			}
		})
	}
}

func TestMQTTOutboxCapDropsOldest(t *testing.T) {
	for _, tc := range []struct {
		max, raised, wantDropped int
	}{
		{max: 5, raised: 5, wantDropped: 0},
		{max: 3, raised: 5, wantDropped: 2},
		{max: 1, raised: 4, wantDropped: 3},
	} {
		t.Run(fmt.Sprintf("max%d_raised%d", tc.max, tc.raised), func(t *testing.T) {
			h := newHarness(t, nil)
			h.e.mq.max = tc.max
			ctx := context.Background()
			for i := 0; i < tc.raised; i++ {
				if _, err := h.e.Raise(ctx, Raise{Source: fmt.Sprintf("dev-%d", i), Type: "test", Severity: Warning, Zone: "v1", Message: "m"}); err != nil {
					t.Fatal(err)
				}
			}
			keep := tc.raised - tc.wantDropped
			if n := outboxRows(t, h.db); n != keep {
				t.Errorf("outbox rows = %d, want %d", n, keep)
			}
			if got := testCounter(t, h.e.mq.droppedCt); got != float64(tc.wantDropped) {
				t.Errorf("dropped = %v, want %d", got, tc.wantDropped)
			}
			if got := testGauge(t, h.e.mq.pendingG); got != float64(keep) {
				t.Errorf("pending = %v, want %d", got, keep)
			}
			if _, err := h.e.mq.deliver(ctx, h.clk.Now()); err != nil {
				t.Fatal(err)
			}
			// The newest survive, in order.
			if len(h.mqtt.payloads) != keep {
				t.Fatalf("delivered %d, want %d", len(h.mqtt.payloads), keep)
			}
			for i, p := range h.mqtt.payloads {
				var msg struct{ Source string }
				if err := json.Unmarshal(p, &msg); err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("dev-%d", tc.wantDropped+i); msg.Source != want {
					t.Errorf("message %d from %s, want %s", i, msg.Source, want)
				}
			}
		})
	}
}

// brokerMQTT publishes through the embedded broker, as the gateway does: the
// in-process broker taking the message is its acknowledgement.
type brokerMQTT struct{ b *broker.Broker }

func (p brokerMQTT) PublishAlert(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return p.b.Publish(topic, payload, false, 1)
}

// startAlertBroker runs the embedded broker on loopback with a QoS 1 subscriber
// to fire/alerts/#, whose messages arrive on the returned channel.
func startAlertBroker(t *testing.T) (*broker.Broker, <-chan paho.Message) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	b, err := broker.New(broker.Options{Addr: addr, Prefix: "fire", Reserved: []string{"alerts"},
		Hooks: []mqtt.Hook{new(mochiauth.AllowHook)}, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		func(context.Context, string, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	got := make(chan paho.Message, 64)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("control-room").
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	if tok := c.Subscribe("fire/alerts/#", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return b, got
}

func openEngine(t *testing.T, path string, clk clock.Clock, pub MQTTPublisher) (*Engine, *sql.DB) {
	t.Helper()
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e, err := New(context.Background(), Options{Config: DefaultConfig(), DB: db, Clock: clk, Directory: testDir(),
		Caller: &recCaller{}, MQTT: pub, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return e, db
}

type alertMsg struct {
	topic   string
	Event   string `json:"event"`
	EventID int64  `json:"event_id"`
	ID      int64  `json:"id"`
	Source  string `json:"source"`
}

func recvAlert(t *testing.T, ch <-chan paho.Message) alertMsg {
	t.Helper()
	select {
	case m := <-ch:
		var a alertMsg
		if err := json.Unmarshal(m.Payload(), &a); err != nil {
			t.Fatal(err)
		}
		a.topic = m.Topic()
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no alert message on the broker within 10 s")
	}
	return alertMsg{}
}

// Messages queued while the broker is down survive a gateway restart and reach
// a real subscriber after the start, in order and once each; later alerts
// follow without waiting for a tick.
func TestMQTTOutboxDeliversAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clk := clock.NewFake(t0)
	ctx := context.Background()

	down := &recMQTT{fails: 1 << 30}
	e1, db1 := openEngine(t, path, clk, down)
	a, err := e1.Raise(ctx, Raise{Source: "smk-r", Type: TypeSmokeAlarm, Severity: Critical, Zone: "v1", Message: "smoke"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e1.Ack(ctx, a.ID, "li", "on my way"); err != nil {
		t.Fatal(err)
	}
	if _, err := e1.Clear(ctx, a.ID, "li", "out"); err != nil {
		t.Fatal(err)
	}
	if _, err := e1.mq.deliver(ctx, clk.Now()); !errors.Is(err, errBrokerDown) {
		t.Fatalf("deliver with the broker down: %v", err)
	}
	db1.Close() // the gateway stops with three messages pending

	b, got := startAlertBroker(t)
	e2, db2 := openEngine(t, path, clk, brokerMQTT{b})
	if p := testGauge(t, e2.mq.pendingG); p != 3 {
		t.Fatalf("pending after restart = %v, want 3", p)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e2.Run(runCtx) }()
	defer func() {
		cancel()
		<-done
	}()
	var seen []string
	for range 3 {
		m := recvAlert(t, got)
		if m.ID != a.ID || m.topic != "fire/alerts/critical/v1" {
			t.Fatalf("message %+v, want alert %d on fire/alerts/critical/v1", m, a.ID)
		}
		seen = append(seen, m.Event)
	}
	if fmt.Sprint(seen) != "[alert.raised alert.acked alert.cleared]" {
		t.Fatalf("events in order %v", seen)
	}
	// A new alert arrives next: nothing was published twice, and the running
	// loop picks up rows queued after the start.
	if _, err := e2.Raise(ctx, Raise{Source: "smk-s", Type: TypeSmokeAlarm, Severity: Critical, Zone: "v1", Message: "smoke"}); err != nil {
		t.Fatal(err)
	}
	if m := recvAlert(t, got); m.Source != "smk-s" || m.Event != "alert.raised" {
		t.Fatalf("after the backlog: %+v, want smk-s alert.raised (a duplicate?)", m)
	}
	deadline := time.Now().Add(10 * time.Second)
	for outboxRows(t, db2) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d rows", outboxRows(t, db2))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ok := testCounter(t, e2.mq.results.WithLabelValues("ok")); ok != 4 {
		t.Errorf("deliveries ok = %v, want 4", ok)
	}
}
