package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/internal/testenv"
)

// TestTLSListenerWithDevCerts: MQTT over TLS with the dev CA; a device whose
// client certificate (CN = its id) chains to the CA connects without a
// password, a client without certificate or password is refused, and the
// packet guard runs behind TLS too.
func TestTLSListenerWithDevCerts(t *testing.T) {
	e := startAuthBroker(t) // store, auth, plain listener
	f, err := auth.WriteDevCerts(t.TempDir(), []string{"127.0.0.1", "::1", "localhost"}, []string{"smoke-a"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(f.CA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	b, err := New(Options{TLSAddr: addr, TLSConfig: &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: pool,
		ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}, Prefix: "fire",
		Hooks: []mqtt.Hook{NewAuthHook(e.ma)}, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, func(context.Context, string, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	devCert, err := tls.LoadX509KeyPair(f.Devices["smoke-a"][0], f.Devices["smoke-a"][1])
	if err != nil {
		t.Fatal(err)
	}
	connect := func(id, user, pass string, certs []tls.Certificate) error {
		o := paho.NewClientOptions().AddBroker("ssl://" + addr).SetClientID(id).SetUsername(user).SetPassword(pass).
			SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: certs}).
			SetConnectTimeout(3 * time.Second).SetAutoReconnect(false).SetProtocolVersion(4)
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			return tok.Error()
		}
		c.Disconnect(50)
		return nil
	}
	if err := connect("smoke-a", "", "", []tls.Certificate{devCert}); err != nil {
		t.Fatalf("device certificate login: %v", err)
	}
	if err := connect("smoke-b", "smoke-b", e.creds["smoke-b"], nil); err != nil {
		t.Fatalf("password login over TLS: %v", err)
	}
	if err := connect("smoke-b", "smoke-b", "", []tls.Certificate{devCert}); err == nil {
		t.Fatal("certificate for smoke-a accepted as smoke-b")
	}
	if err := connect("anon", "", "", nil); err == nil {
		t.Fatal("anonymous TLS client accepted")
	}
	if e.refusals(auth.ReasonCertMismatch) != 1 {
		t.Fatalf("cert_mismatch refusals = %v", e.refusals(auth.ReasonCertMismatch))
	}
}
