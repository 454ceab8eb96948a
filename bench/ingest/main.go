// Command ingest-bench measures how fast Lookout drains a backlog of readings
// queued in Mosquitto for its persistent session into InfluxDB, against two
// baselines run in the same process on the same backlog: Telegraf
// (mqtt_consumer → influxdb_v2) and a bare paho subscriber that only counts.
//
// It publishes N readings once, with three persistent sessions already
// subscribed (so Mosquitto queues a copy for each), then lets each consumer
// drain its copy alone and times it until InfluxDB holds all N points (or, for
// the bare subscriber, until it has received N messages).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookoutfire/lookout/internal/proc"
)

func main() {
	n := flag.Int("n", 400000, "readings to queue and drain")
	bin := flag.String("bin", "bin", "folder with gateway, influxd and telegraf binaries")
	work := flag.String("work", "var/bench-ingest", "scratch folder (wiped)")
	skipTelegraf := flag.Bool("skip-telegraf", false, "leave Telegraf out")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the gateway's drain to this file")
	flag.Parse()
	if err := run(*n, *bin, *work, *skipTelegraf, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "bench-ingest:", err)
		os.Exit(1)
	}
}

func influxQuery(base, db, q string) (string, error) {
	resp, err := http.PostForm(base+"/query", url.Values{"db": {db}, "q": {q}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), nil
}

// countPoints sums COUNT(battery_pct) over every measurement of db.
func countPoints(base, db string) (int64, error) {
	out, err := influxQuery(base, db, `SELECT COUNT("battery_pct") FROM /.*/`)
	if err != nil {
		return 0, err
	}
	var r struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return 0, err
	}
	var n int64
	for _, res := range r.Results {
		for _, s := range res.Series {
			for _, v := range s.Values {
				if len(v) > 1 {
					if f, ok := v[1].(float64); ok {
						n += int64(f)
					}
				}
			}
		}
	}
	return n, nil
}

// payloads: a mix of classes, every one carrying battery_pct so one field counts them all.
func payload(i int, base time.Time) (string, []byte) {
	dev := i % 1000
	ts := base.Add(time.Duration(i) * time.Millisecond).UnixMilli()
	switch dev % 4 {
	case 0:
		return fmt.Sprintf("fire/smoke/b-sm-%03d/telemetry", dev), []byte(fmt.Sprintf(
			`{"ts":%d,"alarm":false,"smoke_db_m":0.02,"temperature_c":%.1f,"battery_pct":%d,"rssi_dbm":-81,"tamper":false}`, ts, 18+float64(i%100)/10, 40+i%60))
	case 1:
		return fmt.Sprintf("fire/station/b-st-%03d/telemetry", dev), []byte(fmt.Sprintf(
			`{"ts":%d,"air_temp_c":%.1f,"rh_pct":%d,"wind_speed_ms":3.2,"wind_dir_deg":%d,"precip_mm":0,"battery_pct":%d}`, ts, 15+float64(i%150)/10, 20+i%70, i%360, 40+i%60))
	case 2:
		return fmt.Sprintf("fire/elec/b-el-%03d/heartbeat", dev), []byte(fmt.Sprintf(
			`{"ts":%d,"uptime_s":%d,"fw":"3.0.1","battery_pct":%d,"rssi_dbm":-70}`, ts, 1000+i, 40+i%60))
	default:
		return fmt.Sprintf("fire/camera/b-cam-%03d/heartbeat", dev), []byte(fmt.Sprintf(
			`{"ts":%d,"uptime_s":%d,"fw":"2.1.0","battery_pct":%d}`, ts, 1000+i, 40+i%60))
	}
}

// stored sums lookout_ingest_messages_total{result="stored"} from the gateway's /metrics.
func stored(port int) float64 {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "lookout_ingest_messages_total{") && strings.Contains(line, `result="stored"`) {
			var v float64
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				fmt.Sscanf(line[i+1:], "%g", &v)
			}
			sum += v
		}
	}
	return sum
}

// mustFreePort is proc.FreePort for set-up code that cannot go on without one.
func mustFreePort() int {
	p, err := proc.FreePort()
	if err != nil {
		panic(err)
	}
	return p
}

func connect(broker, id string, clean bool, h paho.MessageHandler) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(clean).
		SetOrderMatters(false).SetMessageChannelDepth(10000).SetWriteTimeout(30 * time.Second)
	if h != nil {
		o.SetDefaultPublishHandler(h)
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s as %s: %v", broker, id, tok.Error())
	}
	return c, nil
}

// createSession makes a persistent session subscribed to fire/# and leaves it.
func createSession(broker, id string) error {
	c, err := connect(broker, id, false, nil)
	if err != nil {
		return err
	}
	if tok := c.Subscribe("fire/#", 1, nil); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscribe %s: %v", id, tok.Error())
	}
	c.Disconnect(200)
	return nil
}

