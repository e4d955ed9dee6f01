package middleware

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/caller"
)

// Logging writes a line per refused or failed call: method, code,
// duration, caller address. Successful calls (and calls the caller
// cancelled) are logged at DEBUG only: at INFO a busy replica would write a
// line per request; Metrics counts every call, so the metrics see what the
// log leaves out. It never logs requests, responses or metadata values, so
// no key or token can reach the log.
func Logging(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		code := status.Code(err)
		lvl := levelOf(code)
		if !log.Enabled(ctx, lvl) {
			return resp, err // no line to write: build none
		}
		attrs := []slog.Attr{
			slog.String("method", info.FullMethod),
			slog.String("code", code.String()),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", RequestIDFrom(ctx)),
			slog.String("transport", caller.Transport(ctx)),
			slog.String("peer", caller.PeerAddr(ctx)),
		}
		if v, ok := resp.(*keyservicev1.ValidateResponse); ok && err == nil {
			attrs = append(attrs, slog.String("outcome", v.GetCode().String()))
		}
		log.LogAttrs(ctx, lvl, "rpc", attrs...)
		return resp, err
	}
}

// levelOf is the log level of a call that ended with code: DEBUG for
// success, INFO for a refusal of the caller's request, WARN when the
// service could not answer, ERROR for a fault of ours.
func levelOf(code codes.Code) slog.Level {
	switch code {
	case codes.OK, codes.Canceled:
		return slog.LevelDebug
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return slog.LevelWarn
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Recovery turns a panic in a handler into INTERNAL and logs its stack.
func Recovery(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.ErrorContext(ctx, "panic in handler", "method", info.FullMethod,
					"request_id", RequestIDFrom(ctx), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				resp, err = nil, status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}
