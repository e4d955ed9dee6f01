package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/client"
)

// ClientCacheResult: a key held in a Go client's cache (the client
// following replica B's WatchKeyEvents), revoked on replica A; the time
// from the revoke's return to the client answering it from the service
// (REVOKED), quiet and while B serves hot keys at full speed.
type ClientCacheResult struct {
	Trials   int       `json:"trials"`
	QuietMS  LatencyMS `json:"revoke_to_cache_dropped_ms"`
	LoadedMS LatencyMS `json:"revoke_to_cache_dropped_under_load_ms"`
}

// clientCacheRevocation runs the trials against a client of addrB,
// revoking through ga (replica A).
func (e *env) clientCacheRevocation(ctx context.Context, ga *grpcValidator, addrB string) ([]time.Duration, error) {
	c, err := client.New(addrB, client.WithToken(adminToken), client.WithCache(0, 0))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for start := time.Now(); !c.CacheLive(); time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			return nil, fmt.Errorf("the client cache's stream did not start")
		}
	}
	a := ga.clients[0]
	var out []time.Duration
	for i := 0; i < e.cfg.Trials; i++ {
		k, err := a.CreateKey(adminCtx(ctx), &keyservicev1.CreateKeyRequest{Name: "client-cache", Owner: "bench"})
		if err != nil {
			return nil, err
		}
		cached := false
		for start := time.Now(); !cached; time.Sleep(100 * time.Microsecond) {
			if time.Since(start) > 10*time.Second {
				return nil, fmt.Errorf("trial %d: the key never reached the client's cache", i)
			}
			res, err := c.Verify(ctx, k.GetSecret(), client.WithCost(0))
			cached = err == nil && res.Cached
		}
		if _, err := a.RevokeKey(adminCtx(ctx), &keyservicev1.RevokeKeyRequest{Id: k.GetKey().GetId()}); err != nil {
			return nil, err
		}
		revoked := time.Now()
		for {
			if time.Since(revoked) > 10*time.Second {
				return nil, fmt.Errorf("trial %d: the revocation never reached the client's cache", i)
			}
			res, err := c.Verify(ctx, k.GetSecret(), client.WithCost(0))
			if err == nil && !res.Cached && res.Code == keyservicev1.Code_CODE_REVOKED {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		out = append(out, time.Since(revoked))
	}
	return out, nil
}

func (r ClientCacheResult) writeMarkdown(w io.Writer) {
	if r.Trials == 0 {
		return
	}
	fmt.Fprintf(w, "- **Revocation to a Go client's cache** (%d trials; the key cached by a client of replica B, revoked on A; until the client answers REVOKED from the service; p50 / p99 / max): quiet %.2f / %.2f / %.2f ms; B under load %.2f / %.2f / %.2f ms.\n",
		r.Trials, r.QuietMS.P50, r.QuietMS.P99, r.QuietMS.Max, r.LoadedMS.P50, r.LoadedMS.P99, r.LoadedMS.Max)
}

func (r ClientCacheResult) judge(add func(bool, string, ...any)) {
	if r.Trials == 0 {
		return
	}
	add(max(r.QuietMS.P99, r.LoadedMS.P99) < 100, "revoke on one replica → gone from the Go client cache of another: p99 %.2f ms quiet, %.2f ms under load (target < 100)", r.QuietMS.P99, r.LoadedMS.P99)
}
