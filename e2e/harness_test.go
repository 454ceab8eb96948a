// Package e2e runs the real gateway binary against real InfluxDB and Mosquitto:
// the spine's no-loss guarantees are only worth what these tests show.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookoutfire/lookout/internal/proc"
	"github.com/lookoutfire/lookout/internal/testenv"
)

var gatewayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lookout-e2e-bin")
	if err != nil {
		panic(err)
	}
	gatewayBin = filepath.Join(dir, "gateway")
	cmd := exec.Command("go", "build", "-o", gatewayBin, "./gateway")
	cmd.Dir = testenv.ModuleRoot()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the gateway failed:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// gateway is a running gateway process.
type gateway struct {
	t        testing.TB
	cmd      *exec.Cmd
	env      []string
	log      *testenv.SyncBuffer
	HTTPAddr string
	MQTTAddr string // embedded broker, when used
}

// startGateway runs `gateway serve` with a fresh data dir, free ports, the given
// InfluxDB and (if mqttURL is non-empty) an external broker; otherwise the
// embedded broker on a free port. Auth is off (serve --insecure-dev): these tests are
// about the data path. Unknown devices auto-register so any id flows.
func startGateway(t testing.TB, influx *testenv.Influx, mqttURL string, extraEnv ...string) *gateway {
	t.Helper()
	g := &gateway{t: t, log: &testenv.SyncBuffer{},
		HTTPAddr: fmt.Sprintf("127.0.0.1:%d", testenv.RestartablePort(t))} // restarted on the same ports
	env := []string{
		"LOOKOUT_DATA_DIR=" + t.TempDir(),
		"LOOKOUT_HTTP_ADDR=" + g.HTTPAddr,
		"LOOKOUT_INFLUX_URL=" + influx.URL,
		"LOOKOUT_INFLUX_BUCKET=" + influx.Bucket,
		"LOOKOUT_UNKNOWN_DEVICES=register",
		"LOOKOUT_REGISTRY_SEED=",
		"LOOKOUT_MQTT_URL=" + mqttURL,
		"LOOKOUT_LOG_LEVEL=info",
	}
	if mqttURL == "" {
		g.MQTTAddr = fmt.Sprintf("127.0.0.1:%d", testenv.RestartablePort(t))
		env = append(env, "LOOKOUT_MQTT_EMBEDDED_ADDR="+g.MQTTAddr)
	}
	g.env = append(env, extraEnv...)
	g.start()
	t.Cleanup(func() {
		g.stop()
		if t.Failed() {
			out := g.log.String()
			if len(out) > 6000 {
				out = out[len(out)-6000:]
			}
			t.Logf("gateway log (tail):\n%s", out)
		}
	})
	return g
}

func (g *gateway) start() {
	g.t.Helper()
	cmd := exec.Command(gatewayBin, "serve", "--insecure-dev")
	cmd.Dir = testenv.ModuleRoot()
	cmd.Env = append(os.Environ(), g.env...)
	cmd.Stdout, cmd.Stderr = g.log, g.log
	if err := cmd.Start(); err != nil {
		g.t.Fatalf("start gateway: %v", err)
	}
	g.cmd = cmd
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + g.HTTPAddr + "/healthz"); err == nil {
			resp.Body.Close()
			if g.MQTTAddr != "" {
				testenv.WaitTCP(g.t, g.MQTTAddr, 10*time.Second)
			}
			return
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.t.Fatalf("gateway did not come up on %s\n%s", g.HTTPAddr, g.log.String())
}

func (g *gateway) stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	proc.Terminate(g.cmd, 15*time.Second)
	g.cmd = nil
}

// kill ends the gateway with SIGKILL: no shutdown code runs.
func (g *gateway) kill() {
	_ = g.cmd.Process.Kill()
	_ = g.cmd.Wait()
	g.cmd = nil
}

