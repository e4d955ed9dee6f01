package middleware

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/tap"
)

// What the gRPC server does to every call on its port, whatever the
// service (KeyService, Envoy's Authorization, health, reflection): one
// rule for all, set once on the server (internal/server/build.go) rather
// than per service.

// readTimerKey holds the timer of a call's read deadline.
type readTimerKey struct{}

// ReadDeadline bounds how long a call may take to send its request after
// its headers: a client that opens calls and never sends the message has
// them cancelled after limit, so it cannot hold goroutines (or stream
// slots) for ever. The timer stops as soon as the request has arrived: for
// a unary call when it is decoded (RefuseUndecodable, the first link of
// the chain that sees it), for a streaming call at its first message
// (StreamRequests), so neither a handler's time nor a long-lived stream
// (a health Watch) is limited.
func ReadDeadline(limit time.Duration) tap.ServerInHandle {
	return func(ctx context.Context, _ *tap.Info) (context.Context, error) {
		// The stream's context becomes this one: cancelling it ends the
		// wait for the message; the stream's own end cancels it otherwise.
		ctx, cancel := context.WithCancel(ctx)
		t := time.AfterFunc(limit, cancel)
		// However the call ends (before the interceptors run, too), the
		// timer goes with it rather than holding the call for limit.
		context.AfterFunc(ctx, func() { t.Stop() })
		return context.WithValue(ctx, readTimerKey{}, t), nil
	}
}

// requestArrived stops the read deadline of the call in ctx.
func requestArrived(ctx context.Context) {
	if t, ok := ctx.Value(readTimerKey{}).(*time.Timer); ok {
		t.Stop()
	}
}

// StreamRequests is, for streaming calls, what the chain's first links do
// for unary ones: the read deadline stops when the first message has
// arrived (or the client has closed its side without one), and a message
// that does not decode is INVALID_ARGUMENT.
func StreamRequests() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &receiving{ServerStream: ss})
	}
}

// receiving is a server stream whose received messages are looked at.
type receiving struct {
	grpc.ServerStream
}

func (s *receiving) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	requestArrived(s.Context())
	if err != nil {
		return err
	}
	return refusal(m)
}
