package hotspot

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ProgressMinBytes is the file size from which ImportFiles draws a progress bar: small
// files import in a blink and a bar would only be noise.
const ProgressMinBytes = 1 << 20

// ImportFiles imports each named FIRMS file ("-" = stdin) in order, as the CLI
// `gateway hotspots import FILE...` does, drawing a progress bar on bar for files of
// ProgressMinBytes or more (bar may be nil). It stops at the first file that cannot be
// imported at all and returns the results so far; bad rows do not stop it.
func (s *Service) ImportFiles(ctx context.Context, paths []string, stdin io.Reader, bar io.Writer) ([]ImportResult, error) {
	var out []ImportResult
	for _, p := range paths {
		res, err := s.importFile(ctx, p, stdin, bar)
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

func (s *Service) importFile(ctx context.Context, path string, stdin io.Reader, bar io.Writer) (ImportResult, error) {
	if path == "-" {
		return s.Import(ctx, "cli:stdin", stdin, nil)
	}
	f, err := os.Open(path)
	if err != nil {
		return ImportResult{}, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	var pb *progressBar
	if st, err := f.Stat(); err == nil && bar != nil && st.Size() >= ProgressMinBytes {
		pb = &progressBar{w: bar, name: filepath.Base(path), total: st.Size(), last: -1}
		r = &countingReader{r: f, pb: pb}
	}
	res, err := s.Import(ctx, "cli:"+filepath.Base(path), r, nil)
	if pb != nil {
		pb.finish(err == nil)
	}
	return res, err
}

// countingReader feeds the bytes read to a progress bar.
type countingReader struct {
	r  io.Reader
	pb *progressBar
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.pb.add(int64(n))
	return n, err
}

// progressBar draws "name [#####-----]  50%  12.0/24.0 MB" on one terminal line,
// redrawn only when the whole percentage changes.
type progressBar struct {
	w           io.Writer
	name        string
	total, done int64
	last        int
}

const barWidth = 30

func (b *progressBar) add(n int64) {
	b.done += n
	pct := int(b.done * 100 / max(b.total, 1))
	if pct > 100 {
		pct = 100
	}
	if pct == b.last {
		return
	}
	b.last = pct
	fill := pct * barWidth / 100
	fmt.Fprintf(b.w, "\r%s [%s%s] %3d%%  %.1f/%.1f MB", b.name, strings.Repeat("#", fill), strings.Repeat("-", barWidth-fill),
		pct, float64(b.done)/(1<<20), float64(b.total)/(1<<20))
}

func (b *progressBar) finish(ok bool) {
	if ok {
		b.add(b.total - b.done) // the parser may stop reading before EOF padding
	}
	fmt.Fprintln(b.w)
}
