package gateway

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/outcome"
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

// authDecision is what a gateway should do with a request.
type authDecision struct {
	status  int               // HTTP status for the gateway: 200, 401, 403, 429, 503, 500
	headers map[string]string // identity headers (200) or challenge / retry headers
	key     *keyservicev1.Key // the key allowed (200 only)
	// reason names a refusal for Envoy's status message
	// ("USAGE_EXCEEDED: owner").
	reason string
}

// decide maps a Validate answer (or error) to a gateway decision.
func decide(resp *keyservicev1.ValidateResponse, err error, keyHeader string, retryMD metadata.MD) authDecision {
	if err != nil {
		challenge := map[string]string{"WWW-Authenticate": challengeFor(keyHeader)}
		switch status.Code(err) {
		case codes.ResourceExhausted:
			h := map[string]string{"Retry-After": "1"}
			if v := retryMD.Get("retry-after"); len(v) > 0 {
				h["Retry-After"] = v[0]
			}
			return authDecision{status: http.StatusTooManyRequests, headers: h}
		case codes.Unavailable:
			return authDecision{status: http.StatusServiceUnavailable, headers: map[string]string{"Retry-After": "1"}}
		case codes.Unauthenticated:
			// The gateway's own caller token was missing or not accepted: a
			// configuration error of the gateway, told apart from a bad key.
			challenge["WWW-Authenticate"] += `, error="invalid_caller", error_description="the gateway's caller token (X-Keyservice-Caller-Token) was not accepted"`
			return authDecision{status: http.StatusUnauthorized, headers: challenge}
		case codes.InvalidArgument, codes.NotFound, codes.PermissionDenied:
			// A malformed request, or a keyspace named (by the route, or by a
			// client the gateway let name one) that does not exist or that
			// the gateway's credential may not use: no key passes it.
			return authDecision{status: http.StatusUnauthorized, headers: challenge}
		}
		return authDecision{status: http.StatusInternalServerError}
	}
	row := outcome.Of(outcome.Code(resp.GetCode()))
	reason := row.Name
	if by := resp.GetRefusedBy(); by != keyservicev1.Holder_HOLDER_UNSPECIFIED {
		reason += ": " + holderName(by)
	}
	switch {
	case row.Code == outcome.Valid:
		k := resp.GetKey()
		h := map[string]string{
			"X-Key-Id":     k.GetId(),
			"X-Key-Owner":  headerSafe(k.GetOwner()),
			"X-Key-Scopes": strings.Join(k.GetScopes(), ","),
		}
		if c := resp.GetCredits(); c != nil {
			h["X-Key-Credits-Remaining"] = strconv.FormatInt(c.GetRemaining(), 10)
		}
		return authDecision{status: row.HTTP, key: k, headers: h}
	case row.Code == outcome.UsageExceeded:
		// Out of credits: say whose, what is left, and when a refill is due.
		c := resp.GetCredits()
		if resp.GetRefusedBy() == keyservicev1.Holder_HOLDER_OWNER {
			c = resp.GetOwnerCredits()
		}
		h := map[string]string{"X-Refused-By": holderName(resp.GetRefusedBy()), "X-Credits-Remaining": strconv.FormatInt(c.GetRemaining(), 10)}
		if next := c.GetNextRefillAt(); next != nil {
			h["X-Credits-Refill"] = next.AsTime().UTC().Format(time.RFC3339)
			h["Retry-After"] = strconv.FormatInt(max(int64(math.Ceil(time.Until(next.AsTime()).Seconds())), 1), 10)
		}
		return authDecision{status: row.HTTP, headers: h, reason: reason}
	case row.Stage == outcome.Budget && resp.GetRateLimit() != nil:
		// Over a budget: when it is worth trying again.
		rl := resp.GetRateLimit()
		if resp.GetRefusedBy() == keyservicev1.Holder_HOLDER_OWNER && resp.GetOwnerRateLimit() != nil {
			rl = resp.GetOwnerRateLimit()
		}
		secs := int64(math.Ceil(rl.GetReset_().AsDuration().Seconds()))
		return authDecision{status: row.HTTP, reason: reason, headers: map[string]string{
			"Retry-After":         strconv.FormatInt(max(secs, 1), 10),
			"RateLimit-Limit":     strconv.FormatInt(rl.GetLimit(), 10),
			"RateLimit-Remaining": "0",
			"RateLimit-Reset":     strconv.FormatInt(max(secs, 1), 10),
			"X-Refused-By":        holderName(resp.GetRefusedBy()),
		}}
	}
	// Every refusal's status and RFC 6750 challenge come from outcome's
	// table: MALFORMED, NOT_FOUND, REVOKED, EXPIRED, DISABLED look the same
	// from outside (401, invalid_token); a good key the route may not use
	// is 403 (insufficient_scope, or not from this address).
	challenge := challengeFor(keyHeader)
	if row.Challenge != "" {
		challenge += ", " + row.Challenge
	}
	return authDecision{status: row.HTTP, headers: map[string]string{"WWW-Authenticate": challenge}, reason: reason}
}

