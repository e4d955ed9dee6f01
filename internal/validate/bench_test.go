package validate_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/testdb"
	"github.com/keyservice/keyservice/internal/validate"
)

// Benchmarks of each step of the path that answers, in process, on a real
// database (only the lookup benchmark reaches it).

func benchPath(b *testing.B, v *validate.Validator, keys []string, want outcome.Code) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r, err := v.Validate(ctx, keys[i%len(keys)])
		if err != nil || r.Code != want {
			b.Fatalf("got %v, %v; want %v", r.Code, err, want)
		}
		i++
	}
}

func BenchmarkValidate(b *testing.B) {
	bb := setup(b)
	valid, _ := bb.create(b, nil)
	revoked, rk := bb.create(b, nil)
	bb.revoke(b, rk)
	mustValidate(b, bb.v, valid.Secret)
	mustValidate(b, bb.v, revoked.Secret)
	unknown := make([]string, 1024)
	for i := range unknown {
		unknown[i] = bb.unknownKey(b)
	}
	wrongSum := valid.Secret[:len(valid.Secret)-1] + "0"
	if wrongSum == valid.Secret {
		wrongSum = valid.Secret[:len(valid.Secret)-1] + "1"
	}
	b.Run("shape", func(b *testing.B) { benchPath(b, bb.v, []string{"not-a-key"}, outcome.Malformed) })
	b.Run("checksum", func(b *testing.B) { benchPath(b, bb.v, []string{wrongSum}, outcome.Malformed) })
	b.Run("negative_cache", func(b *testing.B) { benchPath(b, bb.v, []string{revoked.Secret}, outcome.Revoked) })
	b.Run("positive_cache", func(b *testing.B) { benchPath(b, bb.v, []string{valid.Secret}, outcome.Valid) })
	b.Run("filter", func(b *testing.B) { benchPath(b, bb.v, unknown, outcome.NotFound) })
	b.Run("positive_cache_parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if r, _ := bb.v.Validate(context.Background(), valid.Secret); r.Code != outcome.Valid {
					b.Fatal(r.Code)
				}
			}
		})
	})
}

// BenchmarkLookup is the slow path: a distinct plausible key per call, past
// a filter forced to say "maybe", to the database and back.
func BenchmarkLookup(b *testing.B) {
	bb := setup(b, func(c *validate.Config) { c.NegativeSize = 1 })
	validate.ForceFilterMaybe(bb.v)
	keys := make([]string, b.N+1)
	for i := range keys {
		keys[i] = bb.unknownKey(b)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r, err := bb.v.Validate(context.Background(), keys[i]); err != nil || r.Code != outcome.NotFound {
			b.Fatalf("%v %v", r.Code, err)
		}
	}
}

// BenchmarkColdKeys is first-seen valid keys from 64 concurrent callers,
// with the database a millisecond away: each op is one key answered VALID
// by a (batched) lookup. keys/stmt is how many keys one statement carried.
func BenchmarkColdKeys(b *testing.B) {
	u, _ := testdb.New(b)
	secrets := seedKeys(b, u, max(b.N, 64))
	bb := setupOn(b, behind(b, u, time.Millisecond), true, func(c *validate.Config) { c.WarmKeys = -1 })
	before := bb.tr.lookups.Load()
	b.ResetTimer()
	valid, unavailable, other := burst(bb.v, secrets[:b.N], 64)
	b.StopTimer()
	if unavailable+other != 0 || valid != int64(b.N) {
		b.Fatalf("%d VALID, %d UNAVAILABLE, %d other of %d", valid, unavailable, other, b.N)
	}
	b.ReportMetric(float64(b.N)/float64(bb.tr.lookups.Load()-before), "keys/stmt")

}
