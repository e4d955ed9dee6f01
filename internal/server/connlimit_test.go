package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

// dialer dials from src (any of 127.0.0.0/8 is this machine).
func dialer(src string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
}

func dialFrom(t *testing.T, src, dst string) net.Conn {
	t.Helper()
	c, err := dialer(src).Dial("tcp", dst)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", dst, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func httpFrom(src string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: dialer(src).DialContext}, Timeout: 10 * time.Second}
}

func grpcFrom(t *testing.T, src, dst string) keyservicev1.KeyServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(dst, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return dialer(src).DialContext(ctx, "tcp", a)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return keyservicev1.NewKeyServiceClient(conn)
}

// refusedPromptly dials dst from src and says whether the server closed
// the connection without sending a byte (a refused connection: the reset
// may even beat connect's return on loopback), and how long that took.
func refusedPromptly(src, dst string) (bool, time.Duration, error) {
	start := time.Now()
	c, err := dialer(src).Dial("tcp", dst)
	if err != nil {
		return errors.Is(err, syscall.ECONNRESET), time.Since(start), err
	}
	defer c.Close()
	_ = c.SetReadDeadline(start.Add(5 * time.Second))
	n, err := c.Read(make([]byte, 64))
	var ne net.Error
	if n > 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
		return false, time.Since(start), err
	}
	return true, time.Since(start), err
}

// TestConnectionsAreCappedPerAddress: one address holds at most
// KEYSERVICE_MAX_CONNS_PER_ADDR connections on each listener; more are
// closed as soon as they are accepted (and counted), the ones it holds stay
// open, and another address is served meanwhile. (2 x 10,200 idle
// connections used to exhaust the process's file descriptors: nobody was
// served for seconds.)
func TestConnectionsAreCappedPerAddress(t *testing.T) {
	t.Parallel()
	const perAddr, extra = 5, 3
	e := start(t, withConfig(func(c *config.Config) { c.MaxConns, c.MaxConnsPerAddr = 100, perAddr }))
	scraper := httpFrom("127.0.0.9")
	for _, l := range []struct{ name, addr string }{{"grpc", e.srv.GRPCAddr().String()}, {"http", e.srv.HTTPAddr().String()}} {
		t.Run(l.name, func(t *testing.T) {
			metric := func(series string) float64 {
				v, _ := sample(e.metricsVia(t, scraper), fmt.Sprintf(series, l.name))
				return v
			}
			open := func() float64 { return metric(`keyservice_connections_open{listener="%s"}`) }
			base := open()
			var held []net.Conn
			for range perAddr {
				held = append(held, dialFrom(t, "127.0.0.1", l.addr))
			}
			waitFor(t, func() bool { return open() == base+perAddr })
			for i := range extra {
				closed, took, err := refusedPromptly("127.0.0.1", l.addr)
				if !closed {
					t.Fatalf("connection %d from an address at its cap of %d: not closed (%v after %s)", perAddr+i+1, perAddr, err, took)
				}
				t.Logf("connection %d from the same address closed after %s: %v", perAddr+i+1, took.Round(time.Millisecond), err)
			}
			if n := metric(`keyservice_connections_refused_total{listener="%s",reason="per_address"}`); n != extra {
				t.Fatalf("refused per address: %v, want %d", n, extra)
			}
			if l.name == "grpc" {
				if v, err := grpcFrom(t, "127.0.0.2", l.addr).Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "garbage"}); err != nil || v.GetCode() != keyservicev1.Code_CODE_MALFORMED {
					t.Fatalf("a call from another address: %v %v", v, err)
				}
			} else {
				resp, err := httpFrom("127.0.0.2").Get("http://" + l.addr + "/healthz")
				if err != nil {
					t.Fatalf("a request from another address: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("a request from another address: %d", resp.StatusCode)
				}
			}
			if got := open(); got < base+perAddr {
				t.Fatalf("%v connections open, want the %d held still open", got-base, perAddr)
			}
			for _, c := range held {
				c.Close()
			}
			waitFor(t, func() bool { return open() <= base+1 }) // (the other address's client may stay)
		})
	}
}

// TestConnectionsAreCappedPerListener: a listener holds at most
// KEYSERVICE_MAX_CONNS; its last tenth only admits addresses that hold no
// connection yet (a health probe, a new caller), and past the cap every
// new connection is closed; once one closes, a new address is served.
func TestConnectionsAreCappedPerListener(t *testing.T) {
	t.Parallel()
	const max, perAddr = 10, 4 // the last slot (a tenth) for new addresses
	e := start(t, withConfig(func(c *config.Config) { c.MaxConns, c.MaxConnsPerAddr = max, perAddr }))
	addr := e.srv.GRPCAddr().String()
	scraper := httpFrom("127.0.0.9")
	metric := func(series string) float64 {
		v, _ := sample(e.metricsVia(t, scraper), series)
		return v
	}
	open := func() float64 { return metric(`keyservice_connections_open{listener="grpc"}`) }
	admitted := func(src string) net.Conn {
		t.Helper()
		before := open()
		c := dialFrom(t, src, addr)
		waitFor(t, func() bool { return open() == before+1 })
		return c
	}
	refused := func(src, why string) {
		t.Helper()
		if closed, took, err := refusedPromptly(src, addr); !closed {
			t.Fatalf("a connection from %s (%s): not closed (%v after %s)", src, why, err, took)
		}
	}
	var first net.Conn
	for i := range perAddr {
		c := admitted("127.0.0.1")
		if i == 0 {
			first = c
		}
		admitted("127.0.0.3")
	}
	admitted("127.0.0.4") // 9 of 10: the last slot is kept for new addresses
	refused("127.0.0.4", "the listener's last slot, from an address holding one")
	admitted("127.0.0.5") // 10 of 10, an address holding none
	refused("127.0.0.6", "the listener full")
	if n := metric(`keyservice_connections_refused_total{listener="grpc",reason="per_listener"}`); n != 2 {
		t.Fatalf("refused per listener: %v, want 2", n)
	}
	first.Close()
	waitFor(t, func() bool { return open() == max-1 })
	if v, err := grpcFrom(t, "127.0.0.7", addr).Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "garbage"}); err != nil || v.GetCode() != keyservicev1.Code_CODE_MALFORMED {
		t.Fatalf("a call from a new address once a slot is free: %v %v", v, err)
	}
}