// holderName names whose budget refused, as headers say it.
func holderName(h keyservicev1.Holder) string {
	if h == keyservicev1.Holder_HOLDER_OWNER {
		return "owner"
	}
	return "key"
}

// headerSafe percent-encodes (RFC 3986, UTF-8) every byte of v that is not
// printable ASCII, and "%" itself, so an owner such as "Zoë & Co" reaches
// the upstream as one well-formed header value ("Zo%C3%AB & Co") that any
// URL decoder restores; plain ASCII names pass unchanged.
func headerSafe(v string) string {
	// Commas would split the value for some proxies, and spaces at either
	// end are trimmed by HTTP: encode them too.
	plain := func(c byte) bool { return c > 0x20 && c < 0x7f && c != '%' && c != ',' }
	inner := func(i int) bool { return i > 0 && i < len(v)-1 && v[i] == ' ' }
	i := 0
	for i < len(v) && (plain(v[i]) || inner(i)) {
		i++
	}
	if i == len(v) {
		return v
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.WriteString(v[:i])
	for ; i < len(v); i++ {
		if c := v[i]; plain(c) || inner(i) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

func challengeFor(keyHeader string) string {
	if strings.EqualFold(keyHeader, "Authorization") {
		return `Bearer realm="keyservice"`
	}
	return `ApiKey realm="keyservice", header="` + keyHeader + `"`
}

// keyFrom reads the key from the configured header: "Bearer <key>" in
// Authorization, the raw value in any other header.
func keyFrom(get func(string) string, header string) string {
	v := strings.TrimSpace(get(header))
	if strings.EqualFold(header, "Authorization") {
		scheme, tok, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "bearer") {
			return ""
		}
		return strings.TrimSpace(tok)
	}
	return v
}

// ForwardAuth serves GET (any method) /v1/auth for HTTP gateways: 200 with
// X-Key-Id, X-Key-Owner and X-Key-Scopes for a valid key; 401 with
// WWW-Authenticate for a missing or wrong key; 403 for a key without the
// scopes named in X-Required-Scopes, or used from outside its allowed
// addresses; a key of another keyspace than X-Keyspace names is 401, as an
// unknown key; 429 with Retry-After when limited; 503 when the store cannot
// answer.
func ForwardAuth(svc keyservicev1.KeyServiceServer, keyHeader string, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := keyFrom(r.Header.Get, keyHeader)
		var d authDecision
		ks, agreed := oneKeyspace(r.Header.Values(KeyspaceHeader))
		switch {
		case key == "":
			d = authDecision{status: http.StatusUnauthorized, headers: map[string]string{"WWW-Authenticate": challengeFor(keyHeader)}}
		case !agreed:
			// Two keyspaces named: the key belongs to at most one.
			d = decide(&keyservicev1.ValidateResponse{Code: keyservicev1.Code_CODE_NOT_FOUND}, nil, keyHeader, nil)
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
			d = decide(resp, err, keyHeader, stream.Header())
		}
		for k, v := range d.headers {
			w.Header().Set(k, v)
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(d.status)
	})
}
