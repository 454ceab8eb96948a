package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/errs"
)

// Errors callers branch on; each wraps an errs kind.
var (
	// ErrClosed: the spool was closed; nothing more is accepted or handed out.
	ErrClosed = fmt.Errorf("spool closed: %w", errs.ErrUnavailable)
	// ErrFull: Append gave up (its context ended) while the spool was full.
	// The records were not stored; the caller must not acknowledge them.
	ErrFull = fmt.Errorf("spool full: %w", errs.ErrUnavailable)
	// ErrTooLarge: a record (or one Append's records) can never fit.
	ErrTooLarge = fmt.Errorf("spool record: %w", errs.ErrTooLarge)
	// ErrBadPosition: Commit was given a position that was never read.
	ErrBadPosition = fmt.Errorf("spool position: %w", errs.ErrInvalid)
	// ErrLocked: another Spool (in this or another process) has the directory open.
	ErrLocked = fmt.Errorf("spool directory in use: %w", errs.ErrConflict)
)

// readBatchBytes caps one Read, so a huge backlog is sent in bounded requests.
const readBatchBytes = 4 << 20

// persistEvery bounds how often Commit rewrites the position file.
const persistEvery = 50 * time.Millisecond

// markEvery is the resolution of the append-time marks behind OldestUnsent.
const markEvery = 100 * time.Millisecond

// maxMarks bounds the append-time marks; past it every other mark is dropped
// (OldestUnsent stays a lower bound, only coarser).
const maxMarks = 4096

// Position is a place in the spool, just past a record. Offset is a logical
// byte offset that only grows across segments; Seq counts records before it.
type Position struct {
	Offset int64
	Seq    int64
}

// Batch is what Read hands out: records in append order and the position to
// Commit once they are delivered.
type Batch struct {
	Records [][]byte
	End     Position
}

// Stats is a snapshot for /readyz, logs and tests.
type Stats struct {
	Bytes        int64     // unsent bytes (framing included)
	Records      int64     // unsent records
	OldestUnsent time.Time // append time of the oldest unsent record (lower bound); zero when none
	Segments     int       // segment files on disk
	Appended     int64     // records appended since Open
	Corrupt      int64     // torn or corrupt regions dropped since Open
}

type mark struct {
	off int64
	t   time.Time
}

// group is the set of appenders whose records go out in one write.
type group struct {
	done chan struct{}
	err  error
}

// Spool is a durable, bounded, append-only queue of opaque records on disk,
// with one reader. Appenders are many and group-committed; the reader reads,
// delivers, then commits. Safe for concurrent use.
type Spool struct {
	dir       string
	cfg       Config
	maxRecord int
	lock      *os.File
	m         *metrics

	mu       sync.Mutex
	idle     *sync.Cond // signalled when the leader stops flushing
	closed   bool
	segs     []segment // on disk, ascending; the last one is active
	active   *os.File  // last segment, opened for append
	written  Position  // end of what is in the files
	pend     []byte    // frames waiting to be written
	spare    []byte    // the other half of the double buffer
	pendRecs int
	pg       *group // the group pend belongs to
	flushing bool   // a leader is writing
	inflight int64  // bytes the leader is writing now
	dirty    bool   // written since the last fsync
	read     Position
	commit   Position
	dataCh   chan struct{} // closed when records become readable
	spaceCh  chan struct{} // closed when space is freed
	marks    []mark
	appended int64
	// persisted is when the position file was last written, persistedPos what.
	persisted    time.Time
	persistedPos Position
	corrupt      int64

	readMu  sync.Mutex // serialises Read, Rewind and Commit (the single reader)
	rfile   *os.File
	rbase   int64
	rbuf    []byte // read-ahead: bytes of segment rbufSeg from logical offset rbufOff
	rbufOff int64
	rbufSeg int64

	stopSync chan struct{}
	syncDone chan struct{}
}

