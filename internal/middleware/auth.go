package middleware

import (
	"context"
	"crypto/sha256"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/perm"
	"github.com/keyservice/keyservice/internal/tenancy"
)

var keyServicePrefix = "/" + keyservicev1.KeyService_ServiceDesc.ServiceName + "/"

// Permissions is the permission every KeyService method needs: the one
// table of who may call what. A method missing here is refused for every
// credential (fail closed), and TestEveryMethodDeclaresAPermission fails.
var Permissions = map[string]perm.Permission{
	keyservicev1.KeyService_Validate_FullMethodName:         perm.KeysValidate,
	keyservicev1.KeyService_GetKey_FullMethodName:           perm.KeysRead,
	keyservicev1.KeyService_ListKeys_FullMethodName:         perm.KeysRead,
	keyservicev1.KeyService_CreateKey_FullMethodName:        perm.KeysCreate,
	keyservicev1.KeyService_UpdateKey_FullMethodName:        perm.KeysUpdate,
	keyservicev1.KeyService_RotateKey_FullMethodName:        perm.KeysRotate,
	keyservicev1.KeyService_RevokeKey_FullMethodName:        perm.KeysRevoke,
	keyservicev1.KeyService_ListAuditEvents_FullMethodName:  perm.AuditRead,
	keyservicev1.KeyService_GetKeyspace_FullMethodName:      perm.KeyspacesRead,
	keyservicev1.KeyService_ListKeyspaces_FullMethodName:    perm.KeyspacesRead,
	keyservicev1.KeyService_CreateKeyspace_FullMethodName:   perm.KeyspacesWrite,
	keyservicev1.KeyService_UpdateKeyspace_FullMethodName:   perm.KeyspacesWrite,
	keyservicev1.KeyService_ListCredentials_FullMethodName:  perm.CredentialsRead,
	keyservicev1.KeyService_CreateCredential_FullMethodName: perm.CredentialsWrite,
	keyservicev1.KeyService_RevokeCredential_FullMethodName: perm.CredentialsWrite,
	// ReportUsage charges what a key's call cost after the fact: the
	// caller that validated it reports it.
	keyservicev1.KeyService_ReportUsage_FullMethodName: perm.KeysValidate,
	// WatchKeyEvents feeds a caller's cache of Validate answers.
	keyservicev1.KeyService_WatchKeyEvents_FullMethodName: perm.KeysValidate,
	keyservicev1.KeyService_AddCredits_FullMethodName:     perm.KeysUpdate,
	keyservicev1.KeyService_GetUsage_FullMethodName:       perm.UsageRead,
	keyservicev1.KeyService_GetOwner_FullMethodName:       perm.KeysRead,
	keyservicev1.KeyService_ListOwners_FullMethodName:     perm.KeysRead,
	keyservicev1.KeyService_CreateOwner_FullMethodName:    perm.KeysUpdate,
	keyservicev1.KeyService_UpdateOwner_FullMethodName:    perm.KeysUpdate,
}

// Auth is what the auth interceptor checks credentials against.
type Auth struct {
	// Registry holds every credential (stored and bootstrap) by the
	// SHA-256 of its secret.
	Registry *tenancy.Registry
	// RequireCaller: caller tokens or mTLS are configured, so Validate
	// needs a credential (or a client certificate).
	RequireCaller bool
	Now           func() time.Time // time.Now when nil
}

// Authenticate establishes who is calling and what it may do. Every
// KeyService method needs its permission (Permissions): no credential, or
// an unknown, revoked or expired one -> UNAUTHENTICATED; a credential
// without the permission -> PERMISSION_DENIED. Validate may also be
// called with a verified client certificate, or, when caller credentials
// are not required, by address alone (a presented token that is not a
// credential then counts for nothing, as before credentials were stored).
//
// Credentials are found by the SHA-256 of the presented secret in a map:
// comparing digests leaks nothing usable about a secret, and the hot path
// makes one lookup, never a query or a loop over every credential.
func Authenticate(a Auth) grpc.UnaryServerInterceptor {
	if a.Now == nil {
		a.Now = time.Now
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, keyServicePrefix) {
			return handler(ctx, req)
		}
		need, declared := Permissions[info.FullMethod]
		if !declared {
			return nil, status.Error(codes.PermissionDenied, "this method declares no permission, so no credential may call it")
		}
		tok, hasTok := bearer(ctx)
		var e *tenancy.Entry
		now := a.Now()
		if hasTok {
			digest := digestOf(tok)
			// Loaded before the state: Load publishes the state, then
			// marks itself loaded, so a miss in a state read after
			// "not loaded" was seen is never taken for a refusal.
			loaded := a.Registry.Loaded()
			var found bool
			if e, found = a.Registry.Current().Credential(&digest); found && !e.Usable(now) {
				return nil, status.Error(codes.Unauthenticated, "credential revoked or expired")
			}
			if !found && !loaded {
				// Maybe a stored credential this replica has not read yet
				// (it is starting): not a refusal of the credential.
				return nil, status.Error(codes.Unavailable, "credentials not loaded yet, retry later")
			}
		}
		if e != nil {
			if !e.Permissions.Has(need) {
				return nil, status.Errorf(codes.PermissionDenied, "credential %q lacks the permission %s", e.Name, need)
			}
			e.Used(now)
			id := caller.Identity{Kind: caller.KindToken, Name: e.CallerName()}
			if e.Admin() {
				id.Kind = caller.KindAdmin
			}
			if r := e.Rate; r != nil {
				id.Own = caller.Budget{Rate: r.PerSecond(), Burst: r.Burst}
			}
			// Validate needs the credential only when it narrows the
			// keyspaces, and no actor: the hot path adds no more to ctx
			// than the identity.
			if need != perm.KeysValidate {
				ctx = caller.WithActor(ctx, e.Name)
				ctx = apikey.WithCredential(ctx, &e.Credential)
			} else if !e.AllKeyspaces || info.FullMethod == keyservicev1.KeyService_WatchKeyEvents_FullMethodName {
				// A stream also needs it to end when the credential does.
				ctx = apikey.WithCredential(ctx, &e.Credential)
			}
			return handler(caller.WithIdentity(ctx, id), req)
		}
		if need != perm.KeysValidate {
			if !hasTok {
				return nil, status.Error(codes.Unauthenticated, "credentials required: send 'authorization: Bearer <credential>'")
			}
			return nil, status.Error(codes.Unauthenticated, "credential not accepted")
		}
		if hasTok && a.RequireCaller {
			return nil, status.Error(codes.Unauthenticated, "caller token not accepted")
		}
		var id caller.Identity
		switch name := caller.CertName(ctx); {
		case name != "":
			id = caller.Identity{Kind: caller.KindCert, Name: name}
		case a.RequireCaller:
			return nil, status.Error(codes.Unauthenticated, "caller credentials required: send 'authorization: Bearer <caller token>' or a client certificate")
		default:
			id = caller.Identity{Kind: caller.KindAddr, Addr: caller.ClientAddr(ctx)}
			if g, ok := caller.HTTPCallOf(ctx); ok && g.ChainUnusable {
				id.Anonymous = true
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
