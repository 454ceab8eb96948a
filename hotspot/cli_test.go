package hotspot

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportFilesProgress(t *testing.T) {
	e := newEnv(t, nil)
	e.clk.Set(countyRowsEnd)
	dir := t.TempDir()
	big := filepath.Join(dir, "big.csv")
	// ~1.6 MB of rows inside the test county: a progress bar is drawn.
	data := countyRows(20_000, 2)
	// Move the generated county rows onto the test county (25–25.5°N, 100–100.5°E).
	text := strings.NewReplacer("31.", "25.", "106.", "100.", "107.", "100.").Replace(string(data))
	if err := os.WriteFile(big, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(text) < ProgressMinBytes {
		t.Fatalf("test file only %d bytes", len(text))
	}
	small := "testdata/viirs_noaa20_api_instrument.csv"
	var bar bytes.Buffer
	res, err := e.svc.ImportFiles(context.Background(), []string{small, big, "-"}, strings.NewReader(readFile(t, small)), &bar)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].New != 4 || res[1].Rows != 20_000 || res[1].Source != "cli:big.csv" || res[2].Duplicate != 4 || res[2].Source != "cli:stdin" {
		t.Fatalf("results %+v", res)
	}
	out := bar.String()
	// Redrawn as the 64 KiB reads advance (never more than once per percent), ending on a full bar and a newline.
	if n := strings.Count(out, "\r"); !strings.Contains(out, "big.csv [") || strings.Contains(out, "viirs_noaa20") ||
		n < 10 || n > 101 || !strings.HasSuffix(out, "1.6/1.6 MB\n") {
		t.Fatalf("progress output (%d redraws): %q", strings.Count(out, "\r"), out[max(0, len(out)-200):])
	}
	if !strings.Contains(out, "[##############################] 100%") {
		t.Fatalf("bar never full: %q", out[max(0, len(out)-200):])
	}
	// A missing file stops the run and names the file.
	_, err = e.svc.ImportFiles(context.Background(), []string{filepath.Join(dir, "nope.csv")}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "nope.csv") {
		t.Fatalf("missing file: %v", err)
	}
}
