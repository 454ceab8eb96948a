package hotspot

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lookoutfire/lookout/internal/testenv"
)

// firmsServer serves one FIRMS file with validators and answers conditional GETs.
type firmsServer struct {
	mu           sync.Mutex
	body, etag   string
	lastModified time.Time
	fail         bool
	requests     []http.Header
}

func (f *firmsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Header.Clone())
	if f.fail {
		http.Error(w, "upstream busy", http.StatusServiceUnavailable)
		return
	}
	if f.etag != "" {
		w.Header().Set("ETag", f.etag)
		if r.Header.Get("If-None-Match") == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if !f.lastModified.IsZero() {
		w.Header().Set("Last-Modified", f.lastModified.UTC().Format(http.TimeFormat))
		if f.etag == "" {
			if ims, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !f.lastModified.After(ims) {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
	}
	w.Header().Set("Content-Type", "text/csv")
	w.Write([]byte(f.body))
}

func (f *firmsServer) set(fn func(*firmsServer)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

func (f *firmsServer) reqs() []http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]http.Header(nil), f.requests...)
}

func TestPollURLConditionalGet(t *testing.T) {
	fixture := readFile(t, "testdata/viirs_noaa20_api_instrument.csv")
	etagSrv := &firmsServer{body: fixture, etag: `"v1"`, lastModified: t0.Add(-time.Hour)}
	lmSrv := &firmsServer{body: viirsHeader + viirsRow(25.05, 100.45, t0.Add(-3*time.Hour), "N", 1), lastModified: t0.Add(-time.Hour)}
	s1, s2 := httptest.NewServer(etagSrv), httptest.NewServer(lmSrv)
	defer s1.Close()
	defer s2.Close()
	e := newEnv(t, func(c *Config, _ *Deps) {
		c.Sources = []SourceConfig{{Name: "firms-etag", URL: s1.URL + "/firms.csv"}, {Name: "firms-lm", URL: s2.URL, Interval: 30 * time.Minute}}
	})
	ctx := context.Background()
	if err := e.svc.Poll(ctx, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if n := len(listAll(t, e, ListFilter{})); n != 4 {
		t.Fatalf("%d reports after the first poll", n)
	}
	if r := etagSrv.reqs(); len(r) != 1 || r[0].Get("If-None-Match") != "" {
		t.Fatalf("first request %v", r)
	}
	// Not due yet: no request at all.
	e.svc.Poll(ctx, e.clk.Advance(time.Minute))
	if len(etagSrv.reqs()) != 1 || len(lmSrv.reqs()) != 1 {
		t.Fatal("polled before the interval")
	}
	// Due (10 min default): a conditional GET answered 304; the 30 min source waits.
	if err := e.svc.Poll(ctx, e.clk.Advance(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	r := etagSrv.reqs()
	if len(r) != 2 || r[1].Get("If-None-Match") != `"v1"` || r[1].Get("If-Modified-Since") != t0.Add(-time.Hour).Format(http.TimeFormat) {
		t.Fatalf("second request %v", r)
	}
	if len(lmSrv.reqs()) != 1 {
		t.Fatal("the 30 min source was polled after 11 min")
	}
	if v := testutil.ToFloat64(e.svc.m.polls.WithLabelValues("firms-etag", "unchanged")); v != 1 {
		t.Errorf("unchanged counter %v", v)
	}
	// The file changes: imported, only the new row is new.
	etagSrv.set(func(f *firmsServer) {
		f.body += "25.05,100.3,330,0.4,0.4,2026-03-14,0610,N20,VIIRS,h,2.0NRT,290,9,D\n"
		f.etag = `"v2"`
	})
	if err := e.svc.Poll(ctx, e.clk.Advance(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := len(listAll(t, e, ListFilter{})); n != 5 {
		t.Fatalf("%d reports after the change", n)
	}
	// An upstream error is reported and keeps the validators; the next poll is conditional on v2.
	etagSrv.set(func(f *firmsServer) { f.fail = true })
	if err := e.svc.Poll(ctx, e.clk.Advance(10*time.Minute)); err == nil || !strings.Contains(err.Error(), "firms-etag") {
		t.Fatalf("upstream error: %v", err)
	}
	st, _ := e.svc.sourceState(ctx, "firms-etag")
	if st.etag != `"v2"` || !strings.Contains(st.lastError, "503") {
		t.Fatalf("state after error %+v", st)
	}
	etagSrv.set(func(f *firmsServer) { f.fail = false })
	e.svc.Poll(ctx, e.clk.Advance(10*time.Minute))
	if r := etagSrv.reqs(); r[len(r)-1].Get("If-None-Match") != `"v2"` {
		t.Fatalf("after recovery %v", r[len(r)-1])
	}
	// The Last-Modified-only source: conditional on its date, answered 304.
	if r := lmSrv.reqs(); len(r) != 2 || r[1].Get("If-Modified-Since") != t0.Add(-time.Hour).Format(http.TimeFormat) || r[1].Get("If-None-Match") != "" {
		t.Fatalf("last-modified source requests %v", r)
	}
	if v := testutil.ToFloat64(e.svc.m.polls.WithLabelValues("firms-lm", "unchanged")); v != 1 {
		t.Errorf("lm unchanged counter %v", v)
	}
}

func TestPollFolder(t *testing.T) {
	in := t.TempDir()
	e := newEnv(t, func(c *Config, _ *Deps) { c.Sources = []SourceConfig{{Name: "drop", Dir: in}} })
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(in, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.csv", readFile(t, "testdata/viirs_noaa20_api_instrument.csv"))
	write("b.TXT", readFile(t, "testdata/mixed_bad_rows.csv"))
	write("c.csv", "this is not a FIRMS file\n")
	write(".partial.csv", viirsHeader) // being written: ignored
	write("notes.md", "# notes")
	ctx := context.Background()
	// The first poll only notes the files; the next takes those unchanged since.
	if err := e.svc.Poll(ctx, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	err := e.svc.Poll(ctx, e.clk.Advance(11*time.Minute))
	if err == nil || !strings.Contains(err.Error(), "c.csv") {
		t.Fatalf("poll error %v, want one naming c.csv", err)
	}
	ls := func(dir string) string {
		ents, _ := os.ReadDir(dir)
		var n []string
		for _, e := range ents {
			n = append(n, e.Name())
		}
		sort.Strings(n)
		return strings.Join(n, " ")
	}
	if got := ls(in); got != ".partial.csv done failed notes.md" {
		t.Fatalf("folder after poll: %s", got)
	}
	if got := ls(filepath.Join(in, "done")); got != "a.csv a.csv.result.json b.TXT b.TXT.result.json" {
		t.Fatalf("done/: %s", got)
	}
	if got := ls(filepath.Join(in, "failed")); got != "c.csv c.csv.result.json" {
		t.Fatalf("failed/: %s", got)
	}
	reports := listAll(t, e, ListFilter{})
	if len(reports) != 3 {
		t.Fatalf("%d reports", len(reports))
	}
	// The right villages: the forest pixel pair went to V11's duty contact.
	if r := reportAt(t, e, 25.212, 100.22); r.ZoneID != "v11" || r.Assignee != "Li Wei" {
		t.Fatalf("%+v", r)
	}
	// The same file dropped again: moved aside without overwriting, nothing new.
	write("a.csv", readFile(t, "testdata/viirs_noaa20_api_instrument.csv"))
	for i := 0; i < 2; i++ {
		if err := e.svc.Poll(ctx, e.clk.Advance(11*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if got := ls(filepath.Join(in, "done")); got != "a.1.csv a.1.csv.result.json a.csv a.csv.result.json b.TXT b.TXT.result.json" {
		t.Fatalf("done/ after re-drop: %s", got)
	}
	if n := len(listAll(t, e, ListFilter{})); n != 3 {
		t.Fatalf("%d reports after re-drop", n)
	}
	// A missing folder is an error, not a crash.
	e2 := newEnv(t, func(c *Config, _ *Deps) { c.Sources = []SourceConfig{{Name: "gone", Dir: filepath.Join(in, "nope")}} })
	if err := e2.svc.Poll(ctx, e2.clk.Now()); err == nil {
		t.Fatal("missing folder: no error")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key string
		mod func(*Config)
	}{
		{"cluster_distance_m", func(c *Config) { c.ClusterDistanceM = -1 }},
		{"cluster_window", func(c *Config) { c.ClusterWindow = 0 }},
		{"deadline_forest", func(c *Config) { c.DeadlineForest = 0 }},
		{"deadline_heat_source", func(c *Config) { c.DeadlineHeatSource = -time.Second }},
		{"photo_types", func(c *Config) { c.PhotoTypes = []string{"image/gif"} }},
		{"max_photo_bytes", func(c *Config) { c.MaxPhotoBytes = 0 }},
		{"sources[0].name", func(c *Config) { c.Sources = []SourceConfig{{Dir: "x"}} }},
		{"sources[1].name", func(c *Config) { c.Sources = []SourceConfig{{Name: "a", Dir: "x"}, {Name: "a", Dir: "y"}} }},
		{"sources[0]: set exactly one", func(c *Config) { c.Sources = []SourceConfig{{Name: "a", Dir: "x", URL: "http://h/"}} }},
		{"sources[0].url", func(c *Config) { c.Sources = []SourceConfig{{Name: "a", URL: "ftp://h/x"}} }},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.key) {
			t.Errorf("%s: %v", tc.key, err)
		}
	}
}

func gzipBytes(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Gzipped FIRMS files dropped into a folder source are imported like plain ones.
func TestPollFolderGzip(t *testing.T) {
	in := t.TempDir()
	e := newEnv(t, func(c *Config, _ *Deps) { c.Sources = []SourceConfig{{Name: "drop", Dir: in}} })
	at := time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC)
	for name, body := range map[string]string{
		"a.csv.gz":    viirsHeader + viirsRow(25.05, 100.45, at, "N", 1),
		"b.TXT.GZ":    viirsHeader + viirsRow(25.3, 100.3, at, "N", 1),
		"FIRMS_7d.gz": viirsHeader + viirsRow(25.1, 100.05, at, "N", 1),
	} {
		if err := os.WriteFile(filepath.Join(in, name), gzipBytes(t, body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for i := 0; i < 2; i++ { // a file is taken once it is seen unchanged by two polls
		if err := e.svc.Poll(ctx, e.clk.Advance(11*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(in, "done"))
	if len(ents) != 6 {
		t.Fatalf("done/ holds %d files, want 3 and their results", len(ents))
	}
	if n := len(listAll(t, e, ListFilter{})); n != 3 {
		t.Fatalf("%d reports, want 3", n)
	}
}

// A file still being written is left alone until two polls in a row find it with the
// same size and modification time; then it is imported whole.
func TestPollFolderWaitsForStableFile(t *testing.T) {
	in := t.TempDir()
	e := newEnv(t, func(c *Config, _ *Deps) { c.Sources = []SourceConfig{{Name: "drop", Dir: in}} })
	ctx := context.Background()
	lines := strings.SplitAfter(readFile(t, "testdata/viirs_noaa20_api_instrument.csv"), "\n")
	path := filepath.Join(in, "viirs.csv")
	if err := os.WriteFile(path, []byte(strings.Join(lines[:2], "")), 0o644); err != nil { // header + 1 row
		t.Fatal(err)
	}
	inInbox := func() bool { _, err := os.Stat(path); return err == nil }
	if err := e.svc.Poll(ctx, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if !inInbox() || len(listAll(t, e, ListFilter{})) != 0 {
		t.Fatal("first poll took a file it had never seen before")
	}
	// The writer goes on: still changing at the next poll, so still left alone.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(strings.Join(lines[2:], ""))
	f.Close()
	if err := e.svc.Poll(ctx, e.clk.Advance(11*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !inInbox() || len(listAll(t, e, ListFilter{})) != 0 {
		t.Fatal("a file that changed since the last poll was taken")
	}
	// Unchanged since: imported whole.
	if err := e.svc.Poll(ctx, e.clk.Advance(11*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if inInbox() {
		t.Fatal("stable file not taken")
	}
	if n := len(listAll(t, e, ListFilter{})); n != 3 {
		t.Fatalf("%d reports, want the whole file's 3", n)
	}
}

// A polled file's import is logged with its counts (Warn naming the bad rows' lines when
// there are some) and its full result is written beside the moved file, for whoever
// dropped it; a failed file's result says why.
func TestPollFolderReportsImport(t *testing.T) {
	in := t.TempDir()
	var logBuf testenv.SyncBuffer
	e := newEnv(t, func(c *Config, d *Deps) {
		c.Sources = []SourceConfig{{Name: "drop", Dir: in}}
		d.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
	})
	at := t0.Add(-time.Hour)
	files := map[string]string{
		"clean.csv": viirsHeader + viirsRow(25.3, 100.3, at, "N", 1),
		"one-bad.csv": viirsHeader + viirsRow(25.05, 100.45, at, "N", 1) +
			"25.2,100.2,330.5,0.39,0.36,2026-03-14,2460,N,VIIRS,n,2.0NRT,290.1,1.00,N\n" + // line 3
			viirsRow(25.1, 100.05, at, "N", 1),
		"junk.csv": "this is not a FIRMS file\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(in, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		e.svc.Poll(ctx, e.clk.Advance(11*time.Minute)) // junk.csv is an error
	}
	type pollResult struct { // PollResult as the operator reads it
		File       string
		ImportedAt time.Time `json:"imported_at"`
		Error      string
		ImportResult
	}
	readResult := func(path string) pollResult {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(in, path))
		if err != nil {
			t.Fatalf("result file: %v", err)
		}
		var r pollResult
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return r
	}
	r := readResult("done/one-bad.csv.result.json")
	if r.File != "one-bad.csv" || r.Source != "source:drop/one-bad.csv" || r.Rows != 2 || r.New != 2 || r.Bad != 1 ||
		r.ReportsCreated != 2 || len(r.BadRows) != 1 || r.BadRows[0].Line != 3 ||
		!strings.Contains(r.BadRows[0].Reason, "acq_time") || r.Error != "" || !r.ImportedAt.Equal(e.clk.Now()) {
		t.Errorf("one-bad.csv result: %+v", r)
	}
	if r := readResult("done/clean.csv.result.json"); r.Rows != 1 || r.New != 1 || r.Bad != 0 || r.ReportsCreated != 1 {
		t.Errorf("clean.csv result: %+v", r)
	}
	if r := readResult("failed/junk.csv.result.json"); r.File != "junk.csv" || !strings.Contains(r.Error, "header lacks") {
		t.Errorf("junk.csv result: %+v", r)
	}
	logs := logBuf.String()
	var warn, info string
	for _, l := range strings.Split(logs, "\n") {
		switch {
		case strings.Contains(l, "file=one-bad.csv"):
			warn = l
		case strings.Contains(l, "file=clean.csv"):
			info = l
		}
	}
	if !strings.Contains(warn, "level=WARN") || !strings.Contains(warn, "bad=1") || !strings.Contains(warn, "new=2") ||
		!strings.Contains(warn, "line 3: acq_time") || !strings.Contains(warn, "one-bad.csv.result.json") {
		t.Errorf("log line of the file with a bad row: %q\nall logs:\n%s", warn, logs)
	}
	if !strings.Contains(info, "level=INFO") || !strings.Contains(info, "rows=1") || !strings.Contains(info, "reports_created=1") {
		t.Errorf("log line of the clean file: %q\nall logs:\n%s", info, logs)
	}
}
