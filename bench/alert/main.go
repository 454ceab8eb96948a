// Command alert-bench measures how long a smoke alarm takes to become an
// "alert.raised" server-sent event, from the moment the device's MQTT publish
// leaves the client to the moment the SSE line arrives, on the real gateway
// binary with its embedded broker and a real InfluxDB.
//
// It fires the same number of alarms twice in one run: first on an idle gateway
// (the baseline), then while a bounded background load of non-alarm readings of
// every class (default 10k readings/s) flows through the same broker. It prints
// p50/p90/p99/max of both, their ratio, the background rate actually achieved,
// and the gateway's own drop counters. Every alarm comes from a distinct smoke
// detector, so each one must raise a new critical alert; an alarm without its
// event counts as lost. The PUBACK of each alarm is timed too: the embedded
// broker acks after ingest has stored the reading and handed it to alerting,
// so publish→PUBACK is the broker+ingest share and the rest is alerting+SSE.
// Per-alarm numbers go to <work>/latency.csv; -profile saves a gateway CPU
// profile of the loaded phase.
//
// Authentication is off (auth.insecure_dev): this measures the alerting path,
// not credential checks, which happen once per MQTT connection anyway.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookoutfire/lookout/internal/proc"
)

type options struct {
	bin, work  string
	rate       int           // background readings per second
	warm       time.Duration // background load before the first loaded alarm
	alarms     int           // alarms per phase
	spacing    time.Duration // between alarms
	conns      int           // background publisher connections
	devices    int           // background devices (spread over the four classes)
	maxPending int           // unacknowledged QoS 1 publishes per connection
	keep       bool          // leave the work folder (logs) in place
	profile    bool          // save a gateway CPU profile of the loaded phase
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "folder with the gateway and influxd binaries")
	flag.StringVar(&o.work, "work", "var/bench-alert", "scratch folder (wiped)")
	flag.IntVar(&o.rate, "rate", 10000, "background readings per second")
	flag.DurationVar(&o.warm, "warm", 5*time.Second, "background load before the first loaded alarm")
	flag.IntVar(&o.alarms, "alarms", 200, "smoke alarms per phase (baseline and loaded)")
	flag.DurationVar(&o.spacing, "spacing", 100*time.Millisecond, "time between two alarms")
	flag.IntVar(&o.conns, "conns", 8, "background publisher connections")
	flag.IntVar(&o.devices, "devices", 2000, "background devices")
	flag.IntVar(&o.maxPending, "inflight", 2000, "unacknowledged QoS 1 publishes per background connection")
	flag.BoolVar(&o.keep, "keep", true, "keep the work folder (gateway and influxd logs) afterwards")
	flag.BoolVar(&o.profile, "profile", false, "serve pprof on the gateway and save a CPU profile of the loaded phase to <work>/cpu.pprof")
	flag.Parse()
	if o.rate < 0 || o.alarms < 1 || o.conns < 1 || o.devices < 4 || o.spacing <= 0 || o.maxPending < 1 {
		fmt.Fprintln(os.Stderr, "bench-alert: bad flags")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-alert:", err)
		os.Exit(1)
	}
}

// ---- metrics ----

// metric sums the samples of one metric family whose label set contains
// labelFrag ("" = every sample) in the gateway's Prometheus text exposition.
func metric(base, name, labelFrag string) (float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') || !strings.Contains(rest, labelFrag) {
			continue
		}
		if f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:]); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				sum += v
			}
		}
	}
	return sum, sc.Err()
}

// ---- SSE ----

// sseWatch receives alert.raised events and records when each source's first
// smoke_alarm event arrived. When the gateway drops the stream (a slow client)
// it reconnects with Last-Event-ID, as a control room would, and counts it.
type sseWatch struct {
	mu         sync.Mutex
	got        map[string]time.Time
	notify     chan struct{}
	other      atomic.Int64 // alert.raised of another type (must stay 0: the background is non-alarm)
	reconnects atomic.Int64
	lastID     int64
}

