package broker

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// connectV returns a CONNECT packet (fixed header included) for protocol level v.
func connectV(v byte, clientID, user, pass string) []byte {
	var body []byte
	body = append(body, 0, 4, 'M', 'Q', 'T', 'T', v)
	flags := byte(0x02)
	if user != "" {
		flags |= 0x80
	}
	if pass != "" {
		flags |= 0x40
	}
	body = append(body, flags, 0, 30)
	if v == 5 {
		body = append(body, 0) // no properties
	}
	body = appendStr(body, clientID)
	if user != "" {
		body = appendStr(body, user)
	}
	if pass != "" {
		body = appendStr(body, pass)
	}
	return frame(0x10, body)
}

func appendStr(b []byte, s string) []byte {
	return append(append(b, byte(len(s)>>8), byte(len(s))), s...)
}

func frame(h byte, body []byte) []byte {
	out := []byte{h}
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// packet501 is the truncated MQTT 5 SUBSCRIBE of mochi-mqtt issue #501: packet
// id 1, empty properties, filter "a" — and no subscription options byte.
var packet501 = []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, 'a'}

// encode renders a packet with mochi's own encoder: whatever mochi can write, a
// well-behaved client can send, so the guard must accept it.
func encode(t *testing.T, pk packets.Packet, f func(*packets.Packet, *bytes.Buffer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f(&pk, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func split(p []byte) (byte, []byte) {
	i := 1
	for p[i]&0x80 != 0 {
		i++
	}
	return p[0], p[i+1:]
}

func TestCheckPacketAcceptsWellFormed(t *testing.T) {
	sub := func(v byte) packets.Packet {
		return packets.Packet{ProtocolVersion: v, FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 7,
			Filters: packets.Subscriptions{{Filter: "fire/cmd/dev-1", Qos: 1}, {Filter: "fire/#", Qos: 0, NoLocal: v == 5}}}
	}
	pub := func(v byte, qos byte) packets.Packet {
		pk := packets.Packet{ProtocolVersion: v, FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos},
			TopicName: "fire/smoke/dev-1/telemetry", Payload: []byte(`{"t":1}`)}
		if qos > 0 {
			pk.PacketID = 3
		}
		if v == 5 {
			pk.Properties.ContentType = "application/json"
			pk.Properties.User = []packets.UserProperty{{Key: "k", Val: "v"}}
		}
		return pk
	}
	cases := []struct {
		name    string
		version byte
		raw     []byte
	}{
		{"connect v3.1.1", 0, connectV(4, "dev-1", "dev-1", "secret")},
		{"connect v5", 0, connectV(5, "dev-1", "dev-1", "secret")},
		{"connect v5 mochi-encoded with will", 0, encode(t, packets.Packet{ProtocolVersion: 5, FixedHeader: packets.FixedHeader{Type: packets.Connect},
			Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "c", Keepalive: 10, Clean: true,
				WillFlag: true, WillTopic: "fire/w", WillPayload: []byte("x"), WillQos: 1, UsernameFlag: true, Username: []byte("u"),
				PasswordFlag: true, Password: []byte("p"), WillProperties: packets.Properties{WillDelayInterval: 5}},
			Properties: packets.Properties{SessionExpiryInterval: 60, ReceiveMaximum: 10}}, (*packets.Packet).ConnectEncode)},
		{"publish qos0 v4", 4, encode(t, pub(4, 0), (*packets.Packet).PublishEncode)},
		{"publish qos1 v4", 4, encode(t, pub(4, 1), (*packets.Packet).PublishEncode)},
		{"publish qos2 v5 props", 5, encode(t, pub(5, 2), (*packets.Packet).PublishEncode)},
		{"subscribe v4", 4, encode(t, sub(4), (*packets.Packet).SubscribeEncode)},
		{"subscribe v5", 5, encode(t, sub(5), (*packets.Packet).SubscribeEncode)},
		{"unsubscribe v5", 5, encode(t, packets.Packet{ProtocolVersion: 5, FixedHeader: packets.FixedHeader{Type: packets.Unsubscribe, Qos: 1},
			PacketID: 9, Filters: packets.Subscriptions{{Filter: "a/b"}}}, (*packets.Packet).UnsubscribeEncode)},
		{"puback v4", 4, []byte{0x40, 2, 0, 1}},
		{"puback v5 reason", 5, []byte{0x40, 3, 0, 1, 0x10}},
		{"pubrel v5 reason props", 5, []byte{0x62, 4, 0, 1, 0, 0}},
		{"pingreq", 4, []byte{0xC0, 0}},
		{"disconnect v4", 4, []byte{0xE0, 0}},
		{"disconnect v5 reason", 5, []byte{0xE0, 1, 0x04}},
		{"auth v5", 5, []byte{0xF0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, body := split(c.raw)
			if _, err := checkPacket(c.version, h, body); err != nil {
				t.Fatalf("rejected well-formed packet % x: %v", c.raw, err)
			}
		})
	}
}

func TestCheckPacketRejectsMalformed(t *testing.T) {
	cases := []struct {
		name    string
		version byte
		raw     []byte
	}{
		{"issue 501 truncated v5 subscribe", 5, packet501},
		{"v4 subscribe without options byte", 4, []byte{0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'}},
		{"subscribe no filters", 4, []byte{0x82, 0x02, 0x00, 0x01}},
		{"subscribe qos 3", 4, []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03}},
		{"subscribe v5 reserved option bits", 5, []byte{0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0xC0}},
		{"subscribe wrong flags", 4, []byte{0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}},
		{"subscribe packet id 0", 4, []byte{0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00}},
		{"subscribe filter overruns", 4, []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x09, 'a', 0x00}},
		{"subscribe v5 props overrun", 5, []byte{0x82, 0x06, 0x00, 0x01, 0x09, 0x01, 'a', 0x00}},
		{"subscribe v5 bad property id", 5, []byte{0x82, 0x09, 0x00, 0x01, 0x02, 0x01, 0x01, 0x00, 0x01, 'a', 0x00}},
		{"subscribe invalid utf8", 4, []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0xff, 0x00}},
		{"unsubscribe v5 truncated", 5, []byte{0xA2, 0x04, 0x00, 0x01, 0x00, 0x00}},
		{"publish qos 3", 4, []byte{0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01}},
		{"publish topic overruns", 4, []byte{0x30, 0x03, 0x00, 0x09, 'a'}},
		{"publish v5 props overrun", 5, []byte{0x30, 0x05, 0x00, 0x01, 'a', 0x05, 0x01}},
		{"publish v5 topic alias 0", 5, []byte{0x30, 0x07, 0x00, 0x01, 'a', 0x03, 0x23, 0x00, 0x00}},
		{"puback short", 4, []byte{0x40, 0x01, 0x00}},
		{"puback v4 long", 4, []byte{0x40, 0x03, 0x00, 0x01, 0x00}},
		{"pingreq with body", 4, []byte{0xC0, 0x01, 0x00}},
		{"connack from client", 4, []byte{0x20, 0x02, 0x00, 0x00}},
		{"suback from client", 5, []byte{0x90, 0x03, 0x00, 0x01, 0x00}},
		{"type 0", 4, []byte{0x00, 0x00}},
		{"auth in v4", 4, []byte{0xF0, 0x00}},
		{"second connect", 4, connectV(4, "a", "", "")},
		{"publish before connect", 0, []byte{0x30, 0x03, 0x00, 0x01, 'a'}},
		{"connect bad protocol", 0, frame(0x10, []byte{0, 4, 'M', 'Q', 'T', 'X', 4, 2, 0, 10, 0, 1, 'c'})},
		{"connect reserved flag", 0, frame(0x10, []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 3, 0, 10, 0, 1, 'c'})},
		{"connect truncated client id", 0, frame(0x10, []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 10, 0, 5, 'c'})},
		{"connect trailing bytes", 0, frame(0x10, []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 10, 0, 1, 'c', 9})},
		{"connect v5 props overrun", 0, frame(0x10, []byte{0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 10, 7, 0x11, 0, 0, 1, 'c'})},
		{"connect v5 repeated property", 0, frame(0x10, []byte{0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 10, 6, 0x21, 0, 1, 0x21, 0, 1, 0, 1, 'c'})},
		{"connect will qos 3", 0, frame(0x10, []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x1E, 0, 10, 0, 1, 'c', 0, 1, 't', 0, 0})},
		{"disconnect v5 props overrun", 5, []byte{0xE0, 0x02, 0x00, 0x05}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, body := split(c.raw)
			_, err := checkPacket(c.version, h, body)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("accepted malformed packet % x (err %v)", c.raw, err)
			}
		})
	}
}

