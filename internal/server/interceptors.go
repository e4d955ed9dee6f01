package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// chain composes interceptors; the first is outermost. The same composed
// interceptor serves the gRPC server and the in-process gateway, so REST
// cannot skip a check that gRPC makes.
func chain(ics ...grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		next := handler
		for i := len(ics) - 1; i >= 0; i-- {
			ic, h := ics[i], next
			next = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, h) }
		}
		return next(ctx, req)
	}
}

// --- request id -------------------------------------------------------------

type requestIDKey struct{}

const requestIDHeader = "x-request-id"

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestID takes the caller's x-request-id when it is sane, else makes one,
// and returns it in the response headers.
func requestID() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		id := ""
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(requestIDHeader); len(v) == 1 && saneID(v[0]) {
				id = v[0]
			}
		}
		if id == "" {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDHeader, id))
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

// --- logging ----------------------------------------------------------------

// logging writes one line per call: method, code, duration, caller address.
// It never logs requests, responses or metadata values, so no key or token
// can reach the log.
func logging(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		code := status.Code(err)
		lvl := slog.LevelInfo
		if code == codes.Internal || code == codes.Unknown {
			lvl = slog.LevelError
		}
		attrs := []slog.Attr{
			slog.String("method", info.FullMethod),
			slog.String("code", code.String()),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", requestIDFrom(ctx)),
			slog.String("transport", transportOf(ctx)),
			slog.String("peer", peerAddr(ctx)),
		}
		if v, ok := resp.(*keyservicev1.ValidateResponse); ok && err == nil {
			attrs = append(attrs, slog.String("outcome", v.GetCode().String()))
		}
		log.LogAttrs(ctx, lvl, "rpc", attrs...)
		return resp, err
	}
}

// --- recovery ---------------------------------------------------------------

// recovery turns a panic in a handler into INTERNAL and logs its stack.
func recovery(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.ErrorContext(ctx, "panic in handler", "method", info.FullMethod,
					"request_id", requestIDFrom(ctx), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				resp, err = nil, status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}

// --- errors -----------------------------------------------------------------

// mapErrors is innermost: every error a handler returns becomes a status here.
func mapErrors(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			return nil, toStatus(ctx, log, err)
		}
		return resp, nil
	}
}

// --- admin auth -------------------------------------------------------------

var keyServicePrefix = "/" + keyservicev1.KeyService_ServiceDesc.ServiceName + "/"

// publicMethods may be called without an admin token. Every other
// KeyService method needs one: a method added later is admin-only until it
// is listed here (fail closed).
var publicMethods = map[string]bool{
	keyservicev1.KeyService_Validate_FullMethodName: true,
}

// adminAuth checks `authorization: Bearer <token>` on admin methods. Token
// hashes are compared in constant time against every configured token.
func adminAuth(tokens []string) grpc.UnaryServerInterceptor {
	hashes := make([][32]byte, len(tokens))
	for i, t := range tokens {
		hashes[i] = sha256.Sum256([]byte(t))
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, keyServicePrefix) || publicMethods[info.FullMethod] {
			return handler(ctx, req)
		}
		tok, ok := bearer(ctx)
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "admin credentials required: send 'authorization: Bearer <admin token>'")
		}
		got := sha256.Sum256([]byte(tok))
		match := 0
		for i := range hashes {
			match |= subtle.ConstantTimeCompare(got[:], hashes[i][:])
		}
		if match != 1 {
			return nil, status.Error(codes.PermissionDenied, "admin token not accepted")
		}
		return handler(ctx, req)
	}
}

// bearer returns the token of a single `authorization: Bearer` header.
func bearer(ctx context.Context) (string, bool) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return "", false
	}
	v := md.Get("authorization")
	if len(v) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v[0]), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// --- transport --------------------------------------------------------------

// gatewayKey marks a call that came through the in-process REST gateway.
// It is unexported, so no network input can set it.
type gatewayKey struct{}

type gatewayCall struct {
	remoteAddr string
}

func withGateway(ctx context.Context, remoteAddr string) context.Context {
	return context.WithValue(ctx, gatewayKey{}, gatewayCall{remoteAddr: remoteAddr})
}

func fromGateway(ctx context.Context) (gatewayCall, bool) {
	g, ok := ctx.Value(gatewayKey{}).(gatewayCall)
	return g, ok
}

func transportOf(ctx context.Context) string {
	if _, ok := fromGateway(ctx); ok {
		return "rest"
	}
	return "grpc"
}

func peerAddr(ctx context.Context) string {
	if g, ok := fromGateway(ctx); ok {
		return g.remoteAddr
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
