package hotspot

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Poll checks every configured source that is due at now: a URL with a conditional GET
// (ETag / Last-Modified stored per source, so an unchanged file costs one 304), a folder
// by importing each new *.csv, *.txt or gzipped (*.gz) file and moving it to done/ (or
// failed/ when it cannot be read) with its import result beside it (PollResult). A
// folder's file is taken only once two polls in a row find it with the same size and
// modification time, so a file still being written waits (see pollDir). Each import is
// logged with its counts (logImport). Sources are checked one after the other; errors
// are joined.
func (s *Service) Poll(ctx context.Context, now time.Time) error {
	var errList []error
	for _, src := range s.cfg.Sources {
		interval := src.Interval
		if interval <= 0 {
			interval = s.cfg.PollInterval
		}
		st, err := s.sourceState(ctx, src.Name)
		if err != nil {
			errList = append(errList, err)
			continue
		}
		if st.lastPolled != 0 && now.Before(time.Unix(st.lastPolled, 0).Add(interval)) {
			continue
		}
		if src.URL != "" {
			err = s.pollURL(ctx, src, &st)
		} else {
			err = s.pollDir(ctx, src)
		}
		st.lastPolled, st.lastError = now.Unix(), ""
		if err != nil {
			st.lastError = err.Error()
			errList = append(errList, fmt.Errorf("hotspot source %s: %w", src.Name, err))
			s.m.polls.WithLabelValues(src.Name, "error").Inc()
		}
		if err := s.saveSourceState(ctx, src.Name, st); err != nil {
			errList = append(errList, err)
		}
	}
	return errors.Join(errList...)
}

type sourceState struct {
	etag, lastModified, lastError string
	lastPolled                    int64
}

func (s *Service) sourceState(ctx context.Context, name string) (sourceState, error) {
	var st sourceState
	err := s.db.QueryRowContext(ctx, `SELECT etag, last_modified, last_polled, last_error FROM hotspot_sources WHERE name=?`, name).
		Scan(&st.etag, &st.lastModified, &st.lastPolled, &st.lastError)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("hotspot source %s: %w", name, err)
	}
	return st, nil
}

