package geo

import "unsafe"

// Huge pages.
//
// A county's forests index is hundreds of MB read at random, so nearly every
// cache miss of a query is also a TLB miss, and in a VM each TLB miss is a
// two-level page walk. Backing the index's large arrays with 2 MiB pages
// (transparent huge pages, asked for per array with madvise, so nothing has
// to be configured and nothing else in the process changes) lets more of
// those misses overlap. The arrays stay ordinary Go slices: the hint does not
// change their lifetime, and a layer swap frees them as before. Where the
// kernel refuses (THP disabled, memory too fragmented, not Linux) queries run
// as before. Measured in BenchmarkLocate; see docs/geo.md.

// hugePages asks for huge pages under the layer's largest arrays: the
// containment grid and the nearest-forest index.
func (l *layer) hugePages() {
	if g := l.grid; g != nil {
		hugeSlice(g.cell)
		hugeSlice(g.ent)
	}
	if n := l.near; n != nil {
		hugeSlice(n.verts)
		hugeSlice(n.pieces)
		hugeSlice(n.list)
		hugeSlice(n.start)
	}
}

// hugeSlice asks for huge pages under the whole 2 MiB pages inside s's
// backing array (none for arrays under 2 MiB).
func hugeSlice[T any](s []T) {
	if cap(s) == 0 {
		return
	}
	var zero T
	p := unsafe.Pointer(unsafe.SliceData(s))
	n := uintptr(cap(s)) * unsafe.Sizeof(zero)
	start := (uintptr(p) + hugePage - 1) &^ (hugePage - 1)
	end := (uintptr(p) + n) &^ (hugePage - 1)
	if end <= start {
		return
	}
	adviseHuge(unsafe.Slice((*byte)(unsafe.Add(p, start-uintptr(p))), end-start))
}

const hugePage = 2 << 20 // bytes in a huge page on amd64 and arm64 (4 KiB base pages)
