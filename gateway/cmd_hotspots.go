package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/lookoutfire/lookout/geo"
	"github.com/lookoutfire/lookout/hotspot"
	"github.com/lookoutfire/lookout/store"
)

// cmdHotspots is `gateway hotspots import FILE...`: it imports NASA FIRMS files into
// the same state database and with the same geo layers as the server, so a verifier
// can load a file by hand when the poll sources are down. Results go to stdout as
// JSON lines, the progress bar of large files to stderr.
func cmdHotspots(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprintln(stderr, "usage: gateway hotspots import [flags] FILE... (\"-\" reads stdin; .gz accepted)")
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("hotspots import", flag.ContinueOnError)
	quiet := fs.Bool("q", false, "no progress bar")
	cfg, err := loadConfig(fs, args[1:], stderr)
	if err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 {
		return errors.New("import: name at least one FIRMS file (or - for stdin)")
	}
	layers, err := geo.NewLayers(cfg.Geo)
	if err != nil {
		return err
	}
	db, err := store.Open(filepath.Join(cfg.DataDir, "lookout.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	hc := cfg.Hotspot
	if hc.PhotoDir == "" {
		hc.PhotoDir = filepath.Join(cfg.DataDir, "photos")
	}
	hc.Sources = nil // the CLI imports what it is given, it does not poll
	svc, err := hotspot.New(ctx, hc, hotspot.Deps{DB: db, Locator: hotspot.GeoLocator{Layers: layers}})
	if err != nil {
		return err
	}
	var bar io.Writer = stderr
	if *quiet {
		bar = nil
	}
	results, err := svc.ImportFiles(ctx, files, stdin, bar)
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	for _, r := range results {
		if encErr := enc.Encode(r); encErr != nil {
			return encErr
		}
		fmt.Fprintf(stderr, "%s: %d rows, %d new, %d duplicate, %d bad, %d outside the area; reports: %d new, %d updated\n",
			r.Source, r.Rows, r.New, r.Duplicate, r.Bad, r.OutsideArea, r.ReportsCreated, r.ReportsUpdated)
		for _, b := range r.BadRows {
			fmt.Fprintf(stderr, "  line %d: %s\n", b.Line, b.Reason)
		}
	}
	return err
}
