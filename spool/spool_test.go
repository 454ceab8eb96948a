package spool

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/lookoutfire/lookout/errs"
)

func testConfig() Config {
	return Config{MaxBytes: 1 << 20, SegmentBytes: 4096, SyncInterval: time.Second}
}

func open(t testing.TB, dir string, cfg Config) *Spool {
	t.Helper()
	s, err := Open(dir, cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// rec makes a record of a recognisable, varying size.
func rec(i int) []byte {
	return []byte(fmt.Sprintf("rec-%06d-%s", i, strings.Repeat("x", i%97)))
}

// readN reads exactly n records and commits when asked. It fails after 2 min:
// with fsync on every append (sync=0) on a slow CI disk, thousands of records
// may take tens of seconds to arrive.
func readN(t testing.TB, s *Spool, n int, commit bool) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out [][]byte
	for len(out) < n {
		b, err := s.Read(ctx, n-len(out))
		if err != nil {
			t.Fatalf("read after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, b.Records...)
		if commit {
			if err := s.Commit(b.End); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
	}
	return out
}

func expectNothing(t *testing.T, s *Spool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if b, err := s.Read(ctx, 10); err == nil {
		t.Fatalf("expected an empty spool, read %d records: %q", len(b.Records), b.Records[0])
	}
}

func checkSeq(t *testing.T, got [][]byte, from int) {
	t.Helper()
	for i, r := range got {
		if want := rec(from + i); !bytes.Equal(r, want) {
			t.Fatalf("record %d = %q, want %q", from+i, r, want)
		}
	}
}

func TestOrderAcrossRotationAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, testConfig())
	ctx := context.Background()
	const n = 3000
	for i := 0; i < n; i += 3 {
		if err := s.Append(ctx, rec(i), rec(i+1), rec(i+2)); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Records != n || st.Segments < 10 {
		t.Fatalf("stats after append = %+v, want %d records in many segments", st, n)
	}
	checkSeq(t, readN(t, s, 1000, true), 0)
	// Read (but do not commit) some more: they must come again after reopen.
	readN(t, s, 500, false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir, testConfig())
	defer s.Close()
	st := s.Stats()
	if st.Records != n-1000 || st.Corrupt != 0 {
		t.Fatalf("after reopen stats = %+v, want %d unsent and no corruption", st, n-1000)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != st.Segments {
		t.Fatalf("%d segment files, stats says %d", len(segs), st.Segments)
	}
	checkSeq(t, readN(t, s, n-1000, true), 1000)
	expectNothing(t, s)
	if st := s.Stats(); st.Records != 0 || st.Bytes != 0 || st.Segments != 1 || !st.OldestUnsent.IsZero() {
		t.Fatalf("drained stats = %+v, want empty with one segment", st)
	}
	// Appends after the reopen continue the same sequence.
	if err := s.Append(ctx, rec(n)); err != nil {
		t.Fatal(err)
	}
	checkSeq(t, readN(t, s, 1, true), n)
}

func TestRewindRereadsUncommitted(t *testing.T) {
	s := open(t, t.TempDir(), testConfig())
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if err := s.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	checkSeq(t, readN(t, s, 30, true), 0)
	checkSeq(t, readN(t, s, 50, false), 30)
	s.Rewind()
	checkSeq(t, readN(t, s, 70, true), 30)
	expectNothing(t, s)
}

func TestCommitValidation(t *testing.T) {
	s := open(t, t.TempDir(), testConfig())
	defer s.Close()
	if err := s.Append(context.Background(), rec(1), rec(2)); err != nil {
		t.Fatal(err)
	}
	b, err := s.Read(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	bad := b.End
	bad.Offset += 1000
	if err := s.Commit(bad); !errors.Is(err, ErrBadPosition) || !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("commit past read = %v, want ErrBadPosition", err)
	}
	if err := s.Commit(b.End); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(Position{}); err != nil {
		t.Fatalf("commit of an old position = %v, want no-op", err)
	}
}

func TestTooLarge(t *testing.T) {
	s := open(t, t.TempDir(), testConfig())
	defer s.Close()
	err := s.Append(context.Background(), make([]byte, 5000))
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, errs.ErrTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, testConfig())
	defer s.Close()
	if _, err := Open(dir, testConfig(), nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open = %v, want ErrLocked", err)
	}
}

func TestValidateRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		key  string
	}{
		{"small max", func(c *Config) { c.MaxBytes = 100 }, "max_bytes"},
		{"segment too small", func(c *Config) { c.SegmentBytes = 10 }, "segment_bytes"},
		{"negative sync", func(c *Config) { c.SyncInterval = -1 }, "sync_interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.key) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.key)
			}
		})
	}
}

