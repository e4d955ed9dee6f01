// Package connlimit caps the connections a listener holds, in all and per
// client address, so that idle connections from a few addresses can never
// take every file descriptor of the process (accept4: too many open files)
// and lock out every other caller. A connection over a cap is accepted and
// closed at once (with a reset): the kernel's backlog never fills, and the
// refused client learns it immediately instead of waiting for a timeout.
package connlimit

import (
	"net"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Config is one listener's caps.
type Config struct {
	// Caps, derived (none 0).
	Caps
	// Exempt are addresses the per-address cap and the reserve do not apply
	// to (trusted proxies, which carry many clients' calls), matched on the
	// client's own address; Max still applies.
	Exempt []netip.Prefix
	// Open counts the connections held; Refused counts refusals by reason:
	// "per_listener" or "per_address". Either may be nil.
	Open    prometheus.Gauge
	Refused *prometheus.CounterVec
}

// Listener is a net.Listener with caps.
type Listener struct {
	net.Listener
	cfg     Config
	reserve int // the last slots of Max, for addresses holding none
	mu      sync.Mutex
	open    int
	byAddr  map[netip.Addr]int
}

// New caps l.
func New(l net.Listener, cfg Config) *Listener {
	return &Listener{Listener: l, cfg: cfg, reserve: max(cfg.MaxConns/10, 1), byAddr: map[netip.Addr]int{}}
}

// Accept returns the next connection within the caps; those over them are
// closed here and counted.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		raw, addr, ok := clientAddr(c.RemoteAddr())
		if reason := l.admit(raw, addr, ok); reason != "" {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset: no TIME_WAIT left behind here
			}
			_ = c.Close()
			if l.cfg.Refused != nil {
				l.cfg.Refused.WithLabelValues(reason).Inc()
			}
			continue
		}
		return &conn{Conn: c, l: l, addr: addr, counted: ok}, nil
	}
}

// admit takes a slot for addr (the key a client is counted under), or
// says why there is none. raw is the client's own address: a trusted proxy
// is exempt by its address, not by the /64 it is counted under, and may
// use the reserve.
func (l *Listener) admit(raw, addr netip.Addr, known bool) (refused string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	held := 0
	if known {
		held = l.byAddr[addr]
	}
	exempt := known && l.exempt(raw)
	switch {
	case l.open >= l.cfg.MaxConns, l.open >= l.cfg.MaxConns-l.reserve && held > 0 && !exempt:
		return "per_listener"
	case known && held >= l.cfg.MaxConnsPerAddr && !exempt:
		return "per_address"
	}
	l.open++
	if known {
		l.byAddr[addr] = held + 1
	}
	if l.cfg.Open != nil {
		l.cfg.Open.Inc()
	}
	return ""
}

func (l *Listener) exempt(a netip.Addr) bool {
	for _, p := range l.cfg.Exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (l *Listener) release(addr netip.Addr, known bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if known {
		if n := l.byAddr[addr] - 1; n > 0 {
			l.byAddr[addr] = n
		} else {
			delete(l.byAddr, addr)
		}
	}
	if l.cfg.Open != nil {
		l.cfg.Open.Dec()
	}
}

// clientAddr is the client's address and the address its connection is
// counted under: IPv4 as is, IPv6 as its /64.
func clientAddr(a net.Addr) (raw, counted netip.Addr, ok bool) {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return netip.Addr{}, netip.Addr{}, false
	}
	raw = ip.Unmap()
	counted = raw
	if raw.Is6() {
		counted = netip.PrefixFrom(raw, 64).Masked().Addr()
	}
	return raw, counted, true
}

// conn gives its slot back when closed (once, however often it is closed).
type conn struct {
	net.Conn
	l       *Listener
	addr    netip.Addr
	counted bool
	once    sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr, c.counted) })
	return err
}
