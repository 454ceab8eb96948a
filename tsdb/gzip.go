package tsdb

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// gzipTransport gzips POST bodies at gzip.BestSpeed and marks them with
// Content-Encoding: gzip (InfluxDB 1.8 and 2.x both accept it on /write and
// /api/v2/write). Compressing a whole batch up front also gives the request a
// Content-Length, so no chunked encoding and no pipe goroutine per request.
type gzipTransport struct {
	next http.RoundTripper
	pool sync.Pool // *gzip.Writer
}

func (g *gzipTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Method != http.MethodPost || r.Header.Get("Content-Encoding") != "" {
		return g.next.RoundTrip(r)
	}
	var buf bytes.Buffer
	zw, _ := g.pool.Get().(*gzip.Writer)
	if zw == nil {
		zw, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	} else {
		zw.Reset(&buf)
	}
	_, err := io.Copy(zw, r.Body)
	r.Body.Close()
	if err == nil {
		err = zw.Close()
	}
	g.pool.Put(zw)
	if err != nil {
		return nil, fmt.Errorf("gzip request body: %w", err)
	}
	r2 := r.Clone(r.Context())
	body := buf.Bytes()
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r2.ContentLength = int64(len(body))
	r2.Header.Set("Content-Encoding", "gzip")
	return g.next.RoundTrip(r2)
}
