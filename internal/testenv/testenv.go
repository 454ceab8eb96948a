// Package testenv starts the real components that integration tests run
// against — influxd 1.8 and Mosquitto — on loopback, on free ports, in temp
// directories, and stops them when the test ends. A missing binary fails the
// test (CI installs them; see .ci/run): integration tests never skip silently.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/internal/proc"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := proc.FreePort()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return port
}

// RestartablePort returns a loopback port outside the kernel's ephemeral
// range, for servers that a test stops and restarts (see proc.RestartablePort).
func RestartablePort(t testing.TB) int {
	t.Helper()
	port, err := proc.RestartablePort()
	if err != nil {
		t.Fatalf("restartable port: %v", err)
	}
	return port
}

// ModuleRoot is the repository root (the folder holding go.mod).
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// LookBinary finds a program on PATH, in the repo's ./bin, or in GOPATH/bin.
func LookBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	cands := []string{filepath.Join(ModuleRoot(), "bin", name)}
	if gp := os.Getenv("GOPATH"); gp != "" {
		cands = append(cands, filepath.Join(gp, "bin", name))
	}
	if home, err := os.UserHomeDir(); err == nil {
		cands = append(cands, filepath.Join(home, "go", "bin", name))
	}
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH, in ./bin or GOPATH/bin (run .ci/run or `make deps`)", name)
}

// Process is a child server started for a test.
type Process struct {
	Cmd  *exec.Cmd
	Addr string // host:port it serves on
	Dir  string // its scratch directory
	Log  *bytes.Buffer
	args []string
	t    testing.TB
}

// Stop terminates the process (SIGTERM, then SIGKILL after 5 s) and waits.
func (p *Process) Stop() {
	if p.Cmd == nil || p.Cmd.Process == nil || p.Cmd.ProcessState != nil {
		return
	}
	proc.Terminate(p.Cmd, 5*time.Second)
}

// Kill ends the process with SIGKILL and waits.
func (p *Process) Kill() {
	if p.Cmd == nil || p.Cmd.Process == nil || p.Cmd.ProcessState != nil {
		return
	}
	_ = p.Cmd.Process.Kill()
	_ = p.Cmd.Wait()
}

// Restart starts the same command again (same dir, same port).
func (p *Process) Restart() {
	p.t.Helper()
	p.Stop()
	cmd := exec.Command(p.Cmd.Path, p.args...)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = p.Log, p.Log
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("restart %s: %v", p.Cmd.Path, err)
	}
	p.Cmd = cmd
}

func start(t testing.TB, bin string, dir string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &Process{Cmd: cmd, Dir: dir, Log: log, args: args, t: t}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			out := log.String()
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			t.Logf("%s output (tail):\n%s", filepath.Base(bin), out)
		}
	})
	return p
}

// Influx is a running influxd 1.8 with Flux and the v2 write/query API enabled.
type Influx struct {
	*Process
	URL    string // http://127.0.0.1:port
	Bucket string // "lookout/autogen"
	DB     string // "lookout"
}

