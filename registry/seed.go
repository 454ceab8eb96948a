package registry

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxSeedErrors bounds how many bad rows one error lists; the rest are counted.
const maxSeedErrors = 20

// maxSeedBytes bounds a seed file read into memory.
const maxSeedBytes = 64 << 20

// ErrBadSeed is returned (wrapped, with every bad row named by file and line)
// when a devices file does not parse or validate.
var ErrBadSeed = fmt.Errorf("devices file %w", ErrInvalidDevice)

// ImportFile reads a YAML (.yaml/.yml) or CSV (.csv) devices file and upserts
// every device: new ids are created, existing ones get their static fields
// replaced and keep their health. The file is validated as a whole first: any
// bad row fails the import and nothing is written. Returns the device count.
func (g *Registry) ImportFile(ctx context.Context, path string) (int, error) {
	return g.importFile(ctx, path, false)
}

// SeedFile is the start-up import of registry.seed: the devices file is the
// registry's initial data, so it creates only the devices that are not
// registered and were not deleted through the registry (Delete remembers the
// id; creating it again forgets it). Registered devices keep whatever was
// edited since, and deleted ones stay deleted across restarts. Validation is
// as for ImportFile. Returns how many devices were created.
func (g *Registry) SeedFile(ctx context.Context, path string) (int, error) {
	return g.importFile(ctx, path, true)
}

// importFile upserts (ImportFile) or, with seed, creates what is missing (SeedFile).
func (g *Registry) importFile(ctx context.Context, path string, seed bool) (int, error) {
	devs, err := ReadFile(path, g.cfg.DefaultInterval)
	if err != nil {
		return 0, err
	}
	g.wmu.Lock()
	defer g.wmu.Unlock()
	var deleted map[string]bool
	if seed {
		if deleted, err = g.deletedIDs(ctx); err != nil {
			return 0, fmt.Errorf("registry: seed %s: %w", path, err)
		}
	}
	n := 0
	for _, d := range devs {
		if seed && (deleted[d.ID] || g.lookup(d.ID) != nil) {
			continue
		}
		if d, err = g.normalize(d); err != nil {
			return n, fmt.Errorf("registry: import %s: %w", path, err)
		}
		if err := g.upsertLocked(ctx, d); err != nil {
			return n, fmt.Errorf("registry: import %s: %w", path, err)
		}
		n++
	}
	return n, nil
}

// ReadFile parses and validates a devices file (YAML or CSV by extension)
// without touching any registry; the simulator uses it too. defInterval
// applies to rows without an interval.
func ReadFile(path string, defInterval time.Duration) ([]Device, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSeedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("registry: read %s: %w", path, err)
	}
	if len(data) > maxSeedBytes {
		return nil, fmt.Errorf("registry: %s: larger than %d bytes: %w", path, maxSeedBytes, ErrBadSeed)
	}
	name := filepath.Base(path)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return ParseCSV(data, name, defInterval)
	case ".yaml", ".yml":
		return ParseYAML(data, name, defInterval)
	}
	return nil, fmt.Errorf("registry: %s: want a .yaml, .yml or .csv file: %w", path, ErrBadSeed)
}

// rowErrors collects per-line errors and renders them as one.
type rowErrors struct {
	name string
	errs []string
	n    int
}

func (r *rowErrors) add(line int, err error) {
	r.n++
	if len(r.errs) < maxSeedErrors {
		r.errs = append(r.errs, fmt.Sprintf("%s:%d: %v", r.name, line, err))
	}
}

func (r *rowErrors) err() error {
	if r.n == 0 {
		return nil
	}
	msg := strings.Join(r.errs, "\n")
	if r.n > len(r.errs) {
		msg += fmt.Sprintf("\n… and %d more", r.n-len(r.errs))
	}
	return fmt.Errorf("registry: %d bad row(s):\n%s\n%w", r.n, msg, ErrBadSeed)
}

// seen catches duplicate ids, naming the first line.
type seen map[string]int

func (s seen) check(id string, line int) error {
	if first, ok := s[id]; ok {
		return fmt.Errorf("id %q: duplicate of line %d", id, first)
	}
	s[id] = line
	return nil
}

