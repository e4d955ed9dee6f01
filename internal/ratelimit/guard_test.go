package ratelimit_test

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/limits"
	"github.com/keyservice/keyservice/internal/ratelimit"
)

// guardCase drives the caller interceptor's failed-attempt guard with a
// handler that answers every key NOT_FOUND, as wrong keys are.
func failedAttempts(t *testing.T, c *ratelimit.Callers, id caller.Identity, clientIP string, n int) (refused int) {
	t.Helper()
	ic := c.Interceptor()
	info := &grpc.UnaryServerInfo{FullMethod: keyservicev1.KeyService_Validate_FullMethodName}
	notFound := func(context.Context, any) (any, error) {
		return &keyservicev1.ValidateResponse{Code: keyservicev1.Code_CODE_NOT_FOUND}, nil
	}
	ctx := caller.WithIdentity(context.Background(), id)
	for i := 0; i < n; i++ {
		_, err := ic(ctx, &keyservicev1.ValidateRequest{Key: "k", ClientIp: clientIP}, info, notFound)
		if status.Code(err) == codes.ResourceExhausted {
			refused++
		}
	}
	return refused
}

func guardCallers(trusted ...string) *ratelimit.Callers {
	cfg := ratelimit.CallerConfig{
		Limits: limits.Limits{
			CallerRate: 1e9, CallerBurst: 1 << 30, FailedRate: 0.001, FailedBurst: 3, CallerTableSize: 1000, CallerIdle: time.Hour,
		},
	}
	for _, p := range trusted {
		cfg.TrustedProxies = append(cfg.TrustedProxies, netip.MustParsePrefix(p))
	}
	return ratelimit.NewCallers(cfg)
}

// TestTrustedIPv6ProxyNamesEndClients: a proxy trusted as a single IPv6
// address (a /128) is believed when it names end clients, although
// anonymous budgets are kept per /64.
func TestTrustedIPv6ProxyNamesEndClients(t *testing.T) {
	c := guardCallers("2001:db8::10/128")
	proxy := caller.Identity{Kind: caller.KindAddr, Addr: netip.MustParseAddr("2001:db8::10")}
	if n := failedAttempts(t, c, proxy, "198.51.100.1", 5); n != 2 {
		t.Fatalf("flooding end client: %d of 5 refused, want 2", n)
	}
	if n := failedAttempts(t, c, proxy, "198.51.100.2", 3); n != 0 {
		t.Fatalf("another end client behind the same proxy: %d of 3 refused, want 0", n)
	}
	// Its /64 neighbour is not trusted: an anonymous caller, one budget.
	other := caller.Identity{Kind: caller.KindAddr, Addr: netip.MustParseAddr("2001:db8::11")}
	if n := failedAttempts(t, c, other, "198.51.100.3", 5); n != 2 {
		t.Fatalf("untrusted neighbour naming end clients: %d of 5 refused, want 2", n)
	}
}

// TestCallerThatMayNameEndClientsButNamesNoneIsNeverRefused: a trusted
// proxy or a credentialed caller that sends no client_ip is not locked
// out by its users' wrong keys; an anonymous caller is.
func TestCallerThatMayNameEndClientsButNamesNoneIsNeverRefused(t *testing.T) {
	c := guardCallers("10.0.0.0/8")
	for _, id := range []caller.Identity{
		{Kind: caller.KindAddr, Addr: netip.MustParseAddr("10.1.2.3")},
		{Kind: caller.KindToken, Name: "svc"},
		{Kind: caller.KindCert, Name: "svc.example"},
		{Kind: caller.KindAdmin, Name: "admin"},
	} {
		if n := failedAttempts(t, c, id, "", 50); n != 0 {
			t.Errorf("%s naming no end client: %d of 50 refused, want 0", id, n)
		}
	}
	anon := caller.Identity{Kind: caller.KindAddr, Addr: netip.MustParseAddr("192.0.2.1")}
	if n := failedAttempts(t, c, anon, "", 10); n != 7 {
		t.Fatalf("anonymous caller: %d of 10 refused, want 7", n)
	}
}

