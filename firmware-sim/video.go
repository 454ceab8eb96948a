package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/registry"
	"github.com/lookoutfire/lookout/video/camsim"
)

// whipStreamer publishes one camera session; camsim.StreamWHIP in production. It
// returns when the session ends (nil when ctx ended).
type whipStreamer func(ctx context.Context, whipURL, token, h264File string, opts ...camsim.Options) error

// cameraVideo streams a looping H.264 clip from every simulated camera to the
// gateway over WHIP, as a tower camera with a WHIP encoder does, and keeps
// reconnecting with capped exponential backoff when the session fails (the
// gateway restarted, the token was refused, ICE timed out).
type cameraVideo struct {
	whipURL  string                              // template; {camera} is replaced by the device id
	file     string                              // Annex-B H.264 clip played in a loop
	token    func(camera string) (string, error) // re-read before every attempt, so a reissued token is picked up
	loopback bool                                // ICE on 127.0.0.1 only (the gateway is on this host)
	stream   whipStreamer
	client   *http.Client
	clk      clock.Clock
	// wait sleeps d or until ctx ends (false); tests replace it to run the
	// backoff schedule without real sleeps.
	wait func(ctx context.Context, d time.Duration) bool

	backoffMin, backoffMax time.Duration
	// stable is how long a session must have lasted for the next failure to
	// start again from backoffMin.
	stable time.Duration

	sessions atomic.Int64 // attempts started
	failures atomic.Int64 // sessions that ended (or never started) with ctx still live
	log      *slog.Logger
}

// newCameraVideo builds the streamer from the command-line options.
func newCameraVideo(o options, log *slog.Logger) (*cameraVideo, error) {
	if _, err := camsim.LoadAccessUnits(o.videoFile); err != nil {
		return nil, fmt.Errorf("--video-file: %w", err)
	}
	if !strings.Contains(o.whipURL, "{camera}") {
		return nil, errors.New("--whip-url must contain {camera}")
	}
	u, err := url.Parse(strings.ReplaceAll(o.whipURL, "{camera}", "x"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--whip-url %q: want an http(s) URL", o.whipURL)
	}
	v := &cameraVideo{
		whipURL: o.whipURL, file: o.videoFile, loopback: isLoopbackHost(u.Hostname()),
		stream: camsim.StreamWHIP, client: &http.Client{Timeout: 15 * time.Second}, clk: clock.Real{}, wait: sleepCtx,
		backoffMin: time.Second, backoffMax: 30 * time.Second, stable: time.Minute, log: log,
		token: func(string) (string, error) { return "", nil },
	}
	if o.cameraTokens != "" {
		path := o.cameraTokens
		if _, err := loadCredentials(path); err != nil {
			return nil, fmt.Errorf("--camera-tokens: %w", err)
		}
		v.token = func(camera string) (string, error) {
			m, err := loadCredentials(path)
			if err != nil {
				return "", err
			}
			t, ok := m[camera]
			if !ok {
				return "", fmt.Errorf("%s has no token for camera %s", path, camera)
			}
			return t, nil
		}
	}
	return v, nil
}

// isLoopbackHost reports whether host names this machine's loopback interface.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sleepCtx waits d, or until ctx ends (then it reports false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// nextBackoff doubles the previous delay within [lo, hi]; 0 starts at lo.
func nextBackoff(prev, lo, hi time.Duration) time.Duration {
	if prev <= 0 {
		return lo
	}
	return min(2*prev, hi)
}

// run streams every camera in devs until ctx ends.
func (v *cameraVideo) run(ctx context.Context, devs []registry.Device) {
	var wg sync.WaitGroup
	n := 0
	for _, d := range devs {
		if d.Class != ingest.ClassCamera {
			continue
		}
		n++
		wg.Add(1)
		go func() {
			defer wg.Done()
			v.camera(ctx, d.ID)
		}()
	}
	v.log.Info("camera video", "cameras", n, "whip", v.whipURL, "file", v.file, "loopback_ice", v.loopback)
	wg.Wait()
}

// camera is one camera's publish loop: stream, and after a failure wait the
// backoff (reset once a session had been stable) and try again.
func (v *cameraVideo) camera(ctx context.Context, id string) {
	endpoint := strings.ReplaceAll(v.whipURL, "{camera}", url.PathEscape(id))
	var backoff time.Duration
	for ctx.Err() == nil {
		start := v.clk.Now()
		v.sessions.Add(1)
		token, err := v.token(id)
		if err == nil {
			err = v.stream(ctx, endpoint, token, v.file, camsim.Options{LoopbackOnly: v.loopback, HTTPClient: v.client})
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("session ended")
		}
		v.failures.Add(1)
		if v.clk.Now().Sub(start) >= v.stable {
			backoff = 0
		}
		backoff = nextBackoff(backoff, v.backoffMin, v.backoffMax)
		v.log.Warn("camera stream ended; reconnecting", "camera", id, "err", err, "retry_in", backoff)
		if !v.wait(ctx, backoff) {
			return
		}
	}
}
