package tsdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	http2 "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/lookoutfire/lookout/spool"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{0, 100 * time.Millisecond}, {1, 200 * time.Millisecond}, {3, 800 * time.Millisecond},
		{6, 6400 * time.Millisecond}, {7, 10 * time.Second}, {60, 10 * time.Second}, {1000, 10 * time.Second}} {
		if got := Backoff(tc.attempt); got != tc.want {
			t.Errorf("Backoff(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	he := func(code int, msg string) error {
		return fmt.Errorf("influx write: %w", &http2.Error{StatusCode: code, Code: "x", Message: msg})
	}
	for _, tc := range []struct {
		name string
		err  error
		want errKind
	}{
		{"refused", http2.NewError(&net.OpError{Op: "dial", Err: errors.New("connection refused")}), kindNetwork},
		{"eof", http2.NewError(io.ErrUnexpectedEOF), kindNetwork},
		{"deadline", http2.NewError(context.DeadlineExceeded), kindTimeout},
		{"plain deadline", fmt.Errorf("w: %w", context.DeadlineExceeded), kindTimeout},
		{"500", he(500, "timeout"), kindServer},
		{"503", he(503, "unavailable"), kindServer},
		{"429", he(429, "slow down"), kindThrottled},
		{"type conflict", he(400, `partial write: field type conflict: input field "x" on measurement "m" is type string, already exists as type float dropped=1`), kindRejected},
		{"unparsable", he(400, `unable to parse 'garbage': missing fields`), kindRejected},
		{"too large", he(413, "request entity too large"), kindRejected},
		{"database missing", he(404, `database not found: "nope"`), kindConfig},
		{"rp missing", he(400, `retention policy not found: nope`), kindConfig},
		{"unauthorized", he(401, "authorization failed"), kindConfig},
		{"forbidden", he(403, "forbidden"), kindConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Fatalf("classify(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

func TestNewWriterValidates(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), spool.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	cfg := DefaultConfig()
	cfg.BatchSize = 0
	if _, err := NewWriter(cfg, sp, nil, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad batch size: %v", err)
	}
	if _, err := NewWriter(DefaultConfig(), nil, nil, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("no spool: %v", err)
	}
}
