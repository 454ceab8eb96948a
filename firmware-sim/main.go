// Command firmware-sim plays the field devices of a registry file (by default
// the demo county in seeds/devices.yaml) against an MQTT broker: realistic
// telemetry, heartbeats, events and camera detections per class, with faults
// on demand (devices going silent, low battery, tamper, malformed payloads,
// periodic smoke alarms), live camera video over WHIP (--video), and a --load mode that measures how fast the broker
// and gateway take QoS 1 readings.
//
//	go run ./firmware-sim --broker tcp://127.0.0.1:1883 --speed 10 --offline 2 --malformed-rate 0.01
//	go run ./firmware-sim --load 100000
//	go run ./firmware-sim --credentials var/lookout/sim-credentials.yaml --video --camera-tokens var/lookout/sim-camera-tokens.yaml
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lookoutfire/lookout/registry"
)

// options are the command-line flags.
type options struct {
	devices     string
	broker      string
	prefix      string
	username    string
	password    string
	credentials string
	sharedConn  bool
	duration    time.Duration
	speed       float64
	seed        uint64

	smokeEvery   time.Duration
	stationEvery time.Duration
	elecEvery    time.Duration
	detectEvery  time.Duration
	alarmProb    float64

	offline       int
	offlineAfter  time.Duration
	lowBattery    bool
	tamper        bool
	malformedRate float64
	alarmEvery    time.Duration
	maxPayload    int

	load     int
	loadConn int
	inflight int

	connectTimeout time.Duration
	statsEvery     time.Duration

	video        bool
	whipURL      string
	cameraTokens string
	videoFile    string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("firmware-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.devices, "devices", "seeds/devices.yaml", "registry file (YAML or CSV) listing the devices to simulate")
	fs.StringVar(&o.broker, "broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	fs.StringVar(&o.prefix, "prefix", "fire", "topic prefix (first level)")
	fs.StringVar(&o.username, "username", "", "MQTT username for every connection (default: none)")
	fs.StringVar(&o.password, "password", "", "MQTT password for every connection")
	fs.StringVar(&o.credentials, "credentials", "", "YAML/JSON file mapping device id → password; each device logs in as its id")
	fs.BoolVar(&o.sharedConn, "shared-conn", false, "publish every device over one connection (default: one connection per device)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0 = until Ctrl-C)")
	fs.Float64Var(&o.speed, "speed", 1, "time-lapse factor: every interval is divided by it")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed (same seed, same fleet)")
	fs.DurationVar(&o.smokeEvery, "smoke-every", 5*time.Minute, "smoke alarm telemetry period")
	fs.DurationVar(&o.stationEvery, "station-every", time.Minute, "fire-risk station telemetry period")
	fs.DurationVar(&o.elecEvery, "elec-every", 30*time.Second, "electrical monitor telemetry period")
	fs.DurationVar(&o.detectEvery, "detect-every", 10*time.Minute, "mean time between detections per camera (0 = none)")
	fs.Float64Var(&o.alarmProb, "alarm-prob", 0.002, "chance per telemetry that a smoke alarm or residual-current excursion starts")
	fs.IntVar(&o.offline, "offline", 0, "number of devices that go silent after --offline-after")
	fs.DurationVar(&o.offlineAfter, "offline-after", time.Minute, "when the --offline devices go silent (scaled by --speed)")
	fs.BoolVar(&o.lowBattery, "low-battery", false, "a quarter of battery devices report a nearly empty battery")
	fs.BoolVar(&o.tamper, "tamper", false, "one smoke alarm reports being removed from its base")
	fs.Float64Var(&o.malformedRate, "malformed-rate", 0, "share of messages replaced by deliberately bad ones (0..1)")
	fs.DurationVar(&o.alarmEvery, "alarm-every", 0, "set off a smoke alarm (round robin) this often, for demos (0 = off)")
	fs.IntVar(&o.maxPayload, "max-payload", 256<<10, "gateway payload limit the too_large malformed variant exceeds")
	fs.IntVar(&o.load, "load", 0, "publish N valid readings as fast as the broker takes them, print the rate, exit")
	fs.IntVar(&o.loadConn, "load-conns", 4, "connections used by --load")
	fs.IntVar(&o.inflight, "inflight", 256, "unacknowledged QoS 1 messages allowed per connection in --load")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", 30*time.Second, "how long to keep trying to reach the broker at start")
	fs.DurationVar(&o.statsEvery, "stats-every", 10*time.Second, "how often to log counters (0 = never)")
	fs.BoolVar(&o.video, "video", false, "every camera also streams --video-file in a loop to the gateway over WHIP")
	fs.StringVar(&o.whipURL, "whip-url", "http://127.0.0.1:8080/api/v1/streams/{camera}/whip", "WHIP endpoint; {camera} is the device id")
	fs.StringVar(&o.cameraTokens, "camera-tokens", "", "YAML file mapping camera id → WHIP camera token (the gateway writes sim-camera-tokens.yaml)")
	fs.StringVar(&o.videoFile, "video-file", "video/testdata/testsrc-720p30.h264", "H.264 Annex-B clip the cameras stream")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.speed <= 0:
		return o, errors.New("--speed must be > 0")
	case o.malformedRate < 0 || o.malformedRate > 1:
		return o, errors.New("--malformed-rate must be within 0..1")
	case o.offline < 0 || o.load < 0:
		return o, errors.New("--offline and --load must be >= 0")
	case o.loadConn < 1 || o.inflight < 1:
		return o, errors.New("--load-conns and --inflight must be >= 1")
	case o.alarmProb < 0 || o.alarmProb > 1:
		return o, errors.New("--alarm-prob must be within 0..1")
	case o.username == "" && o.password != "":
		return o, errors.New("--password needs --username")
	case o.credentials != "" && o.username != "":
		return o, errors.New("--credentials and --username exclude each other")
	}
	return o, nil
}

// loadCredentials reads a device id → password map (YAML or JSON object).
func loadCredentials(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	var m map[string]string
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("credentials %s: want a map of device id to password: %w", path, err)
	}
	return m, nil
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "firmware-sim:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	if err := run(ctx, o, log, os.Stdout); err != nil {
		log.Error("firmware-sim failed", "err", err)
		os.Exit(1)
	}
}

// run loads the devices and runs the simulation or the load test.
func run(ctx context.Context, o options, log *slog.Logger, out io.Writer) error {
	devs, err := registry.ReadFile(o.devices, 5*time.Minute)
	if err != nil {
		return err
	}
	if len(devs) == 0 {
		return fmt.Errorf("%s lists no devices", o.devices)
	}
	var creds map[string]string
	if o.credentials != "" {
		if creds, err = loadCredentials(o.credentials); err != nil {
			return err
		}
	}
	if o.load > 0 {
		res, err := runLoad(ctx, o, devs, creds)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, res)
		return nil
	}
	return simulate(ctx, o, devs, creds, log)
}