// TestCrashLeftovers damages the files as a crash (or a bad disk) would and
// checks that everything before the damage is recovered, the damage counted,
// and the spool keeps working.
func TestCrashLeftovers(t *testing.T) {
	lastSeg := func(t *testing.T, dir string) string {
		segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		sort.Strings(segs)
		return segs[len(segs)-1]
	}
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, dir string)
		keep    int // records that must survive (of 200)
		corrupt int64
	}{
		{"clean", func(*testing.T, string) {}, 200, 0},
		{"cut mid record", func(t *testing.T, dir string) {
			p := lastSeg(t, dir)
			st, _ := os.Stat(p)
			if err := os.Truncate(p, st.Size()-3); err != nil {
				t.Fatal(err)
			}
		}, 199, 1},
		{"cut mid frame header", func(t *testing.T, dir string) {
			p := lastSeg(t, dir)
			st, _ := os.Stat(p)
			last := int64(frameHeader + len(rec(199)))
			if err := os.Truncate(p, st.Size()-last+5); err != nil {
				t.Fatal(err)
			}
		}, 199, 1},
		{"garbage tail", func(t *testing.T, dir string) {
			f, err := os.OpenFile(lastSeg(t, dir), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("\x13\x00\x00\x00garbage that is not a frame"))
			f.Close()
		}, 200, 1},
		{"flipped byte in last record", func(t *testing.T, dir string) {
			p := lastSeg(t, dir)
			b, _ := os.ReadFile(p)
			b[len(b)-2] ^= 0x40
			os.WriteFile(p, b, 0o644)
		}, 199, 1},
		{"huge length in tail", func(t *testing.T, dir string) {
			f, _ := os.OpenFile(lastSeg(t, dir), os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4})
			f.Close()
		}, 200, 1},
		{"torn new segment header", func(t *testing.T, dir string) {
			p := lastSeg(t, dir)
			st, _ := os.Stat(p)
			base, _ := parseSegName(filepath.Base(p))
			os.WriteFile(filepath.Join(dir, segName(base+st.Size())), []byte("LKSP"), 0o644)
		}, 200, 1},
		{"empty new segment", func(t *testing.T, dir string) {
			p := lastSeg(t, dir)
			st, _ := os.Stat(p)
			base, _ := parseSegName(filepath.Base(p))
			os.WriteFile(filepath.Join(dir, segName(base+st.Size())), nil, 0o644)
		}, 200, 0},
		{"garbage position file", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, posFileName), []byte("nonsense"), 0o644)
		}, 200, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, testConfig())
			for i := 0; i < 200; i++ {
				if err := s.Append(context.Background(), rec(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir)

			s = open(t, dir, testConfig())
			defer s.Close()
			st := s.Stats()
			if st.Corrupt != tc.corrupt || st.Records != int64(tc.keep) {
				t.Fatalf("stats after damage = %+v, want %d records and %d corrupt", st, tc.keep, tc.corrupt)
			}
			checkSeq(t, readN(t, s, tc.keep, true), 0)
			expectNothing(t, s)
			// The spool goes on: new records follow and survive another reopen.
			if err := s.Append(context.Background(), rec(1000), rec(1001)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = open(t, dir, testConfig())
			defer s.Close()
			if st := s.Stats(); st.Corrupt != 0 {
				t.Fatalf("second reopen found corruption again: %+v", st)
			}
			checkSeq(t, readN(t, s, 2, true), 1000)
		})
	}
}

