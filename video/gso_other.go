//go:build !linux

package video

// gsoSupported: segmented UDP sends are Linux-only; elsewhere batches go out one
// datagram at a time.
const gsoSupported = false

func gsoControl(int) []byte { return nil }
