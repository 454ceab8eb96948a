package broker

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Tests for hangs inside mochi-mqtt v2.7.9 that the broker package works
// around. Each one drives the hang's real trigger through a live listener.

// readPacket reads one MQTT packet: its first byte and its body.
func readPacket(r *bufio.Reader) (byte, []byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for {
		d, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&0x7f) * mul
		mul *= 128
		if d&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	_, err = io.ReadFull(r, body)
	return h, body, err
}

// v5Subscriber connects at MQTT 5 with a Receive Maximum, subscribes to
// filter at QoS 1 and returns the connection after the SUBACK.
func v5Subscriber(t *testing.T, addr, clientID, filter string, receiveMax uint16) (net.Conn, *bufio.Reader) {
	t.Helper()
	return subscribed(t, addr,
		encode(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 5,
			Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60,
				ClientIdentifier: clientID},
			Properties: packets.Properties{ReceiveMaximum: receiveMax}}, (*packets.Packet).ConnectEncode),
		encode(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1},
			ProtocolVersion: 5, PacketID: 1, Filters: packets.Subscriptions{{Filter: filter, Qos: 1}}},
			(*packets.Packet).SubscribeEncode))
}

// subscribed dials addr, sends connect and subscribe and returns the
// connection after the CONNACK and SUBACK.
func subscribed(t *testing.T, addr string, connect, subscribe []byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	r := bufio.NewReader(c)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	for _, step := range []struct {
		send []byte
		want byte
	}{{connect, 0x20}, {subscribe, 0x90}} {
		if _, err := c.Write(step.send); err != nil {
			t.Fatal(err)
		}
		h, body, err := readPacket(r)
		if err != nil || h != step.want {
			t.Fatalf("want packet %#x, got %#x %v (%v)", step.want, h, body, err)
		}
	}
	_ = c.SetDeadline(time.Time{})
	return c, r
}

// TestReceiveMaximumSubscriberCannotDeadlockTheBroker: mochi's
// Inflight.NextImmediate takes the client's in-flight read lock twice. It runs
// after each packet from an MQTT 5 client that set a Receive Maximum, so a
// PUBACK processed while another goroutine queues a QoS 1 delivery to the
// same client (Inflight.Set) deadlocks both, and every later publisher to that
// client with them. Here a monitor acks as it reads while four publishers
// deliver to it; every message must arrive.
func TestReceiveMaximumSubscriberCannotDeadlockTheBroker(t *testing.T) {
	tb := startTestBroker(t, Limits{})
	c, r := v5Subscriber(t, tb.addr, "monitor-1", "fire/alerts/#", 100)
	const publishers, each = 4, 2000
	var acked atomic.Int64
	go func() {
		for {
			h, body, err := readPacket(r)
			if err != nil {
				return
			}
			if h>>4 == 3 && (h>>1)&3 == 1 && len(body) >= 2 {
				tl := int(body[0])<<8 | int(body[1])
				if len(body) < tl+4 {
					continue
				}
				if _, err := c.Write([]byte{0x40, 2, body[2+tl], body[3+tl]}); err != nil {
					return
				}
				acked.Add(1)
			}
		}
	}()
	var wg sync.WaitGroup
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				// 8,000 in all stays under mochi's per-client queue (8,192), so none is dropped.
				_ = tb.Publish("fire/alerts/raised", []byte(`{"id":1}`), false, 1)
			}
		}()
	}
	last, still := int64(-1), 0
	for acked.Load() < publishers*each {
		time.Sleep(200 * time.Millisecond)
		n := acked.Load()
		if n == last {
			if still++; still == 25 {
				t.Fatalf("deliveries stopped at %d of %d for 5 s: the broker is deadlocked", n, publishers*each)
			}
		} else {
			last, still = n, 0
		}
	}
	wg.Wait()
}

// stalledSubscriber subscribes at MQTT 3.1.1 with keepalive 0 (so mochi sets
// no deadline on its socket), then never reads: once the socket buffers fill,
// mochi's write loop blocks in Write holding the client's lock, which
// DisconnectClient needs too.
func stalledSubscriber(t *testing.T, tb *testBroker, clientID, user string) net.Conn {
	t.Helper()
	c, _ := subscribed(t, tb.addr,
		encode(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
			Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 0,
				ClientIdentifier: clientID, UsernameFlag: user != "", Username: []byte(user)}}, (*packets.Packet).ConnectEncode),
		encode(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1},
			ProtocolVersion: 4, PacketID: 1, Filters: packets.Subscriptions{{Filter: "fire/#", Qos: 0}}},
			(*packets.Packet).SubscribeEncode))
	// Fill the socket: 64 MiB is well past what loopback buffers hold.
	payload := bytes.Repeat([]byte("x"), 64<<10)
	for range 1024 {
		_ = tb.Publish("fire/video/cam-1/frame", payload, false, 0)
	}
	time.Sleep(200 * time.Millisecond) // let the write loop reach the full socket
	return c
}

// drainedToClose reads what the broker had queued for c and reports whether
// the broker closed c by the end of it (and within d).
func drainedToClose(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	ne, ok := err.(net.Error)
	return !(ok && ne.Timeout())
}

// bounded runs f and fails the test if it has not returned within d.
func bounded(t *testing.T, what string, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s hangs", what)
	}
}

// TestCloseWithStalledSubscriber: a subscriber that stops reading must not
// hold the broker's Close (and with it the gateway's shutdown) forever.
func TestCloseWithStalledSubscriber(t *testing.T) {
	tb := startTestBroker(t, Limits{})
	c := stalledSubscriber(t, tb, "monitor-1", "")
	bounded(t, "Close with a stalled subscriber", 10*time.Second, func() { _ = tb.Close() })
	if !drainedToClose(c, 20*time.Second) {
		t.Fatal("the stalled subscriber's connection is still open")
	}
}

// TestDisconnectStalledSubscriber: revoking the credentials of a subscriber
// that stopped reading closes its connection at once; the revoke (which runs
// inside a registry watcher) must not wait on the stalled socket.
func TestDisconnectStalledSubscriber(t *testing.T) {
	tb := startTestBroker(t, Limits{})
	c := stalledSubscriber(t, tb, "monitor-1", "monitor")
	var n int
	bounded(t, "Disconnect of a stalled subscriber", 10*time.Second, func() { n = tb.Disconnect("monitor") })
	if n != 1 {
		t.Fatalf("Disconnect closed %d connections, want 1", n)
	}
	if !drainedToClose(c, 20*time.Second) {
		t.Fatal("the stalled subscriber's connection is still open")
	}
	publishWorks(t, tb)
}
