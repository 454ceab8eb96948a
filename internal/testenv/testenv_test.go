package testenv

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestInfluxAndMosquittoStart(t *testing.T) {
	in := StartInflux(t)
	req, _ := http.NewRequest(http.MethodPost, in.URL+"/api/v2/write?bucket="+in.Bucket+"&precision=ms",
		strings.NewReader("m,device_id=a v=1 1700000000000\nm,device_id=a v=2 1700000001000\n"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("v2 write: %s", resp.Status)
	}
	if n := in.Count(t, "m", "v"); n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}
	m := StartMosquitto(t)
	WaitTCP(t, m.Addr, time.Second)
}