// mochiDecode runs mochi's decoder on a packet the way its read loop does and
// reports a panic as an error.
func mochiDecode(version byte, h byte, body []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("mochi panicked: %v", p)
		}
	}()
	var fh packets.FixedHeader
	if e := fh.Decode(h); e != nil {
		return nil
	}
	fh.Remaining = len(body)
	pk := packets.Packet{ProtocolVersion: version, FixedHeader: fh}
	px := append([]byte{}, body...)
	switch fh.Type {
	case packets.Connect:
		_ = pk.ConnectDecode(px)
		_ = pk.ConnectValidate()
	case packets.Publish:
		if pk.PublishDecode(px) == nil {
			_ = pk.PublishValidate(65535)
		}
	case packets.Puback:
		_ = pk.PubackDecode(px)
	case packets.Pubrec:
		_ = pk.PubrecDecode(px)
	case packets.Pubrel:
		_ = pk.PubrelDecode(px)
	case packets.Pubcomp:
		_ = pk.PubcompDecode(px)
	case packets.Subscribe:
		if pk.SubscribeDecode(px) == nil {
			_ = pk.SubscribeValidate()
		}
	case packets.Unsubscribe:
		if pk.UnsubscribeDecode(px) == nil {
			_ = pk.UnsubscribeValidate()
		}
	case packets.Disconnect:
		_ = pk.DisconnectDecode(px)
	case packets.Auth:
		if pk.AuthDecode(px) == nil {
			_ = pk.AuthValidate()
		}
	}
	return nil
}

