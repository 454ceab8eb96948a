package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/lookoutfire/lookout/alerting"
)

// cmdFWI is `gateway fwi [--lat 40]`: the Canadian FWI System over a CSV of
// consecutive daily noon observations of one station (stdin → stdout), for batch
// checks against published tables. WS is km/h, the cffdrs convention (station
// readings carry m/s: multiply by 3.6).
func cmdFWI(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fwi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := alerting.DefaultConfig().FireDanger
	lat := fs.Float64("lat", def.DefaultLat, "latitude (degrees north) when the CSV has no LAT column")
	ffmc := fs.Float64("ffmc", alerting.StartupCodes.FFMC, "start-up FFMC of the first day")
	dmc := fs.Float64("dmc", alerting.StartupCodes.DMC, "start-up DMC")
	dc := fs.Float64("dc", alerting.StartupCodes.DC, "start-up DC")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gateway fwi [--lat 40] < daily.csv > out.csv")
		fmt.Fprintln(stderr, "  header needs MON,TEMP,RH,WS,PREC (any case; optional LAT per row); WS in km/h, PREC = 24 h rain in mm")
		fmt.Fprintln(stderr, "  appends FFMC,DMC,DC,ISI,BUI,FWI,DSR,LEVEL (China's five levels, default breakpoints 5/10/20/30)")
		fs.PrintDefaults()
	}
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *lat < -90 || *lat > 90 {
		return fmt.Errorf("--lat %v: must be in -90..90", *lat)
	}
	return alerting.FWICSV(stdin, stdout, alerting.FWICSVOptions{Lat: *lat,
		Start: alerting.Codes{FFMC: *ffmc, DMC: *dmc, DC: *dc}, Breakpoints: def.Breakpoints})
}
