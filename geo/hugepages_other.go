//go:build !linux

package geo

// adviseHuge is a no-op where transparent huge pages are not asked for.
func adviseHuge(b []byte) {}
