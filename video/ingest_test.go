package video

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/internal/testenv"
)

// rtpIngest is a Manager on a fake clock with one RTP source on a real loopback port
// and a fake viewer that records what the relay passes on.
type rtpIngest struct {
	m    *Manager
	st   *stream
	v    *viewer
	fc   *clock.Fake
	logs *testenv.SyncBuffer
	to   *net.UDPAddr
}

func newRTPIngest(t *testing.T) *rtpIngest {
	t.Helper()
	return newRTPIngestFrom(t, "")
}

// newRTPIngestFrom is newRTPIngest with the source's rtp_from set.
func newRTPIngestFrom(t *testing.T, from string) *rtpIngest {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()
	cfg := DefaultConfig()
	cfg.Sources = []Source{{Camera: "cam", RTPPort: port, RTPFrom: from}}
	fc := clock.NewFake(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC))
	m, logs := newLoggedManager(t, cfg, fc)
	st := m.streams["cam"]
	return &rtpIngest{m: m, st: st, v: addFakeViewer(m, st, "v", 1024), fc: fc, logs: logs,
		to: st.udp.LocalAddr().(*net.UDPAddr)}
}

// sender opens a UDP socket on its own loopback port aimed at the ingest port.
func (g *rtpIngest) sender(t *testing.T) *net.UDPConn {
	t.Helper()
	return g.senderAt(t, net.IPv4(127, 0, 0, 1))
}

