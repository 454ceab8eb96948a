package spool

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzReadSegment feeds arbitrary bytes to the spool as a segment file: the
// scanner and Open's recovery must never panic, and whatever Open keeps must
// read back as exactly the frames the scanner accepted.
func FuzzReadSegment(f *testing.F) {
	good := appendHeader(nil, time.Unix(1700000000, 0))
	for i := 0; i < 5; i++ {
		good = appendFrame(good, rec(i))
	}
	f.Add(good)
	f.Add(good[:len(good)-4])
	f.Add(append(append([]byte{}, good...), 0xff, 0xff, 0, 0, 1, 2, 3, 4))
	f.Add([]byte(segMagic))
	f.Add([]byte{})
	f.Add(appendFrame(appendHeader(nil, time.Time{}), nil))
	if b, err := os.ReadFile(filepath.Join("testdata", "segment.seg")); err == nil {
		f.Add(b)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		var want [][]byte
		_, end, err := scanSegment(bytes.NewReader(data), 1<<16, func(start, end int64) {
			want = append(want, data[start+frameHeader:end])
		})
		if end < 0 || end > int64(len(data)) {
			t.Fatalf("valid end %d outside 0..%d", end, len(data))
		}
		if err == nil && end != int64(len(data)) {
			t.Fatalf("clean scan stopped at %d of %d", end, len(data))
		}

		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(0)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, Config{MaxBytes: 1 << 20, SegmentBytes: 1<<16 + segHeaderSize + frameHeader}, nil)
		if err != nil {
			t.Fatalf("open over fuzzed segment: %v", err)
		}
		defer s.Close()
		if got := s.Stats().Records; got != int64(len(want)) {
			t.Fatalf("open kept %d records, scanner accepted %d", got, len(want))
		}
		var got [][]byte
		for len(got) < len(want) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			b, err := s.Read(ctx, 1000)
			cancel()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			got = append(got, b.Records...)
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d differs", i)
			}
		}
	})
}