func openSSE(ctx context.Context, base string) (*sseWatch, error) {
	w := &sseWatch{got: map[string]time.Time{}, notify: make(chan struct{}, 1)}
	body, err := w.dial(ctx, base)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			w.read(body)
			body.Close()
			for ctx.Err() == nil {
				if body, err = w.dial(ctx, base); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if ctx.Err() != nil {
				return
			}
			w.reconnects.Add(1)
		}
	}()
	return w, nil
}

func (w *sseWatch) dial(ctx context.Context, base string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/events?types=alert.raised", nil)
	if err != nil {
		return nil, err
	}
	if w.lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(w.lastID, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sse: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("sse: %s: %s", resp.Status, b)
	}
	return resp.Body, nil
}

// read consumes one stream until it ends.
func (w *sseWatch) read(body io.Reader) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if id, ok := bytes.CutPrefix(line, []byte("id: ")); ok {
			if n, err := strconv.ParseInt(string(id), 10, 64); err == nil {
				w.lastID = n
			}
			continue
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		now := time.Now()
		var ev struct {
			Type string `json:"type"`
			Data struct {
				Source string `json:"source"`
				Type   string `json:"type"`
			} `json:"data"`
		}
		if json.Unmarshal(data, &ev) != nil || ev.Type != "alert.raised" {
			continue
		}
		if ev.Data.Type != "smoke_alarm" {
			w.other.Add(1)
			continue
		}
		w.mu.Lock()
		if _, dup := w.got[ev.Data.Source]; !dup {
			w.got[ev.Data.Source] = now
		}
		w.mu.Unlock()
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
}

func (w *sseWatch) arrived(src string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.got[src]
	return t, ok
}

