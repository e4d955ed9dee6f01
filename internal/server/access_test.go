package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

// TestRequiredScopesMustAllBeGranted: every required scope must be among
// the key's scopes, exactly; otherwise INSUFFICIENT_SCOPE with the key.
func TestRequiredScopesMustAllBeGranted(t *testing.T) {
	t.Parallel()
	e := start(t)
	secret, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "s", Owner: "acme", Scopes: []string{"orders:read", "orders:write"}})
	for _, tc := range []struct {
		required []string
		want     keyservicev1.Code
	}{
		{nil, keyservicev1.Code_CODE_VALID},
		{[]string{"orders:read"}, keyservicev1.Code_CODE_VALID},
		{[]string{"orders:read", "orders:write"}, keyservicev1.Code_CODE_VALID},
		{[]string{"orders:read", "orders:delete"}, keyservicev1.Code_CODE_INSUFFICIENT_SCOPE},
		{[]string{"Orders:Read"}, keyservicev1.Code_CODE_INSUFFICIENT_SCOPE}, // exact match
		{[]string{"orders:*"}, keyservicev1.Code_CODE_INSUFFICIENT_SCOPE},    // no wildcards
	} {
		v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret, RequiredScopes: tc.required})
		if v.GetCode() != tc.want || v.GetValid() != (tc.want == keyservicev1.Code_CODE_VALID) || v.GetKey() == nil {
			t.Errorf("required %v: %v, want %v with the key", tc.required, v.GetCode(), tc.want)
		}
	}
	code, body, _ := e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q,"required_scopes":["admin"]}`, secret))
	if code != 200 || body["code"] != "CODE_INSUFFICIENT_SCOPE" || body["key"] == nil {
		t.Fatalf("REST: %d %v", code, body)
	}
	if n := metricValue(t, e, `keyservice_validate_call_refusals_total{code="INSUFFICIENT_SCOPE"}`); n != 4 {
		t.Fatalf("INSUFFICIENT_SCOPE answers counted: %v, want 4", n)
	}
}

// TestAllowedCIDRsPinAKeyToAddresses: a key with allowed_cidrs is VALID
// only from inside one of them: the believed client_ip (a caller with a
// token), else the caller's own address; a client_ip from an anonymous
// caller is not believed.
func TestAllowedCIDRsPinAKeyToAddresses(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.CallerTokens = map[string]string{"gw": tokenA} }))
	ctx := context.Background()
	secret, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "pinned", Owner: "acme", AllowedCidrs: []string{"10.0.0.0/8", "2001:db8::/32"}})
	if strings.Join(k.GetAllowedCidrs(), ",") != "10.0.0.0/8,2001:db8::/32" {
		t.Fatalf("stored allowed_cidrs: %v", k.GetAllowedCidrs())
	}
	check := func(name, clientIP string, want keyservicev1.Code) {
		t.Helper()
		v, err := e.grpc.Validate(asCaller(ctx, tokenA), &keyservicev1.ValidateRequest{Key: secret, ClientIp: clientIP})
		if err != nil || v.GetCode() != want {
			t.Errorf("%s (client_ip %q): %v %v, want %v", name, clientIP, v.GetCode(), err, want)
		}
	}
	check("inside IPv4", "10.1.2.3", keyservicev1.Code_CODE_VALID)
	check("inside IPv6", "2001:db8::7", keyservicev1.Code_CODE_VALID)
	check("IPv4-mapped IPv6", "::ffff:10.9.9.9", keyservicev1.Code_CODE_VALID)
	check("outside", "192.0.2.1", keyservicev1.Code_CODE_FORBIDDEN)
	if v, _ := e.grpc.Validate(asCaller(ctx, tokenA), &keyservicev1.ValidateRequest{Key: secret, ClientIp: "192.0.2.1"}); v.GetKey() != nil {
		t.Fatalf("a FORBIDDEN answer shows the key's record: %v", v.GetKey())
	}
	check("no client_ip: the caller's address 127.0.0.1", "", keyservicev1.Code_CODE_FORBIDDEN)
	// Without the caller token the caller is its address, which may not
	// name end clients: 127.0.0.1 is checked, not the claimed 10.1.2.3.
	if v, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: secret, ClientIp: "10.1.2.3"}); err == nil || status.Code(err) != codes.Unauthenticated {
		// Caller tokens are configured: an anonymous call is refused outright.
		t.Fatalf("anonymous call with caller tokens configured: %v %v", v, err)
	}
	// Pinned to loopback, the caller's own address passes.
	if _, err := e.grpc.UpdateKey(admin(ctx), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId(), AllowedCidrs: []string{"127.0.0.0/8"}}, UpdateMask: mask("allowed_cidrs")}); err != nil {
		t.Fatal(err)
	}
	check("loopback caller, no client_ip", "", keyservicev1.Code_CODE_VALID)
	check("client_ip outside", "10.1.2.3", keyservicev1.Code_CODE_FORBIDDEN)
	// A pinned key's record is not shown outside its addresses, whatever
	// the answer.
	if _, err := e.grpc.UpdateKey(admin(ctx), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId()}, UpdateMask: mask("enabled")}); err != nil {
		t.Fatal(err)
	}
	if v, err := e.grpc.Validate(asCaller(ctx, tokenA), &keyservicev1.ValidateRequest{Key: secret, ClientIp: "192.0.2.1"}); err != nil || v.GetCode() != keyservicev1.Code_CODE_DISABLED || v.GetKey() != nil {
		t.Fatalf("disabled pinned key from outside: %v %v, want DISABLED without the record", v, err)
	}
	if v, err := e.grpc.Validate(asCaller(ctx, tokenA), &keyservicev1.ValidateRequest{Key: secret}); err != nil || v.GetCode() != keyservicev1.Code_CODE_DISABLED || v.GetKey() == nil {
		t.Fatalf("disabled pinned key from inside: %v %v, want DISABLED with the record", v, err)
	}
	if _, err := e.grpc.UpdateKey(admin(ctx), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId(), Enabled: true}, UpdateMask: mask("enabled")}); err != nil {
		t.Fatal(err)
	}
	// Cleared: any address.
	if _, err := e.grpc.UpdateKey(admin(ctx), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId()}, UpdateMask: mask("allowed_cidrs")}); err != nil {
		t.Fatal(err)
	}
	check("unpinned", "192.0.2.1", keyservicev1.Code_CODE_VALID)
}

// TestAllowedCIDRsIgnoreClientIPFromAnUntrustedCaller: an anonymous caller
// cannot claim an address inside the allowed ones.
func TestAllowedCIDRsIgnoreClientIPFromAnUntrustedCaller(t *testing.T) {
	t.Parallel()
	e := start(t)
	secret, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "pinned", Owner: "acme", AllowedCidrs: []string{"10.0.0.0/8"}})
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret, ClientIp: "10.1.2.3"}); v.GetCode() != keyservicev1.Code_CODE_FORBIDDEN {
		t.Fatalf("anonymous caller claiming 10.1.2.3: %v, want FORBIDDEN (its own address 127.0.0.1 is checked)", v.GetCode())
	}
	// The REST gateway's client is 127.0.0.1 too, and X-Forwarded-For from
	// an untrusted client is not believed.
	code, body, _ := e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q,"client_ip":"10.1.2.3"}`, secret))
	if code != 200 || body["code"] != "CODE_FORBIDDEN" {
		t.Fatalf("REST: %d %v", code, body)
	}
}

