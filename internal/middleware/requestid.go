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
		id := ""
		if v := metadata.ValueFromIncomingContext(ctx, RequestIDHeader); len(v) == 1 && saneID(v[0]) {
			id = v[0]
		}
		if id == "" {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id))
		return handler(context.WithValue(ctx, requestIDKey{}, id), req)
	}
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
