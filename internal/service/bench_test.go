package service_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/peer"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/ratelimit"
	"github.com/keyservice/keyservice/internal/service"
	"github.com/keyservice/keyservice/internal/validate"
)

// cached answers every key VALID from the positive cache with one record:
// the validation path is not under test here, the handler around it is.
type cached struct{ key apikey.Key }

func (c *cached) ValidateIn(context.Context, string, validate.Scope) (validate.Result, error) {
	return validate.Result{Code: outcome.Valid, Key: &c.key, Path: validate.PathPositiveCache}, nil
}

// BenchmarkServiceValidate is the handler's cost around a cached VALID
// answer (request checks, access checks, the per-key limit, the answer's
// API form): plain is a key with no allowed addresses and a call with no
// required scopes, the case whose cost the key lifecycle must not change.
func BenchmarkServiceValidate(b *testing.B) {
	key := apikey.Key{ID: uuid.New(), Hint: "ks_...Ab12", Name: "bench", Owner: "acme", Scopes: []string{"read", "write"},
		Metadata: map[string]string{}, CreatedAt: time.Unix(1_790_000_000, 0), Enabled: true,
		RateLimit: &apikey.RateLimit{Limit: 1_000_000_000, Period: time.Second, Burst: 1_000_000_000}}
	pinned := key
	pinned.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("10.0.0.0/8")}
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5000}})
	ctx = caller.WithIdentity(ctx, caller.Identity{Kind: caller.KindAddr, Addr: netip.MustParseAddr("10.1.2.3")})
	for _, bc := range []struct {
		name string
		key  apikey.Key
		req  *keyservicev1.ValidateRequest
	}{
		{"plain", key, &keyservicev1.ValidateRequest{Key: "k"}},
		{"required_scopes", key, &keyservicev1.ValidateRequest{Key: "k", RequiredScopes: []string{"write"}}},
		{"allowed_cidrs", pinned, &keyservicev1.ValidateRequest{Key: "k"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			svc := service.New(service.Config{Validator: &cached{key: bc.key}, KeyLimits: ratelimit.NewLocal(1000, time.Minute, nil), ViewCacheSize: 1000})
			b.ReportAllocs()
			for b.Loop() {
				r, err := svc.Validate(ctx, bc.req)
				if err != nil || !r.GetValid() {
					b.Fatalf("%v %v", r, err)
				}
			}
		})
	}
}