// TestAllowedCIDRsFailClosedBehindAProxyWithNoUsableChain: a caller with a
// token, behind a trusted proxy whose forwarded chain names no end client,
// has no end client address: a pinned key is refused even though the
// proxy's own address is inside the allowed range.
func TestAllowedCIDRsFailClosedBehindAProxyWithNoUsableChain(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.CallerTokens = map[string]string{"gw": tokenA}
	}))
	pinned, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "pinned", Owner: "acme", AllowedCidrs: []string{"127.0.0.0/8"}})
	do := func(xff string) int {
		req, _ := http.NewRequest("GET", e.base+"/v1/auth", nil)
		req.Header.Set("Authorization", "Bearer "+pinned)
		req.Header.Set("X-Keyservice-Caller-Token", tokenA)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := do("127.0.0.9"); c != 200 {
		t.Fatalf("end client 127.0.0.9 named by the proxy: %d, want 200", c)
	}
	if c := do("not-an-address"); c != 403 {
		t.Fatalf("unusable forwarded chain: %d, want 403 (no end client address)", c)
	}
	if c := do(""); c != 403 {
		t.Fatalf("no forwarded chain at all: %d, want 403 (the gateway's own address is not the end client's)", c)
	}
}

// TestAnswersFollowTheDocumentedPrecedence: a key that fails several
// checks gets the first in the order docs/api.md gives, and a key refused before
// its limit spends nothing from its budget.
func TestAnswersFollowTheDocumentedPrecedence(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	secret, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "p", Owner: "o", Scopes: []string{"read"}, AllowedCidrs: []string{"10.0.0.0/8"},
		RateLimit: &keyservicev1.RateLimit{Limit: 1, Period: durationpb.New(time.Hour)}})
	wrong := &keyservicev1.ValidateRequest{Key: secret, RequiredScopes: []string{"write"}}
	if v := validate(t, e, wrong); v.GetCode() != keyservicev1.Code_CODE_FORBIDDEN {
		t.Fatalf("outside the CIDRs and missing a scope: %v, want FORBIDDEN", v.GetCode())
	}
	update := func(k *keyservicev1.Key, paths ...string) {
		t.Helper()
		if _, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: k, UpdateMask: mask(paths...)}); err != nil {
			t.Fatal(err)
		}
	}
	update(&keyservicev1.Key{Id: k.GetId(), Enabled: false}, "enabled")
	if v := validate(t, e, wrong); v.GetCode() != keyservicev1.Code_CODE_DISABLED {
		t.Fatalf("disabled too: %v, want DISABLED", v.GetCode())
	}
	update(&keyservicev1.Key{Id: k.GetId(), Enabled: true, AllowedCidrs: []string{"127.0.0.0/8"}}, "enabled", "allowed_cidrs")
	for i := 0; i < 3; i++ {
		if v := validate(t, e, wrong); v.GetCode() != keyservicev1.Code_CODE_INSUFFICIENT_SCOPE {
			t.Fatalf("missing a scope: %v, want INSUFFICIENT_SCOPE", v.GetCode())
		}
	}
	// Nothing was spent: the one call of the budget is still there.
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret}); !v.GetValid() {
		t.Fatalf("first allowed call after refusals: %v", v)
	}
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret}); v.GetCode() != keyservicev1.Code_CODE_RATE_LIMITED {
		t.Fatalf("second call: %v, want RATE_LIMITED", v.GetCode())
	}
	for code, want := range map[string]float64{"FORBIDDEN": 1, "INSUFFICIENT_SCOPE": 3, "RATE_LIMITED": 1} {
		if n := metricValue(t, e, `keyservice_validate_call_refusals_total{code="`+code+`"}`); n != want {
			t.Errorf("%s answers counted: %v, want %v", code, n, want)
		}
	}
	// A changed limit applies from the next call (what was spent is kept,
	// refilled at the new rate).
	update(&keyservicev1.Key{Id: k.GetId(), RateLimit: &keyservicev1.RateLimit{Limit: 100, Period: durationpb.New(time.Second)}}, "rate_limit")
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret, Cost: proto.Int32(0)}); v.GetRateLimit().GetLimit() != 100 {
		t.Fatalf("after raising the limit: %v", v)
	}
}