// TestGCRAAllowsBurstThenRefills: the caller bucket allows exactly its
// burst at once, then one call per interval of the injected clock, and a
// token given back is usable again (but never beyond the burst).
func TestGCRAAllowsBurstThenRefills(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	c := ratelimit.NewCallers(ratelimit.CallerConfig{
		Limits: limits.Limits{
			CallerRate: 2, CallerBurst: 5, FailedRate: 1, FailedBurst: 1, CallerTableSize: 10, CallerIdle: time.Hour,
		},
		Now: clk.Now,
	})
	id := caller.Identity{Kind: caller.KindToken, Name: "a"}
	allowed := 0
	for i := 0; i < 20; i++ {
		if ok, _ := c.Allow(id); ok {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("%d of 20 immediate calls allowed, want the burst of 5", allowed)
	}
	if ok, wait := c.Allow(id); ok || wait != 500*time.Millisecond {
		t.Fatalf("next call: %v, wait %s; want refused for 500ms (2 per second)", ok, wait)
	}
	clk.Advance(500 * time.Millisecond)
	if ok, _ := c.Allow(id); !ok {
		t.Fatal("one call after one interval: refused")
	}
	if ok, _ := c.Allow(id); ok {
		t.Fatal("a second call after one interval: allowed")
	}
	clk.Advance(time.Hour)
	allowed = 0
	for i := 0; i < 20; i++ {
		if ok, _ := c.Allow(id); ok {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("after an idle hour: %d allowed, want the burst of 5 (no more)", allowed)
	}
}

// TestUnlimitedBudgetNeverRefusesConcurrentCalls: a rate beyond a call per
// nanosecond (as the bench configures) is unlimited, even when goroutines
// read the clock in a different order than they update the bucket.
func TestUnlimitedBudgetNeverRefusesConcurrentCalls(t *testing.T) {
	c := ratelimit.NewCallers(ratelimit.CallerConfig{
		Limits: limits.Limits{
			CallerRate: 1e9, CallerBurst: 1 << 30, FailedRate: 1, FailedBurst: 1, CallerTableSize: 10, CallerIdle: time.Hour,
		},
	})
	id := caller.Identity{Kind: caller.KindToken, Name: "bench"}
	var refused atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for i := 0; i < 20_000; i++ {
				if ok, _ := c.Allow(id); !ok {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := refused.Load(); n != 0 {
		t.Fatalf("%d of 160,000 calls refused by an unlimited budget", n)
	}
}

// TestHugeBurstOverATinyRateDoesNotOverflow: a burst of ten million at one
// per 1,000 s is a budget of ten million, not a negative one.
func TestHugeBurstOverATinyRateDoesNotOverflow(t *testing.T) {
	c := ratelimit.NewCallers(ratelimit.CallerConfig{
		Limits: limits.Limits{
			CallerRate: 0.001, CallerBurst: 10_000_000, FailedRate: 1, FailedBurst: 1, CallerTableSize: 10, CallerIdle: time.Hour,
		},
	})
	for i := 0; i < 1000; i++ {
		if ok, wait := c.Allow(caller.Identity{Kind: caller.KindToken, Name: "a"}); !ok {
			t.Fatalf("call %d refused (wait %s)", i, wait)
		}
	}
}

// TestTrustedProxyKeepsItsOwnCallBudget: an untrusted neighbour in the
// same IPv6 /64 spending its budget does not spend the trusted proxy's.
func TestTrustedProxyKeepsItsOwnCallBudget(t *testing.T) {
	c := ratelimit.NewCallers(ratelimit.CallerConfig{
		Limits: limits.Limits{
			CallerRate: 0.001, CallerBurst: 5, FailedRate: 1, FailedBurst: 1, CallerTableSize: 10, CallerIdle: time.Hour,
		},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("2001:db8::10/128")},
	})
	for i := 0; i < 5; i++ {
		c.Allow(caller.Identity{Kind: caller.KindAddr, Addr: netip.MustParseAddr("2001:db8::11")})
	}
	if ok, _ := c.Allow(caller.Identity{Kind: caller.KindAddr, Addr: netip.MustParseAddr("2001:db8::10")}); !ok {
		t.Fatal("the trusted proxy was refused because its /64 neighbour spent a shared budget")
	}
}
