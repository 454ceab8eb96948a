package alerting

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/events"
	"github.com/lookoutfire/lookout/ingest"
)

type flakyReceiver struct {
	mu       sync.Mutex
	fails    int
	attempts int
	accepted [][]byte
	sigOK    []bool
	ids      []string
}

func (f *flakyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	if f.attempts <= f.fails {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	f.accepted = append(f.accepted, body)
	f.sigOK = append(f.sigOK, VerifySignature("s3cret", body, r.Header.Get(SignatureHeader)))
	f.ids = append(f.ids, r.Header.Get(DeliveryHeader))
	w.WriteHeader(http.StatusNoContent)
}

func TestWebhookRetriesThenDeliversOnceAcrossRestart(t *testing.T) {
	recv := &flakyReceiver{fails: 2}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "state.db")
	clk := clock.NewFake(t0)
	mod := func(c *Config) {
		c.Webhooks = []WebhookConfig{{Name: "hq", URL: srv.URL, Secret: "s3cret", Events: []string{"alert.raised"}}}
	}
	h := openHarness(t, path, clk, mod)
	ctx := context.Background()
	h.eval(t, ingest.Reading{DeviceID: "smk-w", Class: ingest.ClassSmoke, Zone: "v1", Fields: map[string]any{"event": "alarm"}})

	if err := h.e.RunDue(ctx, clk.Now()); err != nil { // attempt 1: 503
		t.Fatal(err)
	}
	if err := h.e.RunDue(ctx, clk.Advance(4*time.Second)); err != nil { // backoff 5 s not over: no attempt
		t.Fatal(err)
	}
	if recv.attempts != 1 {
		t.Fatalf("attempts = %d, want 1 (backoff)", recv.attempts)
	}
	if err := h.e.RunDue(ctx, clk.Advance(time.Second)); err != nil { // attempt 2: 503
		t.Fatal(err)
	}
	// Restart before the third attempt: the outbox is in SQLite.
	h.db.Close()
	h2 := openHarness(t, path, clk, mod)
	if err := h2.e.RunDue(ctx, clk.Advance(10*time.Second)); err != nil { // attempt 3: accepted
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := h2.e.RunDue(ctx, clk.Advance(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.attempts != 3 || len(recv.accepted) != 1 {
		t.Fatalf("attempts %d accepted %d, want 3 and exactly 1", recv.attempts, len(recv.accepted))
	}
	if !recv.sigOK[0] {
		t.Error("signature does not verify")
	}
	var ev struct {
		ID   int64  `json:"id"`
		Type string `json:"type"`
		Data Alert  `json:"data"`
	}
	if err := json.Unmarshal(recv.accepted[0], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "alert.raised" || ev.Data.Source != "smk-w" || ev.Data.Severity != Critical || ev.ID == 0 {
		t.Errorf("body = %s", recv.accepted[0])
	}
	if VerifySignature("wrong", recv.accepted[0], Sign("s3cret", recv.accepted[0])) {
		t.Error("a wrong secret verified")
	}
}

func TestWebhookGivesUpAfterMaxAttempts(t *testing.T) {
	recv := &flakyReceiver{fails: 1000}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	h := newHarness(t, func(c *Config) {
		c.Webhooks = []WebhookConfig{{Name: "hq", URL: srv.URL, Secret: "s3cret", Events: []string{"alert.raised"}}}
		c.Retry.MaxAttempts = 3
	})
	h.eval(t, ingest.Reading{DeviceID: "smk-x", Class: ingest.ClassSmoke, Fields: map[string]any{"alarm": true}})
	for i := 0; i < 6; i++ {
		if err := h.e.RunDue(context.Background(), h.clk.Advance(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	var dead int
	h.db.QueryRow(`SELECT COUNT(*) FROM webhook_outbox WHERE dead = 1`).Scan(&dead)
	if recv.attempts != 3 || dead != 1 {
		t.Errorf("attempts %d dead %d, want 3 and 1", recv.attempts, dead)
	}
}

func TestCAPDocument(t *testing.T) {
	h := newHarness(t, nil)
	at := time.Date(2025, 4, 13, 6, 3, 7, 123456789, time.UTC)
	h.clk.Set(at)
	h.eval(t, ingest.Reading{DeviceID: "smk-c", Class: ingest.ClassSmoke, Zone: "v1", Time: at, Lat: 30.25, Lon: 120.5,
		Fields: map[string]any{"alarm": true}})
	a, _ := h.active(t, "smk-c", TypeSmokeAlarm)
	srv := httptest.NewServer(routes(h.e))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/alerts/" + strconv.FormatInt(a.ID, 10) + "/cap")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/cap+xml") {
		t.Fatalf("status %d type %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		XMLName    xml.Name
		Identifier string `xml:"identifier"`
		Sender     string `xml:"sender"`
		Sent       string `xml:"sent"`
		Status     string `xml:"status"`
		MsgType    string `xml:"msgType"`
		Scope      string `xml:"scope"`
		Info       struct {
			Category  string `xml:"category"`
			Event     string `xml:"event"`
			Urgency   string `xml:"urgency"`
			Severity  string `xml:"severity"`
			Certainty string `xml:"certainty"`
			Area      struct {
				AreaDesc string   `xml:"areaDesc"`
				Circle   []string `xml:"circle"`
				Polygon  []string `xml:"polygon"`
			} `xml:"area"`
		} `xml:"info"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	checks := []struct{ field, got, want string }{
		{"namespace", doc.XMLName.Space, CAPNamespace},
		{"root", doc.XMLName.Local, "alert"},
		{"identifier", doc.Identifier, "localhost-lookout-alert-" + strconv.FormatInt(a.ID, 10)},
		{"sender", doc.Sender, "lookout@localhost"},
		{"sent", doc.Sent, "2025-04-13T14:03:07+08:00"},
		{"status", doc.Status, "Actual"},
		{"msgType", doc.MsgType, "Alert"},
		{"scope", doc.Scope, "Public"},
		{"category", doc.Info.Category, "Fire"},
		{"event", doc.Info.Event, "Smoke alarm"},
		{"urgency", doc.Info.Urgency, "Immediate"},
		{"severity", doc.Info.Severity, "Extreme"},
		{"certainty", doc.Info.Certainty, "Observed"},
		{"areaDesc", doc.Info.Area.AreaDesc, "青山县 松林镇 东坡村"},
		{"circle", strings.Join(doc.Info.Area.Circle, "|"), "30.250000,120.500000 1.000"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$`).MatchString(doc.Sent) {
		t.Errorf("sent %q is not CAP dateTime", doc.Sent)
	}
	// Cleared → Cancel referencing the original.
	if _, err := h.e.Clear(context.Background(), a.ID, "op", "false alarm"); err != nil {
		t.Fatal(err)
	}
	a, _ = h.e.st.get(context.Background(), a.ID)
	c := h.e.CAP(a)
	if c.MsgType != "Cancel" || !strings.Contains(c.References, "localhost-lookout-alert-") {
		t.Errorf("cancel = %s refs %q", c.MsgType, c.References)
	}
}

func TestCAPTime(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2025, 1, 1, 0, 0, 0, 999999999, time.UTC), "2025-01-01T08:00:00+08:00"},
		{time.Date(2025, 12, 31, 16, 30, 5, 0, time.UTC), "2026-01-01T00:30:05+08:00"},
	} {
		if got := CAPTime(tc.in, sh); got != tc.want {
			t.Errorf("CAPTime(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := CAPTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC); got != "2025-01-01T00:00:00+00:00" {
		t.Errorf("UTC must be +00:00, not Z: %s", got)
	}
}

// routes mirrors the rows the gateway's route table adds for alerting.
func routes(e *Engine) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/alerts", e.HandleList)
	mux.HandleFunc("GET /api/v1/alerts/{id}", e.HandleGet)
	mux.HandleFunc("POST /api/v1/alerts/{id}/ack", e.HandleAck)
	mux.HandleFunc("POST /api/v1/alerts/{id}/clear", e.HandleClear)
	mux.HandleFunc("GET /api/v1/alerts/{id}/cap", e.HandleCAP)
	mux.HandleFunc("GET /api/v1/cap/feed", e.HandleCAPFeed)
	mux.HandleFunc("GET /api/v1/incidents", e.HandleIncidents)
	mux.HandleFunc("POST /api/v1/incidents/{id}/close", e.HandleCloseIncident)
	mux.HandleFunc("GET /api/v1/fire-danger", e.HandleDanger)
	mux.HandleFunc("GET /api/v1/events", e.HandleEvents)
	return mux
}

type sseEvent struct {
	id  int64
	typ string
	ev  events.Event
}

func readSSE(t *testing.T, r *bufio.Reader, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	for len(out) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read SSE after %d events: %v", len(out), err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "id: "):
			cur.id, _ = strconv.ParseInt(line[4:], 10, 64)
		case strings.HasPrefix(line, "event: "):
			cur.typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &cur.ev); err != nil {
				t.Fatal(err)
			}
		case line == "" && cur.typ != "":
			out = append(out, cur)
			cur = sseEvent{}
		}
	}
	return out
}

func TestSSELiveAndResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clk := clock.NewFake(t0)
	h := openHarness(t, path, clk, nil)
	srv := httptest.NewServer(routes(h.e))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events?types=alert.raised,device.", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil { // the opening comment: subscribed
		t.Fatal(err)
	}
	h.e.Hub().Publish("device.offline", map[string]string{"device": "d1"})
	h.eval(t, ingest.Reading{DeviceID: "smk-s", Class: ingest.ClassSmoke, Zone: "v1", Fields: map[string]any{"alarm": true}})
	got := readSSE(t, br, 2)
	if got[0].typ != "device.offline" || got[1].typ != "alert.raised" || got[1].id <= got[0].id {
		t.Fatalf("live events = %+v", got)
	}
	resp.Body.Close()
	srv.Close()

	// More happens while the client is away, then the gateway restarts.
	h.e.Hub().Publish("device.online", map[string]string{"device": "d1"})
	h.e.Hub().Publish("stream.up", map[string]string{"camera": "c1"})
	h.db.Close()
	h2 := openHarness(t, path, clk, nil)
	srv2 := httptest.NewServer(routes(h2.e))
	defer srv2.Close()
	req, _ = http.NewRequestWithContext(ctx, "GET", srv2.URL+"/api/v1/events", nil)
	req.Header.Set("Last-Event-ID", strconv.FormatInt(got[1].id, 10))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br = bufio.NewReader(resp.Body)
	missed := readSSE(t, br, 2)
	if missed[0].typ != "device.online" || missed[1].typ != "stream.up" || missed[0].id != got[1].id+1 {
		t.Fatalf("resumed events = %+v", missed)
	}
	h2.e.Hub().Publish("alert.acked", map[string]int{"id": 1})
	live := readSSE(t, br, 1)
	if live[0].typ != "alert.acked" || live[0].id != missed[1].id+1 {
		t.Fatalf("live after resume = %+v", live)
	}
}