func (s *Service) saveSourceState(ctx context.Context, name string, st sourceState) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO hotspot_sources(name, etag, last_modified, last_polled, last_error)
		VALUES(?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET etag=excluded.etag, last_modified=excluded.last_modified,
		last_polled=excluded.last_polled, last_error=excluded.last_error`, name, st.etag, st.lastModified, st.lastPolled, st.lastError)
	if err != nil {
		return fmt.Errorf("hotspot source %s: save state: %w", name, err)
	}
	return nil
}

func (s *Service) pollURL(ctx context.Context, src SourceConfig, st *sourceState) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PollTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return err
	}
	if st.etag != "" {
		req.Header.Set("If-None-Match", st.etag)
	}
	if st.lastModified != "" {
		req.Header.Set("If-Modified-Since", st.lastModified)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		s.m.polls.WithLabelValues(src.Name, "unchanged").Inc()
		return nil
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s", src.URL, resp.Status)
	}
	res, err := s.Import(ctx, "source:"+src.Name, resp.Body, nil)
	if err != nil {
		return err
	}
	s.logImport(src, src.URL, res, "")
	// Only a complete import moves the validators forward; a failed one is retried whole
	// (re-import is idempotent).
	st.etag, st.lastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	s.m.polls.WithLabelValues(src.Name, "imported").Inc()
	return nil
}

// fileStamp is what a folder poll remembers of a file to tell whether it still grows.
type fileStamp struct {
	size  int64
	mtime int64 // unix nanoseconds
}

// pollDir imports the folder's FIRMS files (*.csv, *.txt, *.gz; names starting with
// "." are skipped, so a writer may write under a dot name and rename). A file is taken
// only when this poll finds it with the same size and modification time as the
// previous poll of the source did: a file still being written is left for a later
// poll instead of being imported in part, at the cost of one poll interval's delay
// (and one more after a restart, as the stamps are kept in memory).
func (s *Service) pollDir(ctx context.Context, src SourceConfig) error {
	entries, err := os.ReadDir(src.Dir)
	if err != nil {
		return err
	}
	s.dirMu.Lock()
	prev := s.dirSeen[src.Name]
	seen := make(map[string]fileStamp, len(entries))
	var names []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.Type().IsRegular() || (ext != ".csv" && ext != ".txt" && ext != ".gz") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := e.Info()
		if err != nil { // gone meanwhile
			continue
		}
		st := fileStamp{size: info.Size(), mtime: info.ModTime().UnixNano()}
		seen[e.Name()] = st
		if p, ok := prev[e.Name()]; ok && p == st {
			names = append(names, e.Name())
		}
	}
	if s.dirSeen == nil {
		s.dirSeen = map[string]map[string]fileStamp{}
	}
	s.dirSeen[src.Name] = seen
	s.dirMu.Unlock()
	sort.Strings(names)
	var errList []error
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(src.Dir, name)
		f, err := os.Open(path)
		if err != nil {
			errList = append(errList, err)
			continue
		}
		res, ierr := s.Import(ctx, "source:"+src.Name+"/"+name, f, nil)
		f.Close()
		dest := "done"
		switch {
		case errors.Is(ierr, ErrBadFile), errors.Is(ierr, ErrTooManyRows), errors.Is(ierr, ErrImportTooLarge):
			dest = "failed"
			errList = append(errList, fmt.Errorf("%s: %w", name, ierr))
		case ierr != nil: // database or context trouble: leave the file for the next poll
			errList = append(errList, fmt.Errorf("%s: %w", name, ierr))
			continue
		}
		moved, err := moveInto(path, filepath.Join(src.Dir, dest))
		if err != nil {
			errList = append(errList, err)
			continue
		}
		resultPath := moved + ".result.json"
		if err := writeResult(resultPath, name, res, ierr, s.clk.Now()); err != nil {
			errList = append(errList, fmt.Errorf("%s: %w", name, err))
			resultPath = ""
		}
		if ierr == nil {
			s.logImport(src, name, res, resultPath)
		}
		s.m.polls.WithLabelValues(src.Name, "imported").Inc()
	}
	return errors.Join(errList...)
}

// PollResult is what a folder poll writes beside a file it moved to done/ or failed/
// (as <moved name>.result.json), for whoever dropped the file: the import result,
// with every bad row's line and reason up to max_bad_rows, and the error of a failed file.
type PollResult struct {
	File       string    `json:"file"` // the name the file was dropped under
	ImportedAt time.Time `json:"imported_at"`
	Error      string    `json:"error,omitempty"` // why the file went to failed/
	ImportResult
}

func writeResult(path, name string, res ImportResult, ierr error, now time.Time) error {
	pr := PollResult{File: name, ImportedAt: now.UTC(), ImportResult: res}
	if ierr != nil {
		pr.Error = ierr.Error()
	}
	b, err := json.MarshalIndent(pr, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("import result: %w", err)
	}
	return nil
}

// logBadRows is how many bad rows an import's log line names (all are in the result).
const logBadRows = 5

// logImport logs one line for a polled file's import with its counts: Info, or Warn
// when it had bad rows, naming the first few with their line numbers and reasons.
func (s *Service) logImport(src SourceConfig, file string, res ImportResult, resultPath string) {
	attrs := []any{"source", src.Name, "file", file, "rows", res.Rows, "bad", res.Bad, "new", res.New,
		"duplicate", res.Duplicate, "outside_area", res.OutsideArea, "reports_created", res.ReportsCreated,
		"reports_updated", res.ReportsUpdated, "reports_merged", res.ReportsMerged}
	if resultPath != "" {
		attrs = append(attrs, "result", resultPath)
	}
	if res.Bad == 0 {
		s.log.Info("hotspot file imported", attrs...)
		return
	}
	var bad []string
	for _, b := range res.BadRows[:min(len(res.BadRows), logBadRows)] {
		bad = append(bad, fmt.Sprintf("line %d: %s", b.Line, b.Reason))
	}
	if res.Bad > len(bad) {
		bad = append(bad, fmt.Sprintf("… %d more", res.Bad-len(bad)))
	}
	s.log.Warn("hotspot file imported with bad rows", append(attrs, "bad_rows", strings.Join(bad, "; "))...)
}

// moveInto moves a file into dir, never overwriting: a name already there gets a
// suffix. It returns the file's new path.
func moveInto(path, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	base := filepath.Base(path)
	dest := filepath.Join(dir, base)
	for i := 1; ; i++ {
		if _, err := os.Lstat(dest); errors.Is(err, os.ErrNotExist) {
			break
		}
		ext := filepath.Ext(base)
		dest = filepath.Join(dir, fmt.Sprintf("%s.%d%s", strings.TrimSuffix(base, ext), i, ext))
	}
	return dest, os.Rename(path, dest)
}
