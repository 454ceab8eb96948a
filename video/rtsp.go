package video

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// ffmpegState is the on-demand RTSP pull of one camera (guarded by Manager.mu).
type ffmpegState struct {
	running   bool
	cancel    context.CancelFunc
	done      chan struct{}
	stopping  bool // we asked it to stop: its exit is not a failure
	failures  int  // consecutive failed runs (reset when packets flow)
	nextStart time.Time
	starts    int
}

// ffmpegArgs is the pull command: RTSP over TCP (cameras behind NAT and lossy links
// behave better), video only, no re-encoding, SPS/PPS repeated before every keyframe
// (viewers joining mid-stream need them in-band), RTP to the relay's loopback port.
func ffmpegArgs(rtspURL string, port int) []string {
	return []string{
		"-hide_banner", "-loglevel", "error", "-nostdin",
		"-rtsp_transport", "tcp", "-timeout", "5000000", "-analyzeduration", "1000000", "-fflags", "nobuffer",
		"-i", rtspURL,
		"-an", "-c:v", "copy", "-bsf:v", "dump_extra=freq=keyframe",
		"-f", "rtp", fmt.Sprintf("rtp://127.0.0.1:%d?pkt_size=1200", port),
	}
}

// wantFFmpegLocked: viewers are waiting, or the last one left less than the grace ago.
func (st *stream) wantFFmpegLocked(now time.Time) bool {
	if len(st.viewers) > 0 {
		return true
	}
	return !st.lastGone.IsZero() && now.Sub(st.lastGone) < st.m.cfg.RTSPGrace
}

// superviseLocked starts, stops or restarts ffmpeg as demand and backoff say, and
// returns event callbacks to run after the lock is released.
func (st *stream) superviseLocked(now time.Time) []func() {
	m := st.m
	// A retired stream (replaced or removed by a registry edit) never starts
	// ffmpeg again, even if RunDue picked it up just before it was retired.
	want := st.wantFFmpegLocked(now) && !m.closed && !st.retired
	switch {
	case want && !st.ff.running && m.ffmpeg == "":
		st.lastErr = ErrFFmpegMissing.Error()
	case want && !st.ff.running && !now.Before(st.ff.nextStart):
		st.startFFmpegLocked(now)
	case !want && st.ff.running && !st.ff.stopping:
		st.stopFFmpegLocked()
		if st.markDownLocked(now, "") {
			st.state = StateIdle
			e := StreamEvent{Camera: st.camera, Source: st.kind, Reason: "idle: no viewers"}
			return []func(){func() { m.publish(EventStreamDown, e) }}
		}
		st.state, st.since = StateIdle, now
	}
	return nil
}

func (st *stream) startFFmpegLocked(now time.Time) {
	m := st.m
	port := st.udp.LocalAddr().(*net.UDPAddr).Port
	ctx, cancel := context.WithCancel(m.ctx)
	cmd := exec.CommandContext(ctx, m.ffmpeg, ffmpegArgs(st.src.RTSP, port)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 3 * time.Second
	tail := &tailBuffer{max: 2048}
	cmd.Stderr = tail
	if err := cmd.Start(); err != nil {
		cancel()
		st.ff.failures++
		st.ff.nextStart = now.Add(st.backoffLocked())
		st.lastErr = "ffmpeg start: " + err.Error()
		m.log.Warn("ffmpeg start failed", "camera", st.camera, "err", err)
		return
	}
	st.resetSenderLocked() // the new ffmpeg sends from a new port: accept it at once
	done := make(chan struct{})
	st.ff = ffmpegState{running: true, cancel: cancel, done: done, failures: st.ff.failures, starts: st.ff.starts + 1}
	if !st.up.Load() {
		st.state, st.since = StateStarting, now
	}
	m.met.ffmpegStarts.Inc()
	m.log.Info("ffmpeg started", "camera", st.camera, "rtsp", redactURL(st.src.RTSP), "pid", cmd.Process.Pid)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		err := cmd.Wait()
		cancel()
		close(done)
		end := m.clock.Now()
		var down *StreamEvent
		m.mu.Lock()
		if st.ff.done == done {
			st.ff.running = false
			if !st.ff.stopping {
				st.ff.failures++
				st.ff.nextStart = end.Add(st.backoffLocked())
				stderr := scrubCredentials(tail.String(), st.src.RTSP)
				st.lastErr = strings.TrimSpace(fmt.Sprintf("ffmpeg exited: %v %s", err, stderr))
				m.log.Warn("ffmpeg exited", "camera", st.camera, "err", err, "stderr", stderr, "retry_at", st.ff.nextStart)
				if st.markDownLocked(end, st.lastErr) {
					down = &StreamEvent{Camera: st.camera, Source: st.kind, Reason: st.lastErr}
				}
			}
			st.ff.stopping = false
		}
		m.mu.Unlock()
		if down != nil {
			m.publish(EventStreamDown, *down)
		}
	}()
}

// stopFFmpegLocked asks ffmpeg to stop (SIGINT, then SIGKILL after WaitDelay).
func (st *stream) stopFFmpegLocked() {
	if st.ff.running && st.ff.cancel != nil && !st.ff.stopping {
		st.ff.stopping = true
		st.ff.cancel()
		st.m.log.Info("ffmpeg stopping", "camera", st.camera)
	}
}

// backoffLocked is 1 s, 2 s, 4 s, … capped at RTSPBackoffMax.
func (st *stream) backoffLocked() time.Duration {
	d := time.Second
	for i := 1; i < st.ff.failures && d < st.m.cfg.RTSPBackoffMax; i++ {
		d *= 2
	}
	return min(d, st.m.cfg.RTSPBackoffMax)
}

// FFmpegDone returns a channel closed when the camera's current ffmpeg process has
// exited (nil when none was ever started); tests use it to see the stop happen.
func (m *Manager) FFmpegDone(camera string) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st, ok := m.streams[camera]; ok {
		return st.ff.done
	}
	return nil
}

// tailBuffer keeps the last max bytes written (ffmpeg's stderr), bounded.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