// Open opens (creating if needed) the spool in dir, recovering from whatever a
// crash left: a torn or corrupt tail is truncated and counted, never fatal.
// reg may be nil (no metrics exported).
func Open(dir string, cfg Config, reg prometheus.Registerer) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("spool: %w: %w", errs.ErrInvalid, err)
	}
	if dir == "" {
		dir = cfg.Dir
	}
	if dir == "" {
		return nil, fmt.Errorf("spool: dir: %w", errs.ErrInvalid)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrLocked, dir, err)
	}
	maxRec := cfg.SegmentBytes - segHeaderSize - frameHeader
	if maxRec > 1<<30 {
		maxRec = 1 << 30
	}
	s := &Spool{dir: dir, cfg: cfg, maxRecord: int(maxRec), lock: lf,
		dataCh: make(chan struct{}), spaceCh: make(chan struct{})}
	s.idle = sync.NewCond(&s.mu)
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.m = newMetrics(s)
	if reg != nil {
		if err := s.m.register(reg); err != nil {
			s.closeFiles()
			return nil, fmt.Errorf("spool: metrics: %w", err)
		}
	}
	s.m.corrupt.Add(float64(s.corrupt))
	if cfg.SyncInterval > 0 {
		s.stopSync, s.syncDone = make(chan struct{}), make(chan struct{})
		go s.syncLoop()
	}
	return s, nil
}

// recover rebuilds the in-memory state from the directory.
func (s *Spool) recover() error {
	pos, exists, ok := readPosition(s.dir)
	if exists && !ok {
		s.corrupt++
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var bases []int64
	for _, e := range ents {
		if b, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, b)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })

	var unsent int64
	commitOff := pos.Offset
	for i, base := range bases {
		last := i == len(bases)-1
		g, n, err := s.recoverSegment(base, last, &commitOff)
		if err != nil {
			return err
		}
		if g == nil {
			continue
		}
		if len(s.segs) > 0 && g.base < s.segs[len(s.segs)-1].end() {
			// Overlaps its predecessor: cannot be ours. Keep it for inspection.
			s.corrupt++
			p := filepath.Join(s.dir, segName(base))
			_ = os.Rename(p, p+".corrupt")
			continue
		}
		s.segs = append(s.segs, *g)
		unsent += n
	}
	if len(s.segs) == 0 {
		g, f, err := s.createSegment(pos.Offset, time.Now())
		if err != nil {
			return err
		}
		s.segs = append(s.segs, g)
		s.active = f
	}
	// Clamp the committed position into what exists.
	if commitOff < s.segs[0].first() {
		commitOff = s.segs[0].first()
	}
	if last := s.segs[len(s.segs)-1]; commitOff > last.end() {
		commitOff = last.end()
	}
	s.commit = Position{Offset: commitOff, Seq: pos.Seq}
	s.persistedPos = s.commit
	s.read = s.commit
	// Drop segments that are wholly delivered (a crash between commit and delete).
	for len(s.segs) > 1 && s.segs[0].end() <= commitOff {
		_ = os.Remove(filepath.Join(s.dir, segName(s.segs[0].base)))
		s.segs = s.segs[1:]
	}
	last := s.segs[len(s.segs)-1]
	s.written = Position{Offset: last.end(), Seq: pos.Seq + unsent}
	for _, g := range s.segs {
		off := g.base
		if off < commitOff {
			off = commitOff
		}
		s.marks = append(s.marks, mark{off: off, t: g.created})
	}
	if s.active == nil {
		f, err := os.OpenFile(filepath.Join(s.dir, segName(last.base)), os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.active = f
	}
	return nil
}