// senderAt is sender from another loopback address (Linux answers all of 127/8).
func (g *rtpIngest) senderAt(t *testing.T, ip net.IP) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: ip}, g.to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// send writes a raw datagram.
func send(t *testing.T, c *net.UDPConn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// idr is a valid RTP/H.264 packet carrying an IDR slice (every viewer takes it), with
// the SSRC naming its sender so the test can tell whose packets were relayed.
func idr(t *testing.T, ssrc uint32, seq uint16) []byte {
	t.Helper()
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, SSRC: ssrc},
		Payload: []byte{0x65, 0x88, 0x84}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitCounts polls until the relay has handled exactly what was sent: relayed packets
// and foreign drops reach their expected totals (the read goroutine is real).
func (g *rtpIngest) waitCounts(t *testing.T, packets, foreign uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for g.st.packets.Load() != packets || g.st.foreign.Load() != foreign {
		if time.Now().After(deadline) {
			t.Fatalf("relayed %d packets and dropped %d foreign, want %d and %d",
				g.st.packets.Load(), g.st.foreign.Load(), packets, foreign)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// relayedSSRCs empties the viewer's queue and returns the SSRC of each packet,
// waiting up to 5 s for at least want of them: deliver counts a packet before
// it queues it, so waitCounts can return just before the last one is queued.
func (g *rtpIngest) relayedSSRCs(want int) []uint32 {
	var out []uint32
	deadline := time.After(5 * time.Second)
	for {
		if len(out) >= want {
			select {
			case rp := <-g.v.q:
				out = append(out, rp.p.SSRC)
				continue
			default:
				return out
			}
		}
		select {
		case rp := <-g.v.q:
			out = append(out, rp.p.SSRC)
		case <-deadline:
			return out
		}
	}
}

// The first sender of a stream is latched: another sender's packets for the same
// port are dropped and counted while the first keeps working, and only after the
// first has been silent for longer than SourceTimeout (fake clock) may another take
// over. A restarted ffmpeg (latch reset) is accepted at once.
func TestRTPIngestPinnedToOneSender(t *testing.T) {
	g := newRTPIngest(t)
	const ssrcA, ssrcB = 0xA, 0xB
	a, b := g.sender(t), g.sender(t)
	who := map[uint32]*net.UDPConn{ssrcA: a, ssrcB: b}
	timeout := g.m.cfg.SourceTimeout

	steps := []struct {
		name       string
		advance    time.Duration
		reset      bool     // ffmpeg (re)start clears the latch
		sends      []uint32 // senders in order, by SSRC
		relayed    []uint32 // SSRCs the viewer receives
		foreign    uint64   // foreign drops in this step
		wantSender uint32   // latched sender after the step
	}{
		{name: "first sender latched", sends: []uint32{ssrcA}, relayed: []uint32{ssrcA}, wantSender: ssrcA},
		{name: "A keeps working while B injects",
			sends:   []uint32{ssrcA, ssrcB, ssrcB, ssrcA, ssrcB, ssrcA, ssrcB, ssrcA},
			relayed: []uint32{ssrcA, ssrcA, ssrcA, ssrcA}, foreign: 4, wantSender: ssrcA},
		{name: "A silent for exactly the timeout: B still refused", advance: timeout,
			sends: []uint32{ssrcB}, foreign: 1, wantSender: ssrcA},
		{name: "A silent past the timeout: B takes over", advance: time.Millisecond,
			sends: []uint32{ssrcB, ssrcB}, relayed: []uint32{ssrcB, ssrcB}, wantSender: ssrcB},
		{name: "A is now the foreign one", advance: timeout / 2,
			sends: []uint32{ssrcA, ssrcB}, relayed: []uint32{ssrcB}, foreign: 1, wantSender: ssrcB},
		{name: "latch reset: next sender accepted at once", reset: true,
			sends: []uint32{ssrcA, ssrcB}, relayed: []uint32{ssrcA}, foreign: 1, wantSender: ssrcA},
	}
	var packets, foreign uint64
	var seq uint16
	for _, s := range steps {
		g.fc.Advance(s.advance)
		if s.reset {
			g.m.mu.Lock()
			g.st.resetSenderLocked()
			g.m.mu.Unlock()
		}
		for _, ssrc := range s.sends {
			seq++
			send(t, who[ssrc], idr(t, ssrc, seq))
		}
		packets += uint64(len(s.relayed))
		foreign += s.foreign
		g.waitCounts(t, packets, foreign)
		if got := g.relayedSSRCs(len(s.relayed)); !equalSSRCs(got, s.relayed) {
			t.Fatalf("%s: viewer got SSRCs %x, want %x", s.name, got, s.relayed)
		}
		stats, _ := g.m.StreamStats("cam")
		if want := who[s.wantSender].LocalAddr().String(); stats.RTPSender != want || stats.ForeignPackets != foreign {
			t.Fatalf("%s: stats sender %q foreign %d, want %q and %d", s.name, stats.RTPSender, stats.ForeignPackets, want, foreign)
		}
		if got := testutil.ToFloat64(g.m.met.dropForeign); got != float64(foreign) {
			t.Fatalf("%s: %s{reason=%q} = %v, want %d", s.name, "lookout_video_ingest_dropped_total", dropReasonForeign, got, foreign)
		}
	}
}

func equalSSRCs(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A flood from a foreign sender logs one line per foreignLogEvery, not one per packet.
func TestRTPIngestForeignLogRateLimited(t *testing.T) {
	g := newRTPIngest(t)
	a, b := g.sender(t), g.sender(t)
	send(t, a, idr(t, 0xA, 1))
	g.waitCounts(t, 1, 0)
	const line = "RTP from a foreign sender dropped"
	var foreign uint64
	for i, want := range []int{1, 1, 2} {
		if i == 2 {
			g.fc.Advance(foreignLogEvery)
			send(t, a, idr(t, 0xA, 2)) // A stays alive across the jump
			g.waitCounts(t, 2, foreign)
		}
		for range 20 {
			send(t, b, idr(t, 0xB, 9))
		}
		foreign += 20
		g.waitCounts(t, g.st.packets.Load(), foreign)
		if got := g.logs.Count(line); got != want {
			t.Fatalf("round %d: %d log lines about foreign packets, want %d", i, got, want)
		}
	}
	// The second line counts every packet since the first: 19 + 20 + the one it reports.
	if logs := g.logs.String(); !strings.Contains(logs, "dropped=1\n") || !strings.Contains(logs, "dropped=40\n") {
		t.Fatalf("log lines should count the packets dropped since the previous line (1, then 40); logs:\n%s", logs)
	}
}

// Datagrams that are not RTP, or longer than any packet the relay forwards, are
// dropped by reason before the sender is looked at, so they neither reach viewers
// nor latch their sender.
func TestRTPIngestDropsNonRTP(t *testing.T) {
	g := newRTPIngest(t)
	junk := g.sender(t)
	valid := idr(t, 0xC, 1)
	version1 := append([]byte(nil), valid...)
	version1[0] = 1<<6 | version1[0]&0x3f
	rtcp := append([]byte(nil), valid...)
	rtcp[1] = 200 // RTCP sender report where the RTP payload type sits
	manyCSRC := append([]byte(nil), valid[:12]...)
	manyCSRC[0] |= 0x0f // 15 CSRCs announced, none present
	badPadding := append([]byte(nil), valid...)
	badPadding[0] |= 0x20 // padding bit, last byte (0x84) larger than the payload
	// Valid RTP, but longer than the read buffer: a truncated copy would parse
	// as RTP and be relayed corrupt.
	oversize := append(append([]byte(nil), valid...), make([]byte, maxIngestPacket)...)
	tests := []struct {
		name   string
		b      []byte
		reason string
	}{
		{"empty", []byte{}, dropReasonNotRTP},
		{"shorter than a header", valid[:11], dropReasonNotRTP},
		{"version 1", version1, dropReasonNotRTP},
		{"CSRC list past the end", manyCSRC, dropReasonNotRTP},
		{"padding past the payload", badPadding, dropReasonNotRTP},
		{"RTCP", rtcp, dropReasonRTCP},
		{"oversize", oversize, dropReasonOversize},
		{"oversize by one byte", oversize[:maxIngestPacket+1], dropReasonOversize},
	}
	counters := map[string]prometheus.Counter{dropReasonNotRTP: g.m.met.dropNotRTP, dropReasonRTCP: g.m.met.dropRTCP,
		dropReasonOversize: g.m.met.dropOversize}
	want := map[string]float64{}
	for _, tc := range tests {
		send(t, junk, tc.b)
		want[tc.reason]++
		c := counters[tc.reason]
		deadline := time.Now().Add(5 * time.Second)
		for testutil.ToFloat64(c) != want[tc.reason] {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s drops = %v, want %v", tc.name, tc.reason, testutil.ToFloat64(c), want[tc.reason])
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	if s, _ := g.m.StreamStats("cam"); s.Packets != 0 || s.RTPSender != "" || len(g.v.q) != 0 {
		t.Fatalf("junk reached the relay or latched its sender: %+v, queued %d", s, len(g.v.q))
	}
	// A valid packet from another address is the first sender.
	a := g.sender(t)
	send(t, a, idr(t, 0xA, 2))
	g.waitCounts(t, 1, 0)
	if s, _ := g.m.StreamStats("cam"); s.RTPSender != a.LocalAddr().String() {
		t.Fatalf("sender %q, want %s", s.RTPSender, a.LocalAddr())
	}
	// A datagram of exactly maxIngestPacket bytes is still relayed, whole.
	largest := append(idr(t, 0xA, 3), make([]byte, maxIngestPacket-len(valid))...)
	send(t, a, largest)
	g.waitCounts(t, 2, 0)
	if q := g.relayedSSRCs(2); len(q) != 2 {
		t.Fatalf("relayed %d packets, want 2", len(q))
	}
	if s, _ := g.m.StreamStats("cam"); s.Bytes != uint64(len(valid)+maxIngestPacket) {
		t.Fatalf("relayed %d bytes, want %d", s.Bytes, len(valid)+maxIngestPacket)
	}
}

// With rtp_from set, only senders in that prefix may latch the port, even
// while no sender is latched (at start, after a camera reboot): the first-come
// rule alone would let anyone who reaches the port take over the camera.
func TestRTPIngestFromAllowList(t *testing.T) {
	g := newRTPIngestFrom(t, "127.0.0.1/32")
	intruder, camera := g.senderAt(t, net.IPv4(127, 0, 0, 2)), g.sender(t)
	send(t, intruder, idr(t, 0xBAD, 1))
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(g.m.met.dropNotAllowed) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%s drops = %v, want 1", dropReasonNotAllowed, testutil.ToFloat64(g.m.met.dropNotAllowed))
		}
		time.Sleep(2 * time.Millisecond)
	}
	send(t, camera, idr(t, 0xA, 2))
	g.waitCounts(t, 1, 0)
	if got := g.relayedSSRCs(1); !equalSSRCs(got, []uint32{0xA}) {
		t.Fatalf("viewer got SSRCs %x, want only the camera's", got)
	}
	if s, _ := g.m.StreamStats("cam"); s.RTPSender != camera.LocalAddr().String() {
		t.Fatalf("latched sender %q, want the camera %s", s.RTPSender, camera.LocalAddr())
	}
}
