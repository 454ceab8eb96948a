package video

import (
	"syscall"
	"unsafe"
)

// gsoSupported: Linux can split one send into many UDP datagrams (UDP_SEGMENT).
const gsoSupported = true

// gsoControl is the control message asking the kernel to split a send into
// seg-byte UDP datagrams (UDP_SEGMENT, Linux 4.18+).
func gsoControl(seg int) []byte {
	const solUDP, udpSegment = 17, 103
	b := make([]byte, syscall.CmsgSpace(2))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = solUDP, udpSegment
	h.SetLen(syscall.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&b[syscall.CmsgLen(0)])) = uint16(seg)
	return b
}
