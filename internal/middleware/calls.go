package middleware

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// What the gRPC server does to every call on its port, whatever the
// service (KeyService, Envoy's Authorization, health, reflection): one
// rule for all, set once on the server (internal/server/build.go) rather
// than per service.

// readTimerKey holds the timer of a call's read deadline.
type readTimerKey struct{}

// Tap is the server's tap (it sees every call before any service does):
// a call whose metadata is over maxHeaderBytes is refused, alone, and
// every other call gets its read deadline.
//
// The read deadline bounds how long a call may take to send its request
// after its headers: a client that opens calls and never sends the message
// has them cancelled after readTimeout, so it cannot hold goroutines (or
// stream slots) for ever. The timer stops as soon as the request has
// arrived: for a unary call when it is decoded (RefuseUndecodable, the
// first link of the chain that sees it), for a streaming call at its first
// message (StreamRequests), so neither a handler's time nor a long-lived
// stream (a health Watch) is limited.
func Tap(readTimeout time.Duration, maxHeaderBytes int) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if n := MetadataSize(info.FullMethodName, info.Header); n > maxHeaderBytes {
			return nil, status.Errorf(codes.ResourceExhausted,
				"the call's metadata is %d bytes, over the limit of %d (name + value + 32 bytes per entry, the method's path included)", n, maxHeaderBytes)
		}
		// The stream's context becomes this one: cancelling it ends the
		// wait for the message; the stream's own end cancels it otherwise.
		ctx, cancel := context.WithCancel(ctx)
		t := time.AfterFunc(readTimeout, cancel)
		// However the call ends (before the interceptors run, too), the
		// timer goes with it rather than holding the call for readTimeout.
		context.AfterFunc(ctx, func() { t.Stop() })
		return context.WithValue(ctx, readTimerKey{}, t), nil
	}
}

// HeaderFieldSize is what one header field counts towards a header list,
// as HTTP/2 counts it (RFC 9113 section 6.5.2): its name, its value and 32
// bytes. Both ports measure their limit in it.
func HeaderFieldSize(name, value string) int { return len(name) + len(value) + 32 }

// MetadataSize is a gRPC call's header list as the service receives it:
// the method's path (:path) and every metadata entry (:authority,
// content-type and user-agent included; binary values as decoded). The
// fields grpc-go keeps to itself (:method, :scheme, te, grpc-timeout,
// grpc-encoding) are not counted: they never reach the service.
func MetadataSize(method string, md metadata.MD) int {
	n := HeaderFieldSize(":path", method)
	for k, vs := range md {
		for _, v := range vs {
			n += HeaderFieldSize(k, v)
		}
	}
	return n
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