// StartInflux starts influxd 1.8.10 on a free loopback port with the database
// "lookout" created, and waits until it answers.
func StartInflux(t testing.TB) *Influx {
	t.Helper()
	bin, err := LookBinary("influxd")
	if err != nil {
		t.Fatalf("influxd: %v", err)
	}
	dir := t.TempDir()
	// Outage tests stop influxd and Restart it on the same port.
	httpPort := RestartablePort(t)
	// The RPC mux (backup/restore, unused here) takes a port of the kernel's
	// choosing at bind time: only the HTTP port is picked in advance.
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:0"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
  trace-logging-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:%d"
  flux-enabled = true
  log-enabled = false
  max-body-size = 0
[logging]
  level = "warn"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
`, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpPort)
	cfg := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, bin, dir, "-config", cfg)
	in := &Influx{Process: p, URL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), Bucket: "lookout/autogen", DB: "lookout"}
	p.Addr = fmt.Sprintf("127.0.0.1:%d", httpPort)
	in.WaitReady(t)
	in.Query(t, "CREATE DATABASE lookout")
	return in
}

// WaitReady waits up to 90 s for /ping to answer (influxd starts slowly on a loaded 2-core machine).
func (in *Influx) WaitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(in.URL + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("influxd did not become ready at %s", in.URL)
}

// Query runs an InfluxQL statement through the 1.x /query endpoint and returns the raw JSON.
func (in *Influx) Query(t testing.TB, q string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, in.URL+"/query?db="+in.DB+"&q="+urlQuery(q), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("influx query %q: %v", q, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("influx query %q: %s: %s", q, resp.Status, b.String())
	}
	return b.String()
}

// Count returns SELECT COUNT(field) FROM measurement, or 0 when it has no points.
func (in *Influx) Count(t testing.TB, measurement, field string) int64 {
	t.Helper()
	out := in.Query(t, fmt.Sprintf(`SELECT COUNT(%q) FROM %q`, field, measurement))
	// {"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","count"],"values":[["1970-01-01T00:00:00Z",123]]}]}]}
	i := strings.LastIndex(out, `",`)
	if !strings.Contains(out, `"values"`) || i < 0 {
		return 0
	}
	var n int64
	fmt.Sscanf(out[i+2:], "%d", &n)
	return n
}

func urlQuery(q string) string {
	var b strings.Builder
	for _, c := range []byte(q) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Mosquitto is a running mosquitto broker.
type Mosquitto struct {
	*Process
	URL  string // tcp://127.0.0.1:port
	Port int
}

// StartMosquitto starts mosquitto on a free loopback port with anonymous access
// (unless extra config lines say otherwise) and a large queue so persistent
// sessions keep every message while the consumer is away.
func StartMosquitto(t testing.TB, extraConf ...string) *Mosquitto {
	t.Helper()
	bin, err := LookBinary("mosquitto")
	if err != nil {
		if _, e := os.Stat("/usr/sbin/mosquitto"); e == nil {
			bin = "/usr/sbin/mosquitto"
		} else {
			t.Fatalf("mosquitto: %v", err)
		}
	}
	dir := t.TempDir()
	port := RestartablePort(t) // broker-outage tests restart it on the same port
	conf := fmt.Sprintf(`listener %d 127.0.0.1
user root
persistence true
persistence_location %s/
autosave_interval 1
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 0
log_dest stderr
log_type error
log_type warning
`, port, dir)
	hasAuth := false
	for _, l := range extraConf {
		conf += l + "\n"
		if strings.HasPrefix(strings.TrimSpace(l), "password_file") || strings.HasPrefix(strings.TrimSpace(l), "allow_anonymous") {
			hasAuth = true
		}
	}
	if !hasAuth {
		conf += "allow_anonymous true\n"
	}
	cfg := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, bin, dir, "-c", cfg)
	p.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	m := &Mosquitto{Process: p, URL: "tcp://" + p.Addr, Port: port}
	WaitTCP(t, p.Addr, 10*time.Second)
	return m
}

// MQTTClient connects a plain MQTT client (no reconnects, no retries) to the
// broker at addr (host:port) with clientID, failing the test when it cannot;
// it is disconnected when the test ends.
func MQTTClient(t testing.TB, addr, clientID string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).
		SetAutoReconnect(false).SetConnectRetry(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect %s as %s: %v", addr, clientID, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// WaitTCP waits until addr accepts TCP connections.
func WaitTCP(t testing.TB, addr string, d time.Duration) {
	t.Helper()
	if err := proc.WaitTCP(addr, d); err != nil {
		t.Fatalf("%v after %s", err, d)
	}
}

// CounterValue is the value of the label-less counter name gathered from g,
// 0 when g has no such counter.
func CounterValue(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
