package video

import (
	"fmt"
	"time"

	"github.com/lookoutfire/lookout/internal/rtspurl"
)

// SetCameraRTSP makes rtspURL the camera's RTSP pull source, as the device
// registry's rtsp_url says; "" removes it. The gateway calls it for every
// camera at start and after every registry edit, so operators register a
// camera once instead of also listing it in video.sources. The source behaves
// like a video.sources RTSP entry (ffmpeg on the first viewer, stopped after
// rtsp_grace, restarted with backoff), and a video.sources entry for the same
// camera wins (logged once per URL).
//
// What happens to the camera's current stream:
//   - none: the RTSP stream is created (idle until someone watches);
//   - registry RTSP, new URL: the source is replaced in place and viewers stay
//     connected: ffmpeg is stopped and, once it has exited, started on the new
//     URL at once; viewers resume at the new source's next keyframe;
//   - WHIP (the camera was publishing itself): the publisher and its viewers
//     are closed (the viewer page reconnects) and the RTSP stream replaces it;
//   - registry RTSP and rtspURL is "": the stream and its viewers are closed,
//     and the camera may publish over WHIP again.
//
// Calling it again with the same URL changes nothing.
func (m *Manager) SetCameraRTSP(camera, rtspURL string) error {
	if rtspURL != "" {
		if err := rtspurl.Check(rtspURL); err != nil {
			return fmt.Errorf("%w: camera %s: %v", ErrBadSource, camera, err)
		}
		if !m.cams.IsCamera(camera) {
			return fmt.Errorf("%w: %q", ErrUnknownCamera, camera)
		}
	}
	now := m.clock.Now()
	var later []func()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if cfg, ok := m.cfg.source(camera); ok {
		prev := m.shadowed[camera]
		if rtspURL == "" {
			delete(m.shadowed, camera)
		} else {
			m.shadowed[camera] = rtspURL
		}
		m.mu.Unlock()
		if rtspURL != "" && rtspURL != prev {
			used := cfg.RTSP
			if used == "" {
				used = fmt.Sprintf("rtp_port %d", cfg.RTPPort)
			} else {
				used = redactURL(used)
			}
			m.log.Info("camera has a video.sources entry and a registry rtsp_url: using video.sources",
				"camera", camera, "source", used, "registry_rtsp_ignored", redactURL(rtspURL))
		}
		return nil
	}
	st := m.streams[camera]
	switch {
	case rtspURL == "":
		if st == nil || st.origin != OriginRegistry {
			m.mu.Unlock()
			return nil
		}
		n := len(st.viewers)
		later = st.retireLocked(now, "registry rtsp_url removed")
		m.mu.Unlock()
		m.log.Info("registry rtsp_url removed: RTSP source closed; the camera may publish over WHIP",
			"camera", camera, "viewers_closed", n)
	case st != nil && st.origin == OriginRegistry:
		if st.src.RTSP == rtspURL {
			m.mu.Unlock()
			return nil
		}
		n := len(st.viewers)
		later = st.replaceRTSPLocked(now, rtspURL)
		m.mu.Unlock()
		m.log.Info("registry rtsp_url changed: RTSP source replaced, viewers kept",
			"camera", camera, "rtsp", redactURL(rtspURL), "viewers", n)
	default:
		n := 0
		if st != nil { // a WHIP stream: the registry now says where to pull from
			n = len(st.viewers)
			later = st.retireLocked(now, "registry rtsp_url set: camera now pulled over RTSP")
		}
		if _, err := m.addSourceLocked(Source{Camera: camera, RTSP: rtspURL}, OriginRegistry); err != nil {
			m.mu.Unlock()
			runAll(later)
			return fmt.Errorf("video: registry camera %s: %w", camera, err)
		}
		m.mu.Unlock()
		if st != nil {
			m.log.Info("registry rtsp_url set: WHIP stream closed, camera now pulled over RTSP",
				"camera", camera, "rtsp", redactURL(rtspURL), "viewers_closed", n)
		} else {
			m.log.Info("RTSP source from the device registry", "camera", camera, "rtsp", redactURL(rtspURL))
		}
	}
	runAll(later)
	return nil
}

// RemoveCamera closes the stream of a camera that left the registry (deleted,
// or no longer of class camera): its viewers and WHIP publisher are closed and
// a registry RTSP source stops. A video.sources entry stays: configuration,
// not the registry, defines it.
func (m *Manager) RemoveCamera(camera string) {
	m.mu.Lock()
	delete(m.shadowed, camera)
	st := m.streams[camera]
	if m.closed || st == nil || st.origin == OriginConfig {
		m.mu.Unlock()
		return
	}
	n := len(st.viewers)
	later := st.retireLocked(m.clock.Now(), "camera removed from the registry")
	m.mu.Unlock()
	m.log.Info("camera removed from the registry: stream closed", "camera", camera, "source", st.kind, "viewers_closed", n)
	runAll(later)
}

func runAll(fs []func()) {
	for _, f := range fs {
		f()
	}
}

// retireLocked takes the stream out of service: out of Manager.streams, ffmpeg
// stopped, ingest socket closed, and — in the returned callbacks, to run after
// mu is released — its viewers and WHIP publisher closed and stream.down
// announced if it was up. Caller holds mu.
func (st *stream) retireLocked(now time.Time, reason string) []func() {
	m := st.m
	if m.streams[st.camera] == st {
		delete(m.streams, st.camera)
	}
	st.retired = true
	st.stopFFmpegLocked()
	if st.udp != nil {
		_ = st.udp.Close() // ends readUDP
	}
	var later []func()
	if st.markDownLocked(now, reason) {
		e := StreamEvent{Camera: st.camera, Source: st.kind, Reason: reason}
		later = append(later, func() { m.publish(EventStreamDown, e) })
	}
	st.bitrate = 0
	for _, v := range st.viewers {
		later = append(later, func() { m.removeViewer(v) })
	}
	if st.pubPC != nil {
		id := st.pubID
		later = append(later, func() { m.endPublisher(st, id, reason) })
	}
	return later
}

// replaceRTSPLocked points a registry RTSP stream at a new URL, keeping its
// viewers: the running ffmpeg is stopped and superviseLocked starts the next
// one on the new URL as soon as it has exited (never both at once, so the
// ingest port's sender latch goes to the new ffmpeg), without backoff. Viewers
// wait for a keyframe again: the new source's first packets may not decode
// against the old one's. Caller holds mu; the returned callbacks run after.
func (st *stream) replaceRTSPLocked(now time.Time, rtspURL string) []func() {
	m := st.m
	st.src.RTSP = rtspURL
	st.stopFFmpegLocked()
	st.ff.failures, st.ff.nextStart = 0, time.Time{}
	var later []func()
	if st.markDownLocked(now, "") {
		e := StreamEvent{Camera: st.camera, Source: st.kind, Reason: "registry rtsp_url changed"}
		later = append(later, func() { m.publish(EventStreamDown, e) })
	}
	st.state, st.since, st.lastErr, st.bitrate = StateIdle, now, "", 0
	for _, v := range *st.active.Load() {
		v.waitKey.Store(true)
	}
	return append(later, st.superviseLocked(now)...)
}
