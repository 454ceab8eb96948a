package registry

import (
	"os"
	"testing"
	"time"
)

func addSeeds(f *testing.F, files ...string) {
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseYAML: any input either parses into valid devices or errors; never panics.
func FuzzParseYAML(f *testing.F) {
	addSeeds(f, "testdata/good.yaml", "testdata/bad.yaml", "../seeds/devices.yaml")
	f.Add([]byte("devices: [1, 2]"))
	f.Add([]byte("devices:\n  - {id: a, class: smoke, name: n, lat: .nan, lon: 1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		devs, err := ParseYAML(data, "f.yaml", time.Minute)
		checkParsed(t, devs, err)
	})
}

// FuzzParseCSV: as FuzzParseYAML for CSV.
func FuzzParseCSV(f *testing.F) {
	addSeeds(f, "testdata/good.csv", "testdata/bad.csv", "../seeds/devices.csv")
	f.Add([]byte("id,class,name,lat,lon\n\"a,smoke"))
	f.Fuzz(func(t *testing.T, data []byte) {
		devs, err := ParseCSV(data, "f.csv", time.Minute)
		checkParsed(t, devs, err)
	})
}

func checkParsed(t *testing.T, devs []Device, err error) {
	if err != nil {
		if devs != nil {
			t.Fatal("devices returned with an error")
		}
		return
	}
	ids := map[string]bool{}
	for _, d := range devs {
		lat, lon, s := d.Lat, d.Lon, d.Interval.Seconds()
		in := Input{ID: d.ID, Class: string(d.Class), Name: d.Name, Lat: &lat, Lon: &lon, IntervalS: &s,
			PanDeg: d.PanDeg, HFOVDeg: d.HFOVDeg, RTSPURL: d.RTSPURL}
		if _, err := in.Device(time.Minute); err != nil {
			t.Fatalf("parsed device fails validation: %v", err)
		}
		if ids[d.ID] {
			t.Fatalf("duplicate id %q accepted", d.ID)
		}
		ids[d.ID] = true
	}
}
