package broker

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	mochiauth "github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/internal/testenv"
)

type testBroker struct {
	*Broker
	addr     string
	received atomic.Int64
}

func startTestBroker(t testing.TB, limits Limits, hooks ...mqtt.Hook) *testBroker {
	t.Helper()
	if len(hooks) == 0 {
		hooks = []mqtt.Hook{new(mochiauth.AllowHook)}
	}
	tb := &testBroker{addr: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))}
	b, err := New(Options{Addr: tb.addr, Prefix: "fire", Hooks: hooks, Limits: limits, MaxPacketSize: 64 << 10,
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		func(context.Context, string, []byte) error { tb.received.Add(1); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	tb.Broker = b // the socket is bound by New (mochi's AddListener calls Init)
	return tb
}

// rawSession dials, sends CONNECT at level v and reads the CONNACK.
func rawSession(t testing.TB, addr string, v byte, clientID string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(connectV(v, clientID, "", "")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	h, err := br.ReadByte()
	if err != nil || h != 0x20 {
		t.Fatalf("want CONNACK, got %#x, %v", h, err)
	}
	n, _ := br.ReadByte()
	if _, err := io.ReadFull(br, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitClosed reports whether the server closes c within d.
func waitClosed(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 256)
	for {
		if _, err := c.Read(buf); err != nil {
			ne, ok := err.(net.Error)
			return !(ok && ne.Timeout())
		}
	}
}

// publishWorks checks the broker still serves: a paho client connects and a
// QoS 1 publish reaches the ingest handler.
func publishWorks(t testing.TB, tb *testBroker) {
	t.Helper()
	before := tb.received.Load()
	o := paho.NewClientOptions().AddBroker("tcp://" + tb.addr).SetClientID("probe").SetConnectTimeout(3 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("broker no longer accepts connections: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish("fire/smoke/probe/heartbeat", 1, false, `{}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	if tb.received.Load() != before+1 {
		t.Fatalf("handler saw %d new messages, want 1", tb.received.Load()-before)
	}
}

func TestIssue501PacketDoesNotCrashBroker(t *testing.T) {
	tb := startTestBroker(t, Limits{})
	c := rawSession(t, tb.addr, 5, "attacker")
	if _, err := c.Write(packet501); err != nil {
		t.Fatal(err)
	}
	if !waitClosed(c, 5*time.Second) {
		t.Fatal("connection that sent the #501 packet was not closed")
	}
	c.Close()
	publishWorks(t, tb)
	if got := testutil.ToFloat64(tb.guardMetrics.rejected.WithLabelValues("malformed")); got != 1 {
		t.Fatalf("guard malformed count = %v, want 1", got)
	}
	if got := testutil.ToFloat64(tb.guardMetrics.panics); got != 0 {
		t.Fatalf("panics recovered = %v: the packet reached mochi's decoder", got)
	}
}

// TestRecoverNetContainsDecoderPanic turns the validator off to show the second
// line of defence: mochi panics on #501, the listener contains it to the one
// connection and removes the half-dead client, and the broker keeps serving.
func TestRecoverNetContainsDecoderPanic(t *testing.T) {
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(mochiauth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	gm, _ := newGuardMetrics(nil)
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	l := newGuardedListener("raw", addr, nil, Limits{}, 0, srv, gm, nil)
	l.validate = false
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c := rawSession(t, addr, 5, "attacker")
	_, _ = c.Write(packet501)
	if !waitClosed(c, 5*time.Second) {
		t.Fatal("connection not closed after the panic")
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(gm.panics) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(gm.panics); got != 1 {
		t.Fatalf("panics recovered = %v, want 1", got)
	}
	if _, ok := srv.Clients.Get("attacker"); ok {
		t.Fatal("panicked client left in the client table")
	}
	c2 := rawSession(t, addr, 4, "after")
	c2.Close()
}

func TestConnectTimeoutClosesIdleSocket(t *testing.T) {
	// 2 s: the prompt client below must get its CONNECT read within it even
	// on a loaded machine.
	tb := startTestBroker(t, Limits{ConnectTimeout: 2 * time.Second})
	c, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Half a CONNECT, then silence: a slowloris.
	_, _ = c.Write(connectV(4, "slow", "", "")[:5])
	if !waitClosed(c, 10*time.Second) {
		t.Fatal("idle connection without CONNECT was not closed")
	}
	if got := testutil.ToFloat64(tb.guardMetrics.rejected.WithLabelValues("connect_timeout")); got != 1 {
		t.Fatalf("connect_timeout count = %v, want 1", got)
	}
	// A prompt client on the same broker is unaffected, and keeps its session
	// past the connect timeout (keepalive governs it now).
	s := rawSession(t, tb.addr, 4, "prompt")
	defer s.Close()
	time.Sleep(4 * time.Second)
	_ = s.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := s.Write([]byte{0xC0, 0}); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, 2)
	if _, err := io.ReadFull(s, resp); err != nil || resp[0] != 0xD0 {
		t.Fatalf("PINGRESP after connect timeout elapsed: % x, %v", resp, err)
	}
}

func TestConnectionRatePerIP(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC))
	tb := startTestBroker(t, Limits{ConnPerIPPerMinute: 3, Clock: fc})
	for i := 0; i < 3; i++ {
		rawSession(t, tb.addr, 4, "c"+strconv.Itoa(i)).Close()
	}
	c, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write(connectV(4, "c4", "", ""))
	if !waitClosed(c, 5*time.Second) {
		t.Fatal("4th connection within a minute was not refused")
	}
	if got := testutil.ToFloat64(tb.guardMetrics.throttled); got != 1 {
		t.Fatalf("throttled = %v, want 1", got)
	}
	fc.Advance(time.Minute)
	rawSession(t, tb.addr, 4, "c5").Close()
}

func TestOversizePacketClosesConnection(t *testing.T) {
	tb := startTestBroker(t, Limits{})
	c := rawSession(t, tb.addr, 4, "big")
	// Header announcing 1 MiB, beyond the 64 KiB limit: refused before buffering.
	_, _ = c.Write([]byte{0x30, 0x80, 0x80, 0x40})
	if !waitClosed(c, 5*time.Second) {
		t.Fatal("oversize packet did not close the connection")
	}
	if got := testutil.ToFloat64(tb.guardMetrics.rejected.WithLabelValues("too_large")); got != 1 {
		t.Fatalf("too_large = %v", got)
	}
	publishWorks(t, tb)
}

// TestCloseDoesNotWaitForSilentSockets: a socket that never sends CONNECT is
// closed by the broker's Close, not waited for until its CONNECT deadline
// (mochi's Close waits for every connection it has been handed).
func TestCloseDoesNotWaitForSilentSockets(t *testing.T) {
	tb := startTestBroker(t, Limits{ConnectTimeout: time.Minute})
	c, err := net.DialTimeout("tcp", tb.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = rawSession(t, tb.addr, 4, "sm-1") // served, so the silent one is being served too
	closed := make(chan error, 1)
	go func() { closed <- tb.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits for a socket that never sent CONNECT")
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the silent socket is still open after Close")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the silent socket is still open after Close")
	}
}
