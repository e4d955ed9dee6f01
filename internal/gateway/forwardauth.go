package gateway

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/authanswer"
	"github.com/keyservice/keyservice/internal/caller"
)

// Gateways in front of other services (nginx auth_request, Traefik
// ForwardAuth, Caddy forward_auth, Envoy ext_authz) ask keyservice about
// the key on each request. Both entry points call Validate through the
// same interceptor chain as gRPC and REST: the same path, the same limits.

// RequiredScopesHeader names the scopes a route needs (comma-separated):
// the gateway in front sets it per route, and a key without all of them is
// refused with 403.
const RequiredScopesHeader = "X-Required-Scopes"

// RequiredScopesExtension is the Envoy context extension (per route:
// check_settings.context_extensions) with the scopes a route needs,
// comma-separated.
const RequiredScopesExtension = "required_scopes"

// KeyspaceHeader names the keyspace a route's keys must belong to (its
// name or id): the gateway in front sets it per route. A key of another
// keyspace is refused as an unknown key is (401).
const KeyspaceHeader = "X-Keyspace"

// KeyspaceExtension is the Envoy context extension (per route) with the
// keyspace a route's keys must belong to.
const KeyspaceExtension = "keyspace"

// oneKeyspace is the keyspace named by every value of a header (a client's
// copy and the gateway's must agree); "" with ok when none is named, and
// !ok when values disagree: then no key may pass (fail closed).
func oneKeyspace(vs []string) (string, bool) {
	name := ""
	for _, v := range vs {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if name != "" && v != name {
			return "", false
		}
		name = v
	}
	return name, true
}

// splitScopes reads comma-separated scope lists; empty items are skipped.
// Every value counts: a header sent twice (the client's and the gateway's)
// can only add requirements, never remove one.
func splitScopes(vs ...string) []string {
	var out []string
	for _, v := range vs {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// callerTokenHeader carries the gateway's own caller token to the
// forward-auth endpoint (the Authorization header may hold the API key).
const callerTokenHeader = "X-Keyservice-Caller-Token"

// ForwardAuth serves GET (any method) /v1/auth for HTTP gateways: 200 with
// X-Key-Id, X-Key-Owner and X-Key-Scopes for a valid key; 401 with
// WWW-Authenticate for a missing or wrong key; 403 for a key without the
// scopes named in X-Required-Scopes, or used from outside its allowed
// addresses; a key of another keyspace than X-Keyspace names is 401, as an
// unknown key; 429 with Retry-After when limited; 503 when the store cannot
// answer.
func ForwardAuth(svc keyservicev1.KeyServiceServer, keyHeader string, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := authanswer.KeyFrom(r.Header.Get, keyHeader)
		var d authanswer.Decision
		ks, agreed := oneKeyspace(r.Header.Values(KeyspaceHeader))
		switch {
		case key == "":
			d = authanswer.Missing(keyHeader)
		case !agreed:
			// Two keyspaces named: the key belongs to at most one.
			d = authanswer.Decide(&keyservicev1.ValidateResponse{Code: keyservicev1.Code_CODE_NOT_FOUND}, nil, keyHeader, nil)
		default:
			// The gateway in front is the caller (limited by its token or its
			// address). The end client it forwards for (the nearest untrusted
			// X-Forwarded-For address; never X-Real-IP, which a client can send
			// through an auth subrequest) is passed as client_ip, so wrong keys
			// are held against that end client, not the whole gateway. The
			// caller limiter believes it only from a gateway with a caller
			// token or from a trusted proxy.
			req := &keyservicev1.ValidateRequest{Key: key, RequiredScopes: splitScopes(r.Header.Values(RequiredScopesHeader)...), Keyspace: ks}
			g := caller.HTTPCall{RemoteAddr: r.RemoteAddr}
			if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
				g.ClientAddr = ap.Addr().Unmap()
			}
			if r.TLS != nil {
				g.CertName = caller.CertNameOf(r.TLS.VerifiedChains)
			}
			end, ok := forwardedClientOf(r.Header, trusted)
			switch {
			case ok && end != g.ClientAddr:
				req.ClientIp = end.String()
			case !ok && isTrusted(g.ClientAddr, trusted) && hasForwardedChain(r.Header):
				// A trusted proxy whose chain does not name a client counts
				// as an anonymous end client, as on the REST gateway. (No
				// chain at all: the gateway names no end client.)
				g.ChainUnusable = true
			}
			var md metadata.MD // none unless the gateway sends its token: nothing to allocate per call
			if tok := r.Header.Get(callerTokenHeader); tok != "" {
				md = metadata.Pairs("authorization", "Bearer "+tok)
			}
			var stream runtime.ServerTransportStream
			ctx := caller.WithGatewayCall(caller.WithHTTPCall(r.Context(), g), ok && end == g.ClientAddr)
			ctx = grpc.NewContextWithServerTransportStream(metadata.NewIncomingContext(ctx, md), &stream)
			resp, err := svc.Validate(ctx, req)
			d = authanswer.Decide(resp, err, keyHeader, stream.Header())
		}
		for k, v := range d.Headers {
			w.Header().Set(k, v)
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(d.Status)
	})
}