func queue(broker string, n int) (time.Duration, error) {
	c, err := connect(broker, "bench-publisher", true, nil)
	if err != nil {
		return 0, err
	}
	defer c.Disconnect(500)
	base := time.Now().Add(-24 * time.Hour)
	sem := make(chan struct{}, 1000)
	var wg sync.WaitGroup
	var failed atomic.Int64
	t0 := time.Now()
	for i := 0; i < n; i++ {
		topic, body := payload(i, base)
		sem <- struct{}{}
		wg.Add(1)
		tok := c.Publish(topic, 1, false, body)
		go func() {
			defer wg.Done()
			if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
				failed.Add(1)
			}
			<-sem
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("%d publishes failed", f)
	}
	return time.Since(t0), nil
}

func waitPoints(base, db string, n int64, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	for time.Since(t0) < timeout {
		got, err := countPoints(base, db)
		if err == nil && got >= n {
			return time.Since(t0), nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	got, _ := countPoints(base, db)
	return 0, fmt.Errorf("%s holds %d of %d points after %s", db, got, n, timeout)
}

func run(n int, binDir, work string, skipTelegraf bool, profile string) error {
	binDir, _ = filepath.Abs(binDir)
	_ = os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	work, _ = filepath.Abs(work)
	var procs []*proc.Proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop()
		}
	}()

	// InfluxDB
	ip, rp := mustFreePort(), mustFreePort()
	influxURL := fmt.Sprintf("http://127.0.0.1:%d", ip)
	conf := fmt.Sprintf("reporting-disabled = true\nbind-address = \"127.0.0.1:%d\"\n[meta]\n  dir = %q\n[data]\n  dir = %q\n  wal-dir = %q\n  query-log-enabled = false\n[http]\n  bind-address = \"127.0.0.1:%d\"\n  flux-enabled = true\n  log-enabled = false\n  max-body-size = 0\n[logging]\n  level = \"warn\"\n[monitor]\n  store-enabled = false\n",
		rp, work+"/influx/meta", work+"/influx/data", work+"/influx/wal", ip)
	_ = os.WriteFile(work+"/influxdb.conf", []byte(conf), 0o644)
	p, err := proc.Start(work, "influxd.log", filepath.Join(binDir, "influxd"), nil, "-config", work+"/influxdb.conf")
	if err != nil {
		return err
	}
	procs = append(procs, p)
	if err := proc.WaitHTTP(influxURL+"/ping", 30*time.Second); err != nil {
		return err
	}
	for _, db := range []string{"lookout", "telegraf"} {
		if _, err := influxQuery(influxURL, "", "CREATE DATABASE "+db); err != nil {
			return err
		}
	}

	// Mosquitto, with room for three copies of the backlog.
	mp := mustFreePort()
	broker := fmt.Sprintf("tcp://127.0.0.1:%d", mp)
	mconf := fmt.Sprintf("listener %d 127.0.0.1\nuser root\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 1000\nlog_dest stderr\nlog_type error\n", mp)
	_ = os.WriteFile(work+"/mosquitto.conf", []byte(mconf), 0o644)
	mosq, err := exec.LookPath("mosquitto")
	if err != nil {
		mosq = "/usr/sbin/mosquitto"
	}
	p, err = proc.Start(work, "mosquitto.log", mosq, nil, "-c", work+"/mosquitto.conf")
	if err != nil {
		return err
	}
	procs = append(procs, p)
	if err := proc.WaitTCP(fmt.Sprintf("127.0.0.1:%d", mp), 10*time.Second); err != nil {
		return err
	}

	ids := []string{"bench-bare", "bench-lookout"}
	if !skipTelegraf {
		ids = append(ids, "bench-telegraf")
	}
	for _, id := range ids {
		if err := createSession(broker, id); err != nil {
			return err
		}
	}
	fmt.Printf("queueing %d readings in Mosquitto for %d persistent sessions…\n", n, len(ids))
	qd, err := queue(broker, n)
	if err != nil {
		return err
	}
	fmt.Printf("queued in %.1fs (%.0f msg/s publish)\n", qd.Seconds(), float64(n)/qd.Seconds())

	results := map[string]float64{}

	// 1. bare paho subscriber: receive and count only.
	var got atomic.Int64
	done := make(chan struct{})
	t0 := time.Now()
	bare, err := connect(broker, "bench-bare", false, func(_ paho.Client, m paho.Message) {
		if got.Add(1) == int64(n) {
			close(done)
		}
	})
	if err != nil {
		return err
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		return fmt.Errorf("bare subscriber got %d of %d", got.Load(), n)
	}
	d := time.Since(t0)
	bare.Disconnect(200)
	results["bare"] = float64(n) / d.Seconds()
	fmt.Printf("bare paho subscriber: %d msgs in %.2fs = %.0f msg/s\n", n, d.Seconds(), results["bare"])

	// 2. Telegraf
	if !skipTelegraf {
		tconf := fmt.Sprintf(`[agent]
  interval = "10s"
  flush_interval = "1s"
  metric_batch_size = 5000
  metric_buffer_limit = 1000000
  omit_hostname = true
[[inputs.mqtt_consumer]]
  servers = ["%s"]
  topics = ["fire/#"]
  qos = 1
  client_id = "bench-telegraf"
  persistent_session = true
  ## Let Telegraf batch as it is built to (the default of 1000 undelivered
  ## messages would cap it at one batch per flush_interval).
  max_undelivered_messages = 10000
  data_format = "json"
  json_time_key = "ts"
  json_time_format = "unix_ms"
  json_string_fields = ["fw"]
[[outputs.influxdb_v2]]
  urls = ["%s"]
  token = ""
  organization = "lookout"
  bucket = "telegraf/autogen"
  content_encoding = "gzip"
`, broker, influxURL)
		_ = os.WriteFile(work+"/telegraf.conf", []byte(tconf), 0o644)
		t0 = time.Now()
		tp, err := proc.Start(work, "telegraf.log", filepath.Join(binDir, "telegraf"), nil, "--config", work+"/telegraf.conf")
		if err != nil {
			return err
		}
		_, err = waitPoints(influxURL, "telegraf", int64(n), 15*time.Minute)
		tp.Stop()
		if err != nil {
			return fmt.Errorf("telegraf: %w", err)
		}
		d = time.Since(t0)
		results["telegraf"] = float64(n) / d.Seconds()
		fmt.Printf("Telegraf v1.36.4:     %d points in %.2fs = %.0f msg/s\n", n, d.Seconds(), results["telegraf"])
	}

	// 3. Lookout
	hp := mustFreePort()
	env := []string{
		"LOOKOUT_DATA_DIR=" + work + "/lookout", "LOOKOUT_HTTP_ADDR=127.0.0.1:" + fmt.Sprint(hp),
		"LOOKOUT_MQTT_URL=" + broker, "LOOKOUT_MQTT_CLIENT_ID=bench-lookout",
		"LOOKOUT_INFLUX_URL=" + influxURL, "LOOKOUT_INFLUX_BUCKET=lookout/autogen",
		"LOOKOUT_UNKNOWN_DEVICES=register", "LOOKOUT_REGISTRY_SEED=",
		"LOOKOUT_LOG_LEVEL=warn",
	}
	if profile != "" {
		env = append(env, "LOOKOUT_HTTP_PPROF=true")
	}
	t0 = time.Now()
	gp, err := proc.Start(work, "gateway.log", filepath.Join(binDir, "gateway"), env, "serve", "--insecure-dev")
	if err != nil {
		return err
	}
	if profile != "" {
		go func() {
			if err := proc.WaitHTTP(fmt.Sprintf("http://127.0.0.1:%d/healthz", hp), 30*time.Second); err != nil {
				return
			}
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=4", hp))
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if f, err := os.Create(profile); err == nil {
				_, _ = io.Copy(f, resp.Body)
				f.Close()
			}
		}()
	}
	stopWatch := make(chan struct{})
	ingested := make(chan time.Duration, 1)
	go func() { // when did the gateway make the last reading durable (spool), before InfluxDB has it?
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(100 * time.Millisecond):
			}
			st := stored(hp)
			if os.Getenv("BENCH_TRACE") != "" {
				fmt.Printf("    t=%.1fs stored=%.0f\n", time.Since(t0).Seconds(), st)
			}
			if st >= float64(n) {
				ingested <- time.Since(t0)
				return
			}
		}
	}()
	_, err = waitPoints(influxURL, "lookout", int64(n), 15*time.Minute)
	close(stopWatch)
	select {
	case di := <-ingested:
		fmt.Printf("  (gateway had spooled all %d after %.2fs; the rest is the InfluxDB write tail)\n", n, di.Seconds())
	default:
	}
	gp.Stop()
	if err != nil {
		return fmt.Errorf("lookout: %w (see %s/gateway.log)", err, work)
	}
	d = time.Since(t0)
	results["lookout"] = float64(n) / d.Seconds()
	fmt.Printf("Lookout gateway:      %d points in %.2fs = %.0f msg/s\n", n, d.Seconds(), results["lookout"])

	fmt.Println(strings.Repeat("-", 60))
	if t := results["telegraf"]; t > 0 {
		fmt.Printf("Lookout / Telegraf        = %.2fx (target >= 1.8x)\n", results["lookout"]/t)
	}
	fmt.Printf("Lookout / bare subscriber = %.2fx (target >= 0.9x)\n", results["lookout"]/results["bare"])
	return nil
}