// recoverSegment validates one segment file and truncates a bad tail. It
// returns nil when the file had to be set aside. n counts good records after
// *commitOff; *commitOff is moved back to a frame boundary if it points inside
// a frame (replaying one record is harmless, skipping one is not).
func (s *Spool) recoverSegment(base int64, last bool, commitOff *int64) (*segment, int64, error) {
	path := filepath.Join(s.dir, segName(base))
	f, err := os.OpenFile(path, os.O_RDWR, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("spool: %w", err)
	}
	var n int64
	co := *commitOff
	created, validEnd, serr := scanSegment(f, s.maxRecord, func(start, end int64) {
		start, end = start+base, end+base
		if end > co {
			n++
		}
		if co > start && co < end {
			co = start
		}
	})
	*commitOff = co
	switch {
	case errors.Is(serr, errBadHeader) && last && st.Size() < segHeaderSize:
		// A crash right after creating the file: start it afresh.
		if st.Size() > 0 {
			s.corrupt++
		}
		created = time.Now().UTC()
		if err := f.Truncate(0); err != nil {
			return nil, 0, fmt.Errorf("spool: %w", err)
		}
		if _, err := f.WriteAt(appendHeader(nil, created), 0); err != nil {
			return nil, 0, fmt.Errorf("spool: %w", err)
		}
		if err := f.Sync(); err != nil {
			return nil, 0, fmt.Errorf("spool: %w", err)
		}
		return &segment{base: base, size: segHeaderSize, created: created}, 0, nil
	case errors.Is(serr, errBadHeader):
		s.corrupt++
		_ = os.Rename(path, path+".corrupt")
		return nil, 0, nil
	}
	if validEnd < st.Size() {
		s.corrupt++
		if err := f.Truncate(validEnd); err != nil {
			return nil, 0, fmt.Errorf("spool: truncate torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			return nil, 0, fmt.Errorf("spool: %w", err)
		}
	}
	return &segment{base: base, size: validEnd, created: created}, n, nil
}

// createSegment makes a new segment file starting at logical offset base.
func (s *Spool) createSegment(base int64, now time.Time) (segment, *os.File, error) {
	path := filepath.Join(s.dir, segName(base))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return segment{}, nil, fmt.Errorf("spool: new segment: %w", err)
	}
	if _, err := f.Write(appendHeader(nil, now)); err != nil {
		f.Close()
		_ = os.Remove(path)
		return segment{}, nil, fmt.Errorf("spool: new segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		_ = os.Remove(path)
		return segment{}, nil, fmt.Errorf("spool: new segment: %w", err)
	}
	return segment{base: base, size: segHeaderSize, created: now.UTC()}, f, nil
}

// unsentLocked is the byte count that MaxBytes bounds.
func (s *Spool) unsentLocked() int64 {
	return s.written.Offset + int64(len(s.pend)) + s.inflight - s.commit.Offset
}

// Append stores records durably enough to survive a process SIGKILL (they are
// in the file; fsynced now when SyncInterval is 0, else within SyncInterval)
// and then returns. When the unsent bytes would exceed MaxBytes it blocks until
// the reader commits space or ctx ends (then it returns an error wrapping
// ErrFull and stores nothing): it never drops. Concurrent calls are
// group-committed: one write (and fsync) serves every caller that arrived while
// the previous write was in progress. If the write itself fails, the error is
// returned and some of the records may still have been stored (they may be
// delivered; retrying gives a harmless duplicate).
func (s *Spool) Append(ctx context.Context, recs ...[]byte) error {
	if len(recs) == 0 {
		return nil
	}
	need := int64(0)
	for _, r := range recs {
		if len(r) > s.maxRecord {
			return fmt.Errorf("%w: %d bytes, max %d", ErrTooLarge, len(r), s.maxRecord)
		}
		need += frameHeader + int64(len(r))
	}
	if need > s.cfg.MaxBytes-segHeaderSize {
		return fmt.Errorf("%w: %d bytes in one append, max_bytes %d", ErrTooLarge, need, s.cfg.MaxBytes)
	}
	s.mu.Lock()
	var blockedSince time.Time
	for {
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		u := s.unsentLocked()
		if u == 0 || u+need <= s.cfg.MaxBytes {
			break
		}
		if blockedSince.IsZero() {
			blockedSince = time.Now()
			s.m.blocked.Inc()
		}
		ch := s.spaceCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.m.blockedSecs.Add(time.Since(blockedSince).Seconds())
			return fmt.Errorf("%w: %w", ErrFull, ctx.Err())
		}
		s.mu.Lock()
	}
	if !blockedSince.IsZero() {
		s.m.blockedSecs.Add(time.Since(blockedSince).Seconds())
	}
	for _, r := range recs {
		s.pend = appendFrame(s.pend, r)
	}
	s.pendRecs += len(recs)
	g := s.pg
	if g == nil {
		g = &group{done: make(chan struct{})}
		s.pg = g
	}
	if s.flushing {
		s.mu.Unlock()
		<-g.done
		return g.err
	}
	s.flushing = true
	s.flushLocked()
	s.flushing = false
	s.idle.Broadcast()
	s.mu.Unlock()
	return g.err
}

