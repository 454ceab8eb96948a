package proc

import (
	"fmt"
	"net"
	"testing"
)

// TestRestartablePort: the port lies below the kernel's ephemeral range (so no
// outgoing connection can take it while its server is down), is free, and is
// not handed out twice.
func TestRestartablePort(t *testing.T) {
	lo := ephemeralLow()
	below := lo-10000 >= 1000 // else no room below the range: RestartablePort falls back to FreePort
	seen := map[int]bool{}
	for range 50 {
		port, err := RestartablePort()
		if err != nil {
			t.Fatal(err)
		}
		if below && (port >= lo || port < 10000) {
			t.Fatalf("port %d outside [10000, %d)", port, lo)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatalf("port %d is not free: %v", port, err)
		}
		l.Close()
	}
	// FreePort stays inside the ephemeral range: the two never collide.
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if port < lo {
		t.Fatalf("FreePort gave %d, below the ephemeral range %d", port, lo)
	}
}

// TestPortInSkipsBusy: ports being listened on are never returned, whether
// drawn at random or found by the scan; a full window is an error.
func TestPortInSkipsBusy(t *testing.T) {
	// ports handed out by other tests of this process must not count here
	given.mu.Lock()
	saved := given.ports
	given.ports = map[int]bool{}
	given.mu.Unlock()
	defer func() {
		given.mu.Lock()
		given.ports = saved
		given.mu.Unlock()
	}()
	// a window of 20 ports with all but one held
	from := 0
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for base := 20000; base < 60000 && from == 0; base += 40 {
		held = held[:0]
		ok := true
		for p := base; p < base+20 && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		if ok {
			from = base
		} else {
			for _, l := range held {
				l.Close()
			}
		}
	}
	if from == 0 {
		t.Fatal("no 20 free ports in a row below the ephemeral range")
	}
	spare := from + 7
	held[7].Close()
	port, err := portIn(from, from+20, 50)
	if err != nil {
		t.Fatal(err)
	}
	if port != spare {
		t.Fatalf("portIn returned %d, want the only free port %d", port, spare)
	}
	// spare is now handed out: nothing is left
	if port, err := portIn(from, from+20, 50); err == nil {
		t.Fatalf("portIn returned %d from a window with no free port", port)
	}
}
