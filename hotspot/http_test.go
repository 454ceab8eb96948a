package hotspot

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/web"
)

// testServer mounts the handlers on the patterns the gateway's route table uses.
func testServer(t *testing.T, e *testEnv) *httptest.Server {
	t.Helper()
	s := e.svc
	mux := http.NewServeMux()
	for _, r := range []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"POST /api/v1/hotspots/import", s.HandleImport},
		{"GET /api/v1/hotspots/reports", s.HandleList},
		{"GET /api/v1/hotspots/reports/{id}", s.HandleGet},
		{"POST /api/v1/hotspots/reports/{id}/assign", s.HandleAssign},
		{"POST /api/v1/hotspots/reports/{id}/verify", s.HandleVerify},
		{"POST /api/v1/hotspots/reports/{id}/close", s.HandleClose},
		{"POST /api/v1/hotspots/reports/{id}/reopen", s.HandleReopen},
		{"POST /api/v1/hotspots/reports/{id}/photos", s.HandlePhotos},
		{"GET /api/v1/hotspots/photos/{id}", s.HandlePhoto},
		{"GET /api/v1/hotspots/export.csv", s.HandleCSV},
		{"GET /api/v1/hotspots/export.geojson", s.HandleGeoJSON},
		{"GET /api/v1/hotspots/stats", s.HandleStats},
	} {
		mux.HandleFunc(r.pattern, r.h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func httpEnv(t *testing.T, mod func(*Config, *Deps)) (*testEnv, *httptest.Server) {
	e := newEnv(t, func(c *Config, d *Deps) {
		d.User = func(r *http.Request) string { return r.Header.Get("X-User") }
		if mod != nil {
			mod(c, d)
		}
	})
	return e, testServer(t, e)
}

// do sends a request and decodes a JSON reply into out (when non-nil); it returns the status.
func do(t *testing.T, method, url, contentType string, body io.Reader, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("X-User", "tester")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
	if resp.StatusCode >= 400 {
		var eb web.ErrorBody
		if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Code == "" {
			t.Fatalf("%s %s: error reply is not an ErrorBody: %s", method, url, b)
		}
	}
	return resp.StatusCode
}

func postJSON(t *testing.T, url string, v any, out any) int {
	b, _ := json.Marshal(v)
	return do(t, http.MethodPost, url, "application/json", bytes.NewReader(b), out)
}

// multipartBody builds a form with the given file parts (name → content).
func multipartBody(t *testing.T, files [][2]string, fields map[string]string) (string, *bytes.Buffer) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	for _, f := range files {
		w, err := mw.CreateFormFile("file", f[0])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f[1]))
	}
	mw.Close()
	return mw.FormDataContentType(), &b
}

