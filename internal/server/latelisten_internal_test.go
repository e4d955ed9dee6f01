//go:build linux

package server

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestLateListenerClosesWithoutResettingACall is the shutdown of the gRPC
// port under a storm of new connections, each carrying one call as nginx
// sends them (a new connection per call, the call written as soon as the
// connection is up). nginx passes a call on when its connection is
// refused or never completes, never after it has sent the call: every
// connection that came up must be answered, none reset. Accept is slow
// (as on a loaded machine), so connections queue. IPv4, IPv6, and IPv4
// on a port bound to every address (IPv6 with IPv4 mapped).
func TestLateListenerClosesWithoutResettingACall(t *testing.T) {
	for _, c := range []struct{ name, bind, dialHost string }{
		{"ipv4", "127.0.0.1:0", "127.0.0.1"},
		{"ipv6", "[::1]:0", "::1"},
		{"ipv4-on-every-address", ":0", "127.0.0.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := bindLate(c.bind)
			if err != nil {
				if c.name == "ipv6" {
					t.Skipf("no IPv6 loopback here: %v", err)
				}
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(l.Addr().String())
			closeUnderAStorm(t, l, net.JoinHostPort(c.dialHost, port))
		})
	}
}

func closeUnderAStorm(t *testing.T, l *lateListener, addr string) {
	if err := l.open(); err != nil {
		t.Fatal(err)
	}
	var served sync.WaitGroup
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			served.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				b := make([]byte, 1)
				if _, err := io.ReadFull(c, b); err == nil {
					_, _ = c.Write([]byte("y"))
				}
			})
			time.Sleep(2 * time.Millisecond) // a busy accept loop
		}
	}()

	var answered, passedOn, reset atomic.Int64
	var firstMu sync.Mutex
	var firstReset error
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for range 32 {
		clients.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil { // refused, or no handshake: a balancer passes it on
					passedOn.Add(1)
					continue
				}
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				b := make([]byte, 1)
				_, err = c.Write([]byte("x"))
				if err == nil {
					_, err = io.ReadFull(c, b)
				}
				c.Close()
				if err == nil && b[0] == 'y' {
					answered.Add(1)
					continue
				}
				reset.Add(1)
				firstMu.Lock()
				if firstReset == nil {
					firstReset = err
				}
				firstMu.Unlock()
				if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Logf("a call on an open connection failed: %v", err)
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := l.stopTaking(acceptedGrace); err != nil {
		t.Fatalf("the SYN filter could not be attached: %v", err)
	}
	_ = l.Close()
	<-accepting
	time.Sleep(1500 * time.Millisecond) // the dropped SYNs are sent again, and refused
	close(stop)
	clients.Wait()
	served.Wait()
	t.Logf("answered %d, refused or never connected %d, cut after connecting %d", answered.Load(), passedOn.Load(), reset.Load())
	if answered.Load() == 0 || passedOn.Load() == 0 {
		t.Fatalf("the storm did not reach both sides of the close: %d answered, %d passed on", answered.Load(), passedOn.Load())
	}
	if n := reset.Load(); n > 0 {
		t.Errorf("%d calls sent on a connection that came up were cut instead of answered (first: %v)", n, firstReset)
	}
}
