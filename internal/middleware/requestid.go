package middleware

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// RequestIDHeader carries the request id in and out (gRPC metadata; REST
// X-Request-Id).
const RequestIDHeader = "x-request-id"

type requestIDKey struct{}

// RequestIDFrom is the id RequestID gave the call ("" outside the chain).
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// RequestID takes the caller's x-request-id when it is sane, else makes one,
// and returns it in the response headers.
func RequestID() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		sent := ""
		if v := metadata.ValueFromIncomingContext(ctx, RequestIDHeader); len(v) == 1 {
			sent = v[0]
		}
		ctx, id := WithRequestID(ctx, sent)
		// A literal, not metadata.Pairs: the name is already lower case, and
		// Pairs would spend an allocation per call finding that out.
		_ = grpc.SetHeader(ctx, metadata.MD{RequestIDHeader: {id}})
		return handler(ctx, req)
	}
}

// WithRequestID gives a call outside the chain (an HTTP handler that is
// not an API method, such as the secret-scanning endpoint) its request id,
// by the chain's rule: sent when it is sane, else a new one. The caller
// returns id in its answer's X-Request-Id.
func WithRequestID(ctx context.Context, sent string) (_ context.Context, id string) {
	id = sent
	if !saneID(id) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	return context.WithValue(ctx, requestIDKey{}, id), id
}

func saneID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
