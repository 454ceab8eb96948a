package geo

import "syscall"

const (
	madvHugepage = 14 // MADV_HUGEPAGE: huge pages for pages not yet touched
	madvCollapse = 25 // MADV_COLLAPSE (Linux 6.1): rebuild touched pages as huge pages now
)

// adviseHuge asks the kernel to back b (2 MiB-aligned) with huge pages. Only a
// hint: an older kernel or THP set to "never" says no, and queries are as
// fast as they were.
func adviseHuge(b []byte) {
	_ = syscall.Madvise(b, madvHugepage)
	_ = syscall.Madvise(b, madvCollapse)
}
