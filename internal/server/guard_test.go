package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

// The failed-attempt guard punishes the end client that sent wrong keys,
// never a whole calling service (issue: "real customers are never refused").

// wrongKey is a well-formed key that does not exist.
func wrongKey(t *testing.T) string {
	t.Helper()
	k, err := keyFormatKey(t)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSharedCallerIsNeverLockedOutByItsUsersWrongKeys reproduces the
// lockout: a service with a caller token validates its users' keys, 150
// of them wrong (more than the default failed-attempt burst of 100), over
// REST and over gRPC; its users' valid keys are still answered VALID, and
// the failures are counted for the caller.
func TestSharedCallerIsNeverLockedOutByItsUsersWrongKeys(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.CallerTokens = map[string]string{"svc": tokenA} }))
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "customer", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := asCaller(context.Background(), tokenA)
	for i := 0; i < 150; i++ {
		if code, body, _ := e.rest(t, "POST", "/v1/keys:validate", tokenA, fmt.Sprintf(`{"key":%q}`, wrongKey(t))); code != 200 || body["code"] != "CODE_NOT_FOUND" {
			t.Fatalf("wrong key %d over REST: %d %v", i, code, body)
		}
		v, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: wrongKey(t)})
		if err != nil || v.GetCode() != keyservicev1.Code_CODE_NOT_FOUND {
			t.Fatalf("wrong key %d over gRPC: %v %v", i, v, err)
		}
	}
	refusedValid := 0
	for i := 0; i < 10; i++ {
		if code, body, _ := e.rest(t, "POST", "/v1/keys:validate", tokenA, fmt.Sprintf(`{"key":%q}`, created.GetSecret())); code != 200 || body["valid"] != true {
			refusedValid++
		}
		if v, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: created.GetSecret()}); err != nil || !v.GetValid() {
			refusedValid++
		}
	}
	if refusedValid != 0 {
		t.Fatalf("%d of 20 valid keys refused after the caller's users sent 300 wrong keys, want 0", refusedValid)
	}
	if n := metricValue(t, e, `keyservice_caller_failed_validations_total{caller="token:svc"}`); n != 300 {
		t.Fatalf("failed validations counted for the caller: %v, want 300", n)
	}
}

// TestEndClientFloodingIsRefusedWhileAnotherIsServedOverREST: the same as
// TestFailedAttemptGuardPerEndClient (gRPC), through the REST gateway.
func TestEndClientFloodingIsRefusedWhileAnotherIsServedOverREST(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) {
		c.FailedRate, c.FailedBurst = 0.001, 5
		c.CallerTokens = map[string]string{"svc": tokenA}
	}))
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "customer", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	body := func(key, ip string) string { return fmt.Sprintf(`{"key":%q,"client_ip":%q}`, key, ip) }
	for i := 0; i < 5; i++ {
		if code, _, _ := e.rest(t, "POST", "/v1/keys:validate", tokenA, body(wrongKey(t), "198.51.100.1")); code != 200 {
			t.Fatalf("wrong key %d: %d", i, code)
		}
	}
	if code, _, hdr := e.rest(t, "POST", "/v1/keys:validate", tokenA, body(wrongKey(t), "198.51.100.1")); code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("6th wrong key from the flooding end client: %d, want 429 with Retry-After", code)
	}
	if code, b, _ := e.rest(t, "POST", "/v1/keys:validate", tokenA, body(created.GetSecret(), "198.51.100.2")); code != 200 || b["valid"] != true {
		t.Fatalf("another end client's valid key: %d %v", code, b)
	}
	if code, b, _ := e.rest(t, "POST", "/v1/keys:validate", tokenA, fmt.Sprintf(`{"key":%q}`, created.GetSecret())); code != 200 || b["valid"] != true {
		t.Fatalf("the caller's valid key with no end client named: %d %v", code, b)
	}
}