// waitAll waits until every source has arrived or the timeout passes.
func (w *sseWatch) waitAll(srcs []string, timeout time.Duration) {
	deadline := time.After(timeout)
	for {
		missing := 0
		for _, s := range srcs {
			if _, ok := w.arrived(s); !ok {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		select {
		case <-w.notify:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			return
		}
	}
}

// ---- MQTT ----

func connect(broker, id string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(true).
		SetOrderMatters(false).SetWriteTimeout(30 * time.Second).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s as %s: %v", broker, id, tok.Error())
	}
	return c, nil
}

// device is one background device; lastTS keeps its timestamps unique.
type device struct {
	topicTel, topicHB string
	class             int
	lastTS            int64
	n                 int
}

func nextTS(d *device, now time.Time) int64 {
	ts := now.UnixMilli()
	if ts <= d.lastTS {
		ts = d.lastTS + 1
	}
	d.lastTS = ts
	return ts
}

// reading is a non-alarm reading of the device's class: values stay below every
// rule threshold (battery well above low-battery, residual current and cable
// temperature below their limits), one in ten a heartbeat.
func reading(d *device, now time.Time) (string, []byte) {
	ts := nextTS(d, now)
	d.n++
	i := d.n
	if i%10 == 0 {
		return d.topicHB, fmt.Appendf(nil, `{"ts":%d,"uptime_s":%d,"fw":"1.0.0","battery_pct":%d,"rssi_dbm":-70}`, ts, 1000+i, 60+i%40)
	}
	switch d.class {
	case 0:
		return d.topicTel, fmt.Appendf(nil, `{"ts":%d,"alarm":false,"smoke_db_m":0.02,"temperature_c":%.1f,"battery_pct":%d,"rssi_dbm":-81,"tamper":false}`,
			ts, 18+float64(i%100)/10, 60+i%40)
	case 1:
		return d.topicTel, fmt.Appendf(nil, `{"ts":%d,"air_temp_c":%.1f,"rh_pct":%d,"wind_speed_ms":3.2,"wind_dir_deg":%d,"precip_mm":0,"battery_pct":%d}`,
			ts, 15+float64(i%150)/10, 20+i%70, i%360, 60+i%40)
	case 2:
		return d.topicTel, fmt.Appendf(nil, `{"ts":%d,"residual_current_ma":[%d,%d,12,8],"cable_temp_c":[%.1f,31.5,30.2,29.9],"current_a":[12.5,11.8,13.1],"voltage_v":[229,231,230],"arc_fault":false,"alarm":false,"rssi_dbm":-75}`,
			ts, 20+i%50, 15+i%40, 30+float64(i%200)/10)
	default:
		return d.topicHB, fmt.Appendf(nil, `{"ts":%d,"uptime_s":%d,"fw":"2.1.0","battery_pct":%d}`, ts, 1000+i, 60+i%40)
	}
}

func newDevices(n int) []*device {
	classes := []string{"smoke", "station", "elec", "camera"}
	prefix := []string{"bg-sm", "bg-st", "bg-el", "bg-cam"}
	out := make([]*device, n)
	for i := range out {
		c := i % 4
		id := fmt.Sprintf("%s-%05d", prefix[c], i)
		out[i] = &device{class: c, topicTel: "fire/" + classes[c] + "/" + id + "/telemetry",
			topicHB: "fire/" + classes[c] + "/" + id + "/heartbeat"}
	}
	return out
}

// loadStats counts the background publishes.
type loadStats struct {
	sent, acked, failed atomic.Int64
}

// backgroundLoad publishes on one connection at rate/conns readings per second
// over its share of the devices until ctx ends. At most maxPending publishes
// wait for their PUBACK (one goroutine waits for them in order); when that many
// are pending the publisher waits, falling behind schedule rather than queueing
// without bound, and the achieved rate shows it.
func backgroundLoad(ctx context.Context, c paho.Client, devs []*device, perSec float64, maxPending int, st *loadStats) {
	const tick = 5 * time.Millisecond
	pending := make(chan paho.Token, maxPending)
	acks := make(chan struct{})
	go func() {
		defer close(acks)
		for tok := range pending {
			if tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
				st.acked.Add(1)
			} else {
				st.failed.Add(1)
			}
		}
	}()
	defer func() { close(pending); <-acks }()
	t0 := time.Now()
	var sent int64
	next := 0
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := int64(now.Sub(t0).Seconds() * perSec)
			for ; sent < due && ctx.Err() == nil; sent++ {
				d := devs[next]
				next = (next + 1) % len(devs)
				topic, body := reading(d, now)
				tok := c.Publish(topic, 1, false, body)
				st.sent.Add(1)
				select {
				case pending <- tok:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}

// ---- alarms ----

type phase struct {
	name     string
	lat      []time.Duration    // publish → SSE, sorted
	ack      []time.Duration    // publish → PUBACK (broker and ingest, up to the hand-over to alerting), sorted
	series   [][3]time.Duration // (publish offset from the phase start, SSE latency, PUBACK latency) in publish order
	lost     int
	pubErrs  int
	duration time.Duration
}

// fireAlarms sends one "alarm" event from each device, spacing apart, and
// collects publish→SSE latencies.
func fireAlarms(c paho.Client, w *sseWatch, ids []string, spacing time.Duration, name string) phase {
	p := phase{name: name}
	sentAt := make(map[string]time.Time, len(ids))
	acked := make([]time.Time, len(ids)) // PUBACK arrival: the gateway acks after ingest handed the reading to alerting
	var wg sync.WaitGroup
	var pubErrs atomic.Int64
	t0 := time.Now()
	for i, id := range ids {
		if d := time.Until(t0.Add(time.Duration(i) * spacing)); d > 0 {
			time.Sleep(d)
		}
		body := fmt.Appendf(nil, `{"ts":%d,"event":"alarm","smoke_db_m":0.31,"temperature_c":41.5,"battery_pct":88}`, time.Now().UnixMilli())
		sentAt[id] = time.Now()
		tok := c.Publish("fire/smoke/"+id+"/event", 1, false, body)
		wg.Add(1)
		go func() { // the PUBACK does not gate the next alarm
			defer wg.Done()
			if tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
				acked[i] = time.Now()
			} else {
				pubErrs.Add(1)
			}
		}()
	}
	w.waitAll(ids, 15*time.Second)
	wg.Wait()
	p.duration = time.Since(t0)
	p.pubErrs = int(pubErrs.Load())
	for i, id := range ids {
		if !acked[i].IsZero() {
			p.ack = append(p.ack, acked[i].Sub(sentAt[id]))
		}
		got, ok := w.arrived(id)
		if !ok {
			p.lost++
			continue
		}
		p.lat = append(p.lat, got.Sub(sentAt[id]))
		var ack time.Duration
		if !acked[i].IsZero() {
			ack = acked[i].Sub(sentAt[id])
		}
		p.series = append(p.series, [3]time.Duration{sentAt[id].Sub(t0), got.Sub(sentAt[id]), ack})
	}
	slices.Sort(p.lat)
	slices.Sort(p.ack)
	return p
}

func pct(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func (p phase) print() {
	fmt.Printf("%-9s n=%d lost=%d  p50=%s  p90=%s  p99=%s  max=%s\n", p.name, len(p.lat), p.lost,
		ms(pct(p.lat, .50)), ms(pct(p.lat, .90)), ms(pct(p.lat, .99)), ms(pct(p.lat, 1)))
	slow, slowAck := 0, 0
	for _, x := range p.series {
		if x[1] >= 50*time.Millisecond {
			slow++
			if x[2] >= 50*time.Millisecond {
				slowAck++
			}
		}
	}
	fmt.Printf("%-9s publish → PUBACK (broker + ingest, acked after the hand-over to alerting): p50=%s  p99=%s; publish errors %d\n", "",
		ms(pct(p.ack, .50)), ms(pct(p.ack, .99)), p.pubErrs)
	fmt.Printf("%-9s alarms ≥ 50 ms to SSE: %d, of which the PUBACK alone took ≥ 50 ms: %d\n", "", slow, slowAck)
}

func saveProfile(u, path string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ---- the run ----

func run(o options) error {
	binDir, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	work, err := filepath.Abs(o.work)
	if err != nil {
		return err
	}
	_ = os.RemoveAll(work)
	if err := os.MkdirAll(filepath.Join(work, "influx"), 0o755); err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(work)
	}
	var procs []*proc.Proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop()
		}
	}()
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = proc.FreePort(); err != nil {
			return err
		}
	}
	ip, rp, hp, mp := ports[0], ports[1], ports[2], ports[3]

	// InfluxDB (the gateway's writer needs it; readings really are stored).
	influxURL := fmt.Sprintf("http://127.0.0.1:%d", ip)
	conf := fmt.Sprintf("reporting-disabled = true\nbind-address = \"127.0.0.1:%d\"\n[meta]\n  dir = %q\n[data]\n  dir = %q\n  wal-dir = %q\n  query-log-enabled = false\n[http]\n  bind-address = \"127.0.0.1:%d\"\n  flux-enabled = true\n  log-enabled = false\n  max-body-size = 0\n[logging]\n  level = \"warn\"\n[monitor]\n  store-enabled = false\n",
		rp, work+"/influx/meta", work+"/influx/data", work+"/influx/wal", ip)
	if err := os.WriteFile(work+"/influxdb.conf", []byte(conf), 0o644); err != nil {
		return err
	}
	p, err := proc.Start(work, "influxd.log", filepath.Join(binDir, "influxd"), nil, "-config", work+"/influxdb.conf")
	if err != nil {
		return err
	}
	procs = append(procs, p)
	if err := proc.WaitHTTP(influxURL+"/ping", 60*time.Second); err != nil {
		return err
	}
	resp, err := http.PostForm(influxURL+"/query", url.Values{"q": {"CREATE DATABASE lookout"}})
	if err != nil {
		return err
	}
	resp.Body.Close()

	// The gateway with its embedded broker.
	base := fmt.Sprintf("http://127.0.0.1:%d", hp)
	broker := fmt.Sprintf("tcp://127.0.0.1:%d", mp)
	env := []string{
		"LOOKOUT_DATA_DIR=" + work + "/lookout", "LOOKOUT_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(hp),
		"LOOKOUT_MQTT_URL=", "LOOKOUT_MQTT_EMBEDDED_ADDR=127.0.0.1:" + strconv.Itoa(mp),
		"LOOKOUT_INFLUX_URL=" + influxURL, "LOOKOUT_INFLUX_BUCKET=lookout/autogen",
		"LOOKOUT_UNKNOWN_DEVICES=register", "LOOKOUT_REGISTRY_SEED=",
		"LOOKOUT_LOG_LEVEL=warn",
	}
	if o.profile {
		env = append(env, "LOOKOUT_HTTP_PPROF=true")
	}
	p, err = proc.Start(work, "gateway.log", filepath.Join(binDir, "gateway"), env, "serve", "--insecure-dev")
	if err != nil {
		return err
	}
	procs = append(procs, p)
	if err := proc.WaitHTTP(base+"/healthz", 60*time.Second); err != nil {
		return fmt.Errorf("%w (see %s/gateway.log)", err, work)
	}
	if err := proc.WaitTCP(fmt.Sprintf("127.0.0.1:%d", mp), 30*time.Second); err != nil {
		return fmt.Errorf("%w (see %s/gateway.log)", err, work)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sse, err := openSSE(ctx, base)
	if err != nil {
		return err
	}
	alarmClient, err := connect(broker, "bench-alarms")
	if err != nil {
		return err
	}
	defer alarmClient.Disconnect(200)
	clients := make([]paho.Client, o.conns)
	for i := range clients {
		if clients[i], err = connect(broker, fmt.Sprintf("bench-load-%d", i)); err != nil {
			return err
		}
		defer clients[i].Disconnect(200)
	}

	// Warm-up: every device (background and alarm) reports once, so registration
	// of unknown devices is not part of either measurement.
	devs := newDevices(o.devices)
	alarmIDs := make([]string, 2*o.alarms)
	for i := range alarmIDs {
		alarmIDs[i] = fmt.Sprintf("bench-smoke-%05d", i)
	}
	stored0, _ := metric(base, "lookout_ingest_messages_total", `result="stored"`)
	var warmToks []paho.Token
	for _, d := range devs {
		topic, body := reading(d, time.Now())
		warmToks = append(warmToks, alarmClient.Publish(topic, 1, false, body))
	}
	for i, id := range alarmIDs {
		body := fmt.Appendf(nil, `{"ts":%d,"alarm":false,"smoke_db_m":0.01,"temperature_c":20,"battery_pct":90,"rssi_dbm":-70,"tamper":false}`,
			time.Now().UnixMilli()-int64(i%1000))
		warmToks = append(warmToks, alarmClient.Publish("fire/smoke/"+id+"/telemetry", 1, false, body))
	}
	for _, t := range warmToks {
		if !t.WaitTimeout(60*time.Second) || t.Error() != nil {
			return fmt.Errorf("warm-up publish: %v", t.Error())
		}
	}
	want := stored0 + float64(len(warmToks))
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := metric(base, "lookout_ingest_messages_total", `result="stored"`)
		if err == nil && got >= want {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warm-up: gateway stored %.0f of %.0f readings (see %s/gateway.log)", got-stored0, want-stored0, work)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // let the registry and alerting queues settle
	fmt.Printf("gateway up; %d background devices and %d alarm devices registered\n", len(devs), len(alarmIDs))

	// Phase 1: baseline, idle gateway.
	base1 := fireAlarms(alarmClient, sse, alarmIDs[:o.alarms], o.spacing, "baseline")

	// Phase 2: the same alarms under background load.
	drop0, _ := metric(base, "lookout_alerting_dropped_total", "")
	errs0, _ := metric(base, "lookout_alerting_rule_errors_total", "")
	stored1, _ := metric(base, "lookout_ingest_messages_total", `result="stored"`)
	loadDur := o.warm + time.Duration(o.alarms)*o.spacing + 2*time.Second
	lctx, lcancel := context.WithTimeout(ctx, loadDur)
	defer lcancel()
	var st loadStats
	var lwg sync.WaitGroup
	per := float64(o.rate) / float64(o.conns)
	tLoad := time.Now()
	for i, c := range clients {
		var share []*device
		for j := i; j < len(devs); j += o.conns {
			share = append(share, devs[j])
		}
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			backgroundLoad(lctx, c, share, per, o.maxPending, &st)
		}()
	}
	var loaded phase
	var maxDepth float64
	depthDone := make(chan struct{})
	go func() { // sample the alerting queue depth while loaded
		defer close(depthDone)
		for lctx.Err() == nil {
			if d, err := metric(base, "lookout_alerting_queue_depth", ""); err == nil {
				maxDepth = max(maxDepth, d)
			}
			select {
			case <-lctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	if o.rate > 0 {
		time.Sleep(o.warm)
	}
	profDone := make(chan error, 1)
	if o.profile {
		secs := max(1, int((time.Duration(o.alarms) * o.spacing).Seconds()))
		go func() {
			profDone <- saveProfile(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), work+"/cpu.pprof")
		}()
	} else {
		profDone <- nil
	}
	loaded = fireAlarms(alarmClient, sse, alarmIDs[o.alarms:], o.spacing, "loaded")
	if o.rate > 0 {
		<-lctx.Done()
	}
	lcancel()
	lwg.Wait()
	<-depthDone
	if err := <-profDone; err != nil {
		fmt.Fprintln(os.Stderr, "bench-alert: profile:", err)
	} else if o.profile {
		fmt.Printf("gateway CPU profile of the loaded phase: go tool pprof %s %s/cpu.pprof\n", filepath.Join(binDir, "gateway"), work)
	}
	loadTime := time.Since(tLoad)
	time.Sleep(2 * time.Second) // let the pipeline drain before reading counters
	drop1, _ := metric(base, "lookout_alerting_dropped_total", "")
	errs1, _ := metric(base, "lookout_alerting_rule_errors_total", "")
	stored2, _ := metric(base, "lookout_ingest_messages_total", `result="stored"`)

	var csv strings.Builder
	csv.WriteString("phase,publish_offset_ms,sse_latency_ms,puback_latency_ms\n")
	for _, ph := range []phase{base1, loaded} {
		for _, x := range ph.series {
			fmt.Fprintf(&csv, "%s,%.1f,%.3f,%.3f\n", ph.name, float64(x[0].Microseconds())/1000, float64(x[1].Microseconds())/1000,
				float64(x[2].Microseconds())/1000)
		}
	}
	if err := os.WriteFile(work+"/latency.csv", []byte(csv.String()), 0o644); err != nil {
		return err
	}
	fmt.Println(strings.Repeat("-", 72))
	fmt.Printf("publish → SSE alert.raised latency, %d smoke alarms per phase, one every %s\n", o.alarms, o.spacing)
	base1.print()
	loaded.print()
	fmt.Printf("background: target %d readings/s on %d connections over %d devices; achieved %.0f/s published, %.0f/s acked (%d failed), gateway stored %.0f/s\n",
		o.rate, o.conns, len(devs), float64(st.sent.Load())/loadTime.Seconds(), float64(st.acked.Load())/loadTime.Seconds(),
		st.failed.Load(), (stored2-stored1)/loadTime.Seconds())
	fmt.Printf("alerting during load: queue depth max %.0f, dropped %.0f, rule errors %.0f; non-alarm alerts raised: %d; SSE reconnects %d\n",
		maxDepth, drop1-drop0, errs1-errs0, sse.other.Load(), sse.reconnects.Load())
	if b := pct(base1.lat, .99); b > 0 {
		fmt.Printf("loaded / baseline: p50 %.2fx, p99 %.2fx\n", float64(pct(loaded.lat, .5))/float64(pct(base1.lat, .5)),
			float64(pct(loaded.lat, .99))/float64(b))
	}
	verdict := "MET"
	if p99 := pct(loaded.lat, .99); p99 >= 50*time.Millisecond || loaded.lost > 0 || len(loaded.lat) == 0 {
		verdict = "MISSED"
	}
	fmt.Printf("target loaded p99 < 50 ms with no alarm lost: %s\n", verdict)
	if loaded.lost > 0 || base1.lost > 0 {
		return errors.New("alarms lost (no alert.raised event within 15 s)")
	}
	return nil
}