// TestMochiStillPanicsOn501 pins the upstream bug the guard exists for: if a
// mochi upgrade fixes it, this test says so and the guard's comment can change.
func TestMochiStillPanicsOn501(t *testing.T) {
	h, body := split(packet501)
	if err := mochiDecode(5, h, body); err == nil {
		t.Fatal("mochi no longer panics on the #501 packet; update the packet guard's rationale")
	}
}

// FuzzCheckPacketVsMochi: whatever the guard accepts, mochi's decoder must
// decode without panicking. The first byte picks the protocol level.
func FuzzCheckPacketVsMochi(f *testing.F) {
	f.Add(byte(5), packet501[0], packet501[2:])
	f.Add(byte(4), byte(0x82), []byte{0x00, 0x01, 0x00, 0x01, 'a', 0x00})
	f.Add(byte(5), byte(0x30), []byte{0x00, 0x01, 'a', 0x03, 0x23, 0x00, 0x01, 'x'})
	f.Add(byte(0), byte(0x10), connectV(5, "c", "u", "p")[2:])
	f.Add(byte(5), byte(0xE0), []byte{0x04, 0x02, 0x1F, 0x00})
	f.Add(byte(5), byte(0xF0), []byte{0x18, 0x00})
	f.Add(byte(5), byte(0x62), []byte{0x00, 0x01, 0x00, 0x03, 0x1F, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, v byte, h byte, body []byte) {
		version := []byte{0, 3, 4, 5}[v%4]
		next, err := checkPacket(version, h, body)
		if err != nil {
			return
		}
		if version == 0 {
			version = next
		}
		if err := mochiDecode(version, h, body); err != nil {
			t.Fatalf("guard accepted % x % x (v%d) but %v", h, body, version, err)
		}
	})
}
