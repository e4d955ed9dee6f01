package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/redistest"
)

const (
	tokenA = "caller-a-token-0123456789"
	tokenB = "caller-b-token-0123456789"
)

func asCaller(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

func TestCallerOverBudgetIsRefusedWhileOthersAreNot(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) {
		c.CallerTokens = map[string]string{"a": tokenA, "b": tokenB}
		c.CallerRate, c.CallerBurst = 0.01, 3
	}))
	ctx := context.Background()
	req := &keyservicev1.ValidateRequest{Key: "garbage"}
	// Two calls over gRPC and one over REST spend the same budget.
	for i := 0; i < 2; i++ {
		if _, err := e.grpc.Validate(asCaller(ctx, tokenA), req); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if code, body, _ := e.rest(t, "POST", "/v1/keys:validate", tokenA, `{"key":"garbage"}`); code != 200 {
		t.Fatalf("REST call within budget: %d %v", code, body)
	}
	var hdr metadata.MD
	_, err := e.grpc.Validate(asCaller(ctx, tokenA), req, grpc.Header(&hdr))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("4th call of caller a: %v, want ResourceExhausted", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 {
		t.Fatalf("no RetryInfo with a delay: %v", st.Details())
	}
	if hdr.Get("retry-after") == nil {
		t.Error("gRPC refusal lacks retry-after metadata")
	}
	code, body, h := e.rest(t, "POST", "/v1/keys:validate", tokenA, `{"key":"garbage"}`)
	if code != http.StatusTooManyRequests {
		t.Fatalf("REST over budget: %d %v, want 429", code, body)
	}
	for _, name := range []string{"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
		if h.Get(name) == "" {
			t.Errorf("429 lacks %s", name)
		}
	}
	if secs, err := strconv.Atoi(h.Get("Retry-After")); err != nil || secs < 1 {
		t.Errorf("Retry-After %q is not a positive number of seconds", h.Get("Retry-After"))
	}
	if h.Get("RateLimit-Limit") != "3" || h.Get("RateLimit-Remaining") != "0" {
		t.Errorf("RateLimit-Limit %q, -Remaining %q", h.Get("RateLimit-Limit"), h.Get("RateLimit-Remaining"))
	}
	// Caller b is untouched.
	if _, err := e.grpc.Validate(asCaller(ctx, tokenB), req); err != nil {
		t.Fatalf("caller b refused: %v", err)
	}
	// Health checks are not limited.
	for i := 0; i < 10; i++ {
		if code, _, _ := e.rest(t, "GET", "/healthz", "", ""); code != 200 {
			t.Fatalf("healthz limited: %d", code)
		}
	}
}

func TestCallerCredentialRequiredWhenConfigured(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.CallerTokens = map[string]string{"a": tokenA} }))
	ctx := context.Background()
	req := &keyservicev1.ValidateRequest{Key: "garbage"}
	if _, err := e.grpc.Validate(ctx, req); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no credential: %v, want Unauthenticated", err)
	}
	if _, err := e.grpc.Validate(asCaller(ctx, "not-a-caller-token-at-all"), req); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong token: %v, want Unauthenticated", err)
	}
	if code, _, _ := e.rest(t, "POST", "/v1/keys:validate", "", `{"key":"garbage"}`); code != http.StatusUnauthorized {
		t.Fatalf("REST without credential: %d, want 401", code)
	}
	if _, err := e.grpc.Validate(asCaller(ctx, tokenA), req); err != nil {
		t.Fatalf("caller token: %v", err)
	}
	if _, err := e.grpc.Validate(admin(ctx), req); err != nil {
		t.Fatalf("admin token on Validate: %v", err)
	}
	if _, err := e.grpc.ListKeys(admin(ctx), &keyservicev1.ListKeysRequest{}); err != nil {
		t.Fatalf("admin call: %v", err)
	}
	if _, err := e.grpc.ListKeys(asCaller(ctx, tokenA), &keyservicev1.ListKeysRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("caller token on an admin call: %v, want PermissionDenied", err)
	}
}

