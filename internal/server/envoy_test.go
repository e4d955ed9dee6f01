package server_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

// Envoy's ext_authz filter describes a request's headers in one of two
// ways: the headers string map (its default), or, with encode_raw_headers:
// true, header_map (one entry per header line, raw bytes). Every Envoy test
// runs in both modes, and both must answer alike.
var envoyModes = []string{"headers", "header_map"}

// envoyRequest is what Envoy tells Check about one request.
type envoyRequest struct {
	source  string            // the downstream address (attributes.source)
	headers []string          // name, value, name, value, …; a name may repeat
	ext     map[string]string // context extensions (required_scopes)
	token   string            // Envoy's own caller token (gRPC initial metadata), if any
}

// envoyCheckRequest builds the CheckRequest Envoy sends for r in mode. As
// Envoy does, the string map lower-cases names, joins the values of a
// repeated header with "," and replaces bytes that are not UTF-8 with "!";
// header_map keeps every line as it came, its raw bytes included.
func envoyCheckRequest(mode string, r envoyRequest) *authv3.CheckRequest {
	h := &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/orders"}
	switch mode {
	case "headers":
		h.Headers = map[string]string{}
		for i := 0; i+1 < len(r.headers); i += 2 {
			name, v := strings.ToLower(r.headers[i]), strings.ToValidUTF8(r.headers[i+1], "!")
			if prev, ok := h.Headers[name]; ok {
				v = prev + "," + v
			}
			h.Headers[name] = v
		}
	case "header_map":
		h.HeaderMap = &corev3.HeaderMap{}
		for i := 0; i+1 < len(r.headers); i += 2 {
			h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: r.headers[i], RawValue: []byte(r.headers[i+1])})
		}
	default:
		panic("unknown Envoy mode " + mode)
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: r.source}}}},
		Request:           &authv3.AttributeContext_Request{Http: h},
		ContextExtensions: r.ext,
	}}
}

// envoyCheck asks e's Check about r, sent in mode.
func envoyCheck(t *testing.T, e *env, mode string, r envoyRequest) *authv3.CheckResponse {
	t.Helper()
	ctx := context.Background()
	if r.token != "" {
		ctx = asCaller(ctx, r.token)
	}
	resp, err := authv3.NewAuthorizationClient(e.conn).Check(ctx, envoyCheckRequest(mode, r))
	if err != nil {
		t.Fatalf("Check (%s): %v", mode, err)
	}
	return resp
}

// envoyStatus is the HTTP status Envoy gives the request: 200 if allowed.
func envoyStatus(resp *authv3.CheckResponse) int32 {
	if resp.GetOkResponse() != nil {
		return 200
	}
	return int32(resp.GetDeniedResponse().GetStatus().GetCode())
}

// envoyHeader is the value of a header Check tells Envoy to set.
func envoyHeader(hs []*corev3.HeaderValueOption, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.GetHeader().GetKey(), name) {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

func TestEnvoyExtAuthz(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.AuthHeader = "X-API-Key" }))
	for _, mode := range envoyModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "envoy", Owner: "acme", Scopes: []string{"a", "b"},
				RateLimit: &keyservicev1.RateLimit{Limit: 1, Period: durationpb.New(time.Hour)}})
			if err != nil {
				t.Fatal(err)
			}
			check := func(headers ...string) *authv3.CheckResponse {
				t.Helper()
				return envoyCheck(t, e, mode, envoyRequest{source: "198.51.100.7", headers: headers})
			}
			// Header names in any case: HTTP/1 clients send X-API-Key.
			ok := check("X-API-Key", created.GetSecret(), ":path", "/orders")
			if codes.Code(ok.GetStatus().GetCode()) != codes.OK {
				t.Fatalf("valid key: %v", ok)
			}
			okr := ok.GetOkResponse()
			if envoyHeader(okr.GetHeaders(), "X-Key-Id") != created.GetKey().GetId() || envoyHeader(okr.GetHeaders(), "X-Key-Owner") != "acme" ||
				envoyHeader(okr.GetHeaders(), "X-Key-Scopes") != "a,b" || len(okr.GetHeadersToRemove()) != 1 || okr.GetHeadersToRemove()[0] != "x-api-key" {
				t.Fatalf("OK response: %v", okr)
			}
			denied := check("x-api-key", created.GetSecret()+"x")
			if codes.Code(denied.GetStatus().GetCode()) != codes.Unauthenticated || denied.GetDeniedResponse().GetStatus().GetCode() != 401 ||
				envoyHeader(denied.GetDeniedResponse().GetHeaders(), "WWW-Authenticate") == "" {
				t.Fatalf("wrong key: %v", denied)
			}
			if r := check(); r.GetDeniedResponse().GetStatus().GetCode() != 401 {
				t.Fatalf("no key: %v", r)
			}
			limited := check("x-api-key", created.GetSecret())
			if limited.GetDeniedResponse().GetStatus().GetCode() != 429 || envoyHeader(limited.GetDeniedResponse().GetHeaders(), "Retry-After") == "" {
				t.Fatalf("limited key: %v", limited)
			}
		})
	}
}

