package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/registry"
)

// TestHTTPSWithDevCerts: `gateway dev-certs` output serves HTTPS through the
// App's own listener, verified by a client that trusts only the dev CA.
func TestHTTPSWithDevCerts(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := cmdDevCerts(context.Background(), []string{"--out", dir, "--devices", "smoke-a"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	a := &App{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var bound net.Addr
	srv, err := a.listen("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }),
		filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), &bound)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pem, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := cl.Get("https://" + bound.String() + "/")
	if err != nil {
		t.Fatalf("https with dev CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get("https://" + bound.String() + "/"); err == nil {
		t.Fatal("a client without the dev CA trusted the certificate")
	}
}

// A certificate that does not load stops the start with an error naming it,
// instead of leaving a bound port that never answers.
func TestHTTPSBadCertRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &App{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, cert := range []string{filepath.Join(dir, "missing.pem"), notPEM} {
		var bound net.Addr
		srv, err := a.listen("127.0.0.1:0", http.NotFoundHandler(), cert, cert, &bound)
		if err == nil {
			srv.Close()
			t.Fatalf("listen with %s: no error", cert)
		}
		if !strings.Contains(err.Error(), "tls") || bound != nil {
			t.Errorf("listen with %s: %v (bound %v), want a tls error and no listener", cert, err, bound)
		}
	}
}

// TestMosquittoConfigCommand: accounts and registry → password + ACL files.
func TestMosquittoConfigCommand(t *testing.T) {
	a := testApp(t)
	ctx := context.Background()
	if err := a.devices.Create(ctx, registry.Device{ID: "smoke-a", Class: "smoke", Name: "s", Lat: 45, Lon: 8}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.sec.store.IssueMQTT(ctx, "smoke-a", auth.MQTTDevice); err != nil {
		t.Fatal(err)
	}
	dataDir := a.cfg.DataDir
	a.Close()
	outDir := t.TempDir()
	var out bytes.Buffer
	if err := cmdMosquittoConfig(ctx, []string{"--data-dir", dataDir, "--out", outDir, "--gateway-user", "lookout-gw"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	pw, _ := os.ReadFile(filepath.Join(outDir, "passwd"))
	acl, _ := os.ReadFile(filepath.Join(outDir, "acl"))
	if !strings.Contains(string(pw), "smoke-a:$7$") || !strings.Contains(string(pw), "lookout-gw:$7$") {
		t.Fatalf("passwd:\n%s", pw)
	}
	for _, want := range []string{"user smoke-a\ntopic write fire/smoke/smoke-a/#\ntopic read fire/cmd/smoke-a\n", "user lookout-gw\ntopic readwrite fire/#"} {
		if !strings.Contains(string(acl), want) {
			t.Fatalf("acl lacks %q:\n%s", want, acl)
		}
	}
	if !strings.Contains(out.String(), "password (shown once)") {
		t.Fatalf("output: %s", out.String())
	}
}
