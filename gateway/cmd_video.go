package main

import (
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/registry"
)

// cameraDirectory lets the video relay ask the device registry which ids are
// cameras, without video importing the registry.
type cameraDirectory struct{ r *registry.Registry }

// IsCamera reports whether id is a registered device of class camera.
func (c cameraDirectory) IsCamera(id string) bool {
	d, ok := c.r.Get(id)
	return ok && d.Class == ingest.ClassCamera
}