// TestEnvoyCheckGuardsEachEndClient: Envoy (with a caller token) reports
// each request's source address; it feeds the guard.
func TestEnvoyCheckGuardsEachEndClient(t *testing.T) {
	t.Parallel()
	for _, mode := range envoyModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := start(t, withConfig(func(c *config.Config) {
				c.FailedRate, c.FailedBurst = 0.001, 3
				c.CallerTokens = map[string]string{"envoy": tokenA}
			}))
			created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "customer", Owner: "acme"})
			if err != nil {
				t.Fatal(err)
			}
			check := func(key, source string) int32 {
				t.Helper()
				return envoyStatus(envoyCheck(t, e, mode, envoyRequest{source: source, token: tokenA, headers: []string{"authorization", "Bearer " + key}}))
			}
			for i := 0; i < 3; i++ {
				if c := check(wrongKey(t), "198.51.100.1"); c != 401 {
					t.Fatalf("wrong key %d: %d", i, c)
				}
			}
			if c := check(wrongKey(t), "198.51.100.1"); c != 429 {
				t.Fatalf("the flooding end client's next wrong key: %d, want 429", c)
			}
			if c := check(created.GetSecret(), "198.51.100.2"); c != 200 {
				t.Fatalf("another end client's valid key: %d, want 200", c)
			}
		})
	}
}

// TestEnvoyFromATrustedProxyChecksTheEndClient: Envoy on a trusted address
// names the end client, whose address is checked. The end client is the
// source address: an X-Forwarded-For among the request's headers (the
// client's to write) names nobody.
func TestEnvoyFromATrustedProxyChecksTheEndClient(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} }))
	pinned, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "pinned", Owner: "acme", AllowedCidrs: []string{"10.0.0.0/8"}})
	for _, mode := range envoyModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			for from, want := range map[string]bool{"10.1.2.3": true, "192.0.2.1": false} {
				resp := envoyCheck(t, e, mode, envoyRequest{source: from, headers: []string{"authorization", "Bearer " + pinned, "x-forwarded-for", "10.9.9.9"}})
				if got := resp.GetOkResponse() != nil; got != want {
					t.Errorf("end client %s: allowed %v, want %v (%v)", from, got, want, resp)
				}
			}
		})
	}
}

// TestEnvoyOKCarriesTheKeysIdentityAsDynamicMetadata: an allowed request's
// answer names the key in dynamic_metadata (Envoy files it under
// envoy.filters.http.ext_authz for the filters after it): key_id, owner as
// stored (not percent-encoded as in X-Key-Owner), scopes as a list, name.
func TestEnvoyOKCarriesTheKeysIdentityAsDynamicMetadata(t *testing.T) {
	t.Parallel()
	e := start(t)
	secret, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "partner", Owner: "Zoë & Co", Scopes: []string{"orders:read", "orders:write"}})
	want, err := structpb.NewStruct(map[string]any{
		"key_id": k.GetId(),
		"owner":  "Zoë & Co",
		"scopes": []any{"orders:read", "orders:write"},
		"name":   "partner",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range envoyModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			resp := envoyCheck(t, e, mode, envoyRequest{source: "198.51.100.7", headers: []string{"authorization", "Bearer " + secret},
				ext: map[string]string{"required_scopes": "orders:read"}})
			if envoyStatus(resp) != 200 {
				t.Fatalf("valid key: %v", resp)
			}
			if got := resp.GetDynamicMetadata(); !proto.Equal(got, want) {
				t.Fatalf("dynamic_metadata = %v, want %v", got, want)
			}
		})
	}
}

// TestEnvoyRefusalsCarryNoDynamicMetadata: a refused request names no key
// to the filters after ext_authz, whatever the refusal.
func TestEnvoyRefusalsCarryNoDynamicMetadata(t *testing.T) {
	t.Parallel()
	e := start(t)
	for _, mode := range envoyModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			secret, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "gw", Owner: "acme", Scopes: []string{"orders:read"},
				RateLimit: &keyservicev1.RateLimit{Limit: 1, Period: durationpb.New(time.Hour)}})
			pinned, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "pinned", Owner: "acme", AllowedCidrs: []string{"10.0.0.0/8"}})
			bearer := func(k string) []string { return []string{"authorization", "Bearer " + k} }
			for _, tc := range []struct {
				name string
				r    envoyRequest
				want int32
			}{
				{"no key", envoyRequest{source: "198.51.100.7"}, 401},
				{"wrong key", envoyRequest{source: "198.51.100.7", headers: bearer(wrongKey(t))}, 401},
				{"scope missing", envoyRequest{source: "198.51.100.7", headers: bearer(secret), ext: map[string]string{"required_scopes": "orders:write"}}, 403},
				{"outside the allowed addresses", envoyRequest{source: "10.1.2.3", headers: bearer(pinned)}, 403},
				{"allowed, spending the key's budget", envoyRequest{source: "198.51.100.7", headers: bearer(secret)}, 200},
				{"rate limited", envoyRequest{source: "198.51.100.7", headers: bearer(secret)}, 429},
			} {
				resp := envoyCheck(t, e, mode, tc.r)
				if c := envoyStatus(resp); c != tc.want {
					t.Fatalf("%s: %d, want %d (%v)", tc.name, c, tc.want, resp)
				}
				if c := envoyStatus(resp); c != 200 && resp.GetDynamicMetadata() != nil {
					t.Errorf("%s: refused with dynamic_metadata %v", tc.name, resp.GetDynamicMetadata())
				}
			}
		})
	}
}

