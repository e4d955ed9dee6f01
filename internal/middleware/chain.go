// Package middleware is the interceptor chain every KeyService call runs
// through, whatever its transport (gRPC, the REST gateway, forward-auth,
// Envoy): metrics, request id, tracing, logging, refusal of undecodable
// requests, recovery, authentication and caller identity. The caller
// limit (internal/ratelimit) and the error mapper (internal/service) are
// links of the same chain, composed in internal/server. Bind runs a
// KeyService implementation through a chain in process. Tap and
// StreamRequests (calls.go) are what the gRPC server applies to every call
// on its port, whatever the service: the metadata limit, the read deadline
// and, for streams, the refusal of undecodable messages.
package middleware

import (
	"context"
	"sync"

	"google.golang.org/grpc"
)

// Chain composes interceptors; the first is outermost. The same composed
// interceptor serves the gRPC server and the in-process gateway, so REST
// cannot skip a check that gRPC makes.
//
// A call allocates nothing for the chain: each call takes a link set (one
// handler per interceptor, made once per set) from a pool and gives it
// back when the call returns. So an interceptor must not keep the handler
// it is given past its own return (none here does: a handler is called,
// at most more than once, while the interceptor runs).
func Chain(ics ...grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	ics = append([]grpc.UnaryServerInterceptor(nil), ics...)
	pool := sync.Pool{New: func() any { return newLinks(ics) }}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		l := pool.Get().(*links)
		l.info, l.handler = info, handler
		resp, err := l.next[0](ctx, req)
		l.info, l.handler = nil, nil
		pool.Put(l)
		return resp, err
	}
}

// links is one call's chain: next[i] runs interceptor i with next[i+1] as
// its handler; next[len(ics)] is the call's own handler.
type links struct {
	next    []grpc.UnaryHandler
	info    *grpc.UnaryServerInfo
	handler grpc.UnaryHandler
}

func newLinks(ics []grpc.UnaryServerInterceptor) *links {
	l := &links{next: make([]grpc.UnaryHandler, len(ics)+1)}
	for i, ic := range ics {
		l.next[i] = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, l.info, l.next[i+1]) }
	}
	l.next[len(ics)] = func(ctx context.Context, req any) (any, error) { return l.handler(ctx, req) }
	return l
}