// TestGatewaysAnswer403ForMissingScopesAndAddresses: forward-auth reads
// X-Required-Scopes, Envoy the required_scopes context extension; both
// answer 403 when a scope is missing or the end client is outside the
// key's allowed addresses.
func TestGatewaysAnswer403ForMissingScopesAndAddresses(t *testing.T) {
	t.Parallel()
	e := start(t)
	secret, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "gw", Owner: "acme", Scopes: []string{"orders:read"}})
	pinned, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "pinned", Owner: "acme", AllowedCidrs: []string{"10.0.0.0/8"}})
	url := e.base + "/v1/auth"
	bearer := func(s string) map[string]string { return map[string]string{"Authorization": "Bearer " + s} }
	with := func(h map[string]string, k, v string) map[string]string { h[k] = v; return h }
	if r := get(t, url, with(bearer(secret), "X-Required-Scopes", "orders:read")); r.StatusCode != 200 {
		t.Fatalf("forward-auth, scope granted: %d", r.StatusCode)
	}
	r := get(t, url, with(bearer(secret), "X-Required-Scopes", "orders:read, orders:write"))
	if r.StatusCode != 403 || !strings.Contains(r.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("forward-auth, scope missing: %d %v", r.StatusCode, r.Header)
	}
	if r := get(t, url, bearer(pinned)); r.StatusCode != 403 {
		t.Fatalf("forward-auth, end client outside the allowed addresses: %d", r.StatusCode)
	}
	// A header sent twice (the client's value and the gateway's) adds
	// requirements; the client's value cannot replace the gateway's.
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Add("X-Required-Scopes", "orders:read")
	req.Header.Add("X-Required-Scopes", "orders:write")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("forward-auth, scopes in two headers, one missing: %d", resp.StatusCode)
	}

	for _, mode := range envoyModes {
		check := func(key, from, scopes string) int32 {
			t.Helper()
			return envoyStatus(envoyCheck(t, e, mode, envoyRequest{source: from, headers: []string{"authorization", "Bearer " + key},
				ext: map[string]string{"required_scopes": scopes}}))
		}
		if c := check(secret, "198.51.100.7", "orders:read"); c != 200 {
			t.Fatalf("Envoy (%s), scope granted: %d", mode, c)
		}
		if c := check(secret, "198.51.100.7", "orders:write"); c != 403 {
			t.Fatalf("Envoy (%s), scope missing: %d", mode, c)
		}
		// Envoy's peer (127.0.0.1) is not a trusted proxy here, so the source
		// address it names is not believed: the pinned key is refused.
		if c := check(pinned, "10.1.2.3", ""); c != 403 {
			t.Fatalf("Envoy (%s), pinned key from an unbelieved source: %d", mode, c)
		}
	}
}
