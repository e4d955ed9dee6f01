package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/ratelimit"
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
		if v := metadata.ValueFromIncomingContext(ctx, requestIDHeader); len(v) == 1 && saneID(v[0]) {
			id = v[0]
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

// logging writes a line per refused or failed call: method, code,
// duration, caller address. Successful calls (and calls the caller
// cancelled) are logged at DEBUG only: at INFO a busy replica would write a
// line per request. Every call is counted by method and code in
// keyservice_rpc_requests_total, so the metrics see what the log leaves out.
// It never logs requests, responses or metadata values, so no key or token
// can reach the log.
func logging(log *slog.Logger, calls *prometheus.CounterVec) grpc.UnaryServerInterceptor {
	// The counter of each (method, code), found without hashing label values
	// on every call.
	var counters sync.Map // callKey -> prometheus.Counter
	count := func(method string, code codes.Code) {
		k := callKey{method, code}
		c, ok := counters.Load(k)
		if !ok {
			c, _ = counters.LoadOrStore(k, calls.WithLabelValues(method, code.String()))
		}
		c.(prometheus.Counter).Inc()
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		code := status.Code(err)
		count(info.FullMethod, code)
		lvl := levelOf(code)
		if !log.Enabled(ctx, lvl) {
			return resp, err // no line to write: build none
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

type callKey struct {
	method string
	code   codes.Code
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

// authConfig holds the credentials the auth interceptor accepts, as
// SHA-256 digests.
type authConfig struct {
	admins  [][32]byte
	callers map[[32]byte]string // caller token digest -> caller name
	// requireCaller: caller tokens or mTLS are configured, so Validate
	// needs a caller credential.
	requireCaller bool
}

func newAuthConfig(adminTokens []string, callerTokens map[string]string, mtls bool) authConfig {
	a := authConfig{callers: map[[32]byte]string{}}
	for _, t := range adminTokens {
		a.admins = append(a.admins, sha256.Sum256([]byte(t)))
	}
	for name, t := range callerTokens {
		a.callers[sha256.Sum256([]byte(t))] = name
	}
	a.requireCaller = len(callerTokens) > 0 || mtls
	return a
}

// isAdmin compares against every admin token in constant time.
func (a authConfig) isAdmin(digest *[32]byte) bool {
	match := 0
	for i := range a.admins {
		match |= subtle.ConstantTimeCompare(digest[:], a.admins[i][:])
	}
	return match == 1
}

// authenticate establishes who is calling and records it for the limiter.
// Admin methods need an admin token: missing -> UNAUTHENTICATED, wrong ->
// PERMISSION_DENIED. Validate takes a caller token, an admin token or a
// verified client certificate; without one it is UNAUTHENTICATED when
// caller credentials are configured, else the caller is its address.
//
// Caller tokens are found by the SHA-256 of the presented token; comparing
// digests leaks nothing usable about a token, and keeps the hot path free
// of a loop over every caller.
func authenticate(a authConfig) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, keyServicePrefix) {
			return handler(ctx, req)
		}
		tok, hasTok := bearer(ctx)
		var digest [32]byte
		if hasTok {
			digest = digestOf(tok)
		}
		if !publicMethods[info.FullMethod] {
			if !hasTok {
				return nil, status.Error(codes.Unauthenticated, "admin credentials required: send 'authorization: Bearer <admin token>'")
			}
			if !a.isAdmin(&digest) {
				return nil, status.Error(codes.PermissionDenied, "admin token not accepted")
			}
			return handler(ratelimit.WithCaller(ctx, ratelimit.Identity{Kind: ratelimit.KindAdmin, Name: "admin"}), req)
		}
		var id ratelimit.Identity
		if hasTok {
			if name, ok := a.callers[digest]; ok {
				id = ratelimit.Identity{Kind: ratelimit.KindToken, Name: name}
			} else if a.isAdmin(&digest) {
				id = ratelimit.Identity{Kind: ratelimit.KindAdmin, Name: "admin"}
			} else if a.requireCaller {
				return nil, status.Error(codes.Unauthenticated, "caller token not accepted")
			}
		}
		if id.Name == "" {
			switch name := certName(ctx); {
			case name != "":
				id = ratelimit.Identity{Kind: ratelimit.KindCert, Name: name}
			case a.requireCaller:
				return nil, status.Error(codes.Unauthenticated, "caller credentials required: send 'authorization: Bearer <caller token>' or a client certificate")
			default:
				id = ratelimit.Identity{Kind: ratelimit.KindAddr, Addr: clientAddr(ctx)}
				if g, ok := fromGateway(ctx); ok && g.chainUnusable {
					id.Anonymous = true
				}
			}
		}
		return handler(ratelimit.WithCaller(ctx, id), req)
	}
}

// digestOf hashes a token without allocating for tokens up to 256 bytes.
func digestOf(tok string) [32]byte {
	if len(tok) <= 256 {
		var buf [256]byte
		n := copy(buf[:], tok)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(tok))
}

// bearer returns the token of a single `authorization: Bearer` header.
func bearer(ctx context.Context) (string, bool) {
	// Only this header is copied, not the whole metadata.
	v := metadata.ValueFromIncomingContext(ctx, "authorization")
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

// gatewayCall describes the HTTP client of a REST call. clientAddr honours
// X-Forwarded-For only from trusted proxies (see newGateway).
type gatewayCall struct {
	remoteAddr string
	clientAddr netip.Addr
	certName   string
	// chainUnusable: a trusted proxy sent no usable forwarded chain; it
	// counts as an anonymous end client (see httpClientAddr).
	chainUnusable bool
}

func withGateway(ctx context.Context, g gatewayCall) context.Context {
	return context.WithValue(ctx, gatewayKey{}, g)
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

// clientAddr is the address a call is limited by when it has no credential:
// the HTTP client for REST, else the gRPC peer. Metadata such as
// x-forwarded-for from a gRPC client is never believed.
func clientAddr(ctx context.Context) netip.Addr {
	if g, ok := fromGateway(ctx); ok {
		return g.clientAddr
	}
	if p, ok := peer.FromContext(ctx); ok {
		if a, ok := p.Addr.(*net.TCPAddr); ok {
			return a.AddrPort().Addr().Unmap()
		}
	}
	return netip.Addr{}
}

// certName is the name in a verified client certificate: its common name,
// else its first DNS name.
func certName(ctx context.Context) string {
	if g, ok := fromGateway(ctx); ok {
		return g.certName
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return ""
	}
	return nameOf(ti.State.VerifiedChains)
}

func nameOf(chains [][]*x509.Certificate) string {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return ""
	}
	c := chains[0][0]
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return ""
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
