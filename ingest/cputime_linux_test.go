package ingest

import "syscall"

// threadCPU returns the CPU time the calling OS thread has used (user+system),
// so a benchmark locked to its thread can report cost independent of how busy
// the shared machine is. ok is false when the platform cannot tell.
func threadCPU() (ns int64, ok bool) {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime), true
}
