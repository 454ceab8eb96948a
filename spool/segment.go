package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// On-disk layout. A segment file is named by the logical offset of its first
// byte (20 decimal digits, so names sort in offset order) and holds a 16-byte
// header followed by frames:
//
//	header: "LKSPOOL1" | created (int64 unix ns, little endian)
//	frame:  length (uint32 LE) | CRC-32C of payload (uint32 LE) | payload
//
// Logical offsets run across segments (segment base + offset in file), so a
// position is one number that only grows, and the unsent byte count is a
// subtraction.
const (
	segMagic      = "LKSPOOL1"
	segHeaderSize = 16
	frameHeader   = 8
	segSuffix     = ".seg"
	posFileName   = "position"
	posMagic      = "LKPOS001"
	posSize       = 8 + 8 + 8 + 4
	lockFileName  = "LOCK"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn marks the end of the valid prefix of a segment: a frame cut short by a
// crash, a bad checksum or an impossible length. Everything before it is good.
var errTorn = errors.New("torn or corrupt frame")

// errBadHeader means the file is not a spool segment at all (or its header was
// cut short).
var errBadHeader = errors.New("bad segment header")

// segment is one segment file as far as it has been written.
type segment struct {
	base    int64     // logical offset of the file's first byte (its header)
	size    int64     // bytes in the file that hold whole frames (header included)
	created time.Time // from the header: a lower bound for every record's append time
}

func (g segment) end() int64   { return g.base + g.size }
func (g segment) first() int64 { return g.base + segHeaderSize }

func segName(base int64) string { return fmt.Sprintf("%020d%s", base, segSuffix) }

func parseSegName(name string) (int64, bool) {
	if !strings.HasSuffix(name, segSuffix) || len(name) != 20+len(segSuffix) {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(name, segSuffix), 10, 64)
	return n, err == nil && n >= 0
}

func appendHeader(dst []byte, created time.Time) []byte {
	dst = append(dst, segMagic...)
	return binary.LittleEndian.AppendUint64(dst, uint64(created.UnixNano()))
}

// appendFrame frames one record.
func appendFrame(dst, rec []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(rec)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(rec, castagnoli))
	return append(dst, rec...)
}

// scanSegment validates a whole segment file read from r: its header, then
// frames until the data ends or a frame is torn. visit (may be nil) sees the
// file offsets at which each good frame starts and ends. It returns the created
// time from the header and the file offset just past the last good frame; err is
// errBadHeader when the header is unusable, errTorn when garbage follows the
// good prefix, nil when the file ends cleanly on a frame boundary. It never
// panics, whatever the bytes.
func scanSegment(r io.Reader, maxRecord int, visit func(start, end int64)) (created time.Time, validEnd int64, err error) {
	br := bufio.NewReaderSize(r, 256<<10)
	var hdr [segHeaderSize]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return time.Time{}, 0, errBadHeader
	}
	if string(hdr[:8]) != segMagic {
		return time.Time{}, 0, errBadHeader
	}
	created = time.Unix(0, int64(binary.LittleEndian.Uint64(hdr[8:]))).UTC()
	off := int64(segHeaderSize)
	var fh [frameHeader]byte
	buf := make([]byte, 0, 4096)
	for {
		n, e := io.ReadFull(br, fh[:])
		if e == io.EOF {
			return created, off, nil
		}
		if e != nil || n != frameHeader {
			return created, off, errTorn
		}
		l := binary.LittleEndian.Uint32(fh[:4])
		if uint64(l) > uint64(maxRecord) {
			return created, off, errTorn
		}
		if cap(buf) < int(l) {
			buf = make([]byte, l)
		}
		buf = buf[:l]
		if _, e := io.ReadFull(br, buf); e != nil {
			return created, off, errTorn
		}
		if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(fh[4:]) {
			return created, off, errTorn
		}
		end := off + frameHeader + int64(l)
		if visit != nil {
			visit(off, end)
		}
		off = end
	}
}

// parseFrames splits buf (which starts on a frame boundary) into records, at
// most max of them. It returns the records (aliasing buf), the number of bytes
// they span, and errTorn if a frame in buf fails its checksum or length check.
// A frame that does not fit in buf completely is left for the next call
// (need > 0 says how many bytes it needs in total).
func parseFrames(buf []byte, max, maxRecord int) (recs [][]byte, used int, need int, err error) {
	for len(recs) < max && used+frameHeader <= len(buf) {
		l := binary.LittleEndian.Uint32(buf[used:])
		if uint64(l) > uint64(maxRecord) {
			return recs, used, 0, errTorn
		}
		end := used + frameHeader + int(l)
		if end > len(buf) {
			return recs, used, frameHeader + int(l), nil
		}
		p := buf[used+frameHeader : end : end]
		if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(buf[used+4:]) {
			return recs, used, 0, errTorn
		}
		recs = append(recs, p)
		used = end
	}
	if len(recs) < max && used < len(buf) {
		need = frameHeader // a frame header split across the end of buf
	}
	return recs, used, need, nil
}

// readPosition loads the committed position; ok is false when the file is
// missing or unreadable (then the spool replays from its oldest segment:
// duplicates are harmless, InfluxDB keeps one point per series and time).
func readPosition(dir string) (p Position, exists, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, posFileName))
	if err != nil {
		return Position{}, !errors.Is(err, os.ErrNotExist), false
	}
	if len(b) != posSize || string(b[:8]) != posMagic ||
		crc32.Checksum(b[:posSize-4], castagnoli) != binary.LittleEndian.Uint32(b[posSize-4:]) {
		return Position{}, true, false
	}
	p.Offset = int64(binary.LittleEndian.Uint64(b[8:]))
	p.Seq = int64(binary.LittleEndian.Uint64(b[16:]))
	if p.Offset < 0 || p.Seq < 0 {
		return Position{}, true, false
	}
	return p, true, true
}

// writePosition replaces the position file atomically (temp file + rename). It
// does not fsync: after a power cut an older or unreadable position only means
// records are sent again, which InfluxDB absorbs as identical points.
func writePosition(dir string, p Position) error {
	b := make([]byte, 0, posSize)
	b = append(b, posMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(p.Offset))
	b = binary.LittleEndian.AppendUint64(b, uint64(p.Seq))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(dir, posFileName+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("spool: write position: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, posFileName)); err != nil {
		return fmt.Errorf("spool: write position: %w", err)
	}
	return nil
}

// syncDir makes a created or removed directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
