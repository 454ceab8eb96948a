package video

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Limits of one segmented (UDP GSO) send: the kernel takes at most 64 segments and a
// 64 KiB datagram.
const (
	gsoMaxSegments = 64
	gsoMaxBytes    = 65000
)

// batchConn is the ICE UDP mux socket with send batching. On loopback a sendmsg per
// packet cost ~7 µs here, almost all of it the kernel's per-datagram path; a frame's
// packets to one viewer are the same size (FU-A fragments), so while a writer holds
// the socket, consecutive packets to one address are coalesced and sent as one
// segmented send (Linux UDP_SEGMENT, ~2 µs per packet), the kernel splitting them
// into ordinary datagrams. Writes from pion's own goroutines (STUN, RTCP) while no
// writer holds the socket go out at once; during a hold they wait for its release
// (microseconds). If the kernel refuses segmented sends, it falls back to one send
// per packet for good.
type batchConn struct {
	*net.UDPConn
	gsoOff atomic.Bool // segmented sends refused once: never try again

	mu    sync.Mutex
	holds int
	pend  []pendingBatch // at most one open batch per address, in arrival order
	spare [][]byte       // recycled batch buffers
}

// pendingBatch is packets for one address: equal-size segments, the last may be shorter.
type pendingBatch struct {
	to     netip.AddrPort
	seg    int
	n      int
	closed bool // a shorter segment ended it
	buf    []byte
}

func newBatchConn(c *net.UDPConn) *batchConn {
	b := &batchConn{UDPConn: c}
	b.gsoOff.Store(!gsoSupported)
	return b
}

// Hold starts batching: writes are queued until the matching Release.
func (c *batchConn) Hold() {
	c.mu.Lock()
	c.holds++
	c.mu.Unlock()
}

// Release ends a hold and sends everything queued. Flushing all (not only this
// holder's) batches keeps each address's packets in order: a batch is never split
// across two senders.
func (c *batchConn) Release() {
	c.mu.Lock()
	c.holds--
	c.flushLocked()
	c.mu.Unlock()
}

// WriteTo queues b for addr during a hold, or sends it at once.
func (c *batchConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return c.UDPConn.WriteTo(b, addr)
	}
	to := ua.AddrPort()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holds == 0 {
		if len(c.pend) > 0 {
			c.flushLocked()
		}
		return c.UDPConn.WriteToUDPAddrPort(b, to)
	}
	i := c.findLocked(to)
	if i >= 0 {
		p := &c.pend[i]
		if c.gsoOff.Load() || p.closed || len(b) > p.seg || p.n >= gsoMaxSegments || len(p.buf)+len(b) > gsoMaxBytes {
			c.sendLocked(p)
			c.pend = append(c.pend[:i], c.pend[i+1:]...)
			i = -1
		} else {
			p.buf = append(p.buf, b...)
			p.n++
			p.closed = len(b) < p.seg
			return len(b), nil
		}
	}
	buf := c.bufLocked()
	c.pend = append(c.pend, pendingBatch{to: to, seg: len(b), n: 1, buf: append(buf, b...)})
	return len(b), nil
}

func (c *batchConn) findLocked(to netip.AddrPort) int {
	for i := range c.pend {
		if c.pend[i].to == to {
			return i
		}
	}
	return -1
}

func (c *batchConn) bufLocked() []byte {
	if n := len(c.spare); n > 0 {
		b := c.spare[n-1]
		c.spare = c.spare[:n-1]
		return b[:0]
	}
	return make([]byte, 0, 16*1024)
}

func (c *batchConn) flushLocked() {
	for i := range c.pend {
		c.sendLocked(&c.pend[i])
	}
	c.pend = c.pend[:0]
}

// sendLocked sends one batch and recycles its buffer. Send errors are the same as a
// lost datagram to the caller (UDP), so they are not returned.
func (c *batchConn) sendLocked(p *pendingBatch) {
	defer func() {
		if cap(p.buf) <= 64*1024 && len(c.spare) < 64 {
			c.spare = append(c.spare, p.buf)
		}
		p.buf = nil
	}()
	if p.n == 1 {
		_, _ = c.UDPConn.WriteToUDPAddrPort(p.buf, p.to)
		return
	}
	if !c.gsoOff.Load() {
		_, _, err := c.UDPConn.WriteMsgUDPAddrPort(p.buf, gsoControl(p.seg), p.to)
		if err == nil {
			return
		}
		if !errors.Is(err, net.ErrClosed) {
			c.gsoOff.Store(true) // e.g. EIO/EINVAL: no UDP GSO on this path
		}
	}
	for off := 0; off < len(p.buf); off += p.seg {
		_, _ = c.UDPConn.WriteToUDPAddrPort(p.buf[off:min(off+p.seg, len(p.buf))], p.to)
	}
}
