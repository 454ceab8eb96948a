package ingest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		acc <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// Every byte written arrives, in order, and Close flushes what is still pending.
func TestBufferedConnCoalescesInOrder(t *testing.T) {
	c, s := tcpPair(t)
	bc := newBufferedConn(c)
	var want bytes.Buffer
	for i := 0; i < 20000; i++ {
		msg := []byte(fmt.Sprintf("ack-%05d;", i))
		want.Write(msg)
		if n, err := bc.Write(msg); err != nil || n != len(msg) {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(s)
		got <- b
	}()
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want.Bytes()) {
			t.Fatalf("received %d bytes, want %d (order or loss)", len(b), want.Len())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("peer never saw EOF")
	}
	if _, err := bc.Write([]byte("x")); err == nil {
		t.Error("write after Close succeeded")
	}
}

// Reads go through the buffer and see what the peer sent.
func TestBufferedConnReads(t *testing.T) {
	c, s := tcpPair(t)
	bc := newBufferedConn(c)
	defer bc.Close()
	go s.Write([]byte{0x40, 0x02, 0x00, 0x01})
	b := make([]byte, 1)
	var got []byte
	for len(got) < 4 {
		if _, err := io.ReadFull(bc, b); err != nil {
			t.Fatal(err)
		}
		got = append(got, b[0])
	}
	if !bytes.Equal(got, []byte{0x40, 0x02, 0x00, 0x01}) {
		t.Fatalf("read %x", got)
	}
}

// A dead peer surfaces as a write error instead of a silent black hole.
func TestBufferedConnReportsWriteFailure(t *testing.T) {
	c, s := tcpPair(t)
	bc := newBufferedConn(c)
	defer bc.Close()
	s.(*net.TCPConn).SetLinger(0)
	s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := bc.Write(make([]byte, 4096)); err != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("writes to a reset connection never failed")
}