func TestSpoofedForwardedAddressesChangeNothing(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.CallerRate, c.CallerBurst = 0.01, 2 }))
	req := &keyservicev1.ValidateRequest{Key: "garbage"}
	refused := 0
	for i := 0; i < 6; i++ {
		// A direct gRPC caller claims to be a different client every time.
		ctx := metadata.AppendToOutgoingContext(context.Background(),
			"x-forwarded-for", fmt.Sprintf("203.0.113.%d", i),
			"x-real-ip", fmt.Sprintf("203.0.113.%d", i),
			"grpcgateway-x-forwarded-for", fmt.Sprintf("203.0.113.%d", i))
		if _, err := e.grpc.Validate(ctx, req); status.Code(err) == codes.ResourceExhausted {
			refused++
		}
	}
	if refused != 4 {
		t.Fatalf("%d of 6 spoofing calls refused, want 4 (one budget of 2 for the real peer)", refused)
	}
	// REST from an untrusted peer: X-Forwarded-For is ignored as well, and
	// the REST client (same address) shares the exhausted budget.
	r, _ := http.NewRequest("POST", e.base+"/v1/keys:validate", strings.NewReader(`{"key":"garbage"}`))
	r.Header.Set("X-Forwarded-For", "198.51.100.9")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("REST with a forged X-Forwarded-For: %d, want 429", resp.StatusCode)
	}
}

func TestForwardedForIsBelievedFromTrustedProxies(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) {
		c.CallerRate, c.CallerBurst = 0.01, 1
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}))
	send := func(xff string) int {
		r, _ := http.NewRequest("POST", e.base+"/v1/keys:validate", strings.NewReader(`{"key":"garbage"}`))
		r.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := send("198.51.100.1"); c != 200 {
		t.Fatalf("client 1: %d", c)
	}
	if c := send("198.51.100.1"); c != 429 {
		t.Fatalf("client 1 again: %d, want 429", c)
	}
	// A different end client behind the same proxy has its own budget; a
	// spoofed leftmost entry does not help the first one.
	if c := send("198.51.100.2"); c != 200 {
		t.Fatalf("client 2: %d", c)
	}
	if c := send("10.9.9.9, 198.51.100.1"); c != 429 {
		t.Fatalf("client 1 with a prepended address: %d, want 429", c)
	}
}

func TestFailedAttemptGuardPerEndClient(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) {
		c.FailedRate, c.FailedBurst = 0.001, 5
		c.CallerTokens = map[string]string{"gw": tokenA}
	}))
	ctx := asCaller(context.Background(), tokenA)
	answers := func() float64 {
		return metricValue(t, e, `keyservice_validate_answers_total{code="NOT_FOUND",path="filter"}`)
	}
	for i := 0; i < 5; i++ {
		k, _ := keyFormatKey(t)
		v, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: k, ClientIp: "198.51.100.1"})
		if err != nil || v.GetCode() != keyservicev1.Code_CODE_NOT_FOUND {
			t.Fatalf("wrong key %d: %v %v", i, v, err)
		}
	}
	before := answers()
	k, _ := keyFormatKey(t)
	_, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: k, ClientIp: "198.51.100.1"})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("6th wrong key from the same end client: %v, want ResourceExhausted", err)
	}
	if after := answers(); after != before {
		t.Fatalf("the refused call was still judged (%v -> %v answers)", before, after)
	}
	// Another end client of the same caller still gets answers.
	v, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: k, ClientIp: "198.51.100.2"})
	if err != nil || v.GetCode() != keyservicev1.Code_CODE_NOT_FOUND {
		t.Fatalf("another end client: %v %v", v, err)
	}
	if _, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: k, ClientIp: "not-an-ip"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("malformed client_ip: %v, want InvalidArgument", err)
	}
	// Valid keys are never counted as failures.
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		v, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: created.GetSecret(), ClientIp: "198.51.100.3"})
		if err != nil || !v.GetValid() {
			t.Fatalf("valid key %d from a fresh end client: %v %v", i, v, err)
		}
	}
}