// TestEnvoyRepeatedKeyHeaderIsRefused: a key header sent twice is one
// value to Envoy's string map, the two joined with "," (not a key); in
// header_map the two lines are joined the same way, so neither mode picks
// one of them — even when both lines hold the same valid key.
func TestEnvoyRepeatedKeyHeaderIsRefused(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.AuthHeader = "X-API-Key" }))
	secret, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "twice", Owner: "acme"})
	for _, mode := range envoyModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				name    string
				headers []string
				want    int32
			}{
				{"once", []string{"x-api-key", secret}, 200},
				{"once, other headers repeated", []string{"accept", "a", "x-api-key", secret, "accept", "b"}, 200},
				{"twice, the same key", []string{"x-api-key", secret, "X-Api-Key", secret}, 401},
				{"twice, a wrong key first", []string{"x-api-key", wrongKey(t), "x-api-key", secret}, 401},
				{"twice, a wrong key last", []string{"x-api-key", secret, "x-api-key", wrongKey(t)}, 401},
			} {
				if c := envoyStatus(envoyCheck(t, e, mode, envoyRequest{source: "198.51.100.7", headers: tc.headers})); c != tc.want {
					t.Errorf("%s: %d, want %d", tc.name, c, tc.want)
				}
			}
		})
	}
}

// TestEnvoyInvalidBytesAnswerLikeAMalformedKey: a key header whose bytes are
// not UTF-8 (raw in header_map; replaced by "!" in Envoy's string map) is
// answered as a malformed key is: 401 with error="invalid_token".
func TestEnvoyInvalidBytesAnswerLikeAMalformedKey(t *testing.T) {
	t.Parallel()
	e := start(t)
	for _, mode := range envoyModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			answer := func(key string) string {
				t.Helper()
				resp := envoyCheck(t, e, mode, envoyRequest{source: "198.51.100.7", headers: []string{"authorization", "Bearer " + key}})
				return fmt.Sprintf("%d %s", envoyStatus(resp), envoyHeader(resp.GetDeniedResponse().GetHeaders(), "WWW-Authenticate"))
			}
			malformed := answer("not-a-key")
			if !strings.HasPrefix(malformed, "401 ") || !strings.Contains(malformed, `error="invalid_token"`) {
				t.Fatalf("malformed key: %s", malformed)
			}
			if got := answer(wrongKey(t)[:10] + "\xff\xfe" + "abc"); got != malformed {
				t.Fatalf("key with invalid bytes: %s, want %s", got, malformed)
			}
		})
	}
}

// TestEnvoyKeyspacePerRoute: a route's keyspace context extension admits
// only keys of that keyspace; another keyspace's key is refused as an
// unknown one (401), in both modes.
func TestEnvoyKeyspacePerRoute(t *testing.T) {
	t.Parallel()
	e := start(t)
	if _, err := e.grpc.CreateKeyspace(admin(context.Background()), &keyservicev1.CreateKeyspaceRequest{Keyspace: &keyservicev1.Keyspace{Name: "orders", Prefix: "ord"}}); err != nil {
		t.Fatal(err)
	}
	inOrders, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "o", Owner: "acme", Keyspace: "orders"})
	inDefault, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "d", Owner: "acme"})
	for _, mode := range envoyModes {
		for _, tc := range []struct {
			key, keyspace string
			want          int32
		}{
			{inOrders, "orders", 200},
			{inDefault, "orders", 401},
			{inOrders, "default", 401},
			{inOrders, "", 200},
		} {
			r := envoyRequest{source: "198.51.100.7", headers: []string{"authorization", "Bearer " + tc.key}}
			if tc.keyspace != "" {
				r.ext = map[string]string{"keyspace": tc.keyspace}
			}
			if c := envoyStatus(envoyCheck(t, e, mode, r)); c != tc.want {
				t.Errorf("%s: key %.4s… on a route of keyspace %q: %d, want %d", mode, tc.key, tc.keyspace, c, tc.want)
			}
		}
	}
}
