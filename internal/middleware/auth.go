package middleware

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/ratelimit"
)

var keyServicePrefix = "/" + keyservicev1.KeyService_ServiceDesc.ServiceName + "/"

// publicMethods may be called without an admin token. Every other
// KeyService method needs one: a method added later is admin-only until it
// is listed here (fail closed).
var publicMethods = map[string]bool{
	keyservicev1.KeyService_Validate_FullMethodName: true,
}

// Auth holds the credentials the auth interceptor accepts, as
// SHA-256 digests.
type Auth struct {
	admins  [][32]byte
	callers map[[32]byte]string // caller token digest -> caller name
	// requireCaller: caller tokens or mTLS are configured, so Validate
	// needs a caller credential.
	requireCaller bool
}

func NewAuth(adminTokens []string, callerTokens map[string]string, mtls bool) Auth {
	a := Auth{callers: map[[32]byte]string{}}
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
func (a Auth) isAdmin(digest *[32]byte) bool {
	match := 0
	for i := range a.admins {
		match |= subtle.ConstantTimeCompare(digest[:], a.admins[i][:])
	}
	return match == 1
}

// Authenticate establishes who is calling and records it for the limiter.
// Admin methods need an admin token: missing -> UNAUTHENTICATED, wrong ->
// PERMISSION_DENIED. Validate takes a caller token, an admin token or a
// verified client certificate; without one it is UNAUTHENTICATED when
// caller credentials are configured, else the caller is its address.
//
// Caller tokens are found by the SHA-256 of the presented token; comparing
// digests leaks nothing usable about a token, and keeps the hot path free
// of a loop over every caller.
func Authenticate(a Auth) grpc.UnaryServerInterceptor {
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
				if g, ok := httpCallOf(ctx); ok && g.ChainUnusable {
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
