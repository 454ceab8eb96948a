package broker

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
)

// This file is the validating layer that sits in front of mochi-mqtt's decoder.
//
// Why here and not a patched mochi: mochi v2.7.9's decoders index into the
// packet buffer without bounds checks in places (upstream #501: a v5 SUBSCRIBE
// whose last topic filter lacks its options byte panics in SubscribeDecode),
// and the panic happens on the connection's goroutine where nothing recovers,
// so one client ends the process. Rather than vendor a fork we must then keep
// in step with upstream, every packet is checked here against the MQTT 3.1.1 /
// 5.0 wire grammar — exact field lengths, property identifiers valid for the
// packet type, UTF-8 strings, reserved flag bits — before a single byte reaches
// mochi. A packet that fails is never delivered; the connection is closed.
// FuzzCheckPacketVsMochi drives arbitrary bodies through this check and then
// through mochi's own decoder to show that whatever passes cannot panic it.

// ErrMalformed is the root of every structural rejection.
var ErrMalformed = errors.New("malformed mqtt packet")

// MQTT control packet types.
const (
	ptConnect     = 1
	ptConnack     = 2
	ptPublish     = 3
	ptPuback      = 4
	ptPubrec      = 5
	ptPubrel      = 6
	ptPubcomp     = 7
	ptSubscribe   = 8
	ptSuback      = 9
	ptUnsubscribe = 10
	ptUnsuback    = 11
	ptPingreq     = 12
	ptPingresp    = 13
	ptDisconnect  = 14
	ptAuth        = 15
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// reader walks a packet body with bounds checks on every read.
type reader struct {
	b   []byte
	off int
}

func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) byte1() (byte, error) {
	if r.left() < 1 {
		return 0, malformed("truncated byte at %d", r.off)
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) uint16() (uint16, error) {
	if r.left() < 2 {
		return 0, malformed("truncated uint16 at %d", r.off)
	}
	v := uint16(r.b[r.off])<<8 | uint16(r.b[r.off+1])
	r.off += 2
	return v, nil
}

func (r *reader) skip(n int) error {
	if n < 0 || r.left() < n {
		return malformed("truncated field of %d bytes at %d", n, r.off)
	}
	r.off += n
	return nil
}

func (r *reader) binary() ([]byte, error) {
	n, err := r.uint16()
	if err != nil {
		return nil, err
	}
	if r.left() < int(n) {
		return nil, malformed("length %d exceeds the %d bytes left", n, r.left())
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

// str reads an MQTT UTF-8 string: valid UTF-8, no U+0000 [MQTT-1.5.4-1/2].
func (r *reader) str() ([]byte, error) {
	b, err := r.binary()
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return nil, malformed("invalid UTF-8 string")
	}
	return b, nil
}

// varint reads a Variable Byte Integer (at most 4 bytes).
func (r *reader) varint() (int, error) {
	v, mult := 0, 1
	for i := 0; i < 4; i++ {
		c, err := r.byte1()
		if err != nil {
			return 0, err
		}
		v += int(c&0x7f) * mult
		if c&0x80 == 0 {
			return v, nil
		}
		mult *= 128
	}
	return 0, malformed("variable byte integer longer than 4 bytes")
}

// Property identifiers and their wire types (MQTT 5.0 §2.2.2.2).
const (
	tByte = iota + 1
	tU16
	tU32
	tVarint
	tString
	tBinary
	tPair
)

type propSpec struct {
	typ     int
	packets uint32 // bit per packet type; bit 0 = will properties
}

func pkts(ts ...int) uint32 {
	var m uint32
	for _, t := range ts {
		m |= 1 << t
	}
	return m
}

const willProps = 0 // pseudo packet type for the CONNECT will properties

var props = map[byte]propSpec{
	0x01: {tByte, pkts(ptPublish, willProps)},                                                                             // payload format indicator
	0x02: {tU32, pkts(ptPublish, willProps)},                                                                              // message expiry interval
	0x03: {tString, pkts(ptPublish, willProps)},                                                                           // content type
	0x08: {tString, pkts(ptPublish, willProps)},                                                                           // response topic
	0x09: {tBinary, pkts(ptPublish, willProps)},                                                                           // correlation data
	0x0B: {tVarint, pkts(ptPublish, ptSubscribe)},                                                                         // subscription identifier
	0x11: {tU32, pkts(ptConnect, ptConnack, ptDisconnect)},                                                                // session expiry interval
	0x12: {tString, pkts(ptConnack)},                                                                                      // assigned client identifier
	0x13: {tU16, pkts(ptConnack)},                                                                                         // server keep alive
	0x15: {tString, pkts(ptConnect, ptConnack, ptAuth)},                                                                   // authentication method
	0x16: {tBinary, pkts(ptConnect, ptConnack, ptAuth)},                                                                   // authentication data
	0x17: {tByte, pkts(ptConnect)},                                                                                        // request problem information
	0x18: {tU32, pkts(willProps)},                                                                                         // will delay interval
	0x19: {tByte, pkts(ptConnect)},                                                                                        // request response information
	0x1A: {tString, pkts(ptConnack)},                                                                                      // response information
	0x1C: {tString, pkts(ptConnack, ptDisconnect)},                                                                        // server reference
	0x1F: {tString, pkts(ptConnack, ptPuback, ptPubrec, ptPubrel, ptPubcomp, ptSuback, ptUnsuback, ptDisconnect, ptAuth)}, // reason string
	0x21: {tU16, pkts(ptConnect, ptConnack)},                                                                              // receive maximum
	0x22: {tU16, pkts(ptConnect, ptConnack)},                                                                              // topic alias maximum
	0x23: {tU16, pkts(ptPublish)},                                                                                         // topic alias
	0x24: {tByte, pkts(ptConnack)},                                                                                        // maximum QoS
	0x25: {tByte, pkts(ptConnack)},                                                                                        // retain available
	0x26: {tPair, pkts(ptConnect, ptConnack, ptPublish, willProps, ptPuback, ptPubrec, ptPubrel, ptPubcomp, // user property
		ptSubscribe, ptSuback, ptUnsubscribe, ptUnsuback, ptDisconnect, ptAuth)},
	0x27: {tU32, pkts(ptConnect, ptConnack)}, // maximum packet size
	0x28: {tByte, pkts(ptConnack)},           // wildcard subscription available
	0x29: {tByte, pkts(ptConnack)},           // subscription identifiers available
	0x2A: {tByte, pkts(ptConnack)},           // shared subscription available
}

// properties checks a v5 property block for packet type pt: the length must
// fit, every identifier must be valid for pt and its value must fit exactly.
func (r *reader) properties(pt int) error {
	n, err := r.varint()
	if err != nil {
		return err
	}
	if n > r.left() {
		return malformed("property length %d exceeds the %d bytes left", n, r.left())
	}
	end := r.off + n
	sub := &reader{b: r.b[:end], off: r.off}
	var seen [64]bool
	for sub.off < end {
		id, err := sub.byte1()
		if err != nil {
			return err
		}
		spec, ok := props[id]
		if !ok || spec.packets&(1<<pt) == 0 {
			return malformed("property 0x%02x not allowed in packet type %d", id, pt)
		}
		// Only user properties (and subscription identifiers in PUBLISH, sent by
		// servers) may repeat [MQTT-3.1.2-…]; a client repeating another one is a
		// protocol error.
		if seen[id] && id != 0x26 {
			return malformed("property 0x%02x repeated", id)
		}
		seen[id] = true
		var v int
		switch spec.typ {
		case tByte:
			var c byte
			c, err = sub.byte1()
			v = int(c)
		case tU16:
			var u uint16
			u, err = sub.uint16()
			v = int(u)
		case tU32:
			err = sub.skip(4)
			v = -1
		case tVarint:
			v, err = sub.varint()
		case tString:
			_, err = sub.str()
		case tBinary:
			_, err = sub.binary()
		case tPair:
			if _, err = sub.str(); err == nil {
				_, err = sub.str()
			}
		}
		if err != nil {
			return err
		}
		switch id {
		case 0x01, 0x17, 0x19: // booleans
			if v > 1 {
				return malformed("property 0x%02x must be 0 or 1", id)
			}
		case 0x0B: // subscription identifier 1..268435455
			if v == 0 {
				return malformed("subscription identifier 0")
			}
		case 0x21: // receive maximum
			if v == 0 {
				return malformed("receive maximum 0")
			}
		case 0x23: // topic alias
			if v == 0 {
				return malformed("topic alias 0")
			}
		}
	}
	if sub.off != end {
		return malformed("property overruns its block")
	}
	r.off = end
	return nil
}

// checkPacket validates one complete packet from a client. version is the
// protocol level from this connection's CONNECT (0 before it). It returns the
// protocol level a CONNECT declares (else version).
func checkPacket(version byte, header byte, body []byte) (byte, error) {
	pt := int(header >> 4)
	flags := header & 0x0f
	r := &reader{b: body}
	v5 := version == 5
	if version == 0 && pt != ptConnect {
		return 0, malformed("first packet is type %d, not CONNECT", pt)
	}
	if version != 0 && pt == ptConnect {
		return version, malformed("second CONNECT")
	}
	switch pt {
	case ptPubrel, ptSubscribe, ptUnsubscribe:
		if flags != 0x02 {
			return version, malformed("packet type %d with flags %#x", pt, flags)
		}
	case ptPublish:
		if flags&0x06 == 0x06 {
			return version, malformed("PUBLISH with QoS 3")
		}
		if flags&0x06 == 0 && flags&0x08 != 0 {
			return version, malformed("PUBLISH QoS 0 with DUP")
		}
	default:
		if flags != 0 {
			return version, malformed("packet type %d with flags %#x", pt, flags)
		}
	}
	var err error
	switch pt {
	case ptConnect:
		version, err = checkConnect(r)
		if err != nil {
			return 0, err
		}
	case ptPublish:
		err = checkPublish(r, flags, v5)
	case ptPuback, ptPubrec, ptPubrel, ptPubcomp:
		if _, err = r.uint16(); err != nil {
			break
		}
		if !v5 {
			break
		}
		if r.left() > 0 {
			if _, err = r.byte1(); err == nil && r.left() > 0 {
				err = r.properties(pt)
			}
		}
	case ptSubscribe:
		err = checkSubscribe(r, v5)
	case ptUnsubscribe:
		err = checkUnsubscribe(r, v5)
	case ptPingreq:
	case ptDisconnect:
		if v5 && r.left() > 0 {
			if _, err = r.byte1(); err == nil && r.left() > 0 {
				err = r.properties(pt)
			}
		}
	case ptAuth:
		if !v5 {
			return version, malformed("AUTH before MQTT 5")
		}
		if r.left() > 0 {
			if _, err = r.byte1(); err == nil && r.left() > 0 {
				err = r.properties(pt)
			}
		}
	default: // 0, and the server-to-client types CONNACK, SUBACK, UNSUBACK, PINGRESP
		return version, malformed("packet type %d not accepted from a client", pt)
	}
	if err != nil {
		return version, err
	}
	if r.left() != 0 {
		return version, malformed("%d trailing bytes in packet type %d", r.left(), pt)
	}
	return version, nil
}

func checkConnect(r *reader) (byte, error) {
	name, err := r.str()
	if err != nil {
		return 0, err
	}
	level, err := r.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case string(name) == "MQTT" && (level == 4 || level == 5):
	case string(name) == "MQIsdp" && level == 3:
	default:
		return 0, malformed("protocol %q level %d", name, level)
	}
	fl, err := r.byte1()
	if err != nil {
		return 0, err
	}
	if fl&0x01 != 0 {
		return 0, malformed("CONNECT reserved flag set")
	}
	will := fl&0x04 != 0
	willQoS := (fl >> 3) & 0x03
	if willQoS == 3 || (!will && (willQoS != 0 || fl&0x20 != 0)) {
		return 0, malformed("CONNECT will flags")
	}
	if level < 5 && fl&0x40 != 0 && fl&0x80 == 0 {
		return 0, malformed("password without username")
	}
	if _, err := r.uint16(); err != nil { // keep alive
		return 0, err
	}
	if level == 5 {
		if err := r.properties(ptConnect); err != nil {
			return 0, err
		}
	}
	if _, err := r.str(); err != nil { // client id
		return 0, err
	}
	if will {
		if level == 5 {
			if err := r.properties(willProps); err != nil {
				return 0, err
			}
		}
		if _, err := r.str(); err != nil { // will topic
			return 0, err
		}
		if _, err := r.binary(); err != nil { // will payload
			return 0, err
		}
	}
	if fl&0x80 != 0 {
		if _, err := r.str(); err != nil {
			return 0, err
		}
	}
	if fl&0x40 != 0 {
		if _, err := r.binary(); err != nil {
			return 0, err
		}
	}
	return level, nil
}

func checkPublish(r *reader, flags byte, v5 bool) error {
	if _, err := r.str(); err != nil { // topic name
		return err
	}
	if flags&0x06 != 0 {
		id, err := r.uint16()
		if err != nil {
			return err
		}
		if id == 0 {
			return malformed("PUBLISH packet id 0")
		}
	}
	if v5 {
		if err := r.properties(ptPublish); err != nil {
			return err
		}
	}
	r.off = len(r.b) // the rest is payload
	return nil
}

// checkFilterListHead checks what SUBSCRIBE and UNSUBSCRIBE share before their
// topic filters: a non-zero packet id, v5 properties, and at least one filter
// ([MQTT-3.8.3-3], [MQTT-3.10.3-2]).
func checkFilterListHead(r *reader, v5 bool, name string, pt int) error {
	id, err := r.uint16()
	if err != nil {
		return err
	}
	if id == 0 {
		return malformed("%s packet id 0", name)
	}
	if v5 {
		if err := r.properties(pt); err != nil {
			return err
		}
	}
	if r.left() == 0 {
		return malformed("%s without topic filters", name)
	}
	return nil
}

func checkSubscribe(r *reader, v5 bool) error {
	if err := checkFilterListHead(r, v5, "SUBSCRIBE", ptSubscribe); err != nil {
		return err
	}
	for r.left() > 0 {
		f, err := r.str()
		if err != nil {
			return err
		}
		if len(f) == 0 {
			return malformed("empty topic filter")
		}
		opt, err := r.byte1() // the byte #501 omits
		if err != nil {
			return err
		}
		if opt&0x03 == 3 {
			return malformed("subscription QoS 3")
		}
		if v5 {
			if opt&0xC0 != 0 || (opt>>4)&0x03 == 3 {
				return malformed("subscription options %#x", opt)
			}
		} else if opt&0xFC != 0 {
			return malformed("subscription options %#x", opt)
		}
	}
	return nil
}

func checkUnsubscribe(r *reader, v5 bool) error {
	if err := checkFilterListHead(r, v5, "UNSUBSCRIBE", ptUnsubscribe); err != nil {
		return err
	}
	for r.left() > 0 {
		f, err := r.str()
		if err != nil {
			return err
		}
		if len(f) == 0 {
			return malformed("empty topic filter")
		}
	}
	return nil
}
