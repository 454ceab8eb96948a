package main

import (
	"errors"
	"log/slog"

	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/registry"
	"github.com/lookoutfire/lookout/video"
)

// cameraDirectory lets the video relay ask the device registry which ids are
// cameras, without video importing the registry.
type cameraDirectory struct{ r *registry.Registry }

// IsCamera reports whether id is a registered device of class camera.
func (c cameraDirectory) IsCamera(id string) bool {
	d, ok := c.r.Get(id)
	return ok && d.Class == ingest.ClassCamera
}

// cameraSources is what following the registry needs from the video relay
// (*video.Manager): a camera's rtsp_url as its RTSP source, and forgetting a
// camera that left the registry.
type cameraSources interface {
	SetCameraRTSP(camera, rtspURL string) error
	RemoveCamera(camera string)
}

// followRegistry returns the registry watcher (registry.Watch) that keeps the
// relay's RTSP sources equal to the cameras' rtsp_url: operators register a PTZ
// camera once, through the device API or the seed file, and its live view
// works without a video.sources entry. A URL the relay refuses is logged and
// the camera keeps whatever it had.
func followRegistry(v cameraSources, log *slog.Logger) func(registry.Change) {
	return func(c registry.Change) {
		d := c.Device
		if c.Op == registry.ChangeDeleted || d.Class != ingest.ClassCamera {
			v.RemoveCamera(d.ID)
			return
		}
		if err := v.SetCameraRTSP(d.ID, d.RTSPURL); err != nil && !errors.Is(err, video.ErrClosed) {
			log.Warn("registry camera rtsp_url not used", "camera", d.ID, "err", err)
		}
	}
}
