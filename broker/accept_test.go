package broker

import (
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// failingListener fails its first n accepts the way a process out of file
// descriptors does.
type failingListener struct {
	net.Listener
	n atomic.Int32
}

func (f *failingListener) Accept() (net.Conn, error) {
	if f.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return f.Listener.Accept()
}

// A failed accept is waited out: the listener keeps serving afterwards.
func TestListenerSurvivesAcceptErrors(t *testing.T) {
	m, err := newGuardMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	l := newGuardedListener("t", "127.0.0.1:0", nil, Limits{}, 0, nil, m, nil)
	if err := l.Init(slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: l.ln}
	fl.n.Store(4)
	l.ln = fl
	got := make(chan struct{}, 1)
	go l.Serve(func(_ string, c net.Conn) error {
		got <- struct{}{}
		return c.Close()
	})
	defer l.Close(func(string) {})
	c, err := net.Dial("tcp", fl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection served after the accept errors: the listener stopped")
	}
	if n := testutil.ToFloat64(m.acceptErrors); n != 4 {
		t.Errorf("accept errors counted %v, want 4", n)
	}
}
