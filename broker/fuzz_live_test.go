package broker

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// FuzzLiveListener drives arbitrary bytes at a live embedded broker after a
// valid CONNECT (MQTT 3.1.1 or 5, chosen by the first input byte) and then
// checks that the process still serves a fresh client and that no panic had to
// be recovered — i.e. the packet guard, not the safety net, stopped the input.
func FuzzLiveListener(f *testing.F) {
	f.Add(byte(5), packet501)
	f.Add(byte(4), []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00})
	f.Add(byte(5), []byte{0x30, 0x07, 0x00, 0x01, 'a', 0x03, 0x23, 0x00, 0x01})
	f.Add(byte(5), []byte{0xA2, 0x04, 0x00, 0x01, 0x00, 0x00})
	f.Add(byte(5), []byte{0xE0, 0x02, 0x8E, 0x00})
	f.Add(byte(4), []byte{0xC0, 0x00, 0xC0, 0x00, 0x62, 0x02, 0x00, 0x01})
	tb := startTestBroker(f, Limits{ConnectTimeout: 2 * time.Second})
	n := 0
	f.Fuzz(func(t *testing.T, v byte, data []byte) {
		version := byte(4)
		if v%2 == 1 {
			version = 5
		}
		n++
		c := rawSession(t, tb.addr, version, "fz"+strconv.Itoa(n))
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write(data)
		// Give the broker a moment to act on the bytes, draining any replies.
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		c.Close()
		if p := testutil.ToFloat64(tb.guardMetrics.panics); p != 0 {
			t.Fatalf("a panic was recovered after % x (v%d): the guard let a crashing packet through", data, version)
		}
		// Still serving: a new session gets its CONNACK and a PINGRESP.
		s := rawSession(t, tb.addr, 4, "alive")
		_, _ = s.Write([]byte{0xC0, 0})
		resp := make([]byte, 2)
		_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := readFull(s, resp); err != nil || resp[0] != 0xD0 {
			t.Fatalf("broker stopped serving after % x: % x %v", data, resp, err)
		}
		s.Close()
	})
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