// TestAnonymousCallersCannotNameEndClients: a caller known only by its
// address may not split its failed-attempt budget by inventing client_ip
// values, or a guesser would never run out.
func TestAnonymousCallersCannotNameEndClients(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.FailedRate, c.FailedBurst = 0.001, 3 }))
	refused := 0
	for i := 0; i < 8; i++ {
		k, _ := keyFormatKey(t)
		_, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: k, ClientIp: fmt.Sprintf("203.0.113.%d", i)})
		if status.Code(err) == codes.ResourceExhausted {
			refused++
		}
	}
	if refused != 5 {
		t.Fatalf("%d of 8 guesses with invented client_ip refused, want 5 (one budget of 3)", refused)
	}
}

func createLimitedKey(t *testing.T, e *env, limit, burst int64, period time.Duration) string {
	t.Helper()
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{
		Name: "limited", Owner: "acme",
		RateLimit: &keyservicev1.RateLimit{Limit: limit, Period: durationpb.New(period), Burst: burst},
	})
	if err != nil {
		t.Fatal(err)
	}
	rl := created.GetKey().GetRateLimit()
	if rl.GetLimit() != limit || rl.GetPeriod().AsDuration() != period {
		t.Fatalf("stored rate limit %v", rl)
	}
	return created.GetSecret()
}