// flushLocked is the group-commit leader: it writes pending groups until none
// is left, dropping the lock during I/O.
func (s *Spool) flushLocked() {
	for len(s.pend) > 0 {
		buf, g := s.pend, s.pg
		s.pend, s.pendRecs, s.pg = s.spare[:0], 0, nil
		s.inflight = int64(len(buf))
		cur, f := s.segs[len(s.segs)-1], s.active
		startOff := s.written.Offset
		s.mu.Unlock()

		res := s.writeFrames(buf, cur, f)

		s.mu.Lock()
		s.inflight = 0
		s.segs[len(s.segs)-1] = res.segs[0]
		s.segs = append(s.segs, res.segs[1:]...)
		s.active = res.file
		s.written.Offset = res.segs[len(res.segs)-1].end()
		s.written.Seq += res.records
		s.appended += res.records
		s.m.appended.Add(float64(res.records))
		if res.records > 0 {
			s.dirty = s.cfg.SyncInterval > 0
			now := time.Now()
			if n := len(s.marks); n == 0 || now.Sub(s.marks[n-1].t) >= markEvery || s.marks[n-1].off < s.commit.Offset {
				s.marks = append(s.marks, mark{off: startOff, t: now})
				if len(s.marks) > maxMarks {
					s.thinMarks()
				}
			}
			close(s.dataCh)
			s.dataCh = make(chan struct{})
		}
		g.err = res.err // some records may be stored all the same; see Append
		close(g.done)
		s.spare = buf
	}
}

func (s *Spool) thinMarks() {
	out := s.marks[:1]
	for i := 1; i < len(s.marks); i++ {
		if i%2 == 0 {
			out = append(out, s.marks[i])
		}
	}
	s.marks = out
}

type writeResult struct {
	segs    []segment // the segment written into first (updated), then any new ones
	file    *os.File  // the active file afterwards
	records int64
	err     error
}

// writeFrames appends whole frames to the active segment, rotating to new
// segments at SegmentBytes (always on a frame boundary). On a failed write the
// file is cut back to its last frame boundary, so the file and the returned
// state agree.
func (s *Spool) writeFrames(buf []byte, cur segment, f *os.File) writeResult {
	res := writeResult{segs: []segment{cur}, file: f}
	off := 0
	for off < len(buf) {
		g := &res.segs[len(res.segs)-1]
		room := s.cfg.SegmentBytes - g.size
		end, n := off, 0
		for end < len(buf) {
			fl := frameHeader + int(uint32(buf[end])|uint32(buf[end+1])<<8|uint32(buf[end+2])<<16|uint32(buf[end+3])<<24)
			if int64(end-off+fl) > room && !(end == off && g.size == segHeaderSize) {
				break
			}
			end += fl
			n++
		}
		if end > off {
			if _, err := res.file.Write(buf[off:end]); err != nil {
				_ = res.file.Truncate(g.size)
				res.err = fmt.Errorf("spool: write: %w", err)
				return res
			}
			g.size += int64(end - off)
			res.records += int64(n)
			off = end
		}
		if off < len(buf) {
			ng, nf, err := s.createSegment(g.end(), time.Now())
			if err != nil {
				res.err = err
				return res
			}
			if err := res.file.Sync(); err != nil {
				nf.Close()
				_ = os.Remove(filepath.Join(s.dir, segName(ng.base)))
				res.err = fmt.Errorf("spool: sync: %w", err)
				return res
			}
			res.file.Close()
			res.file = nf
			res.segs = append(res.segs, ng)
		}
	}
	if s.cfg.SyncInterval == 0 {
		if err := res.file.Sync(); err != nil {
			res.err = fmt.Errorf("spool: sync: %w", err)
		}
	}
	return res
}

// syncLoop fsyncs the active segment every SyncInterval when it has new data.
func (s *Spool) syncLoop() {
	defer close(s.syncDone)
	t := time.NewTicker(s.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopSync:
			return
		case <-t.C:
			s.mu.Lock()
			f, dirty := s.active, s.dirty
			s.dirty = false
			s.mu.Unlock()
			if dirty && f != nil {
				_ = f.Sync() // a concurrent rotation may have closed f; it synced it first
			}
		}
	}
}

