package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/lookoutfire/lookout/config"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// loadConfig parses the flags every config-reading subcommand shares and loads
// the configuration: defaults → file → LOOKOUT_* env → flags, then validates.
func loadConfig(fs *flag.FlagSet, args []string, stderr io.Writer) (config.Config, error) {
	path := fs.String("config", "", "config file (default $LOOKOUT_CONFIG or ./lookout.yaml)")
	var sets stringList
	fs.Var(&sets, "set", "set any config key, e.g. --set influx.batch_size=2000 (repeatable)")
	httpAddr := fs.String("http-addr", "", "shorthand for --set http.addr=…")
	dataDir := fs.String("data-dir", "", "shorthand for --set data_dir=…")
	mqttURL := fs.String("mqtt-url", "", "shorthand for --set mqtt.url=… (external broker)")
	insecureDev := fs.Bool("insecure-dev", false, "turn ALL authentication off (HTTP routes open, MQTT accepts anyone); local experiments only; = --set auth.insecure_dev=true")
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	explicit := true
	if *path == "" {
		*path = os.Getenv("LOOKOUT_CONFIG")
	}
	if *path == "" {
		*path, explicit = "lookout.yaml", false
	}
	for k, v := range map[string]string{"http.addr": *httpAddr, "data_dir": *dataDir, "mqtt.url": *mqttURL} {
		if v != "" {
			sets = append(sets, k+"="+v)
		}
	}
	if *insecureDev {
		sets = append(sets, "auth.insecure_dev=true")
	}
	return config.Load(*path, explicit, os.Environ(), sets)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// cmdServe runs the gateway until SIGINT/SIGTERM.
func cmdServe(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg, err := loadConfig(fs, args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	app, err := NewApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()
	return app.Run(ctx)
}

// cmdConfigKeys prints every key with its environment variable(s).
func cmdConfigKeys(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, k := range config.Keys() {
		fmt.Fprintln(stdout, k)
	}
	return nil
}
