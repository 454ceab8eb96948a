package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/errs"
)

func TestStatusMapsKinds(t *testing.T) {
	cases := []struct {
		err  error
		code int
		name string
	}{
		{fmt.Errorf("device x: %w", errs.ErrNotFound), 404, "not_found"},
		{fmt.Errorf("bad: %w", errs.ErrInvalid), 400, "invalid"},
		{errs.ErrConflict, 409, "conflict"},
		{errs.ErrUnauthorized, 401, "unauthorized"},
		{errs.ErrForbidden, 403, "forbidden"},
		{errs.ErrTooLarge, 413, "too_large"},
		{&http.MaxBytesError{Limit: 1}, 413, "too_large"},
		{errs.ErrRateLimited, 429, "rate_limited"},
		{errs.ErrUnavailable, 503, "unavailable"},
		{errors.New("disk on fire"), 500, "internal"},
	}
	for _, c := range cases {
		code, name := Status(c.err)
		if code != c.code || name != c.name {
			t.Errorf("Status(%v) = %d %s, want %d %s", c.err, code, name, c.code, c.name)
		}
	}
}

// A 500 never leaks the internal error text.
func TestErrorHidesInternalDetail(t *testing.T) {
	rec := httptest.NewRecorder()
	Error(rec, httptest.NewRequest("GET", "/x", nil), errors.New("sqlite: /var/secret/path locked"))
	var body ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 500 || body.Error.Code != "internal" || strings.Contains(rec.Body.String(), "secret") {
		t.Fatalf("reply %d %s", rec.Code, rec.Body.String())
	}
}

func TestDecodeIsStrict(t *testing.T) {
	type in struct {
		Name string `json:"name"`
	}
	for body, wantErr := range map[string]error{
		`{"name":"a"}`:           nil,
		`{"name":"a","extra":1}`: errs.ErrInvalid,
		`{"name":"a"} {}`:        errs.ErrInvalid,
		`{"name":`:               errs.ErrInvalid,
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		var v in
		err := Decode(r, &v)
		if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
			t.Errorf("Decode(%s) = %v, want %v", body, err, wantErr)
		}
	}
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"name":"`+strings.Repeat("x", 100)+`"}`))
	r.Body = http.MaxBytesReader(rec, r.Body, 10)
	var v in
	if err := Decode(r, &v); !errors.Is(err, errs.ErrTooLarge) {
		t.Errorf("over-limit body: %v", err)
	}
}

// strictIn exercises Decode's key checks: nested structs, slices of structs,
// maps, an embedded struct, pass-through values.
type strictIn struct {
	strictBase
	Name  string            `json:"name"`
	Duty  []strictContact   `json:"duty"`
	Tags  map[string]string `json:"tags"`
	Raw   json.RawMessage   `json:"raw"`
	Any   any               `json:"any"`
	When  time.Time         `json:"when"`
	Inner *strictContact    `json:"inner"`
	Plain int               // no tag: the Go name
}

type strictBase struct {
	Zone string `json:"zone"`
	Name string `json:"base_name"`
}

type strictContact struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
}

// promoted fields resolved as encoding/json does: Deep's x lies at depth 2,
// Shallow's at depth 1 and wins, so x holds a strictContact.
type strictDeep struct {
	X string `json:"x"`
}
type strictOuter struct{ strictDeep }
type strictShallow struct {
	X strictContact `json:"x"`
}
type strictPromoted struct {
	strictOuter
	strictShallow
}

func TestDecodePromotedFieldsByDepth(t *testing.T) {
	var v strictPromoted
	err := Decode(httptest.NewRequest("POST", "/", strings.NewReader(`{"x":{"Name":"a"}}`)), &v)
	if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), `key "x.Name": keys are case-sensitive`) {
		t.Fatalf("Decode = %v, want the case variant inside x refused", err)
	}
	if err := Decode(httptest.NewRequest("POST", "/", strings.NewReader(`{"x":{"name":"a"}}`)), &v); err != nil || v.strictShallow.X.Name != "a" {
		t.Fatalf("Decode = %v, %+v", err, v)
	}
}

func TestDecodeRefusesCaseVariantsAndRepeats(t *testing.T) {
	tests := []struct {
		body string
		ok   bool
		want string // in the error
	}{
		{`{"name":"a","zone":"z","base_name":"b","Plain":1}`, true, ""},
		{`{"duty":[{"name":"x","phone":"1"}],"tags":{"A":"1","a":"2"},"inner":{"name":"y"}}`, true, ""},
		{`{"raw":{"Name":1,"Name":2},"any":{"x":1},"when":"2026-11-23T08:00:00Z"}`, true, ""},
		{`{"Name":"a"}`, false, `key "Name": keys are case-sensitive, this one is "name"`},
		{`{"ZONE":"z"}`, false, `key "ZONE": keys are case-sensitive, this one is "zone"`},
		{`{"plain":1}`, false, `key "plain": keys are case-sensitive, this one is "Plain"`},
		{`{"duty":[{"name":"x"},{"Phone":"1"}]}`, false, `key "duty[1].Phone": keys are case-sensitive`},
		{`{"inner":{"NAME":"y"}}`, false, `key "inner.NAME"`},
		{`{"name":"a","name":"b"}`, false, `key "name" appears twice`},
		{`{"tags":{"k":"1","k":"2"}}`, false, `key "tags.k" appears twice`},
		{`{"any":{"k":1,"k":2}}`, false, `key "any.k" appears twice`},
		{`null`, false, "null"},
		{` null `, false, "null"},
		{`{"nope":1}`, false, `unknown field "nope"`},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		var v strictIn
		err := Decode(r, &v)
		if tc.ok {
			if err != nil {
				t.Errorf("Decode(%s) = %v, want success", tc.body, err)
			}
			continue
		}
		if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%s) = %v, want ErrInvalid mentioning %q", tc.body, err, tc.want)
		}
	}
	// what was accepted decoded as encoding/json would
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"name":"a","zone":"z","duty":[{"name":"x","phone":"1"}],"Plain":3}`))
	var v strictIn
	if err := Decode(r, &v); err != nil || v.Name != "a" || v.Zone != "z" || len(v.Duty) != 1 || v.Duty[0].Phone != "1" || v.Plain != 3 {
		t.Fatalf("decoded %+v, %v", v, err)
	}
}