// TestCorruptFrameAtReadTime damages a frame on disk after it was written (a
// bad sector, not a crash): Read skips it with the rest of its segment and
// counts it, and once the reader has delivered everything the spool reports
// nothing unsent — records as well as bytes — and goes on counting right.
func TestCorruptFrameAtReadTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int // records appended; more than one segment holds when n is large
	}{{"in the only segment", 3}, {"in an earlier segment", 200}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, testConfig())
			defer s.Close()
			ctx := context.Background()
			for i := 0; i < tc.n; i++ {
				if err := s.Append(ctx, rec(i)); err != nil {
					t.Fatal(err)
				}
			}
			segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
			sort.Strings(segs)
			if tc.n > 3 && len(segs) < 2 {
				t.Fatalf("%d segments, want several", len(segs))
			}
			// Flip a payload byte of the second frame of the first segment.
			f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			at := int64(segHeaderSize + frameHeader + len(rec(0)) + frameHeader)
			b := []byte{0}
			if _, err := f.ReadAt(b, at); err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0x40
			if _, err := f.WriteAt(b, at); err != nil {
				t.Fatal(err)
			}
			f.Close()

			var got [][]byte
			for {
				rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				bt, err := s.Read(rctx, 1000)
				cancel()
				if err != nil {
					break
				}
				got = append(got, bt.Records...)
				if err := s.Commit(bt.End); err != nil {
					t.Fatal(err)
				}
			}
			if len(got) == 0 || !bytes.Equal(got[0], rec(0)) || len(got) >= tc.n {
				t.Fatalf("read %d of %d records with one corrupt, want rec(0) first and some skipped", len(got), tc.n)
			}
			if st := s.Stats(); st.Bytes != 0 || st.Records != 0 || st.Corrupt != 1 {
				t.Fatalf("stats after delivering everything = %+v, want nothing unsent and 1 corrupt", st)
			}
			// New records are counted from there on.
			if err := s.Append(ctx, rec(1000), rec(1001)); err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Records != 2 {
				t.Fatalf("stats after two more appends = %+v, want 2 records", st)
			}
			checkSeq(t, readN(t, s, 2, true), 1000)
			if st := s.Stats(); st.Bytes != 0 || st.Records != 0 {
				t.Fatalf("stats after delivering them = %+v, want nothing unsent", st)
			}
		})
	}
}

