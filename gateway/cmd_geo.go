package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/lookoutfire/lookout/geo"
	"github.com/lookoutfire/lookout/ingest"
)

// cmdGeo is `gateway geo locate|triangulate`: batch checks against the same
// forests and zones code the gateway serves, for people preparing layers and
// for scripts tagging exported points.
func cmdGeo(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, "usage: gateway geo locate --forests F.geojson [--zones Z.geojson] [--masks M.geojson] [--crs wgs84|gcj02] < points.csv")
		fmt.Fprintln(stderr, "       gateway geo triangulate [--min-baseline 100] [--min-angle 10] < sightings.json")
	}
	if len(args) == 0 {
		usage()
		return fmt.Errorf("missing subcommand (locate or triangulate)")
	}
	switch args[0] {
	case "locate":
		return cmdGeoLocate(args[1:], stdin, stdout, stderr)
	case "triangulate":
		return cmdGeoTriangulate(args[1:], stdin, stdout, stderr)
	case "-h", "--help", "help":
		usage()
		return flag.ErrHelp
	}
	usage()
	return fmt.Errorf("unknown subcommand %q (want locate or triangulate)", args[0])
}

func cmdGeoLocate(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("geo locate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := geo.DefaultConfig()
	forests := fs.String("forests", "", "forest layer (GeoJSON FeatureCollection)")
	zones := fs.String("zones", "", "responsibility zone layer (optional)")
	masks := fs.String("masks", "", "static heat source mask layer (optional)")
	crs := fs.String("crs", geo.CRSWGS84, "coordinate system of the layer files: wgs84 or gcj02 (the CSV points are always WGS84)")
	idProp := fs.String("id-property", "id", "feature property holding the id (falls back to the feature id)")
	radius := fs.Float64("radius", def.SearchRadiusM, "nearest-forest search radius in metres")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gateway geo locate --forests F.geojson [--zones Z.geojson] < points.csv > tagged.csv")
		fmt.Fprintln(stderr, "  the CSV header needs lat,lon (or latitude,longitude); appends forest_id, zone_path (innermost first,")
		fmt.Fprintln(stderr, "  ';'-separated) and forest_distance_m (0 inside, empty when no forest within --radius)")
		fs.PrintDefaults()
	}
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *forests == "" && *zones == "" {
		fs.Usage()
		return fmt.Errorf("--forests or --zones is required")
	}
	cfg := def
	cfg.SearchRadiusM = *radius
	if cfg.NearForestM > cfg.SearchRadiusM {
		cfg.NearForestM = cfg.SearchRadiusM
	}
	cfg.Forests = geo.LayerFile{Path: *forests, CRS: *crs, IDProperty: *idProp}
	cfg.Zones = geo.LayerFile{Path: *zones, CRS: *crs, IDProperty: *idProp}
	cfg.Masks = geo.LayerFile{Path: *masks, CRS: *crs, IDProperty: *idProp}
	layers, err := geo.NewLayers(cfg)
	if err != nil {
		return err
	}
	return geo.LocateCSV(layers.Current(), stdin, stdout)
}

func cmdGeoTriangulate(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("geo triangulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := geo.DefaultConfig()
	base := fs.Float64("min-baseline", def.MinBaselineM, "refuse when no two cameras stand this many metres apart")
	angle := fs.Float64("min-angle", def.MinCrossingDeg, "refuse when no two rays cross at this many degrees or more")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: gateway geo triangulate < sightings.json   ([{"lat":..,"lon":..,"bearing_deg":..}, ...])`)
		fmt.Fprintln(stderr, `  prints {"lat","lon","error_m"} or says why no fix exists`)
		fs.PrintDefaults()
	}
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	return geo.TriangulateJSON(stdin, stdout, *base, *angle)
}

// geoTagger adapts geo's layers to ingest.Tagger: every stored reading gets the
// innermost zone and the forest of its device's position. A zone the registry
// assigned to the device explicitly is kept; geo fills it in when empty.
type geoTagger struct{ layers *geo.Layers }

// Tag implements ingest.Tagger.
func (g geoTagger) Tag(r *ingest.Reading) {
	zone, forest := g.layers.TagPoint(r.Lat, r.Lon)
	if r.Zone == "" {
		r.Zone = zone
	}
	if forest != "" {
		r.Forest = forest
	}
}

// parseFlagsOnly parses args into fs and refuses positional arguments (the
// batch commands read their input from stdin).
func parseFlagsOnly(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	return nil
}