// Read returns up to max records after the last read position (and at most
// about 4 MiB of them), waiting until at least one is available or ctx ends.
// Records come back in append order and belong to the caller. A frame that
// fails its checksum at read time is skipped with the rest of what was
// written before it was found (counted in lookout_spool_corrupt_total).
func (s *Spool) Read(ctx context.Context, max int) (Batch, error) {
	if max < 1 {
		max = 1
	}
	s.readMu.Lock()
	defer s.readMu.Unlock()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return Batch{}, ErrClosed
		}
		pos := s.read
		i := s.segIndexLocked(pos.Offset)
		for i < len(s.segs)-1 && pos.Offset >= s.segs[i].end() {
			i++
			pos.Offset = s.segs[i].first()
		}
		if pos.Offset < s.segs[i].first() {
			pos.Offset = s.segs[i].first()
		}
		s.read = pos
		seg := s.segs[i]
		if pos.Offset < seg.end() {
			s.mu.Unlock()
			b, err := s.readSegment(seg, pos, max)
			if err != nil || len(b.Records) > 0 {
				return b, err
			}
			continue // a corrupt region was skipped; look again
		}
		ch := s.dataCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		}
	}
}

// segIndexLocked finds the segment holding logical offset off (or the first
// one after a gap).
func (s *Spool) segIndexLocked(off int64) int {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].end() > off })
	if i == len(s.segs) {
		i = len(s.segs) - 1
	}
	return i
}

func (s *Spool) readSegment(seg segment, pos Position, max int) (Batch, error) {
	// Serve from the read-ahead buffer when it holds pos; otherwise refill it.
	// Buffers are never reused, so records handed out may alias them safely.
	var recs [][]byte
	var used, need int
	var perr error
	if pos.Offset >= s.rbufOff && pos.Offset < s.rbufOff+int64(len(s.rbuf)) && s.rbufSeg == seg.base {
		recs, used, need, perr = parseFrames(s.rbuf[pos.Offset-s.rbufOff:], max, s.maxRecord)
	}
	if len(recs) == 0 && perr == nil {
		avail := seg.end() - pos.Offset
		n := avail
		if n > readBatchBytes {
			n = readBatchBytes
		}
		if int64(need) > n && int64(need) <= avail {
			n = int64(need)
		}
		buf, err := s.readAt(seg, pos.Offset, n)
		if err != nil {
			return Batch{}, err
		}
		s.rbuf, s.rbufOff, s.rbufSeg = buf, pos.Offset, seg.base
		recs, used, need, perr = parseFrames(buf, max, s.maxRecord)
		if len(recs) == 0 && perr == nil && need > 0 && int64(need) <= avail && int64(need) > n {
			if buf, err = s.readAt(seg, pos.Offset, int64(need)); err != nil {
				return Batch{}, err
			}
			s.rbuf = buf
			recs, used, _, perr = parseFrames(buf, max, s.maxRecord)
		}
	}
	end := Position{Offset: pos.Offset + int64(used), Seq: pos.Seq + int64(len(recs))}
	if perr != nil || len(recs) == 0 {
		// A bad checksum or an impossible frame: skip to the end of what this
		// segment held when we looked (frames written later start there).
		s.mu.Lock()
		s.corrupt++
		s.mu.Unlock()
		s.m.corrupt.Inc()
		end.Offset = seg.end()
		s.rbuf = nil
	}
	s.mu.Lock()
	if end.Offset == s.written.Offset {
		// Caught up with the writer: the record count is written's. This is a
		// no-op unless a skipped region held frames Seq never counted (how many
		// is unknowable once a length is damaged); without it Stats().Records
		// would stay above zero for good.
		end.Seq = s.written.Seq
	}
	s.read = end
	s.mu.Unlock()
	return Batch{Records: recs, End: end}, nil
}

func (s *Spool) readAt(seg segment, off, n int64) ([]byte, error) {
	if s.rfile == nil || s.rbase != seg.base {
		if s.rfile != nil {
			s.rfile.Close()
			s.rfile = nil
		}
		f, err := os.Open(filepath.Join(s.dir, segName(seg.base)))
		if err != nil {
			return nil, fmt.Errorf("spool: read: %w", err)
		}
		s.rfile, s.rbase = f, seg.base
	}
	buf := make([]byte, n)
	if _, err := s.rfile.ReadAt(buf, off-seg.base); err != nil {
		return nil, fmt.Errorf("spool: read: %w", err)
	}
	return buf, nil
}

