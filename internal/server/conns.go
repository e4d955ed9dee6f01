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
// file descriptor limit (connlimit.Caps.Derive).

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

// capListeners wraps the listeners in their caps and registers their
// metrics.
func (s *Server) capListeners(reg prometheus.Registerer) error {
	fds, err := fileLimit()
	if err != nil {
		return fmt.Errorf("reading the open file limit: %w", err)
	}
	caps := s.cfg.Caps.Derive(fds)
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
			Caps: caps, Exempt: s.cfg.TrustedProxies,
			Open: open.WithLabelValues(name), Refused: refused.MustCurryWith(prometheus.Labels{"listener": name}),
		})
	}
	s.grpcLis, s.httpLis = capped("grpc", s.grpcLis), capped("http", s.httpLis)
	s.log.Info("connection caps", "per_listener", caps.MaxConns, "per_address", caps.MaxConnsPerAddr, "open_file_limit", fds)
	if need := 2 * uint64(caps.MaxConns); need > fds {
		s.log.Warn("the connection caps exceed the open file limit: raise the limit (ulimit -n) or lower KEYSERVICE_MAX_CONNS",
			"per_listener", caps.MaxConns, "open_file_limit", fds)
	}
	return nil
}
