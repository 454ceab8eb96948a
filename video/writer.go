package video

import (
	"context"
	"sync/atomic"
	"time"
)

// maxDrainPerViewer bounds how many queued packets a writer sends to one viewer
// before moving on to the next, so one viewer's backlog never delays the others by
// more than that many sends (and a frame's packets to one viewer go out together,
// which lets the batching socket coalesce them into one send).
const maxDrainPerViewer = 16

// writer is one of a small fixed pool of send goroutines (about one per core). It
// owns a shard of viewers and drains their bounded queues. One goroutine per viewer
// cost a goroutine wake-up per packet per viewer and let hundreds of goroutines
// compete for two cores; a shard keeps the per-viewer queues (a slow or broken
// viewer still only drops its own packets) with a handful of goroutines.
type writer struct {
	wake    chan struct{}             // capacity 1: "some viewer of mine has packets"
	viewers atomic.Pointer[[]*viewer] // copy-on-write, changed under Manager.mu
	load    int                       // viewers assigned (guarded by Manager.mu)
	batch   batcher                   // coalesces a viewer's sends; nopBatcher without a mux socket
}

// batcher is what a writer needs from the socket: hold sends while one viewer's
// packets are written, then flush them (as one segmented send where the kernel can).
type batcher interface {
	Hold()
	Release()
}

type nopBatcher struct{}

func (nopBatcher) Hold()    {}
func (nopBatcher) Release() {}

func newWriter(b batcher) *writer {
	w := &writer{wake: make(chan struct{}, 1), batch: b}
	w.viewers.Store(&[]*viewer{})
	return w
}

// signal wakes the writer without blocking; a pending wake-up already covers it.
func (w *writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// addLocked and removeLocked change the shard; the caller holds Manager.mu.
func (w *writer) addLocked(v *viewer) {
	cur := *w.viewers.Load()
	next := make([]*viewer, 0, len(cur)+1)
	next = append(append(next, cur...), v)
	w.viewers.Store(&next)
	w.load++
}

func (w *writer) removeLocked(v *viewer) {
	cur := *w.viewers.Load()
	next := make([]*viewer, 0, len(cur))
	for _, o := range cur {
		if o != v {
			next = append(next, o)
		}
	}
	if len(next) != len(cur) {
		w.load--
	}
	w.viewers.Store(&next)
}

// run drains the shard until ctx ends: passes over the viewers, up to
// maxDrainPerViewer packets each, until a pass finds every queue empty.
func (w *writer) run(ctx context.Context, m *Manager) {
	hist := m.met.latency
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		for {
			sent := false
			for _, v := range *w.viewers.Load() {
				if len(v.q) == 0 {
					continue
				}
				w.batch.Hold()
				var ats [maxDrainPerViewer]time.Time
				k := 0
			drain:
				for range maxDrainPerViewer {
					select {
					case rp := <-v.q:
						if v.track.WriteRTP(rp.p) == nil {
							ats[k] = rp.at
							k++
						}
						sent = true
					default:
						break drain
					}
				}
				w.batch.Release() // the packets reach the kernel here
				for _, at := range ats[:k] {
					hist.Observe(time.Since(at).Seconds())
				}
			}
			if !sent {
				break
			}
		}
	}
}

// pickWriterLocked assigns v to the least-loaded writer; the caller holds Manager.mu.
func (m *Manager) pickWriterLocked(v *viewer) {
	best := m.writers[0]
	for _, w := range m.writers[1:] {
		if w.load < best.load {
			best = w
		}
	}
	v.w = best
	best.addLocked(v)
}

// startWriters starts the send pool; Close stops it through m.ctx.
func (m *Manager) startWriters(n int, b batcher) {
	if n < 1 {
		n = 1
	}
	for i := 0; i < n; i++ {
		w := newWriter(b)
		m.writers = append(m.writers, w)
		m.wg.Add(1)
		go func() { defer m.wg.Done(); w.run(m.ctx, m) }()
	}
}