// ParseYAML parses a YAML devices file: a mapping with a "devices" list whose
// items carry the Input keys (see seeds/README.md). Unknown keys are errors.
func ParseYAML(data []byte, name string, defInterval time.Duration) ([]Device, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("registry: %s: %v: %w", name, err, ErrBadSeed)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("registry: %s: want a mapping with a devices list: %w", name, ErrBadSeed)
	}
	root := doc.Content[0]
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch k := root.Content[i]; k.Value {
		case "devices":
			list = root.Content[i+1]
		default:
			return nil, fmt.Errorf("registry: %s:%d: unknown top-level key %q (want devices): %w", name, k.Line, k.Value, ErrBadSeed)
		}
	}
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("registry: %s: want a devices list: %w", name, ErrBadSeed)
	}
	bad := &rowErrors{name: name}
	ids := seen{}
	var out []Device
	for _, item := range list.Content {
		if item.Kind != yaml.MappingNode {
			bad.add(item.Line, errors.New("want a mapping of device fields"))
			continue
		}
		if err := knownKeys(item); err != nil {
			bad.add(item.Line, err)
			continue
		}
		var in Input
		if err := item.Decode(&in); err != nil {
			bad.add(item.Line, err)
			continue
		}
		d, err := in.Device(defInterval)
		if err == nil {
			err = ids.check(d.ID, item.Line)
		}
		if err != nil {
			bad.add(item.Line, err)
			continue
		}
		out = append(out, d)
	}
	if err := bad.err(); err != nil {
		return nil, err
	}
	return out, nil
}

func knownKeys(m *yaml.Node) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i].Value; !slices.Contains(inputFields, k) {
			return fmt.Errorf("line %d: unknown field %q", m.Content[i].Line, k)
		}
	}
	return nil
}

// utf8BOM is the byte order mark spreadsheet programs put at the start of a
// "CSV UTF-8" export.
var utf8BOM = []byte("\ufeff")

// ParseCSV parses a CSV devices file with a header row naming the columns
// (id, class, name, lat and lon required; any other Input key optional). A
// leading UTF-8 byte order mark is skipped.
func ParseCSV(data []byte, name string, defInterval time.Duration) ([]Device, error) {
	// Before the reader, not on the parsed header: a BOM in front of a quoted
	// first field ("\ufeff\"id\"") makes the quote a bare one, a parse error.
	data = bytes.TrimPrefix(data, utf8BOM)
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("registry: %s: header: %v: %w", name, err, ErrBadSeed)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(inputFields, h) {
			return nil, fmt.Errorf("registry: %s:1: unknown column %q: %w", name, h, ErrBadSeed)
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("registry: %s:1: column %q twice: %w", name, h, ErrBadSeed)
		}
		col[h] = i
	}
	for _, req := range []string{"id", "class", "name", "lat", "lon"} {
		if _, ok := col[req]; !ok {
			return nil, fmt.Errorf("registry: %s:1: missing column %q: %w", name, req, ErrBadSeed)
		}
	}
	bad := &rowErrors{name: name}
	ids := seen{}
	var out []Device
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			bad.add(line, err)
			if pe == nil || pe.Err != csv.ErrFieldCount {
				break // the reader cannot resync after a quoting error
			}
			continue
		}
		line, _ := cr.FieldPos(0) // only valid after a successful Read
		get := func(k string) string {
			if i, ok := col[k]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		in := Input{ID: get("id"), Class: get("class"), Name: get("name"), Zone: get("zone"), Forest: get("forest"),
			Installed: get("installed"), Interval: get("interval"), Firmware: get("firmware"), RTSPURL: get("rtsp_url")}
		var perr error
		num := func(k string) *float64 {
			s := get(k)
			if s == "" {
				return nil
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil && perr == nil {
				perr = fmt.Errorf("%s: %q is not a number", k, s)
			}
			return &v
		}
		in.Lat, in.Lon, in.PanDeg, in.HFOVDeg = num("lat"), num("lon"), num("pan_deg"), num("hfov_deg")
		if perr != nil {
			bad.add(line, perr)
			continue
		}
		d, err := in.Device(defInterval)
		if err == nil {
			err = ids.check(d.ID, line)
		}
		if err != nil {
			bad.add(line, err)
			continue
		}
		out = append(out, d)
	}
	if err := bad.err(); err != nil {
		return nil, err
	}
	return out, nil
}
