package ratelimit_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/grpc"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/limits"
	"github.com/keyservice/keyservice/internal/ratelimit"
	"github.com/keyservice/keyservice/internal/redistest"
)

// BenchmarkCallerInterceptor is the limiter's added cost per allowed call
// (the handler does nothing).
func BenchmarkCallerInterceptor(b *testing.B) {
	c := ratelimit.NewCallers(ratelimit.CallerConfig{
		Limits: limits.Limits{
			CallerRate: 1e12, CallerBurst: 1 << 30, FailedRate: 1e12, FailedBurst: 1 << 30, CallerTableSize: 100_000, CallerIdle: time.Hour,
		},
	})
	ic := c.Interceptor()
	ctx := caller.WithIdentity(context.Background(), caller.Identity{Kind: caller.KindAddr, Addr: netip.MustParseAddr("10.0.0.1")})
	noop := func(context.Context, any) (any, error) { return nil, nil }
	for _, m := range []struct {
		name string
		info *grpc.UnaryServerInfo
		req  any
	}{
		{"CreateKey", &grpc.UnaryServerInfo{FullMethod: keyservicev1.KeyService_CreateKey_FullMethodName}, &keyservicev1.CreateKeyRequest{}},
		{"Validate", &grpc.UnaryServerInfo{FullMethod: keyservicev1.KeyService_Validate_FullMethodName}, &keyservicev1.ValidateRequest{Key: "k"}},
	} {
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ic(ctx, m.req, m.info, noop); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkKeyBudgets(b *testing.B) {
	u, prefix := redistest.URL(b)
	l := apikey.RateLimit{Limit: 1 << 30, Period: time.Second, Burst: 1 << 30}
	for name, s := range map[string]ratelimit.KeyBudgets{
		"local": ratelimit.NewLocal(1000, time.Hour, nil),
		"redis": ratelimit.NewRedis(newRedisClient(b, u), prefix),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d, err := s.Take(context.Background(), "bench-key", l, 1); err != nil || !d.Allowed {
					b.Fatal(d, err)
				}
			}
		})
	}
}