// TestAnonymousGuessersAreStillRefused over both transports: an anonymous
// caller is its own end client, and invented client_ip values do not help.
func TestAnonymousGuessersAreStillRefused(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.FailedRate, c.FailedBurst = 0.001, 3 }))
	refusedREST := 0
	for i := 0; i < 6; i++ {
		code, _, _ := e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q,"client_ip":"203.0.113.%d"}`, wrongKey(t), i))
		if code == http.StatusTooManyRequests {
			refusedREST++
		}
	}
	if refusedREST != 3 {
		t.Fatalf("%d of 6 anonymous REST guesses refused, want 3 (one budget of 3)", refusedREST)
	}
	// gRPC comes from the same address: the same end client, still refused.
	if _, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: wrongKey(t)}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("anonymous gRPC guess after the budget is spent: %v, want ResourceExhausted", err)
	}
}

// TestForwardAuthGuardsEachEndClient: a gateway with a caller token sends
// X-Forwarded-For as nginx does; one end client sending wrong keys is
// refused, another is served, and the gateway itself is never locked out.
func TestForwardAuthGuardsEachEndClient(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) {
		c.FailedRate, c.FailedBurst = 0.001, 3
		c.CallerTokens = map[string]string{"nginx": tokenA}
	}))
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "customer", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	auth := func(key, xff string) int {
		h := map[string]string{"Authorization": "Bearer " + key, "X-Keyservice-Caller-Token": tokenA}
		if xff != "" {
			h["X-Forwarded-For"] = xff
		}
		resp := get(t, e.base+"/v1/auth", h)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; i < 3; i++ {
		if c := auth(wrongKey(t), "198.51.100.1"); c != 401 {
			t.Fatalf("wrong key %d: %d", i, c)
		}
	}
	if c := auth(wrongKey(t), "198.51.100.1"); c != 429 {
		t.Fatalf("the flooding end client's next wrong key: %d, want 429", c)
	}
	if c := auth(created.GetSecret(), "198.51.100.2"); c != 200 {
		t.Fatalf("another end client's valid key: %d, want 200", c)
	}
	// With no end client named, the credentialed gateway is never refused
	// for wrong keys.
	for i := 0; i < 5; i++ {
		if c := auth(wrongKey(t), ""); c != 401 {
			t.Fatalf("wrong key %d with no end client: %d, want 401", i, c)
		}
	}
	if c := auth(created.GetSecret(), ""); c != 200 {
		t.Fatalf("valid key with no end client after wrong ones: %d, want 200", c)
	}
}

// TestTrustedProxyGuardsEachEndClient: nginx without a caller token, listed
// in KEYSERVICE_TRUSTED_PROXIES as one IPv6 address, forwards for two end
// clients: the one sending wrong keys is refused, the other is served; and
// with no X-Forwarded-For (no end client named) the proxy is never locked
// out.
func TestTrustedProxyGuardsEachEndClient(t *testing.T) {
	t.Parallel()
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback on this machine: %v", err)
	} else {
		l.Close()
	}
	e := start(t, withConfig(func(c *config.Config) {
		c.HTTPAddr = "[::1]:0"
		c.FailedRate, c.FailedBurst = 0.001, 3
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("::1/128")}
	}))
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "customer", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	auth := func(key, xff string) int {
		h := map[string]string{"Authorization": "Bearer " + key}
		if xff != "" {
			h["X-Forwarded-For"] = xff
		}
		return get(t, e.base+"/v1/auth", h).StatusCode
	}
	for i := 0; i < 3; i++ {
		if c := auth(wrongKey(t), "2001:db8:1::7"); c != 401 {
			t.Fatalf("wrong key %d: %d", i, c)
		}
	}
	if c := auth(wrongKey(t), "2001:db8:1::7"); c != 429 {
		t.Fatalf("the flooding end client's next wrong key: %d, want 429", c)
	}
	if c := auth(created.GetSecret(), "2001:db8:2::7"); c != 200 {
		t.Fatalf("another end client's valid key: %d, want 200", c)
	}
	for i := 0; i < 5; i++ {
		if c := auth(wrongKey(t), ""); c != 401 {
			t.Fatalf("wrong key %d with no end client: %d, want 401", i, c)
		}
	}
	if c := auth(created.GetSecret(), ""); c != 200 {
		t.Fatalf("valid key from the proxy itself after wrong ones: %d, want 200", c)
	}
}

// TestSuccessfulCallsLogAtDebugAndEveryCallIsCounted: a busy replica does
// not write a line per successful call at INFO; refusals still are logged
// at INFO, and every call is counted by method and code.
func TestSuccessfulCallsLogAtDebugAndEveryCallIsCounted(t *testing.T) {
	t.Parallel()
	e := start(t)
	for i := 0; i < 5; i++ {
		if _, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "garbage"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.grpc.CreateKey(context.Background(), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("CreateKey without a token: %v", err)
	}
	var okLines, refusedLines int
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if !strings.Contains(line, `"msg":"rpc"`) || !strings.Contains(line, "KeyService/") {
			continue
		}
		switch {
		case strings.Contains(line, `"code":"OK"`):
			okLines++
			if !strings.Contains(line, `"level":"DEBUG"`) {
				t.Errorf("a successful call logged above DEBUG: %s", line)
			}
		case strings.Contains(line, `"code":"Unauthenticated"`):
			refusedLines++
			if !strings.Contains(line, `"level":"INFO"`) {
				t.Errorf("a refused call not logged at INFO: %s", line)
			}
		}
	}
	if okLines != 5 || refusedLines != 1 {
		t.Fatalf("%d successful and %d refused call lines (at DEBUG in this test), want 5 and 1", okLines, refusedLines)
	}
	if n := metricValue(t, e, `keyservice_rpc_requests_total{code="OK",method="/keyservice.v1.KeyService/Validate"}`); n != 5 {
		t.Fatalf("counted %v successful Validate calls, want 5", n)
	}
	if n := metricValue(t, e, `keyservice_rpc_requests_total{code="Unauthenticated",method="/keyservice.v1.KeyService/CreateKey"}`); n != 1 {
		t.Fatalf("counted %v unauthenticated CreateKey calls, want 1", n)
	}
	// A wrong admin token over REST: counted and timed by the same chain.
	if c, _, _ := e.rest(t, "GET", "/v1/keys", "not-the-admin-token-0000", ""); c != 401 {
		t.Fatalf("ListKeys with a wrong token over REST: %d, want 401", c)
	}
	for _, series := range []string{
		`keyservice_rpc_requests_total{code="Unauthenticated",method="/keyservice.v1.KeyService/ListKeys"}`,
		`keyservice_rpc_duration_seconds{code="Unauthenticated",method="/keyservice.v1.KeyService/ListKeys"}`,
	} {
		if n := metricValue(t, e, series); n != 1 {
			t.Fatalf("%s = %v, want 1", series, n)
		}
	}
}

// TestTamperedPageTokenIsRefused: a page token with any byte changed is
// INVALID_ARGUMENT naming page_token (it was a 500, "timestamp out of
// range"), over gRPC and REST.
func TestTamperedPageTokenIsRefused(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	for i := 0; i < 2; i++ {
		if _, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o"}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{PageSize: 1})
	if err != nil || page.GetNextPageToken() == "" {
		t.Fatalf("first page: %v %v", page, err)
	}
	tok := page.GetNextPageToken()
	if _, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{PageSize: 1, PageToken: tok}); err != nil {
		t.Fatalf("the real token: %v", err)
	}
	for i := 0; i < len(tok); i++ {
		b := []byte(tok)
		b[i] = map[bool]byte{true: 'A', false: 'B'}[b[i] != 'A']
		bad := string(b)
		_, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{PageSize: 1, PageToken: bad})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "page_token") {
			t.Fatalf("gRPC, token with byte %d changed: %v, want InvalidArgument naming page_token", i, err)
		}
		code, body, _ := e.rest(t, "GET", "/v1/keys?page_size=1&page_token="+bad, adminToken, "")
		if code != 400 {
			t.Fatalf("REST, token with byte %d changed: %d %v, want 400", i, code, body)
		}
	}
	if strings.Contains(e.logs.String(), `"level":"ERROR"`) {
		t.Fatal("a tampered token was logged as an error of ours")
	}
}

// TestUnusableForwardedChainNamesNoEndClient: through a trusted proxy, a
// forwarded chain that is missing or does not parse makes the proxy an
// anonymous end client, so rotating client_ip in the body escapes nothing
// (it got 160 of 160 wrong keys answered); the common forms of a usable
// chain name the end client.
func TestUnusableForwardedChainNamesNoEndClient(t *testing.T) {
	t.Parallel()
	for _, bad := range []map[string]string{
		{},
		{"X-Forwarded-For": "unknown"},
		{"X-Forwarded-For": "not an address"},
		{"Forwarded": "for=_hidden"},
	} {
		t.Run(fmt.Sprint(bad), func(t *testing.T) {
			t.Parallel() // a server, and so a failed-attempt budget, each
			e := start(t, withConfig(func(c *config.Config) {
				c.FailedRate, c.FailedBurst = 0.001, 3
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			}))
			refused := 0
			for i := 0; i < 10; i++ {
				r, _ := http.NewRequest("POST", e.base+"/v1/keys:validate",
					strings.NewReader(fmt.Sprintf(`{"key":%q,"client_ip":"198.51.100.%d"}`, wrongKey(t), i)))
				for k, v := range bad {
					r.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusTooManyRequests {
					refused++
				}
			}
			if refused != 7 {
				t.Fatalf("%d of 10 guesses with rotating client_ip refused, want 7 (one budget of 3)", refused)
			}
		})
	}
	// Usable forms each name an end client with a budget of its own.
	e := start(t, withConfig(func(c *config.Config) {
		c.FailedRate, c.FailedBurst = 0.001, 1
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}))
	for _, h := range []map[string]string{
		{"X-Forwarded-For": "203.0.113.9:5555"},
		{"X-Forwarded-For": "[2001:db8:1::1]"},
		{"X-Forwarded-For": "[2001:db8:2::1]:443"},
		{"Forwarded": `for="[2001:db8:3::1]:443";proto=https`},
		{"Forwarded": "for=203.0.113.10"},
		// What a client writes further left cannot spoil the chain.
		{"X-Forwarded-For": "garbage, 203.0.113.11"},
		// A trusted hop written as an IPv4-mapped IPv6 address is skipped.
		{"X-Forwarded-For": "203.0.113.12, [::ffff:127.0.0.1]"},
	} {
		send := func() int {
			r, _ := http.NewRequest("POST", e.base+"/v1/keys:validate", strings.NewReader(fmt.Sprintf(`{"key":%q}`, wrongKey(t))))
			for k, v := range h {
				r.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if c := send(); c != 200 {
			t.Fatalf("%v: first wrong key %d, want 200 (a fresh end client)", h, c)
		}
		if c := send(); c != 429 {
			t.Fatalf("%v: second wrong key %d, want 429 (the same end client)", h, c)
		}
	}
}

// TestForwardAuthChainSpoiledByTheClientStillNamesTheEndClient: a client
// that sends "X-Forwarded-For: x" through a gateway with a caller token
// (nginx appends the real address) is still held to its own budget.
func TestForwardAuthChainSpoiledByTheClientStillNamesTheEndClient(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) {
		c.FailedRate, c.FailedBurst = 0.001, 2
		c.CallerTokens = map[string]string{"nginx": tokenA}
	}))
	codes := []int{}
	for i := 0; i < 4; i++ {
		resp := get(t, e.base+"/v1/auth", map[string]string{
			"Authorization": "Bearer " + wrongKey(t), "X-Keyservice-Caller-Token": tokenA,
			"X-Forwarded-For": "x, 198.51.100.9",
		})
		codes = append(codes, resp.StatusCode)
	}
	if fmt.Sprint(codes) != "[401 401 429 429]" {
		t.Fatalf("wrong keys from one end client behind a spoiled chain: %v, want [401 401 429 429]", codes)
	}
}