func TestSSESlowClientIsDropped(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Notify.SSEBuffer = 2 })
	c := h.e.hub.subscribe()
	for i := 0; i < 3; i++ {
		h.e.hub.Publish("device.offline", i)
	}
	select {
	case <-c.dropped:
	default:
		t.Fatal("client with a full buffer was not dropped")
	}
	if got := testCounter(t, h.e.hub.dropped); got != 1 {
		t.Errorf("dropped counter = %v", got)
	}
	// The publisher never blocked, and a fresh client still gets events.
	c2 := h.e.hub.subscribe()
	h.e.hub.Publish("device.online", 1)
	if ev := <-c2.ch; ev.Type != "device.online" {
		t.Errorf("event = %+v", ev)
	}
}

// A Last-Event-ID this log never issued (a wiped data directory, another
// gateway) resumes from the newest event instead of hiding every live one.
func TestSSEForeignLastEventID(t *testing.T) {
	h := newHarness(t, nil)
	h.e.Hub().Publish("device.offline", map[string]string{"device": "d0"})
	srv := httptest.NewServer(routes(h.e))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events", nil)
	req.Header.Set("Last-Event-ID", "500")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	h.e.Hub().Publish("device.online", map[string]string{"device": "d1"})
	if got := readSSE(t, br, 1); got[0].typ != "device.online" {
		t.Fatalf("live event = %+v, want device.online", got[0])
	}
}
