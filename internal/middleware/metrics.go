package middleware

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Metrics is the first link of the chain: every call is counted and timed
// by method and final code, whatever refused it (authentication, a limit,
// a bad request) and whatever transport brought it (REST shares the
// chain).
//
//	keyservice_rpc_requests_total{method,code}
//	keyservice_rpc_duration_seconds{method,code}  (histogram)
//
// It does what go-grpc-middleware's Prometheus provider does, at a fixed
// cost per call: the series of each (method, code) are looked up once and
// kept, not found again by hashing label values on every call (the
// interceptor chain is part of the budget of a sub-microsecond Validate).
func Metrics(reg prometheus.Registerer) grpc.UnaryServerInterceptor {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyservice_rpc_requests_total",
		Help: "Calls by method and gRPC code, REST included (it runs through the same chain).",
	}, []string{"method", "code"})
	durations := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "keyservice_rpc_duration_seconds",
		Help:    "Time from the first interceptor to the answer, by method and gRPC code.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"method", "code"})
	reg.MustRegister(calls, durations)
	type key struct {
		method string
		code   codes.Code
	}
	type series struct {
		calls    prometheus.Counter
		duration prometheus.Observer
	}
	var known sync.Map // key -> series
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		k := key{info.FullMethod, status.Code(err)}
		s, ok := known.Load(k)
		if !ok {
			code := k.code.String()
			s, _ = known.LoadOrStore(k, series{calls.WithLabelValues(k.method, code), durations.WithLabelValues(k.method, code)})
		}
		ser := s.(series)
		ser.calls.Inc()
		ser.duration.Observe(time.Since(start).Seconds())
		return resp, err
	}
}
