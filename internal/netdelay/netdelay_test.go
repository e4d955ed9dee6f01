package netdelay_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/netdelay"
)

// TestDelaysEachDirectionAndKeepsTheBytes sends data through the proxy to
// an echo server: every byte comes back, no sooner than one delay each way.
func TestDelaysEachDirectionAndKeepsTheBytes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	const delay = 20 * time.Millisecond
	p, err := netdelay.Start(l.Addr().String(), delay)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("keyservice"), 10_000)
	start := time.Now()
	go func() { _, _ = c.Write(msg) }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 2*delay {
		t.Fatalf("round trip %s, want at least %s (one delay each way)", rtt, 2*delay)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("the bytes that came back differ from those sent")
	}
}
