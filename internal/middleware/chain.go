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

	"google.golang.org/grpc"
)

// Chain composes interceptors; the first is outermost. The same composed
// interceptor serves the gRPC server and the in-process gateway, so REST
// cannot skip a check that gRPC makes.
func Chain(ics ...grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		next := handler
		for i := len(ics) - 1; i >= 0; i-- {
			ic, h := ics[i], next
			next = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, h) }
		}
		return next(ctx, req)
	}
}
