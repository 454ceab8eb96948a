//go:build !linux

package ingest

// threadCPU is not available here; benchmarks then report wall time only.
func threadCPU() (int64, bool) { return 0, false }