// Commit marks everything up to p as delivered: it persists p, frees the space
// (waking blocked appenders) and deletes segments that are wholly delivered.
// Committing a position at or before the last commit is a no-op.
func (s *Spool) Commit(p Position) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if p.Offset <= s.commit.Offset {
		s.mu.Unlock()
		return nil
	}
	if p.Offset > s.read.Offset {
		s.mu.Unlock()
		return fmt.Errorf("%w: %d is past the read position %d", ErrBadPosition, p.Offset, s.read.Offset)
	}
	// Persist at most every persistEvery, and when a segment file is to be
	// deleted. A position lost to a crash only replays records (harmless
	// duplicates); one that points into a deleted segment is moved forward to
	// the first segment left by Open. So a position that cannot be written
	// (disk full) does not hold the commit back: the delivered segments are
	// freed all the same, which is what frees the disk, and the write is
	// tried again at the next commit. The error is still returned.
	persist := time.Since(s.persisted) >= persistEvery || (len(s.segs) > 1 && s.segs[0].end() <= p.Offset)
	s.mu.Unlock()
	var perr error
	if persist {
		if perr = writePosition(s.dir, p); perr != nil {
			persist = false
		}
	}
	s.mu.Lock()
	if persist {
		s.persisted = time.Now()
		s.persistedPos = p
	}
	s.commit = p
	var drop []string
	for len(s.segs) > 1 && s.segs[0].end() <= p.Offset {
		drop = append(drop, filepath.Join(s.dir, segName(s.segs[0].base)))
		s.segs = s.segs[1:]
	}
	for len(s.marks) > 1 && s.marks[1].off <= p.Offset {
		s.marks = s.marks[1:]
	}
	if !s.closed {
		close(s.spaceCh)
		s.spaceCh = make(chan struct{})
	}
	s.mu.Unlock()
	for _, d := range drop {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			return errors.Join(perr, fmt.Errorf("spool: remove delivered segment: %w", err))
		}
	}
	return perr
}

// Rewind makes the next Read start again just after the last committed
// position: after a failed delivery nothing is skipped.
func (s *Spool) Rewind() {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.mu.Lock()
	s.read = s.commit
	s.mu.Unlock()
}

// Stats returns a snapshot.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Bytes:    s.unsentLocked(),
		Records:  s.written.Seq + int64(s.pendRecs) - s.commit.Seq,
		Segments: len(s.segs),
		Appended: s.appended,
		Corrupt:  s.corrupt,
	}
	if st.Records < 0 {
		st.Records = 0
	}
	if st.Bytes > 0 && len(s.marks) > 0 {
		st.OldestUnsent = s.marks[0].t
	}
	return st
}

// Close flushes and closes the spool. Appends and Reads waiting on it return
// ErrClosed; an in-progress group write finishes first.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for s.flushing {
		s.idle.Wait()
	}
	close(s.dataCh)  // wakes a waiting Read (it sees closed)
	close(s.spaceCh) // wakes blocked Appends
	s.mu.Unlock()
	if s.stopSync != nil {
		close(s.stopSync)
		<-s.syncDone
	}
	s.readMu.Lock()
	defer s.readMu.Unlock()
	var perr error
	if s.commit != s.persistedPos {
		perr = writePosition(s.dir, s.commit)
	}
	return errors.Join(perr, s.closeFiles())
}

func (s *Spool) closeFiles() error {
	var err error
	if s.active != nil {
		if e := s.active.Sync(); e != nil {
			err = fmt.Errorf("spool: sync: %w", e)
		}
		s.active.Close()
		s.active = nil
	}
	if s.rfile != nil {
		s.rfile.Close()
		s.rfile = nil
	}
	if s.lock != nil {
		_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		s.lock.Close()
		s.lock = nil
	}
	return err
}

// Dir is the spool directory; the InfluxDB writer keeps its rejected lines there.
func (s *Spool) Dir() string { return s.dir }
