package geo

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// TestHugeSliceKeepsData: asking for huge pages under an array that is
// already written (MADV_COLLAPSE copies it into new pages) must not change
// a byte of it, and arrays under one huge page are left alone. Whether the
// kernel granted huge pages is logged, not asserted: THP may be disabled.
func TestHugeSliceKeepsData(t *testing.T) {
	a := make([]uint64, 3*hugePage/8) // holds at least two whole huge pages
	for i := range a {
		a[i] = uint64(i)*0x9e3779b97f4a7c15 + 7
	}
	small := []uint64{1, 2, 3}
	hugeSlice(a)
	hugeSlice(small)
	hugeSlice([]uint64(nil))
	for i := range a {
		if a[i] != uint64(i)*0x9e3779b97f4a7c15+7 {
			t.Fatalf("a[%d] changed to %#x", i, a[i])
		}
	}
	if small[0] != 1 || small[2] != 3 {
		t.Fatalf("small array changed: %v", small)
	}
	if runtime.GOOS == "linux" {
		aligned := (uintptr(unsafe.Pointer(&a[0])) + hugePage - 1) &^ (hugePage - 1)
		t.Logf("huge pages under the array: %s", anonHugeAt(aligned))
	}
}

// anonHugeAt is the AnonHugePages line of the mapping holding addr.
func anonHugeAt(addr uintptr) string {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x", &lo, &hi); n == 2 && strings.Contains(line, "-") {
			in = addr >= lo && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "AnonHugePages:") {
			return strings.Join(strings.Fields(line)[1:], " ")
		}
	}
	return "mapping not found"
}