// FuzzStrictDecode: Decode never panics, and whatever it accepts
// encoding/json accepts too, with the same result (it only refuses more).
func FuzzStrictDecode(f *testing.F) {
	f.Add(`{"name":"a","duty":[{"name":"x","phone":"1"}],"tags":{"a":"b"},"zone":"z"}`)
	f.Add(`{"Name":"a","name":"b"}`)
	f.Add(`{"raw":[1,{"a":2}],"any":null,"when":"2026-11-23T08:00:00Z","inner":{"phone":"2"}}`)
	f.Add(`[1,2]`)
	f.Fuzz(func(t *testing.T, body string) {
		var strict strictIn
		err := Decode(httptest.NewRequest("POST", "/", strings.NewReader(body)), &strict)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			// What encoding/json (strict about unknown fields) takes, Decode
			// refuses only for its own three reasons.
			dec := json.NewDecoder(strings.NewReader(body))
			dec.DisallowUnknownFields()
			var lax strictIn
			if dec.Decode(&lax) == nil && !dec.More() {
				if msg := err.Error(); !strings.Contains(msg, "keys are case-sensitive") && !strings.Contains(msg, "appears twice") &&
					!strings.Contains(msg, "request body: null") && !strings.Contains(msg, "trailing data") {
					t.Fatalf("Decode refused %q, which encoding/json takes: %v", body, err)
				}
			}
			return
		}
		var lax strictIn
		if err := json.Unmarshal([]byte(body), &lax); err != nil {
			t.Fatalf("Decode accepted %q, encoding/json refuses it: %v", body, err)
		}
		a, _ := json.Marshal(strict)
		b, _ := json.Marshal(lax)
		if !bytes.Equal(a, b) {
			t.Fatalf("Decode gave %s, encoding/json %s", a, b)
		}
	})
}

func TestPathID(t *testing.T) {
	for v, ok := range map[string]bool{"12": true, "0": false, "-3": false, "x": false, "": false} {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetPathValue("id", v)
		id, err := PathID(r, "id", "alert id")
		if ok != (err == nil) || (ok && id != 12) {
			t.Errorf("PathID(%q) = %d, %v", v, id, err)
		}
		if err != nil && !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("PathID(%q) error not ErrInvalid: %v", v, err)
		}
	}
}

// PageCSP allows exactly the page's inline script, by its SHA-256; a page
// without one runs no script at all.
func TestPageCSP(t *testing.T) {
	page := []byte("<html><script>alert(1)</script></html>")
	sum := sha256.Sum256([]byte("alert(1)"))
	want := "script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	csp := PageCSP(page, "connect-src 'self'")
	if !strings.HasPrefix(csp, "default-src 'none'; ") || !strings.Contains(csp, want) || !strings.HasSuffix(csp, "connect-src 'self'") {
		t.Fatalf("csp %q, want default-src 'none', %s and the extra directives", csp, want)
	}
	if csp := PageCSP([]byte("<p>no script</p>"), "img-src 'self'"); strings.Contains(csp, "script-src") {
		t.Fatalf("scriptless page: %q", csp)
	}
	rec := httptest.NewRecorder()
	ServePage(rec, page, csp)
	if rec.Header().Get("Content-Security-Policy") != csp || rec.Header().Get("X-Content-Type-Options") != "nosniff" ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") || rec.Body.String() != string(page) {
		t.Fatalf("ServePage headers %v body %q", rec.Header(), rec.Body.String())
	}
}

func TestRecover(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	n := 0
	h := Recover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" {
			w.WriteHeader(http.StatusAccepted)
		}
		panic("boom: " + r.URL.Path)
	}), log, func() { n++ })
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest("GET", "/early", nil))
	if rr.Code != 500 || !strings.Contains(rr.Body.String(), `"internal error"`) {
		t.Errorf("panic before the reply: %d %s, want the JSON 500", rr.Code, rr.Body)
	}
	rr = httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest("GET", "/late", nil))
	if rr.Code != http.StatusAccepted || rr.Body.Len() != 0 {
		t.Errorf("panic after the reply started: %d %q, want the started reply left alone", rr.Code, rr.Body)
	}
	if n != 2 || !strings.Contains(logs.String(), "boom: /late") || !strings.Contains(logs.String(), "stack=") {
		t.Errorf("panics counted %d, log %q", n, logs.String())
	}
	// The wrapper keeps the event stream's Flusher, and hijacking reaches the connection.
	Recover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("Flusher lost")
		}
	}), log, nil).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	srv := httptest.NewServer(Recover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer c.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		_ = buf.Flush()
	}), log, nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hijacked" {
		t.Errorf("hijacked reply %q", body)
	}
	// An aborted handler still aborts.
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler passed on", v)
		}
	}()
	Recover(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }), log, nil).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}
