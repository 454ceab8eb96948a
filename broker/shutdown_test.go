package broker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	mochiauth "github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/internal/testenv"
	"github.com/lookoutfire/lookout/spool"
	"github.com/lookoutfire/lookout/tsdb"
)

// TestCloseWhilePublishWaitsForSpace: with the spool full (InfluxDB down), a
// device's QoS 1 publish blocks in the ingest hook — backpressure. Close must
// still return promptly: the publish gives up unacknowledged (the device
// resends it later) and nothing is stored half-way.
func TestCloseWhilePublishWaitsForSpace(t *testing.T) {
	reg := prometheus.NewRegistry()
	sp, err := spool.Open(t.TempDir(), spool.Config{MaxBytes: 1 << 20, SegmentBytes: 1 << 20, SyncInterval: time.Second}, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close() // also frees a hung Close if the test fails
	// One record that leaves less room than any reading needs: the spool is full.
	if err := sp.Append(context.Background(), bytes.Repeat([]byte("x"), 1<<20-100)); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := ingest.NewPipeline(ingest.DefaultConfig(), ingest.Deps{Appender: sp, Encode: tsdb.EncodeReading,
		Registerer: prometheus.NewRegistry(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	var b *Broker
	b, err = New(Options{Addr: addr, Prefix: "fire", Hooks: []mqtt.Hook{new(mochiauth.AllowHook)},
		Registerer: prometheus.NewRegistry(), Logger: log},
		func(ctx context.Context, topic string, payload []byte) error { return p.Handle(ctx, topic, payload) })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}

	c := testenv.MQTTClient(t, addr, "sm-1")
	tok := c.Publish("fire/smoke/sm-1/telemetry", 1, false,
		`{"alarm":false,"smoke_db_m":0.01,"temperature_c":21.5,"battery_pct":80,"rssi_dbm":-75,"tamper":false}`)
	blocked := func() bool { return testenv.CounterValue(t, reg, "lookout_spool_blocked_total") >= 1 }
	for deadline := time.Now().Add(5 * time.Second); !blocked(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the publish never reached the full spool")
		}
	}

	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("broker Close hangs while a publish waits for spool space")
	}
	if tok.WaitTimeout(100*time.Millisecond) && tok.Error() == nil {
		t.Fatal("the publish was acknowledged although its reading was not stored")
	}
	if st := sp.Stats(); st.Records != 1 {
		t.Fatalf("spool holds %d records, want only the filler", st.Records)
	}
	if acc, _ := p.Counts(); acc != 0 {
		t.Fatalf("pipeline accepted %d readings", acc)
	}
}

// TestCloseWhileClientsLeave: clients ending their sessions while the broker
// closes must not hang Close. mochi v2.7.9's own listener close path
// (Clients.GetByListener) takes the clients read lock twice, and a session
// removed between the two (Clients.Delete, as every clean disconnect does)
// deadlocks the broker for good (mochi-mqtt/server#488; it hung our CI for
// 25 minutes). Here several goroutines remove sessions without pause, so a
// removal nearly always lands inside that window.
func TestCloseWhileClientsLeave(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range 20 {
		addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
		b, err := New(Options{Addr: addr, Prefix: "fire", Hooks: []mqtt.Hook{new(mochiauth.AllowHook)},
			Registerer: prometheus.NewRegistry(), Logger: log},
			func(context.Context, string, []byte) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		c := testenv.MQTTClient(t, addr, "sm-"+strconv.Itoa(i))
		stop := make(chan struct{})
		for range 4 {
			go func() {
				for {
					select {
					case <-stop:
						return
					default:
						b.Server().Clients.Delete("gone-device")
					}
				}
			}()
		}
		closed := make(chan error, 1)
		go func() { closed <- b.Close() }()
		select {
		case err := <-closed:
			close(stop)
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: broker Close hangs while clients leave", i)
		}
		for deadline := time.Now().Add(5 * time.Second); c.IsConnectionOpen(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: a client is still connected after Close", i)
			}
		}
	}
}

// TestHandlerEndsWithItsConnection: a publish waiting in the handler (a full
// spool) gives up when the broker closes its client's connection, not only at
// shutdown. A
// device whose read loop waits gets no PINGRESP, reconnects and resends;
// before, every such reconnect left one more handler waiting, holding its
// payload, for as long as the spool stayed full.
func TestHandlerEndsWithItsConnection(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	entered, returned := make(chan struct{}, 4), make(chan error, 4)
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	b, err := New(Options{Addr: addr, Prefix: "fire", Hooks: []mqtt.Hook{new(mochiauth.AllowHook)},
		Registerer: prometheus.NewRegistry(), Logger: log},
		func(ctx context.Context, _ string, _ []byte) error {
			entered <- struct{}{}
			<-ctx.Done() // the spool never frees space
			returned <- ctx.Err()
			return ctx.Err()
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := testenv.MQTTClient(t, addr, "sm-1")
	c.Publish("fire/smoke/sm-1/telemetry", 1, false, `{}`)
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the publish never reached the handler")
	}
	// The device, without a PINGRESP, reconnects under its own id: the
	// broker closes the old connection (session takeover).
	testenv.MQTTClient(t, addr, "sm-1")
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler still waits after its connection ended")
	}
}

// TestHandlerFailureClosesTheConnection: a QoS 1 publish the handler could not
// store (a spool write error) is not acknowledged, and the connection is
// closed: an MQTT client resends an unacknowledged publish only after
// reconnecting, and mochi alone would leave the connection open without the
// PUBACK. A QoS 0 publish (never resent) and one that can never fit keep the
// connection.
func TestHandlerFailureClosesTheConnection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		qos    byte
		err    error
		closed bool
	}{
		{"qos 1, disk error", 1, errors.New("spool: write: no space left on device"), true},
		{"qos 0, disk error", 0, errors.New("spool: write: no space left on device"), false},
		{"qos 1, too large", 1, fmt.Errorf("ingest: spool append: %w", spool.ErrTooLarge), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := &testBroker{addr: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))}
			b, err := New(Options{Addr: tb.addr, Prefix: "fire", Hooks: []mqtt.Hook{new(mochiauth.AllowHook)},
				Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
				func(context.Context, string, []byte) error { return tc.err })
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			c := rawSession(t, tb.addr, 4, "sm-1")
			defer c.Close()
			body := appendStr(nil, "fire/smoke/sm-1/telemetry")
			if tc.qos > 0 {
				body = append(body, 0, 1) // packet id 1
			}
			if _, err := c.Write(frame(0x30|tc.qos<<1, append(body, '{', '}'))); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			r := bufio.NewReader(c)
			for {
				h, _, err := readPacket(r)
				if err != nil {
					ne, ok := err.(net.Error)
					if timedOut := ok && ne.Timeout(); timedOut == tc.closed {
						t.Fatalf("connection closed = %v, want %v", !timedOut, tc.closed)
					}
					return
				}
				if h == 0x40 {
					t.Fatal("PUBACK for a publish that was not stored")
				}
			}
		})
	}
}