// getJSON fetches a gateway API path into v.
func (g *gateway) getJSON(path string, v any) error {
	resp, err := http.Get("http://" + g.HTTPAddr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(v) // /readyz answers 503 with a JSON body too
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return err
}

// reading is one generated message and the (measurement, field) it lands in.
type reading struct {
	topic   string
	payload []byte
}

// countFields names, per measurement, a field every generated point carries.
var countFields = map[string]string{
	"smoke_telemetry":   "battery_pct",
	"station_telemetry": "rh_pct",
	"elec_telemetry":    "residual_current_ma_1",
	"camera_heartbeat":  "uptime_s",
	"camera_detection":  "score",
}

// genReadings makes n valid readings spread over classes and 50 devices per class,
// each with a distinct (device, timestamp) so InfluxDB keeps every one as a point.
func genReadings(n int, base time.Time, tag string) []reading {
	out := make([]reading, 0, n)
	for i := 0; i < n; i++ {
		dev := i % 200
		ts := base.Add(time.Duration(i) * time.Millisecond).UnixMilli()
		var topic, body string
		switch dev % 4 {
		case 0:
			topic = fmt.Sprintf("fire/smoke/%s-sm-%03d/telemetry", tag, dev)
			body = fmt.Sprintf(`{"ts":%d,"alarm":false,"smoke_db_m":0.02,"temperature_c":%.1f,"battery_pct":%d,"rssi_dbm":-81,"tamper":false}`,
				ts, 18+float64(i%100)/10, 50+i%50)
		case 1:
			topic = fmt.Sprintf("fire/station/%s-st-%03d/telemetry", tag, dev)
			body = fmt.Sprintf(`{"ts":%d,"air_temp_c":%.1f,"rh_pct":%d,"wind_speed_ms":3.2,"wind_dir_deg":%d,"precip_mm":0}`,
				ts, 15+float64(i%150)/10, 20+i%70, i%360)
		case 2:
			topic = fmt.Sprintf("fire/elec/%s-el-%03d/telemetry", tag, dev)
			body = fmt.Sprintf(`{"ts":%d,"residual_current_ma":[%d,%d],"cable_temp_c":[31.5,32.0],"arc_fault":false,"alarm":false}`,
				ts, 100+i%80, 110+i%60)
		default:
			if i%2 == 0 {
				topic = fmt.Sprintf("fire/camera/%s-cam-%03d/heartbeat", tag, dev)
				body = fmt.Sprintf(`{"ts":%d,"uptime_s":%d,"fw":"2.1.0"}`, ts, 1000+i)
			} else {
				topic = fmt.Sprintf("fire/camera/%s-cam-%03d/detection", tag, dev)
				body = fmt.Sprintf(`{"ts":%d,"label":"smoke","score":0.2,"box":[0.40,0.30,0.45,0.36],"pan_deg":120,"tilt_deg":-2,"hfov_deg":60}`, ts)
			}
		}
		out = append(out, reading{topic: topic, payload: []byte(body)})
	}
	return out
}

// publish sends readings at QoS 1 with up to `window` unacknowledged at once,
// at most `rate` per second (0 = as fast as acks allow). It retries a publish
// whose token fails, so the test's own client loses nothing.
func publish(t testing.TB, brokerURL, clientID string, rs []reading, rate, window int) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(brokerURL).SetClientID(clientID).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetWriteTimeout(10 * time.Second).SetMaxResumePubInFlight(window)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect %s: %v", brokerURL, tok.Error())
	}
	defer c.Disconnect(500)
	sem := make(chan struct{}, window)
	var wg sync.WaitGroup
	var failMu sync.Mutex
	var failed []reading
	start := time.Now()
	for i, r := range rs {
		if rate > 0 {
			if due := start.Add(time.Duration(i) * time.Second / time.Duration(rate)); time.Until(due) > 0 {
				time.Sleep(time.Until(due))
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		tok := c.Publish(r.topic, 1, false, r.payload)
		go func(r reading) {
			defer wg.Done()
			defer func() { <-sem }()
			if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
				failMu.Lock()
				failed = append(failed, r)
				failMu.Unlock()
			}
		}(r)
	}
	wg.Wait()
	for attempt := 0; len(failed) > 0 && attempt < 20; attempt++ {
		retry := failed
		failed = nil
		for _, r := range retry {
			tok := c.Publish(r.topic, 1, false, r.payload)
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				failed = append(failed, r)
			}
		}
	}
	if len(failed) > 0 {
		t.Fatalf("publisher: %d readings never acknowledged by the broker", len(failed))
	}
}

// totalPoints sums the points of every generated measurement in InfluxDB.
func totalPoints(t testing.TB, in *testenv.Influx) int64 {
	var n int64
	for m, f := range countFields {
		n += in.Count(t, m, f)
	}
	return n
}

// waitPoints waits until InfluxDB holds want points, then checks it stays there.
func waitPoints(t testing.TB, in *testenv.Influx, want int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got int64
	for time.Now().Before(deadline) {
		if got = totalPoints(t, in); got >= want {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if got != want {
		t.Fatalf("InfluxDB holds %d points, want exactly %d", got, want)
	}
	time.Sleep(time.Second)
	if again := totalPoints(t, in); again != want {
		t.Fatalf("InfluxDB holds %d points a second later, want exactly %d", again, want)
	}
}

// metric returns the value of a Prometheus sample line prefix from /metrics, summed.
func (g *gateway) metric(t testing.TB, prefix string) float64 {
	resp, err := http.Get("http://" + g.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	var sum float64
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, prefix) {
			var v float64
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				fmt.Sscanf(line[i+1:], "%g", &v)
			}
			sum += v
		}
	}
	return sum
}
