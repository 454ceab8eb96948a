// Package web is Lookout's thin HTTP edge: a route table entry type, JSON
// encoding, strict JSON decoding with body limits, and the one place where
// domain errors (package errs kinds) become status codes and stable error codes.
// Handlers decode, call a domain package, encode — nothing more.
package web

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/errs"
)

// Route is one row of the gateway's route table: method, Go 1.22 ServeMux pattern,
// the role it requires and the handler. MaxBody caps the request body (0 = DefaultMaxBody).
type Route struct {
	Method  string
	Pattern string // e.g. "/api/v1/devices/{id}"
	Role    auth.Role
	Handler http.HandlerFunc
	MaxBody int64
	// Audit names the action recorded in the audit log for state-changing routes
	// ("" for reads). The auth middleware writes the entry after a 2xx reply.
	Audit string
	// QueryToken accepts an API token in ?token= (GET only) for pages opened
	// from a link and for EventSource, which cannot send headers. Elsewhere a
	// token in a URL would only end up in proxy and browser logs.
	QueryToken bool
}

// DefaultMaxBody is the request body limit when a route sets none.
const DefaultMaxBody = 1 << 20

// ErrorBody is the JSON shape of every error reply: a stable machine code and a
// message safe to show (no internal detail).
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// JSON writes v as JSON with the given status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// Error writes err as a JSON error reply. Kinds from package errs map to status
// codes; anything else is a 500 whose detail is logged, not sent.
func Error(w http.ResponseWriter, r *http.Request, err error) {
	status, code := Status(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		slog.Error("http handler failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	}
	var body ErrorBody
	body.Error.Code = code
	body.Error.Message = msg
	JSON(w, status, body)
}

// Status maps an error to an HTTP status and a stable error code.
func Status(err error) (int, string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), errors.Is(err, errs.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, errs.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, errs.ErrInvalid):
		return http.StatusBadRequest, "invalid"
	case errors.Is(err, errs.ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, errs.ErrUnauthorized):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, errs.ErrForbidden):
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, errs.ErrRateLimited):
		return http.StatusTooManyRequests, "rate_limited"
	case errors.Is(err, errs.ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

// Decode reads a JSON body strictly into v: unknown fields, keys in another
// case than the field's, repeated keys, a body of null and trailing data are
// errors (wrapped as errs.ErrInvalid), and an over-limit body is
// errs.ErrTooLarge. The route's MaxBody is applied by the router before the
// handler runs.
func Decode(r *http.Request, v any) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("request body: %w", errs.ErrTooLarge)
		}
		return fmt.Errorf("request body: %v: %w", err, errs.ErrInvalid)
	}
	if string(bytes.TrimSpace(data)) == "null" {
		return fmt.Errorf("request body: null: %w", errs.ErrInvalid)
	}
	if err := checkKeys(data, reflect.TypeOf(v)); err != nil {
		return fmt.Errorf("request body: %v: %w", err, errs.ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %v: %w", err, errs.ErrInvalid)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("request body: trailing data after JSON value: %w", errs.ErrInvalid)
	}
	return nil
}

// PathID parses a positive integer path value such as {id}; a malformed one is
// errs.ErrInvalid naming what it identifies ("alert id", "report id").
func PathID(r *http.Request, name, what string) (int64, error) {
	v := r.PathValue(name)
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s %q: %w", what, v, errs.ErrInvalid)
	}
	return id, nil
}

// SplitList splits a comma-separated list — a query parameter, a flag or an
// environment value — trimming spaces and dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// PageCSP is the Content-Security-Policy of a self-contained HTML page: only
// its one inline <script> runs (allowed by its SHA-256, so no injected script
// can), inline styles apply, and extra adds the page's other directives
// ("connect-src 'self'; …"). Everything else is refused.
func PageCSP(page []byte, extra string) string {
	s := string(page)
	i := strings.Index(s, "<script>")
	j := strings.Index(s, "</script>")
	if i < 0 || j < i {
		return "default-src 'none'; style-src 'unsafe-inline'; " + extra
	}
	sum := sha256.Sum256([]byte(s[i+len("<script>") : j]))
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; style-src 'unsafe-inline'; " + extra
}

// ServePage writes a self-contained HTML page with its policy (see PageCSP),
// never cached stale and never sniffed as anything else.
func ServePage(w http.ResponseWriter, page []byte, csp string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(page)
}

// Recover turns a panic in a handler into a logged, counted 500 with the usual
// JSON error body (when nothing was written yet), instead of net/http's
// dropped connection: the client gets an answer, the operator a stack trace,
// and a metric says it happened. http.ErrAbortHandler passes through.
func Recover(next http.Handler, log *slog.Logger, panics func()) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &trackingWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			if panics != nil {
				panics()
			}
			log.Error("http handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if !rw.wrote {
				Error(rw, r, fmt.Errorf("handler panicked: %v", v))
			}
		}()
		next.ServeHTTP(rw, r)
	})
}

// trackingWriter notes whether the reply has started; it passes Flush (the
// event stream), Hijack and Unwrap (http.ResponseController) through.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *trackingWriter) Flush() {
	w.wrote = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack passes a connection takeover through (wrappers below may implement it).
func (w *trackingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.wrote = true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}
