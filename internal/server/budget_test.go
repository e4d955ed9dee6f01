package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/redistest"
)

// TestRotationChainSharesOneBudget: a key and every key rotated from it
// spend one budget. Three rotations inside the grace period leave four
// valid keys; with a limit of 5, the four together are allowed 5 calls,
// not 5 each — with local budgets and with Redis.
func TestRotationChainSharesOneBudget(t *testing.T) {
	t.Parallel()
	for name, redisURL := range map[string]func(*testing.T) string{
		"local": func(*testing.T) string { return "" },
		"redis": func(t *testing.T) string { u, _ := redistest.URL(t); return u },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u := redisURL(t)
			e := start(t, withConfig(func(c *config.Config) { c.RedisURL = u }))
			ctx := admin(context.Background())
			secret, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "chained", Owner: "acme",
				RateLimit: &keyservicev1.RateLimit{Limit: 5, Period: durationpb.New(time.Hour), Burst: 5}})
			secrets := []string{secret}
			id := k.GetId()
			for i := 0; i < 3; i++ {
				rot, err := e.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: id, GracePeriod: durationpb.New(time.Hour)})
				if err != nil {
					t.Fatal(err)
				}
				secrets, id = append(secrets, rot.GetSecret()), rot.GetKey().GetId()
			}
			valid := 0
			for round := 0; round < 5; round++ {
				for i, s := range secrets {
					v := validate(t, e, &keyservicev1.ValidateRequest{Key: s})
					switch v.GetCode() {
					case keyservicev1.Code_CODE_VALID:
						valid++
					case keyservicev1.Code_CODE_RATE_LIMITED:
					default:
						t.Fatalf("key %d of the chain: %v, want VALID or RATE_LIMITED", i+1, v.GetCode())
					}
				}
			}
			if valid != 5 {
				t.Fatalf("the four keys of one rotation chain were allowed %d calls in all, want the one budget of 5", valid)
			}
		})
	}
}
