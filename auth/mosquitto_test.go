package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/internal/testenv"
)

func mqttClient(t *testing.T, url, id, user, pass string, tc *tls.Config) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetConnectTimeout(3 * time.Second).SetAutoReconnect(false).SetProtocolVersion(4).SetTLSConfig(tc)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, context.DeadlineExceeded
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

// TestGeneratedFilesOnRealMosquitto: the password and ACL files written from
// the store make a real Mosquitto enforce the embedded broker's rules.
func TestGeneratedFilesOnRealMosquitto(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, clock.Real{})
	creds := map[string]string{}
	for _, a := range []struct {
		u string
		k MQTTKind
	}{{"smoke-a", MQTTDevice}, {"smoke-b", MQTTDevice}, {"ops", MQTTMonitor}, {"orphan", MQTTDevice}} {
		pw, err := st.IssueMQTT(ctx, a.u, a.k)
		if err != nil {
			t.Fatal(err)
		}
		creds[a.u] = pw
	}
	all, _ := st.ListMQTT(ctx)
	files := BuildMosquittoFiles(all, devMap{"smoke-a": "smoke", "smoke-b": "smoke"}, "fire")
	if len(files.Skipped) != 1 || files.Skipped[0] != "orphan" {
		t.Fatalf("skipped %v", files.Skipped)
	}
	pwf, aclf, err := WriteMosquittoFiles(t.TempDir(), files)
	if err != nil {
		t.Fatal(err)
	}
	// testenv sets max_queued_messages 0 (keep everything for consumers);
	// with it, Mosquitto 2.0.11 drops a client's connection right after
	// denying one of its QoS 0 publishes (reproduced with mosquitto_pub), which
	// would mask the silent drop this test is about. 1000 is Mosquitto's default.
	m := testenv.StartMosquitto(t, append(MosquittoAuthConf(pwf, aclf), "max_queued_messages 1000")...)

	if _, err := mqttClient(t, m.URL, "anon", "", "", nil); err == nil {
		t.Fatal("anonymous client accepted")
	}
	if _, err := mqttClient(t, m.URL, "smoke-a", "smoke-a", creds["smoke-b"], nil); err == nil {
		t.Fatal("wrong password accepted")
	}
	mon, err := mqttClient(t, m.URL, "ops-1", "ops", creds["ops"], nil)
	if err != nil {
		t.Fatalf("monitor: %v", err)
	}
	var mu sync.Mutex
	got := map[string]int{}
	arrived := make(chan struct{}, 10)
	if tok := mon.Subscribe("fire/#", 1, func(_ paho.Client, msg paho.Message) {
		mu.Lock()
		got[msg.Topic()]++
		mu.Unlock()
		arrived <- struct{}{}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	waitOwn := func() {
		t.Helper()
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("the device's own publish never arrived")
		}
	}
	a, err := mqttClient(t, m.URL, "smoke-a", "smoke-a", creds["smoke-a"], nil)
	if err != nil {
		t.Fatalf("device with its own credentials: %v", err)
	}
	// Forged publishes first (Mosquitto drops them silently for 3.1.1; QoS 1
	// is still PUBACKed), then the device's own: Mosquitto forwards one
	// client's messages in order, so once the own message arrives, a forged
	// one would already have.
	for _, topic := range []string{"fire/smoke/smoke-b/event", "fire/camera/smoke-a/event"} {
		for _, q := range []byte{0, 1} {
			if tok := a.Publish(topic, q, false, `{"forged":true}`); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
				t.Fatalf("forged publish q%d: %v", q, tok.Error())
			}
		}
	}
	if tok := a.Publish("fire/smoke/smoke-a/event", 1, false, `{}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	waitOwn()
	mu.Lock()
	if len(got) != 1 || got["fire/smoke/smoke-a/event"] != 1 {
		t.Fatalf("subscriber saw %v; forged publishes got through", got)
	}
	mu.Unlock()
	// A device that names the monitor's client id is still itself
	// (use_username_as_clientid): the monitor keeps its connection.
	if _, err := mqttClient(t, m.URL, "ops-1", "smoke-b", creds["smoke-b"], nil); err != nil {
		t.Fatalf("device with another client id: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if !mon.IsConnectionOpen() {
		t.Fatal("a device took over the monitor's session by naming its client id")
	}
}

// TestDevCertsTLSHandshake: the dev CA's server certificate satisfies a client
// that trusts only that CA, for the names it was made for, and a device
// client certificate chains to the CA with CN = device id.
func TestDevCertsTLSHandshake(t *testing.T) {
	dir := t.TempDir()
	f, err := WriteDevCerts(dir, []string{"127.0.0.1", "::1", "localhost"}, []string{"smoke-a"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(f.Key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode())
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(f.CA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert},
		ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cns := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil && len(tc.ConnectionState().VerifiedChains) > 0 {
				cns <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			} else {
				cns <- ""
			}
			c.Close()
		}
	}()
	dev := f.Devices["smoke-a"]
	devCert, err := tls.LoadX509KeyPair(dev[0], dev[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "localhost"} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name, Certificates: []tls.Certificate{devCert}})
		if err != nil {
			t.Fatalf("handshake as %s: %v", name, err)
		}
		c.Close()
		if cn := <-cns; cn != "smoke-a" {
			t.Fatalf("server saw client CN %q", cn)
		}
	}
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "evil.example"}); err == nil {
		c.Close()
		t.Fatal("certificate valid for a name it was not made for")
	}
	<-cns
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "localhost", RootCAs: x509.NewCertPool()}); err == nil {
		c.Close()
		t.Fatal("handshake succeeded without trusting the dev CA")
	}
}
