package middleware

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/caller"
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
	admins     [][32]byte
	adminNames []string            // parallel to admins: the actor in the audit trail
	callers    map[[32]byte]string // caller token digest -> caller name
	// requireCaller: caller tokens or mTLS are configured, so Validate
	// needs a caller credential.
	requireCaller bool
}

// NewAuth accepts adminTokens, named by adminNames (parallel; a token
// without a name is admin-<its position>), and callerTokens by name.
func NewAuth(adminTokens, adminNames []string, callerTokens map[string]string, mtls bool) Auth {
	a := Auth{callers: map[[32]byte]string{}}
	for i, t := range adminTokens {
		a.admins = append(a.admins, sha256.Sum256([]byte(t)))
		name := fmt.Sprintf("admin-%d", i+1)
		if i < len(adminNames) && adminNames[i] != "" {
			name = adminNames[i]
		}
		a.adminNames = append(a.adminNames, name)
	}
	for name, t := range callerTokens {
		a.callers[sha256.Sum256([]byte(t))] = name
	}
	a.requireCaller = len(callerTokens) > 0 || mtls
	return a
}

// admin compares against every admin token in constant time, and returns
// the name of the one that matches.
func (a Auth) admin(digest *[32]byte) (string, bool) {
	match, which := 0, 0
	for i := range a.admins {
		eq := subtle.ConstantTimeCompare(digest[:], a.admins[i][:])
		which = subtle.ConstantTimeSelect(eq, i, which)
		match |= eq
	}
	if match != 1 {
		return "", false
	}
	return a.adminNames[which], true
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
			name, ok := a.admin(&digest)
			if !ok {
				return nil, status.Error(codes.PermissionDenied, "admin token not accepted")
			}
			ctx = caller.WithActor(ctx, name)
			return handler(caller.WithIdentity(ctx, caller.Identity{Kind: caller.KindAdmin, Name: "admin"}), req)
		}
		var id caller.Identity
		if hasTok {
			if name, ok := a.callers[digest]; ok {
				id = caller.Identity{Kind: caller.KindToken, Name: name}
			} else if _, ok := a.admin(&digest); ok {
				id = caller.Identity{Kind: caller.KindAdmin, Name: "admin"}
			} else if a.requireCaller {
				return nil, status.Error(codes.Unauthenticated, "caller token not accepted")
			}
		}
		if id.Name == "" {
			switch name := caller.CertName(ctx); {
			case name != "":
				id = caller.Identity{Kind: caller.KindCert, Name: name}
			case a.requireCaller:
				return nil, status.Error(codes.Unauthenticated, "caller credentials required: send 'authorization: Bearer <caller token>' or a client certificate")
			default:
				id = caller.Identity{Kind: caller.KindAddr, Addr: caller.ClientAddr(ctx)}
				if g, ok := caller.HTTPCallOf(ctx); ok && g.ChainUnusable {
					id.Anonymous = true
				}
			}
		}
		return handler(caller.WithIdentity(ctx, id), req)
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
