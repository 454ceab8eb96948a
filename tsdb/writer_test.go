package tsdb

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	http2 "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/lookoutfire/lookout/spool"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{0, 100 * time.Millisecond}, {1, 200 * time.Millisecond}, {3, 800 * time.Millisecond},
		{6, 6400 * time.Millisecond}, {7, 10 * time.Second}, {60, 10 * time.Second}, {1000, 10 * time.Second}} {
		if got := Backoff(tc.attempt); got != tc.want {
			t.Errorf("Backoff(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	he := func(code int, msg string) error {
		return fmt.Errorf("influx write: %w", &http2.Error{StatusCode: code, Code: "x", Message: msg})
	}
	for _, tc := range []struct {
		name string
		err  error
		want errKind
	}{
		{"refused", http2.NewError(&net.OpError{Op: "dial", Err: errors.New("connection refused")}), kindNetwork},
		{"eof", http2.NewError(io.ErrUnexpectedEOF), kindNetwork},
		{"deadline", http2.NewError(context.DeadlineExceeded), kindTimeout},
		{"plain deadline", fmt.Errorf("w: %w", context.DeadlineExceeded), kindTimeout},
		{"500", he(500, "timeout"), kindServer},
		{"503", he(503, "unavailable"), kindServer},
		{"429", he(429, "slow down"), kindThrottled},
		{"type conflict", he(400, `partial write: field type conflict: input field "x" on measurement "m" is type string, already exists as type float dropped=1`), kindRejected},
		{"unparsable", he(400, `unable to parse 'garbage': missing fields`), kindRejected},
		{"too large", he(413, "request entity too large"), kindRejected},
		{"database missing", he(404, `database not found: "nope"`), kindConfig},
		{"rp missing", he(400, `retention policy not found: nope`), kindConfig},
		{"unauthorized", he(401, "authorization failed"), kindConfig},
		{"forbidden", he(403, "forbidden"), kindConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Fatalf("classify(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

func TestNewWriterValidates(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), spool.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	cfg := DefaultConfig()
	cfg.BatchSize = 0
	if _, err := NewWriter(cfg, sp, nil, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad batch size: %v", err)
	}
	if _, err := NewWriter(DefaultConfig(), nil, nil, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("no spool: %v", err)
	}
}

// fakeInflux answers writes with a scripted sequence of statuses and records
// the lines of the accepted ones (it also checks gzip framing).
type fakeInflux struct {
	mu       sync.Mutex
	statuses []int // consumed one per request; 204 when exhausted
	bodies   []string
	requests int
}

// writeBody answers /ping itself and returns a write's body, gunzipped; ok is
// false when the request is answered already.
func writeBody(w http.ResponseWriter, r *http.Request) (b []byte, ok bool) {
	if r.URL.Path == "/ping" {
		w.WriteHeader(http.StatusNoContent)
		return nil, false
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return nil, false
		}
		body = zr
	}
	b, _ = io.ReadAll(body)
	return b, true
}

func (f *fakeInflux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, ok := writeBody(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	status := http.StatusNoContent
	if len(f.statuses) > 0 {
		status, f.statuses = f.statuses[0], f.statuses[1:]
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "2")
	}
	if status >= 300 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"code":"x","message":"scripted %d"}`, status)
		return
	}
	f.bodies = append(f.bodies, string(b))
	w.WriteHeader(status)
}

// TestWriterRetriesWithoutSkipping drives the writer against a scripted
// server: 503, 503, connection-level 429 (Retry-After) and 401 are retried
// with the documented backoff; nothing is skipped or rejected; order holds.
func TestWriterRetriesWithoutSkipping(t *testing.T) {
	fake := &fakeInflux{statuses: []int{503, 503, 429, 401, 500}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	sp, err := spool.Open(t.TempDir(), spool.Config{MaxBytes: 1 << 20, SegmentBytes: 1 << 16, SyncInterval: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	cfg := DefaultConfig()
	cfg.URL, cfg.BatchSize, cfg.FlushInterval = srv.URL, 10, 10*time.Millisecond
	reg := prometheus.NewRegistry()
	w, err := NewWriter(cfg, sp, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sleeps []time.Duration
	w.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		sleeps = append(sleeps, d)
		mu.Unlock()
		return ctx.Err()
	}
	var want []string
	for i := 0; i < 25; i++ {
		line := fmt.Sprintf("m,device_id=d v=%d %d", i, i)
		want = append(want, line)
		if err := sp.Append(context.Background(), []byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for sp.Stats().Records > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	fake.mu.Lock()
	got := strings.Split(strings.Join(fake.bodies, "\n"), "\n")
	fake.mu.Unlock()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("delivered\n%v\nwant\n%v", got, want)
	}
	mu.Lock()
	wantSleeps := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 2 * time.Second, 800 * time.Millisecond, 1600 * time.Millisecond}
	if fmt.Sprint(sleeps) != fmt.Sprint(wantSleeps) {
		t.Fatalf("backoff sleeps %v, want %v", sleeps, wantSleeps)
	}
	mu.Unlock()
	st := w.Stats()
	if st.Rejected != 0 || st.PointsWritten != 25 || st.Errors != 5 || !st.Healthy {
		t.Fatalf("stats %+v", st)
	}
	for kind, n := range map[errKind]float64{kindServer: 3, kindThrottled: 1, kindConfig: 1, kindRejected: 0} {
		var m dto.Metric
		w.m.errors.WithLabelValues(string(kind)).Write(&m)
		if m.GetCounter().GetValue() != n {
			t.Errorf("write_errors_total{kind=%s} = %v, want %v", kind, m.GetCounter().GetValue(), n)
		}
	}
}

// TestWriterBisectsRejectedBatch: a 400 on a batch is narrowed to the one bad
// line; the good lines are delivered and the bad one lands in rejected.lp.
func TestWriterBisectsRejectedBatch(t *testing.T) {
	var mu sync.Mutex
	var accepted []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		b, _ := io.ReadAll(zr)
		if strings.Contains(string(b), "BAD") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			fmt.Fprint(w, `{"code":"invalid","message":"partial write: field type conflict"}`)
			return
		}
		mu.Lock()
		accepted = append(accepted, strings.Split(string(b), "\n")...)
		mu.Unlock()
		w.WriteHeader(204)
	}))
	defer srv.Close()
	dir := t.TempDir()
	sp, err := spool.Open(dir, spool.Config{MaxBytes: 1 << 20, SegmentBytes: 1 << 16, SyncInterval: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	cfg := DefaultConfig()
	cfg.URL, cfg.BatchSize, cfg.FlushInterval = srv.URL, 64, 10*time.Millisecond
	w, err := NewWriter(cfg, sp, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for i := 0; i < 64; i++ {
		if i == 37 {
			recs = append(recs, []byte("m BAD=1"))
			continue
		}
		recs = append(recs, []byte(fmt.Sprintf("m v=%d %d", i, i)))
	}
	if err := sp.Append(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for sp.Stats().Records > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(accepted, func(i, j int) bool {
		return len(accepted[i]) < len(accepted[j]) || len(accepted[i]) == len(accepted[j]) && accepted[i] < accepted[j]
	})
	if len(accepted) != 63 {
		t.Fatalf("%d lines accepted, want 63", len(accepted))
	}
	b, err := os.ReadFile(filepath.Join(dir, RejectedFile))
	if err != nil || !strings.Contains(string(b), "\nm BAD=1\n") || strings.Count(string(b), "\n") != 2 {
		t.Fatalf("rejected.lp = %q, %v", b, err)
	}
	if st := w.Stats(); st.Rejected != 1 || st.PointsWritten != 63 {
		t.Fatalf("stats %+v", st)
	}
}

// slowInflux takes perLine for every line of a write, as an overloaded
// InfluxDB does, and keeps only the writes whose answer the client waited for.
type slowInflux struct {
	perLine time.Duration
	mu      sync.Mutex
	lines   []string
	sizes   []int // lines per request, answered or not
}

func (f *slowInflux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, ok := writeBody(w, r)
	if !ok {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	f.mu.Lock()
	f.sizes = append(f.sizes, len(lines))
	f.mu.Unlock()
	select {
	case <-time.After(time.Duration(len(lines)) * f.perLine):
	case <-r.Context().Done():
		return // the client gave up: its retry will send these again
	}
	f.mu.Lock()
	f.lines = append(f.lines, lines...)
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// TestWriterShrinksBatchOnTimeout: when InfluxDB is too slow to take a full
// batch within the write timeout, resending the same batch would time out
// forever (and never commit what InfluxDB did store). The writer halves the
// batch after a timeout until writes complete, so everything is delivered.
func TestWriterShrinksBatchOnTimeout(t *testing.T) {
	fake := &slowInflux{perLine: 4 * time.Millisecond} // 400 lines take 1.6 s, past the 1 s timeout
	srv := httptest.NewServer(fake)
	defer srv.Close()
	sp, err := spool.Open(t.TempDir(), spool.Config{MaxBytes: 1 << 20, SegmentBytes: 1 << 16, SyncInterval: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	cfg := DefaultConfig()
	cfg.URL, cfg.BatchSize, cfg.FlushInterval, cfg.Timeout = srv.URL, 400, 10*time.Millisecond, time.Second
	w, err := NewWriter(cfg, sp, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	w.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	const n = 800
	for i := range n {
		if err := sp.Append(context.Background(), fmt.Appendf(nil, "m,device_id=d v=%d %d", i, i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for sp.Stats().Records > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if left := sp.Stats().Records; left > 0 {
		t.Fatalf("%d of %d points still unsent after 30 s; request sizes %v", left, n, fake.sizes)
	}
	seen := map[string]bool{}
	for _, l := range fake.lines {
		seen[l] = true
	}
	if len(seen) != n {
		t.Fatalf("InfluxDB got %d distinct points, want %d", len(seen), n)
	}
}
