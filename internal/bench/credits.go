package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// The credits step (scenario "credits"): what spending credits costs a
// key, measured against the same key without credits in one run, and
// whether credits are ever overspent.

// CreditsResult is one transport's credits measurement.
type CreditsResult struct {
	Transport string `json:"transport"`
	// One key with ample credits vs one without, alternating trials.
	RPSWithout float64 `json:"rps_without_credits"`
	RPSWith    float64 `json:"rps_with_credits"`
	Ratio      float64 `json:"ratio"`
	Calls      int64   `json:"calls_with_credits"`
	// WritesPer1k: statements writing credits (UPDATE/INSERT on credits,
	// pg_stat_statements) per 1,000 calls with credits; -1 unknown.
	WritesPer1k float64 `json:"credit_writes_per_1k"`
	// Near exhaustion: many keys with few credits each, hammered.
	NearKeys   int     `json:"near_exhaustion_keys"`
	NearEach   int     `json:"near_exhaustion_credits_each"`
	NearValid  int64   `json:"near_exhaustion_valid"`
	NearCalls  int64   `json:"near_exhaustion_calls"`
	NearRPS    float64 `json:"near_exhaustion_rps"`
	NearWrites float64 `json:"near_exhaustion_credit_writes_per_1k"`
	Overspent  bool    `json:"overspent"`
}

// creditWrites counts statements that wrote credits, or -1.
func (e *env) creditWrites(ctx context.Context) int64 {
	if !e.pgss {
		return -1
	}
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		return -1
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
		WHERE query ILIKE '%UPDATE credits%' OR query ILIKE '%INSERT INTO credits%'`).Scan(&n); err != nil {
		return -1
	}
	return n
}

func perK(n, calls int64) float64 {
	if n < 0 || calls == 0 {
		return -1
	}
	return float64(n) * 1000 / float64(calls)
}

// runCredits measures the credits step on s, the keyservice service.
func (e *env) runCredits(ctx context.Context, s endpoint) ([]CreditsResult, error) {
	g, err := newGRPC(s.GRPCAddr().String(), 1)
	if err != nil {
		return nil, err
	}
	defer g.close()
	admin := g.clients[0]
	// Rate limits far above what the machine can do: only credits refuse.
	fast := &keyservicev1.RateLimit{Limit: 1_000_000_000, Period: durationpb.New(time.Second)}
	mk := func(name string, credits int64) (string, error) {
		req := &keyservicev1.CreateKeyRequest{Name: name, Owner: "bench-credits", RateLimit: fast}
		if credits > 0 {
			req.Credits = &keyservicev1.Credits{Remaining: credits}
		}
		k, err := admin.CreateKey(adminCtx(ctx), req)
		if err != nil {
			return "", fmt.Errorf("creating a credits key: %w", err)
		}
		return k.GetSecret(), nil
	}
	var out []CreditsResult
	for _, tr := range e.cfg.Transports {
		plain, err := mk("without-credits", 0)
		if err != nil {
			return nil, err
		}
		ample, err := mk("ample-credits", 1_000_000_000_000_000)
		if err != nil {
			return nil, err
		}
		v, err := newValidateClient(tr, s, e.cfg)
		if err != nil {
			return nil, err
		}
		r := CreditsResult{Transport: tr}
		one := func(key string) picker { return func(int, int) string { return key } }
		rate := func(key string) (float64, int64) {
			start := time.Now()
			ts := drive(ctx, v, e.cfg.Workers, e.cfg.Duration, one(key), nil)
			var n int64
			for _, t := range ts {
				n += int64(t.answers["CODE_VALID"])
			}
			return float64(n) / time.Since(start).Seconds(), n
		}
		drive(ctx, v, e.cfg.Workers, e.cfg.Warmup, one(ample), nil) // the first lease, caches
		drive(ctx, v, e.cfg.Workers, e.cfg.Warmup, one(plain), nil)
		writes := e.creditWrites(ctx)
		var with, without float64
		var calls int64
		for trial := 0; trial < 2; trial++ { // alternating, so drift favours neither
			w0, _ := rate(plain)
			w1, n := rate(ample)
			without, with, calls = without+w0/2, with+w1/2, calls+n
		}
		r.RPSWithout, r.RPSWith, r.Calls = without, with, calls
		if without > 0 {
			r.Ratio = with / without
		}
		if w := e.creditWrites(ctx); w >= 0 && writes >= 0 {
			r.WritesPer1k = perK(w-writes, calls)
		} else {
			r.WritesPer1k = -1
		}
		// Near exhaustion: 200 keys with 5 credits each.
		r.NearKeys, r.NearEach = 200, 5
		near := make([]string, r.NearKeys)
		for i := range near {
			if near[i], err = mk(fmt.Sprintf("near-%d", i), int64(r.NearEach)); err != nil {
				return nil, err
			}
		}
		writes = e.creditWrites(ctx)
		mix := func(w, i int) int { return (w*7919 + i*104729) & 0x7fffffff }
		start := time.Now()
		ts := drive(ctx, v, e.cfg.Workers, e.cfg.Duration, func(w, i int) string { return near[mix(w, i)%len(near)] }, nil)
		for _, t := range ts {
			r.NearValid += int64(t.answers["CODE_VALID"])
			r.NearCalls += int64(len(t.lat))
		}
		r.NearRPS = float64(r.NearCalls) / time.Since(start).Seconds()
		if w := e.creditWrites(ctx); w >= 0 && writes >= 0 {
			r.NearWrites = perK(w-writes, r.NearCalls)
		} else {
			r.NearWrites = -1
		}
		r.Overspent = r.NearValid > int64(r.NearKeys*r.NearEach)
		v.close()
		e.log.Info("measured credits", "transport", tr, "ratio", r.Ratio, "writes_per_1k", r.WritesPer1k,
			"near_valid", r.NearValid, "granted", r.NearKeys*r.NearEach)
		out = append(out, r)
	}
	return out, nil
}

// checkCredits judges the credits step against the targets.
func checkCredits(rs []CreditsResult, add func(bool, string, ...any)) {
	for _, r := range rs {
		add(r.Ratio >= 0.8, "credits/%s: a key with credits at %.2f× the same key without (target ≥ 0.8)", r.Transport, r.Ratio)
		if r.WritesPer1k >= 0 {
			add(r.WritesPer1k <= 5, "credits/%s: %.2f credit-writing statements per 1,000 calls (target ≤ 5)", r.Transport, r.WritesPer1k)
		}
		add(!r.Overspent, "credits/%s near exhaustion: %d VALID for %d credits granted (never overspent)", r.Transport, r.NearValid, r.NearKeys*r.NearEach)
	}
}

func writeCreditsMarkdown(w io.Writer, rs []CreditsResult) {
	fmt.Fprintln(w, "Credits (one key with ample credits against the same key without, alternating; then 200 keys with 5 credits each):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| transport | rps without | rps with | ratio | credit writes / 1k | near exhaustion: VALID / granted | near rps | near writes / 1k |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.2f | %.2f | %d / %d | %.0f | %.2f |\n", r.Transport, r.RPSWithout, r.RPSWith, r.Ratio,
			r.WritesPer1k, r.NearValid, r.NearKeys*r.NearEach, r.NearRPS, r.NearWrites)
	}
	fmt.Fprintln(w)
}
