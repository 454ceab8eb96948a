package camsim

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestSplitAnnexB(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want [][]byte
	}{
		{"empty", nil, nil},
		{"no start code", []byte{1, 2, 3}, nil},
		{"4-byte codes", []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2}, [][]byte{{0x67, 1}, {0x68, 2}}},
		{"3-byte codes", []byte{0, 0, 1, 0x65, 9, 0, 0, 1, 0x41}, [][]byte{{0x65, 9}, {0x41}}},
		{"trailing zeros dropped", []byte{0, 0, 1, 0x41, 7, 0, 0}, [][]byte{{0x41, 7}}},
		{"empty NAL skipped", []byte{0, 0, 1, 0, 0, 1, 0x41}, [][]byte{{0x41}}},
	}
	for _, tc := range tests {
		got := SplitAnnexB(tc.in)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %d NALs %x, want %x", tc.name, len(got), got, tc.want)
		}
		for i := range got {
			if !bytes.Equal(got[i], tc.want[i]) {
				t.Fatalf("%s: NAL %d = %x, want %x", tc.name, i, got[i], tc.want[i])
			}
		}
	}
}

func FuzzSplitAnnexB(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x65})
	f.Add([]byte{0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		nals := SplitAnnexB(b)
		total := 0
		for _, n := range nals {
			if len(n) == 0 || n[len(n)-1] == 0 {
				t.Fatalf("empty or zero-terminated NAL %x", n)
			}
			if bytes.Contains(n, []byte{0, 0, 1}) {
				t.Fatalf("NAL %x still holds a start code", n)
			}
			total += len(n)
		}
		if total > len(b) {
			t.Fatal("more NAL bytes than input")
		}
		for _, au := range GroupAccessUnits(nals) {
			if len(au.Data) == 0 {
				t.Fatal("empty access unit")
			}
		}
	})
}

// The committed clip is 2 s at 30 fps with a keyframe each second.
func TestLoadAccessUnitsOfTestClip(t *testing.T) {
	aus, err := LoadAccessUnits(filepath.Join("..", "testdata", "testsrc-720p30.h264"))
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	for _, au := range aus {
		if au.Key {
			keys++
		}
	}
	if len(aus) != 60 || keys != 2 || !aus[0].Key {
		t.Fatalf("%d access units, %d keyframes, first key=%v; want 60, 2, true", len(aus), keys, aus[0].Key)
	}
	if _, err := LoadAccessUnits(filepath.Join("..", "testdata", "rtsp_server.py")); err == nil {
		t.Fatal("a non-H.264 file loaded without error")
	}
}

// MakeTestClip drives Debian's ffmpeg and its output loads as 30 fps H.264.
func TestMakeTestClip(t *testing.T) {
	out := filepath.Join(t.TempDir(), "clip.h264")
	if err := MakeTestClip(context.Background(), "ffmpeg", out, time.Second); err != nil {
		t.Fatal(err)
	}
	aus, err := LoadAccessUnits(out)
	if err != nil || len(aus) != 30 || !aus[0].Key {
		t.Fatalf("clip: %d access units, err %v", len(aus), err)
	}
}

// StreamRTP sends valid RTP H.264 at the file's pace, starting with SPS.
func TestStreamRTP(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- StreamRTP(ctx, conn.LocalAddr().String(), filepath.Join("..", "testdata", "testsrc-720p30.h264"), Options{FPS: 30})
	}()
	buf := make([]byte, 2000)
	var first *rtp.Packet
	markers := 0
	start := time.Now()
	for markers < 10 {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		p := &rtp.Packet{}
		if err := p.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = p
		}
		if p.Marker {
			markers++
		}
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if first.PayloadType != 96 || first.Payload[0]&0x1f != 24 && first.Payload[0]&0x1f != 7 {
		t.Fatalf("first packet PT %d NAL %d: want PT 96 and SPS (maybe in STAP-A)", first.PayloadType, first.Payload[0]&0x1f)
	}
	// 10 frames at 30 fps take ~300 ms; well under a second even on a loaded machine,
	// and at least 250 ms (the pacing works; nothing is blasted out at once).
	if elapsed < 250*time.Millisecond {
		t.Fatalf("10 frames sent in %s: not paced", elapsed)
	}
}
