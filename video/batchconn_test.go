package video

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"
)

// Packets written while held arrive as the same datagrams, in order per address,
// whether or not they could be coalesced into one segmented send.
func TestBatchConnDeliversDatagramsInOrder(t *testing.T) {
	type write struct {
		to   int // receiver index
		size int
	}
	eq := func(to, n, size int) []write {
		var w []write
		for range n {
			w = append(w, write{to, size})
		}
		return w
	}
	cases := []struct {
		name   string
		hold   bool
		writes []write
	}{
		{"unheld", false, eq(0, 5, 1200)},
		{"frame to one viewer", true, append(eq(0, 7, 1200), write{0, 300})},
		{"two viewers interleaved", true, []write{{0, 1000}, {1, 1000}, {0, 1000}, {1, 500}, {1, 1000}, {0, 1000}}},
		{"growing sizes split the batch", true, []write{{0, 100}, {0, 200}, {0, 200}, {0, 50}, {0, 60}}},
		{"more than the segment limit", true, eq(1, gsoMaxSegments+10, 900)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rx := [2]*net.UDPConn{listenLoopback(t), listenLoopback(t)}
			bc := newBatchConn(listenLoopback(t))
			want := [2][][]byte{}
			if tc.hold {
				bc.Hold()
			}
			for i, w := range tc.writes {
				b := bytes.Repeat([]byte{byte(i)}, w.size)
				want[w.to] = append(want[w.to], b)
				if n, err := bc.WriteTo(b, rx[w.to].LocalAddr()); err != nil || n != len(b) {
					t.Fatalf("write %d: %d, %v", i, n, err)
				}
				b[0] ^= 0xff // the caller reuses its buffer (pion's SRTP pool does)
			}
			if tc.hold {
				bc.Release()
			}
			if gsoSupported && bc.gsoOff.Load() {
				t.Fatal("the kernel refused segmented (UDP_SEGMENT) sends on loopback")
			}
			for r := range rx {
				for i, w := range want[r] {
					w[0] ^= 0xff // undo the reuse above: what was written is what must arrive
					got := make([]byte, 70000)
					_ = rx[r].SetReadDeadline(time.Now().Add(2 * time.Second))
					n, err := rx[r].Read(got)
					if err != nil {
						t.Fatalf("receiver %d datagram %d: %v", r, i, err)
					}
					if !bytes.Equal(got[:n], w) {
						t.Fatalf("receiver %d datagram %d: got %d bytes starting %x, want %d starting %x", r, i, n, got[0], len(w), w[0])
					}
				}
				_ = rx[r].SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				if n, err := rx[r].Read(make([]byte, 70000)); err == nil {
					t.Fatalf("receiver %d: unexpected extra datagram of %d bytes", r, n)
				}
			}
		})
	}
}

// While held, nothing is sent; the release sends it.
func TestBatchConnHoldsUntilRelease(t *testing.T) {
	rx := listenLoopback(t)
	bc := newBatchConn(listenLoopback(t))
	bc.Hold()
	for i := range 3 {
		_, _ = bc.WriteTo([]byte(fmt.Sprint("pkt", i)), rx.LocalAddr())
	}
	_ = rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := rx.Read(make([]byte, 100)); err == nil {
		t.Fatalf("datagram of %d bytes sent during the hold", n)
	}
	bc.Release()
	_ = rx.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 100)
	if n, err := rx.Read(b); err != nil || string(b[:n]) != "pkt0" {
		t.Fatalf("after release: %q, %v", b[:n], err)
	}
}

func listenLoopback(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
