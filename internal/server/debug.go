package server

// The debug listener (KEYSERVICE_DEBUG_ADDR, off by default): pprof and
// the Go runtime's metrics, so an operator can profile a replica in place
// (`go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=30`).
// It binds loopback only (the setting refuses any other host): profiles
// show the process's memory, and nothing on it is authenticated.

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/metrics"
	"time"
)

// listenDebug opens the debug listener when it is configured.
func (s *Server) listenDebug(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		host = "127.0.0.1" // loopback when only a port is given
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/runtime/metrics", serveRuntimeMetrics)
	s.debugLis = l
	// Profiles run up to their seconds parameter: no write timeout.
	s.debug = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.closers.add(func() { _ = l.Close() })
	return nil
}

// DebugAddr is the bound debug address (nil when off).
func (s *Server) DebugAddr() net.Addr {
	if s.debugLis == nil {
		return nil
	}
	return s.debugLis.Addr()
}

// serveRuntimeMetrics writes every metric of runtime/metrics, one a line:
// name, value (histograms as their count and buckets' upper bounds are
// left to pprof; their total count is given).
func serveRuntimeMetrics(w http.ResponseWriter, _ *http.Request) {
	descs := metrics.All()
	samples := make([]metrics.Sample, len(descs))
	for i := range descs {
		samples[i].Name = descs[i].Name
	}
	metrics.Read(samples)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, sm := range samples {
		switch sm.Value.Kind() {
		case metrics.KindUint64:
			fmt.Fprintf(w, "%s %d\n", sm.Name, sm.Value.Uint64())
		case metrics.KindFloat64:
			fmt.Fprintf(w, "%s %g\n", sm.Name, sm.Value.Float64())
		case metrics.KindFloat64Histogram:
			var n uint64
			for _, c := range sm.Value.Float64Histogram().Counts {
				n += c
			}
			fmt.Fprintf(w, "%s count=%d\n", sm.Name, n)
		}
	}
}
