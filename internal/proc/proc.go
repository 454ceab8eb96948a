// Package proc starts and stops the child processes that benchmarks and
// integration tests run (influxd, Mosquitto, Telegraf, the gateway) on
// loopback ports, and waits for them to listen.
package proc

import (
	"fmt"
	"math/rand/v2"
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

// RestartablePort returns a free TCP port on 127.0.0.1 below the kernel's
// ephemeral range (net.ipv4.ip_local_port_range), for a server that a test
// stops and starts again on the same port. A port from FreePort lies inside
// that range, so while its server is down the kernel may hand it to any
// outgoing connection on the machine and the restart then fails to bind (seen
// in about one run in a hundred of the 30 s InfluxDB outage tests). The kernel
// never picks ports outside the range on its own, and the other test servers
// listen on FreePort ports, so nothing takes this one in the meantime.
func RestartablePort() (int, error) {
	lo := ephemeralLow()
	const floor = 10000 // leave the well-known and registered low ports alone
	if lo-floor < 1000 {
		return FreePort() // no room below the range: the best we can do
	}
	return portIn(floor, lo, 100)
}

// portIn returns a free loopback port of [from, to) not handed out before,
// trying random ones, then (after tries) each in turn.
func portIn(from, to, tries int) (int, error) {
	given.mu.Lock()
	defer given.mu.Unlock()
	free := func(port int) bool {
		if given.ports[port] {
			return false
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false // in use
		}
		l.Close()
		given.ports[port] = true
		return true
	}
	for range tries {
		if port := from + rand.IntN(to-from); free(port) {
			return port, nil
		}
	}
	for port := from; port < to; port++ {
		if free(port) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free loopback port in [%d, %d)", from, to)
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 when
// it cannot be read: Linux's default, and the BSDs' range starts higher).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo < 1 || lo > 65535 {
		return 32768
	}
	return lo
}

// given records the ports FreePort and RestartablePort handed out (see FreePort).
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
