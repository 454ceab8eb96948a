// Package proc starts and stops the child processes that benchmarks and
// integration tests run (influxd, Mosquitto, Telegraf, the gateway) on
// loopback ports, and waits for them to listen.
package proc

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Proc is a running child process.
type Proc struct {
	cmd *exec.Cmd
	log *os.File
}

// Start runs bin with args, the current environment plus env, and its output in dir/logName.
func Start(dir, logName, bin string, env []string, args ...string) (*Proc, error) {
	f, err := os.Create(filepath.Join(dir, logName))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return &Proc{cmd: cmd, log: f}, nil
}

// Stop sends SIGTERM, waits up to 15 s, then kills. Safe on nil.
func (p *Proc) Stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	Terminate(p.cmd, 15*time.Second)
	p.log.Close()
}

// Terminate sends cmd's process SIGTERM, waits up to grace for it to exit,
// then kills it, and reaps it either way. cmd must have been started.
func Terminate(cmd *exec.Cmd, grace time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no earlier call in this process returned. The kernel may hand the same
// ephemeral port to two quick bind(:0) calls once the first listener is
// closed, and a test that starts influxd with an HTTP and an RPC port drawn
// back to back then binds both to one port (influxd's RPC mux answers the HTTP
// probe and the test times out). Ports are a process-wide resource, so the
// record of handed-out ports is too.
func FreePort() (int, error) {
	given.mu.Lock()
	defer given.mu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !given.ports[port] {
			given.ports[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("no fresh loopback port in 100 tries")
}

// given records the ports FreePort handed out (see there).
var given = struct {
	mu    sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// WaitHTTP waits until u answers with a status below 500.
func WaitHTTP(u string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer within %s", u, d)
}

// WaitTCP waits until addr accepts connections.
func WaitTCP(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s", addr)
}
