package alerting

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/lookoutfire/lookout/errs"
)

// ErrBadCSV marks FWI batch input that cannot be read (missing columns, bad numbers).
var ErrBadCSV = fmt.Errorf("fwi csv %w", errs.ErrInvalid)

// FWICSVOptions tunes FWICSV.
type FWICSVOptions struct {
	Lat         float64   // latitude used when the input has no LAT column
	Start       Codes     // start-up codes for the first row (StartupCodes when zero)
	Breakpoints []float64 // FWI level breakpoints (DefaultConfig's when nil)
}

// FWICSV runs the FWI System over consecutive daily rows of one station, the batch
// form of the cffdrs fwi() call. The header must name at least MON, TEMP, RH, WS
// and PREC (any case); a LAT column overrides opts.Lat per row. WS is km/h, the
// cffdrs convention (stations report m/s: multiply by 3.6 first). The delimiter is
// ',' unless the header holds ';' and no ','. Each input row is written back with
// FFMC,DMC,DC,ISI,BUI,FWI,DSR,LEVEL appended, comma-separated.
func FWICSV(in io.Reader, out io.Writer, opts FWICSVOptions) error {
	if opts.Start == (Codes{}) {
		opts.Start = StartupCodes
	}
	if opts.Breakpoints == nil {
		opts.Breakpoints = DefaultConfig().FireDanger.Breakpoints
	}
	br := newPeekReader(in)
	r := csv.NewReader(br)
	r.Comma = br.comma
	r.FieldsPerRecord = 0
	r.TrimLeadingSpace = true
	w := csv.NewWriter(out)
	header, err := r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: empty input", ErrBadCSV)
		}
		return fmt.Errorf("%w: header: %v", ErrBadCSV, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToUpper(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := col[h]; !dup {
			col[h] = i
		}
	}
	for _, need := range []string{"MON", "TEMP", "RH", "WS", "PREC"} {
		if _, ok := col[need]; !ok {
			return fmt.Errorf("%w: header lacks %s", ErrBadCSV, need)
		}
	}
	latCol, hasLat := col["LAT"]
	if err := w.Write(append(append([]string{}, header...), "FFMC", "DMC", "DC", "ISI", "BUI", "FWI", "DSR", "LEVEL")); err != nil {
		return fmt.Errorf("fwi csv: write: %w", err)
	}
	prev := opts.Start
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: line %d: %v", ErrBadCSV, line, err)
		}
		num := func(name string) (float64, error) {
			i := col[name]
			if i >= len(rec) {
				return 0, fmt.Errorf("%w: line %d: missing %s", ErrBadCSV, line, name)
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(rec[i]), 64)
			if err != nil {
				return 0, fmt.Errorf("%w: line %d: %s: %v", ErrBadCSV, line, name, err)
			}
			return v, nil
		}
		var wx Weather
		wx.Lat = opts.Lat
		mon, err := num("MON")
		if err != nil {
			return err
		}
		if mon != float64(int(mon)) {
			return fmt.Errorf("%w: line %d: MON %v is not a whole month", ErrBadCSV, line, mon)
		}
		wx.Month = int(mon)
		if wx.Temp, err = num("TEMP"); err != nil {
			return err
		}
		if wx.RH, err = num("RH"); err != nil {
			return err
		}
		if wx.Wind, err = num("WS"); err != nil {
			return err
		}
		if wx.Rain, err = num("PREC"); err != nil {
			return err
		}
		if hasLat && latCol < len(rec) && strings.TrimSpace(rec[latCol]) != "" {
			if wx.Lat, err = num("LAT"); err != nil {
				return err
			}
		}
		ix, err := Step(prev, wx)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		prev = ix.Codes
		f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
		row := append(append([]string{}, rec...), f(ix.FFMC), f(ix.DMC), f(ix.DC), f(ix.ISI), f(ix.BUI),
			f(ix.FWI), f(ix.DSR), strconv.Itoa(int(LevelFor(ix.FWI, opts.Breakpoints))))
		if err := w.Write(row); err != nil {
			return fmt.Errorf("fwi csv: write: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("fwi csv: write: %w", err)
	}
	return nil
}

// peekReader sniffs the delimiter from the first line without losing it.
type peekReader struct {
	buf   []byte
	r     io.Reader
	comma rune
}

func newPeekReader(r io.Reader) *peekReader {
	p := &peekReader{r: r, comma: ','}
	b := make([]byte, 0, 512)
	tmp := make([]byte, 512)
	for len(b) < 4096 {
		n, err := r.Read(tmp)
		b = append(b, tmp[:n]...)
		if strings.ContainsRune(string(b), '\n') || err != nil {
			break
		}
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if strings.Contains(first, ";") && !strings.Contains(first, ",") {
		p.comma = ';'
	}
	p.buf = b
	return p
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.r.Read(b)
}