func TestFullSpoolBlocksUntilCommit(t *testing.T) {
	cfg := Config{MaxBytes: 1 << 20, SegmentBytes: 64 << 10, SyncInterval: time.Second}
	reg := prometheus.NewRegistry()
	s, err := Open(t.TempDir(), cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	big := bytes.Repeat([]byte("r"), 8000)
	n := 0
	for s.Stats().Bytes+int64(len(big)+frameHeader) <= cfg.MaxBytes {
		if err := s.Append(ctx, big); err != nil {
			t.Fatal(err)
		}
		n++
	}

	// With a deadline, a full spool gives up with ErrFull and stores nothing.
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err = s.Append(dctx, big)
	cancel()
	if !errors.Is(err, ErrFull) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("append to a full spool with deadline = %v", err)
	}
	if got := s.Stats().Records; got != int64(n) {
		t.Fatalf("%d records after the failed append, want %d", got, n)
	}

	// Without one it waits for the reader.
	done := make(chan error, 1)
	last := append([]byte("after the wait"), big...)
	go func() { done <- s.Append(ctx, last) }()
	waitFor(t, func() bool { return counterValue(s.m.blocked) == 2 })
	select {
	case err := <-done:
		t.Fatalf("append returned while the spool was full: %v", err)
	default:
	}
	b, err := s.Read(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(b.End); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("blocked append after commit: %v", err)
	}
	got := readN(t, s, n-3+1, true)
	if !bytes.Equal(got[len(got)-1], last) {
		t.Fatalf("last record %q", got[len(got)-1])
	}
	if v := counterValue(s.m.blockedSecs); v <= 0 {
		t.Fatalf("blocked seconds = %v", v)
	}

	// Close wakes a blocked appender with ErrClosed.
	for s.Stats().Bytes+int64(len(big)+frameHeader) <= cfg.MaxBytes {
		if err := s.Append(ctx, big); err != nil {
			t.Fatal(err)
		}
	}
	go func() { done <- s.Append(ctx, big) }()
	waitFor(t, func() bool { return counterValue(s.m.blocked) == 3 })
	s.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("append blocked at close = %v, want ErrClosed", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrentAppenders(t *testing.T) {
	for _, syncIv := range []time.Duration{0, time.Second} {
		t.Run(fmt.Sprintf("sync=%v", syncIv), func(t *testing.T) {
			cfg := Config{MaxBytes: 1 << 20, SegmentBytes: 32 << 10, SyncInterval: syncIv}
			s := open(t, t.TempDir(), cfg)
			defer s.Close()
			const writers, each = 8, 1500
			ctx := context.Background()
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each; i += 3 {
						if err := s.Append(ctx, []byte(fmt.Sprintf("%d:%d", w, i)), []byte(fmt.Sprintf("%d:%d", w, i+1)),
							[]byte(fmt.Sprintf("%d:%d", w, i+2))); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			next := make([]int, writers)
			got := readN(t, s, writers*each, true) // reads and commits while appenders run
			wg.Wait()
			for _, r := range got {
				var w, i int
				if _, err := fmt.Sscanf(string(r), "%d:%d", &w, &i); err != nil {
					t.Fatalf("record %q: %v", r, err)
				}
				if i != next[w] {
					t.Fatalf("writer %d: got record %d, want %d (order lost)", w, i, next[w])
				}
				next[w]++
			}
			expectNothing(t, s)
		})
	}
}

func TestOldestUnsent(t *testing.T) {
	s := open(t, t.TempDir(), testConfig())
	defer s.Close()
	if !s.Stats().OldestUnsent.IsZero() {
		t.Fatal("empty spool has an oldest record")
	}
	before := time.Now()
	s.Append(context.Background(), rec(0))
	time.Sleep(2 * markEvery)
	s.Append(context.Background(), rec(1))
	old := s.Stats().OldestUnsent
	if old.IsZero() || old.After(time.Now()) || old.Before(before.Add(-markEvery)) {
		t.Fatalf("oldest unsent %v, appended at %v", old, before)
	}
	readN(t, s, 1, true)
	if o := s.Stats().OldestUnsent; !o.After(old) {
		t.Fatalf("after committing the first record oldest is %v, want later than %v", o, old)
	}
	readN(t, s, 1, true)
	if o := s.Stats().OldestUnsent; !o.IsZero() {
		t.Fatalf("drained spool oldest = %v", o)
	}
}

// TestKilledProcessLosesNothingAcked runs an appender in a child process,
// SIGKILLs it mid-stream, and checks that every record whose Append had
// returned is in the spool, in order, with nothing corrupt before it.
func TestKilledProcessLosesNothingAcked(t *testing.T) {
	if dir := os.Getenv("SPOOL_CHILD_DIR"); dir != "" {
		childAppender(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledProcessLosesNothingAcked$")
	cmd.Env = append(os.Environ(), "SPOOL_CHILD_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	acked := -1
	for sc.Scan() {
		if v, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "acked ")); err == nil {
			acked = v
		}
		if acked >= 20000 {
			cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	cmd.Wait()
	if acked < 20000 {
		t.Fatalf("child acked only %d records", acked)
	}
	s := open(t, dir, Config{MaxBytes: 64 << 20, SegmentBytes: 1 << 20, SyncInterval: time.Second})
	defer s.Close()
	st := s.Stats()
	if st.Records < int64(acked+1) {
		t.Fatalf("spool holds %d records, child had acked %d", st.Records, acked+1)
	}
	checkSeq(t, readN(t, s, int(st.Records), true), 0)
}

func childAppender(dir string) {
	s, err := Open(dir, Config{MaxBytes: 64 << 20, SegmentBytes: 1 << 20, SyncInterval: time.Second}, nil)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; i < 1000000; i += 10 {
		batch := make([][]byte, 10)
		for j := range batch {
			batch[j] = rec(i + j)
		}
		if err := s.Append(context.Background(), batch...); err != nil {
			fmt.Println("append:", err)
			os.Exit(1)
		}
		fmt.Fprintf(w, "acked %d\n", i+9)
		w.Flush()
	}
	os.Exit(0)
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// A position file that cannot be written (disk full, most often) must not
// stop the spool: delivered segments are still freed, so appends go on, and
// the position is written at a later commit. After a crash the older position
// on disk only replays records (duplicates), because Open moves a position
// that points into a deleted segment forward to the first one left.
func TestCommitWhenPositionCannotBeWritten(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{MaxBytes: 1 << 20, SegmentBytes: 64 << 10, SyncInterval: time.Second}
	s := open(t, dir, cfg)
	big := func(i int) []byte { return append(rec(i), bytes.Repeat([]byte("y"), 1000)...) }
	blocker := filepath.Join(dir, "position.tmp")
	if err := os.Mkdir(blocker, 0o755); err != nil { // os.WriteFile to it fails
		t.Fatal(err)
	}
	const n = 4000 // ~4 MiB, four times what the spool holds: only freed segments make room
	next := 0
	for next < n {
		for ; next < n; next++ {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			err := s.Append(ctx, big(next))
			cancel()
			if err != nil {
				break // full: deliver what is there
			}
		}
		failed := false
		for s.Stats().Records > 0 {
			rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
			b, err := s.Read(rctx, 1<<20)
			rcancel()
			if err != nil {
				t.Fatalf("read with %+v unsent: %v", s.Stats(), err)
			}
			if err := s.Commit(b.End); err != nil {
				failed = true
			}
		}
		if !failed {
			t.Fatal("Commit reported no error although the position could not be written")
		}
		if st := s.Stats(); st.Records != 0 || st.Segments > 2 {
			t.Fatalf("after delivering everything: %+v, want nothing unsent and the delivered segments freed", st)
		}
	}
	s.Close()
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, cfg) // a restart with the position last written: before all of it
	defer s.Close()
	if st := s.Stats(); st.Records > n/10 {
		t.Fatalf("after restart %d records are replayed; only the last segment's may be", st.Records)
	}
}
