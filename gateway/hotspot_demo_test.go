package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"mime/multipart"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/auth"
)

// Issue 5's demo, in-process through the real route table and guard: a FIRMS
// file dropped into the inbox becomes reports in the right zones; a verifier
// closes one with an outcome and a photo; statistics and exports show it.
func TestHotspotInboxToClosedReport(t *testing.T) {
	a := testApp(t)
	c := makeCreds(t, a)
	h := apiMux(a.routes(), a.guard)
	ctx := context.Background()

	// Two hotspots at the seed fire-danger stations: one in village qs-v11's forest, one in grid qs-g211.
	acq := time.Now().UTC().Add(-30 * time.Minute)
	csv := "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_ti5,frp,daynight\n" +
		fmt.Sprintf("31.575,106.93,341.2,0.39,0.36,%s,%s,N20,VIIRS,n,2.0NRT,290.1,5.3,D\n", acq.Format("2006-01-02"), acq.Format("1504")) +
		fmt.Sprintf("31.575,107.035,356.8,0.39,0.36,%s,%s,N20,VIIRS,h,2.0NRT,291.0,12.9,D\n", acq.Format("2006-01-02"), acq.Format("1504"))
	inbox := filepath.Join(a.cfg.DataDir, "hotspots", "inbox")
	if err := os.WriteFile(filepath.Join(inbox, "viirs.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	// The first poll notes the file; the next one (an interval later) takes it, unchanged since.
	for _, now := range []time.Time{time.Now(), time.Now().Add(time.Minute)} {
		if err := a.hotspots.Poll(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(inbox, "done", "viirs.csv")); err != nil {
		t.Errorf("imported file not moved to done/: %v", err)
	}

	call := func(method, path, ctype string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c[auth.RoleVerifier])
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	var list struct {
		Reports []struct {
			ID       int64  `json:"id"`
			ZoneID   string `json:"zone_id"`
			Forest   string `json:"forest"`
			Assignee string `json:"assignee"`
			Status   string `json:"status"`
		} `json:"reports"`
	}
	rec := call("GET", "/api/v1/hotspots/reports", "", nil)
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &list) != nil {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	zones := map[string]int64{}
	for _, r := range list.Reports {
		zones[r.ZoneID] = r.ID
		if r.Assignee == "" || r.Status != "assigned" {
			t.Errorf("report %d not assigned to a duty contact: %+v", r.ID, r)
		}
	}
	id, ok := zones["qs-v11"]
	if len(list.Reports) != 2 || !ok || zones["qs-g211"] == 0 {
		t.Fatalf("reports by zone = %v, want qs-v11 and qs-g211", zones)
	}

	// A photo (a real PNG) and the close-out form.
	var img bytes.Buffer
	_ = png.Encode(&img, image.NewRGBA(image.Rect(0, 0, 8, 8)))
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("photo", "../../etc/passwd.png")
	fw.Write(img.Bytes())
	mw.Close()
	if rec := call("POST", fmt.Sprintf("/api/v1/hotspots/reports/%d/photos", id), mw.FormDataContentType(), mp.Bytes()); rec.Code/100 != 2 {
		t.Fatalf("photo upload: %d %s", rec.Code, rec.Body)
	}
	if rec := call("POST", fmt.Sprintf("/api/v1/hotspots/reports/%d/verify", id), "application/json", []byte(`{"verifier":"张三"}`)); rec.Code != 200 {
		t.Fatalf("verify: %d %s", rec.Code, rec.Body)
	}
	if rec := call("POST", fmt.Sprintf("/api/v1/hotspots/reports/%d/close", id), "application/json", []byte(`{"verifier":"张三","note":"no outcome"}`)); rec.Code != 400 {
		t.Fatalf("close without outcome: %d, want 400", rec.Code)
	}
	closeBody, _ := json.Marshal(map[string]any{"outcome": "农事用火", "verifier": "张三", "verified_at": time.Now().UTC(), "note": "straw burning by the field"})
	if rec := call("POST", fmt.Sprintf("/api/v1/hotspots/reports/%d/close", id), "application/json", closeBody); rec.Code != 200 {
		t.Fatalf("close: %d %s", rec.Code, rec.Body)
	}

	var st struct {
		Zones []struct {
			ZoneID         string         `json:"zone_id"`
			Closed         int            `json:"closed"`
			VerifiedOnTime int            `json:"verified_on_time"`
			ByOutcome      map[string]int `json:"by_outcome"`
		} `json:"zones"`
	}
	rec = call("GET", "/api/v1/hotspots/stats", "", nil)
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &st) != nil {
		t.Fatalf("stats: %d %s", rec.Code, rec.Body)
	}
	found := false
	for _, z := range st.Zones {
		if z.ZoneID == "qs-v11" {
			found = z.Closed == 1 && z.VerifiedOnTime == 1 && z.ByOutcome["农事用火"] == 1
		}
	}
	if !found {
		t.Errorf("stats do not show the closed qs-v11 report: %s", rec.Body)
	}
	for _, path := range []string{"/api/v1/hotspots/export.csv", "/api/v1/hotspots/export.geojson"} {
		rec := call("GET", path, "", nil)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "农事用火") {
			t.Errorf("%s: %d, outcome missing:\n%s", path, rec.Code, rec.Body)
		}
	}
}