type importReply struct {
	Results []ImportResult `json:"results"`
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHTTPImport(t *testing.T) {
	e, srv := httpEnv(t, nil)
	url := srv.URL + "/api/v1/hotspots/import"
	fixture := readFile(t, "testdata/viirs_noaa20_api_instrument.csv")

	var rep importReply
	if st := do(t, "POST", url, "text/csv", strings.NewReader(fixture), &rep); st != 200 || len(rep.Results) != 1 ||
		rep.Results[0].New != 4 || rep.Results[0].Source != "api:tester" {
		t.Fatalf("text/csv: %d %+v", st, rep)
	}
	ct, body := multipartBody(t, [][2]string{{"again.csv", fixture}, {"mixed.csv", readFile(t, "testdata/mixed_bad_rows.csv")}},
		map[string]string{"note": "ignored"})
	rep = importReply{}
	if st := do(t, "POST", url, ct, body, &rep); st != 200 || len(rep.Results) != 2 {
		t.Fatalf("multipart: %d %+v", st, rep)
	}
	if r := rep.Results[0]; r.New != 0 || r.Duplicate != 4 || r.Source != "api:tester/again.csv" {
		t.Errorf("re-import over HTTP: %+v", r)
	}
	if r := rep.Results[1]; r.New != 2 || r.Bad != 5 || len(r.BadRows) != 5 || r.BadRows[0].Line != 3 {
		t.Errorf("bad rows over HTTP: %+v", r)
	}
	ct, body = multipartBody(t, nil, map[string]string{"x": "y"})
	if st := do(t, "POST", url, ct, body, nil); st != 400 {
		t.Errorf("multipart without file: %d", st)
	}
	if st := do(t, "POST", url, "text/csv", strings.NewReader("a,b\n1,2\n"), nil); st != 400 {
		t.Errorf("not FIRMS: %d", st)
	}
	// The mixed file's good rows lie within 1 km of the forest report: they join it.
	if n := len(listAll(t, e, ListFilter{})); n != 3 {
		t.Errorf("%d reports", n)
	}

	_, small := httpEnv(t, func(c *Config, _ *Deps) { c.MaxImportBytes = 300 })
	if st := do(t, "POST", small.URL+"/api/v1/hotspots/import", "text/csv", strings.NewReader(fixture), nil); st != 413 {
		t.Errorf("oversize text/csv: %d", st)
	}
	ct, body = multipartBody(t, [][2]string{{"big.csv", fixture + strings.Repeat(" ", 2<<20)}}, nil)
	if st := do(t, "POST", small.URL+"/api/v1/hotspots/import", ct, body, nil); st != 413 {
		t.Errorf("oversize multipart: %d", st)
	}
}

// scenario: the fixture's three reports; A (forest, V11) closed on time, C (T1) closed
// late after escalation, B (T2) left open and overdue.
func scenario(t *testing.T, e *testEnv, srv *httptest.Server) (a, b, c Report) {
	t.Helper()
	var rep importReply
	if st := do(t, "POST", srv.URL+"/api/v1/hotspots/import", "text/csv",
		strings.NewReader(readFile(t, "testdata/viirs_noaa20_api_instrument.csv")), &rep); st != 200 {
		t.Fatal(st)
	}
	a, b, c = reportAt(t, e, 25.212, 100.22), reportAt(t, e, 25.30012, 100.41233), reportAt(t, e, 25.10244, 100.05518)
	e.clk.Advance(30 * time.Minute)
	lat, lon := 25.2125, 100.2201
	if st := postJSON(t, fmt.Sprintf("%s/api/v1/hotspots/reports/%d/close", srv.URL, a.ID),
		CloseRequest{Outcome: "林火", Verifier: "Li Wei", VerifiedAt: e.clk.Now(), Note: "=cmd|' /C calc'!A0", CorrectedLat: &lat, CorrectedLon: &lon}, &a); st != 200 {
		t.Fatalf("close A: %d", st)
	}
	e.svc.RunDue(t.Context(), e.clk.Advance(4*time.Hour+30*time.Minute))
	if st := postJSON(t, fmt.Sprintf("%s/api/v1/hotspots/reports/%d/close", srv.URL, c.ID),
		CloseRequest{Outcome: "误报", Verifier: "Chen Jun", VerifiedAt: e.clk.Now(), Note: "cloud edge"}, &c); st != 200 {
		t.Fatalf("close C: %d", st)
	}
	b, _ = e.svc.Report(t.Context(), b.ID)
	return a, b, c
}

func TestHTTPReportsLifecycleAndFilters(t *testing.T) {
	e, srv := httpEnv(t, nil)
	a, b, c := scenario(t, e, srv)
	if a.Status != StatusClosed || a.Overdue || c.Status != StatusClosed || !c.Overdue || !b.Overdue || b.Status != StatusAssigned {
		t.Fatalf("scenario: a %+v\nb %+v\nc %+v", a, b, c)
	}
	base := srv.URL + "/api/v1/hotspots/reports"
	ids := func(q string) []int64 {
		var out struct{ Reports []Report }
		if st := do(t, "GET", base+q, "", nil, &out); st != 200 {
			t.Fatalf("GET %s: %d", q, st)
		}
		var r []int64
		for _, x := range out.Reports {
			r = append(r, x.ID)
		}
		return r
	}
	tests := []struct {
		q    string
		want []int64
	}{
		{"", []int64{c.ID, b.ID, a.ID}},
		{"?zone=t1", []int64{c.ID, a.ID}},
		{"?zone=v11", []int64{a.ID}},
		{"?zone=t2&status=assigned", []int64{b.ID}},
		{"?status=closed", []int64{c.ID, a.ID}},
		{"?class=forest", []int64{a.ID}},
		{"?overdue=true", []int64{c.ID, b.ID}},
		{"?limit=1&offset=1", []int64{b.ID}},
		{"?since=" + t0.Add(time.Minute).Format(time.RFC3339), nil},
	}
	for _, tc := range tests {
		if got := ids(tc.q); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%q: %v, want %v", tc.q, got, tc.want)
		}
	}
	for _, q := range []string{"?status=burning", "?class=x", "?since=yesterday", "?overdue=maybe", "?limit=-1"} {
		if st := do(t, "GET", base+q, "", nil, nil); st != 400 {
			t.Errorf("%q: %d", q, st)
		}
	}
	var d Detail
	if st := do(t, "GET", fmt.Sprintf("%s/%d", base, a.ID), "", nil, &d); st != 200 || len(d.HotspotList) != 2 ||
		d.Outcome != "林火" || len(d.History) < 3 || d.History[len(d.History)-1].Actor != "tester" {
		t.Fatalf("detail: %d %+v", st, d)
	}
	if st := do(t, "GET", base+"/999", "", nil, nil); st != 404 {
		t.Errorf("unknown report: %d", st)
	}
	if st := do(t, "GET", base+"/abc", "", nil, nil); st != 400 {
		t.Errorf("bad id: %d", st)
	}
	// Close: the outcome must be from the list; unknown JSON fields are refused; twice is a conflict.
	url := fmt.Sprintf("%s/%d/close", base, b.ID)
	if st := postJSON(t, url, map[string]any{"outcome": "bonfire", "verifier": "x", "verified_at": e.clk.Now(), "note": "n"}, nil); st != 400 {
		t.Errorf("bad outcome: %d", st)
	}
	if st := postJSON(t, url, map[string]any{"outcome": "林火", "verifier": "x", "verified_at": e.clk.Now(), "note": "n", "extra": 1}, nil); st != 400 {
		t.Errorf("unknown field: %d", st)
	}
	if st := postJSON(t, fmt.Sprintf("%s/%d/close", base, a.ID), CloseRequest{Outcome: "林火", Verifier: "x", VerifiedAt: e.clk.Now(), Note: "n"}, nil); st != 409 {
		t.Errorf("close twice: %d", st)
	}
	var r Report
	if st := postJSON(t, fmt.Sprintf("%s/%d/verify", base, b.ID), VerifyRequest{Verifier: "Zhao Min"}, &r); st != 200 || r.Status != StatusVerifying {
		t.Errorf("verify: %d %+v", st, r)
	}
	if st := postJSON(t, fmt.Sprintf("%s/%d/assign", base, b.ID), AssignRequest{Assignee: "Sun Li", Unit: "T2 team"}, &r); st != 200 || r.Assignee != "Sun Li" {
		t.Errorf("assign: %d %+v", st, r)
	}
	if st := postJSON(t, fmt.Sprintf("%s/%d/reopen", base, a.ID), ReopenRequest{Reason: "rekindled"}, &r); st != 200 || r.Status != StatusAssigned {
		t.Errorf("reopen: %d %+v", st, r)
	}
	h, _ := e.svc.History(t.Context(), a.ID)
	if last := h[len(h)-1]; last.Action != "reopened" || last.Actor != "tester" {
		t.Errorf("reopen not audited: %+v", last)
	}
}

