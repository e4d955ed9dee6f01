package server

import (
	"fmt"
	"net"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyservice/keyservice/internal/connlimit"
)

// Connections are capped per listener and per client address
// (internal/connlimit), from settings or, by default, from the process's
// file descriptor limit: idle connections from a few addresses used to
// take every descriptor (2 x 10,200 of them), and then nobody was served.

// maxFDsCounted bounds the descriptor limit the default caps are derived
// from: a limit of a billion (some containers) would give caps that never
// bite.
const maxFDsCounted = 1 << 20

// fileLimit raises the soft limit on open files to the hard one (the Go
// runtime does it too since Go 1.19; this does not depend on it) and
// returns it.
func fileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		raised := l
		raised.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			l = raised
		}
	}
	return l.Cur, nil
}

// connCaps are the caps of each listener.
type connCaps struct {
	perListener, perAddr int
	fds                  uint64
}

// connectionCaps are the configured caps, or those derived from fds:
// a tenth of the descriptors (at least 512) stays with the process (the
// database pool, Redis, files, the connections being refused), the two
// listeners share the rest, and one address may hold an eighth of a
// listener's.
func connectionCaps(maxConns, maxPerAddr int, fds uint64) connCaps {
	n := min(fds, maxFDsCounted)
	reserve := max(n/10, 512)
	c := connCaps{perListener: maxConns, perAddr: maxPerAddr, fds: fds}
	if c.perListener == 0 {
		c.perListener = 64 // a descriptor limit below 640: serve a little
		if n > reserve+128 {
			c.perListener = int(n-reserve) / 2
		}
	}
	if c.perAddr == 0 {
		c.perAddr = max(c.perListener/8, 1)
	}
	return c
}

// capListeners wraps the listeners in their caps and registers their
// metrics.
func (s *Server) capListeners(reg prometheus.Registerer) error {
	fds, err := fileLimit()
	if err != nil {
		return fmt.Errorf("reading the open file limit: %w", err)
	}
	caps := connectionCaps(s.cfg.MaxConns, s.cfg.MaxConnsPerAddr, fds)
	open := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keyservice_connections_open",
		Help: "Connections held, by listener (grpc, http).",
	}, []string{"listener"})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyservice_connections_refused_total",
		Help: "Connections closed on accept by a cap, by listener and reason (per_listener, per_address).",
	}, []string{"listener", "reason"})
	reg.MustRegister(open, refused)
	capped := func(name string, l net.Listener) net.Listener {
		return connlimit.New(l, connlimit.Config{
			Max: caps.perListener, PerAddr: caps.perAddr, Exempt: s.cfg.TrustedProxies,
			Open: open.WithLabelValues(name), Refused: refused.MustCurryWith(prometheus.Labels{"listener": name}),
		})
	}
	s.grpcLis, s.httpLis = capped("grpc", s.grpcLis), capped("http", s.httpLis)
	s.log.Info("connection caps", "per_listener", caps.perListener, "per_address", caps.perAddr, "open_file_limit", fds)
	if need := 2 * uint64(caps.perListener); need > fds {
		s.log.Warn("the connection caps exceed the open file limit: raise the limit (ulimit -n) or lower KEYSERVICE_MAX_CONNS",
			"per_listener", caps.perListener, "open_file_limit", fds)
	}
	return nil
}