func TestPerKeyLimit(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	secret := createLimitedKey(t, e, 10, 10, time.Hour)
	// cost 0 checks without spending.
	for i := 0; i < 20; i++ {
		v, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: secret, Cost: proto.Int32(0)})
		if err != nil || !v.GetValid() || v.GetRateLimit().GetRemaining() != 10 {
			t.Fatalf("cost 0 check %d: %v %v", i, v, err)
		}
	}
	valid := 0
	var last *keyservicev1.ValidateResponse
	for i := 0; i < 50; i++ {
		v, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: secret})
		if err != nil {
			t.Fatal(err)
		}
		if v.GetValid() {
			valid++
			if v.GetRateLimit().GetLimit() != 10 {
				t.Fatalf("VALID without its rate_limit: %v", v)
			}
		} else if v.GetCode() != keyservicev1.Code_CODE_RATE_LIMITED {
			t.Fatalf("unexpected %v", v.GetCode())
		}
		last = v
	}
	if valid != 10 {
		t.Fatalf("%d of 50 immediate calls VALID, want exactly 10", valid)
	}
	rl := last.GetRateLimit()
	if rl.GetLimit() != 10 || rl.GetRemaining() != 0 || rl.GetReset_().AsDuration() <= 0 || last.GetKey() == nil {
		t.Fatalf("RATE_LIMITED answer: %v", last)
	}
	code, body, _ := e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q}`, secret))
	if code != 200 || body["code"] != "CODE_RATE_LIMITED" || body["valid"] != false {
		t.Fatalf("REST: %d %v", code, body)
	}
	rlj, _ := body["rate_limit"].(map[string]any)
	if rlj["limit"] != "10" || rlj["remaining"] != "0" || rlj["reset"] == nil {
		t.Fatalf("REST rate_limit: %v", body["rate_limit"])
	}

	// The REST example of docs/limits.md.
	code, body, _ = e.rest(t, "POST", "/v1/keys", adminToken, `{"name":"partner","owner":"acme","rate_limit":{"limit":"100","period":"60s","burst":"20"}}`)
	if code != 200 || fmt.Sprint(body["key"].(map[string]any)["rate_limit"]) != "map[burst:20 limit:100 period:60s]" {
		t.Fatalf("REST create with a rate limit: %d %v", code, body)
	}

	// Bad limits are refused at creation.
	for _, rl := range []*keyservicev1.RateLimit{
		{Limit: 0, Period: durationpb.New(time.Second)},
		{Limit: 10},
		{Limit: 10, Period: durationpb.New(48 * time.Hour)},
		{Limit: 10, Period: durationpb.New(time.Second), Burst: -1},
	} {
		_, err := e.grpc.CreateKey(admin(ctx), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", RateLimit: rl})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("rate_limit %v: %v, want InvalidArgument", rl, err)
		}
	}
	if _, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: secret, Cost: proto.Int32(-1)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("negative cost: %v", err)
	}
}

// validCount alternates n validations of key between two replicas.
func validCount(t *testing.T, a, b *env, key string, n int) int {
	t.Helper()
	valid := 0
	for i := 0; i < n; i++ {
		e := a
		if i%2 == 1 {
			e = b
		}
		v, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if v.GetValid() {
			valid++
		}
	}
	return valid
}

func twoReplicas(t *testing.T, redisURL string, redisTimeout ...time.Duration) (*env, *env) {
	t.Helper()
	set := func(c *config.Config) {
		c.RedisURL = redisURL
		if len(redisTimeout) > 0 {
			c.RedisTimeout = redisTimeout[0]
		}
	}
	a := start(t, withConfig(set))
	b := startOn(t, a.dbURL, withConfig(set))
	b.waitReady(t)
	return a, b
}

func TestKeyBudgetAcrossReplicas(t *testing.T) {
	t.Parallel()
	t.Run("redis: one budget", func(t *testing.T) {
		u, _ := redistest.URL(t)
		// This is about one budget, not the timeout: on a machine busy with
		// every other package's tests, 50 ms can pass and each replica
		// would fall back to its own budget (TestHungRedis... covers that).
		a, b := twoReplicas(t, u, 5*time.Second)
		secret := createLimitedKey(t, a, 20, 20, time.Hour)
		waitFor(t, func() bool {
			v, _ := b.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret, Cost: proto.Int32(0)})
			return v.GetValid()
		})
		if n := validCount(t, a, b, secret, 60); n != 20 {
			t.Fatalf("two replicas allowed %d, want the key's 20", n)
		}
	})
	t.Run("local: a budget each", func(t *testing.T) {
		a, b := twoReplicas(t, "")
		secret := createLimitedKey(t, a, 20, 20, time.Hour)
		waitFor(t, func() bool {
			v, _ := b.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret, Cost: proto.Int32(0)})
			return v.GetValid()
		})
		if n := validCount(t, a, b, secret, 60); n != 40 {
			t.Fatalf("two replicas allowed %d, want 20 each", n)
		}
	})
}

func TestRedisOutageFallsBackAndResumes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := twoReplicas(t, srv.URL())
	secret := createLimitedKey(t, a, 10, 10, time.Hour)
	waitFor(t, func() bool {
		v, _ := b.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret, Cost: proto.Int32(0)})
		return v.GetValid()
	})
	if n := validCount(t, a, b, secret, 4); n != 4 {
		t.Fatalf("before the outage: %d of 4", n)
	}
	srv.Stop()
	// Every call is still answered (from each replica's local budget).
	start := time.Now()
	if n := validCount(t, a, b, secret, 10); n != 10 {
		t.Fatalf("during the outage: %d of 10 VALID with fresh local budgets", n)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("calls during the outage took %s", d)
	}
	if metricValue(t, a, "keyservice_key_limit_redis_up") != 0 {
		t.Error("redis_up metric still 1 during the outage")
	}
	srv.Restart()
	// Once both replicas have probed Redis again, they share one budget.
	waitFor(t, func() bool {
		validCount(t, a, b, secret, 2)
		return metricValue(t, a, "keyservice_key_limit_redis_up") == 1 && metricValue(t, b, "keyservice_key_limit_redis_up") == 1
	})
	if n := validCount(t, a, b, secret, 30); n > 10 {
		t.Fatalf("after the outage the replicas allowed %d, more than the shared 10", n)
	}
}