// status=open lists new, assigned and verifying reports (the console's queue); several
// statuses may be given comma-separated (or repeated); a wrong one names those accepted.
func TestHTTPListOpenAndSeveralStatuses(t *testing.T) {
	e, srv := httpEnv(t, nil)
	a, b, c := scenario(t, e, srv) // a and c closed, b assigned
	d := reportAt(t, e, 25.30012, 100.41233)
	if _, err := e.svc.StartVerifying(t.Context(), b.ID, "x", VerifyRequest{Verifier: "Zhao Min"}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	e.importString(t, viirsHeader+viirsRow(25.2, 100.51, e.clk.Now().Add(-time.Hour), "N", 1)) // outside every zone: new
	n := reportAt(t, e, 25.2, 100.51)
	if d.ID != b.ID || n.Status != StatusNew {
		t.Fatalf("setup: %+v %+v", d, n)
	}
	base := srv.URL + "/api/v1/hotspots/reports"
	for q, want := range map[string][]int64{
		"?status=open":                  {n.ID, b.ID},
		"?status=open&limit=1&offset=1": {b.ID},
		"?status=verifying,new":         {n.ID, b.ID},
		"?status=new,%20closed":         {n.ID, c.ID, a.ID},
		"?status=closed&status=new":     {n.ID, c.ID, a.ID},
		"?status=open,closed&zone=t1":   {c.ID, a.ID},
		"?status=open,merged,assigned":  {n.ID, b.ID},
		"?status=open&overdue=true":     {b.ID},
		"?status=,":                     {n.ID, c.ID, b.ID, a.ID},
	} {
		var out struct{ Reports []Report }
		if st := do(t, "GET", base+q, "", nil, &out); st != 200 {
			t.Errorf("%s: %d", q, st)
			continue
		}
		var got []int64
		for _, r := range out.Reports {
			got = append(got, r.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
	for _, q := range []string{"?status=burning", "?status=open,Closed", "?status=new+closed"} {
		resp, err := http.Get(base + q)
		if err != nil {
			t.Fatal(err)
		}
		var eb web.ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(eb.Error.Message, "want new, assigned, verifying, closed, merged or open") {
			t.Errorf("%s: %d %q", q, resp.StatusCode, eb.Error.Message)
		}
	}
	// The exports take the same filter.
	resp, err := http.Get(srv.URL + "/api/v1/hotspots/export.geojson?status=open")
	if err != nil {
		t.Fatal(err)
	}
	var fc struct{ Features []json.RawMessage }
	json.NewDecoder(resp.Body).Decode(&fc)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(fc.Features) != 2 {
		t.Errorf("geojson status=open: %d, %d features", resp.StatusCode, len(fc.Features))
	}
}

func TestHTTPPhotos(t *testing.T) {
	e, srv := httpEnv(t, nil)
	r := forestReport(t, e)
	url := fmt.Sprintf("%s/api/v1/hotspots/reports/%d/photos", srv.URL, r.ID)
	png := pngBytes(t)
	ct, body := multipartBody(t, [][2]string{{"../../../etc/cron.d/evil.sh", string(png)}}, nil)
	var rep struct{ Photos []Photo }
	if st := do(t, "POST", url, ct, body, &rep); st != 201 || len(rep.Photos) != 1 {
		t.Fatalf("upload: %d %+v", st, rep)
	}
	p := rep.Photos[0]
	if p.ContentType != "image/png" || strings.Contains(p.File, "evil") || !regexp.MustCompile(`^\d+/[0-9a-f]{32}\.png$`).MatchString(p.File) {
		t.Fatalf("stored as %+v", p)
	}
	ct, body = multipartBody(t, [][2]string{{"photo.jpg", "MZ\x90\x00 an executable"}}, nil)
	if st := do(t, "POST", url, ct, body, nil); st != 400 {
		t.Errorf("non-image: %d", st)
	}
	if st := do(t, "POST", url, "image/png", bytes.NewReader(png), nil); st != 400 {
		t.Errorf("not multipart: %d", st)
	}
	resp, err := http.Get(srv.URL + "/api/v1/hotspots/photos/" + p.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, png) || resp.Header.Get("Content-Type") != "image/png" ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("download: %d %v", resp.StatusCode, resp.Header)
	}
	for id, want := range map[string]int{"zz": 400, "..%2F..%2Fetc": 400, strings.Repeat("a", 32): 404} {
		if st := do(t, "GET", srv.URL+"/api/v1/hotspots/photos/"+id, "", nil, nil); st != want {
			t.Errorf("photo %q: %d, want %d", id, st, want)
		}
	}
	es, small := httpEnv(t, func(c *Config, _ *Deps) { c.MaxPhotoBytes = 40 })
	rs := forestReport(t, es)
	ct, body = multipartBody(t, [][2]string{{"p.png", string(png)}}, nil)
	if st := do(t, "POST", fmt.Sprintf("%s/api/v1/hotspots/reports/%d/photos", small.URL, rs.ID), ct, body, nil); st != 413 {
		t.Errorf("oversize photo: %d", st)
	}
}

func TestHTTPExportsAndStats(t *testing.T) {
	e, srv := httpEnv(t, nil)
	a, b, c := scenario(t, e, srv)

	resp, err := http.Get(srv.URL + "/api/v1/hotspots/export.csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv: %v %v", err, resp.Header)
	}
	if fmt.Sprint(recs[0]) != fmt.Sprint(csvHeader()) || len(recs) != 4 {
		t.Fatalf("csv header %v, %d records", recs[0], len(recs))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	byID := map[string][]string{}
	for _, r := range recs[1:] {
		byID[r[col["id"]]] = r
	}
	ra := byID[fmt.Sprint(a.ID)]
	if ra[col["outcome"]] != "林火" || ra[col["status"]] != "closed" || ra[col["verifier"]] != "Li Wei" ||
		ra[col["overdue"]] != "false" || ra[col["zone_path"]] != "County / T1 / V11" || ra[col["corrected_lat"]] != "25.21250" {
		t.Errorf("csv row A %v", ra)
	}
	if note := ra[col["note"]]; !strings.HasPrefix(note, "'=") {
		t.Errorf("formula not defused: %q", note)
	}
	if rc := byID[fmt.Sprint(c.ID)]; rc[col["outcome"]] != "误报" || rc[col["overdue"]] != "true" {
		t.Errorf("csv row C %v", rc)
	}
	// Filters apply to exports too.
	resp, _ = http.Get(srv.URL + "/api/v1/hotspots/export.csv?status=closed&zone=v11")
	recs, _ = csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if len(recs) != 2 {
		t.Errorf("filtered csv: %d records", len(recs))
	}

	var fc struct {
		Type     string
		Features []struct {
			Type     string
			ID       int64
			Geometry struct {
				Type        string
				Coordinates []float64
			}
			Properties Report
		}
	}
	if st := do(t, "GET", srv.URL+"/api/v1/hotspots/export.geojson", "", nil, &fc); st != 200 || fc.Type != "FeatureCollection" || len(fc.Features) != 3 {
		t.Fatalf("geojson: %d %+v", st, fc)
	}
	for _, f := range fc.Features {
		if f.Type != "Feature" || f.Geometry.Type != "Point" || len(f.Geometry.Coordinates) != 2 || f.Properties.ID != f.ID {
			t.Errorf("feature %+v", f)
		}
		switch f.ID {
		case a.ID: // the verifier's corrected position, lon first
			if f.Geometry.Coordinates[0] != 100.2201 || f.Geometry.Coordinates[1] != 25.2125 || f.Properties.Outcome != "林火" {
				t.Errorf("feature A %+v", f)
			}
		case b.ID:
			if f.Geometry.Coordinates[0] != b.Lon || f.Geometry.Coordinates[1] != b.Lat {
				t.Errorf("feature B %+v", f)
			}
		}
	}

	var st Stats
	if code := do(t, "GET", srv.URL+"/api/v1/hotspots/stats", "", nil, &st); code != 200 {
		t.Fatal(code)
	}
	type row struct {
		received, open, closed, onTime, overdue int
		outcomes                                string
	}
	summary := func(z ZoneStats) row {
		return row{z.Received, z.Open, z.Closed, z.VerifiedOnTime, z.Overdue, fmt.Sprint(z.ByOutcome)}
	}
	want := map[string]row{
		"total": {3, 1, 2, 1, 2, "map[林火:1 误报:1]"},
		"c":     {3, 1, 2, 1, 2, "map[林火:1 误报:1]"},
		"t1":    {2, 0, 2, 1, 1, "map[林火:1 误报:1]"},
		"v11":   {1, 0, 1, 1, 0, "map[林火:1]"},
		"t2":    {1, 1, 0, 0, 1, "map[]"},
	}
	got := map[string]row{"total": summary(st.Total)}
	names := map[string]string{}
	for _, z := range st.Zones {
		got[z.ZoneID] = summary(z)
		names[z.ZoneID] = z.Zone
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stats\n got %v\nwant %v", got, want)
	}
	if names["v11"] != "County / T1 / V11" {
		t.Errorf("zone names %v", names)
	}
	// A window that ends before the reports were created counts nothing.
	if code := do(t, "GET", srv.URL+"/api/v1/hotspots/stats?until="+t0.Add(-time.Hour).Format(time.RFC3339), "", nil, &st); code != 200 || st.Total.Received != 0 {
		t.Errorf("empty window: %d %+v", code, st.Total)
	}
	if code := do(t, "GET", srv.URL+"/api/v1/hotspots/stats?since=x", "", nil, nil); code != 400 {
		t.Errorf("bad since: %d", code)
	}
}
