package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/events"
	"github.com/lookoutfire/lookout/registry"
	"github.com/lookoutfire/lookout/store"
	"github.com/lookoutfire/lookout/web"
)

// cmdMosquittoConfig writes a Mosquitto password file and ACL file from the
// gateway's MQTT accounts and device registry, so an external Mosquitto
// enforces the same rules as the embedded broker.
func cmdMosquittoConfig(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mosquitto-config", flag.ContinueOnError)
	out := fs.String("out", "", "directory for passwd, acl and mosquitto-auth.conf (required)")
	gwUser := fs.String("gateway-user", "", "also issue (or rotate) this gateway account and print its password once")
	cfg, err := loadConfig(fs, args, stderr)
	if err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	db, err := store.Open(filepath.Join(cfg.DataDir, "lookout.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	log := newLogger(stderr, "warn")
	reg, err := registry.Open(ctx, db, cfg.Registry, clock.Real{}, events.Discard{}, prometheus.NewRegistry(), log)
	if err != nil {
		return err
	}
	st, err := auth.OpenStore(ctx, db, cfg.Auth, clock.Real{})
	if err != nil {
		return err
	}
	if *gwUser != "" {
		pw, err := st.IssueMQTT(ctx, *gwUser, auth.MQTTGateway)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "gateway account %s password (shown once): %s\n", *gwUser, pw)
	}
	creds, err := st.ListMQTT(ctx)
	if err != nil {
		return err
	}
	files := auth.BuildMosquittoFiles(creds, registryLookup{reg}, cfg.Ingest.TopicPrefix)
	pw, acl, err := auth.WriteMosquittoFiles(*out, files)
	if err != nil {
		return err
	}
	conf := filepath.Join(*out, "mosquitto-auth.conf")
	snippet := "# include in mosquitto.conf (per listener with per_listener_settings true)\n" +
		strings.Join(auth.MosquittoAuthConf(pw, acl), "\n") + "\n"
	if err := auth.WriteFileAtomic(conf, []byte(snippet), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d accounts), %s and %s\n", pw, len(creds)-len(files.Skipped), acl, conf)
	if len(files.Skipped) > 0 {
		fmt.Fprintf(stdout, "skipped device accounts not in the registry: %s\n", strings.Join(files.Skipped, ", "))
	}
	return nil
}

// cmdDevCerts makes a local CA, a server certificate and optional device
// client certificates for TLS in tests and `make run`.
func cmdDevCerts(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev-certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "output directory (required)")
	hosts := fs.String("hosts", "127.0.0.1,::1,localhost", "server certificate SANs, comma-separated")
	devices := fs.String("devices", "", "device ids to issue client certificates for (CN = id), comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	f, err := auth.WriteDevCerts(*out, web.SplitList(*hosts), web.SplitList(*devices), time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "CA %s\nserver certificate %s (key %s)\n", f.CA, f.Cert, f.Key)
	for id, p := range f.Devices {
		fmt.Fprintf(stdout, "device %s: %s (key %s)\n", id, p[0], p[1])
	}
	fmt.Fprintf(stdout, "use: --set http.tls_cert=%s --set http.tls_key=%s --set mqtt.tls_cert=%s --set mqtt.tls_key=%s --set mqtt.tls_ca=%s --set mqtt.embedded_tls_addr=127.0.0.1:8883\n",
		f.Cert, f.Key, f.Cert, f.Key, f.CA)
	return nil
}
