package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/redistest"
)

// hammer sends calls Validate calls of cost 1 with key from 60 goroutines,
// spread over the replicas' clients in turn, and counts the answers by
// code (errors under "error").
func hammer(t *testing.T, clients []keyservicev1.KeyServiceClient, key string, calls int, during func(done int64)) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 60; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(calls) {
					return
				}
				if during != nil {
					during(i)
				}
				c := clients[int(i)%len(clients)]
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				r, err := c.Validate(ctx, &keyservicev1.ValidateRequest{Key: key})
				cancel()
				name := "error"
				if err == nil {
					name = strings.TrimPrefix(r.GetCode().String(), "CODE_")
				}
				mu.Lock()
				counts[name]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

// TestCreditsExactAcrossReplicas: three replicas, 60 concurrent callers,
// one key with 1,000 credits at cost 1, 3,000 calls: exactly 1,000 VALID
// and the rest USAGE_EXCEEDED, with local rate limits and with Redis.
func TestCreditsExactAcrossReplicas(t *testing.T) {
	t.Parallel()
	for name, redisURL := range map[string]func(*testing.T) string{
		"without redis": func(*testing.T) string { return "" },
		"with redis":    func(t *testing.T) string { u, _ := redistest.URL(t); return u },
	} {
		t.Run(name, func(t *testing.T) {
			u := redisURL(t)
			// A rate limit far above the calls made: only credits refuse.
			cfgs := withConfig(func(c *config.Config) { c.RedisURL = u })
			a := start(t, cfgs)
			b := startOn(t, a.dbURL, cfgs)
			c := startOn(t, a.dbURL, cfgs)
			b.waitReady(t)
			c.waitReady(t)
			secret, _ := createKey(t, a, &keyservicev1.CreateKeyRequest{Name: "metered", Owner: "acme",
				RateLimit: &keyservicev1.RateLimit{Limit: 1_000_000, Period: durationpb.New(time.Second)},
				Credits:   &keyservicev1.Credits{Remaining: 1000}})
			clients := []keyservicev1.KeyServiceClient{a.grpc, b.grpc, c.grpc}
			waitKnown(t, clients, secret)
			got := hammer(t, clients, secret, 3000, nil)
			if got["VALID"] != 1000 || got["USAGE_EXCEEDED"] != 2000 {
				t.Fatalf("answers %v: want exactly 1000 VALID and 2000 USAGE_EXCEEDED", got)
			}
		})
	}
}

// TestUsageExceededAnswer: the refusal says whose credits refused, what
// is left and when they refill; nothing is spent by a refused call;
// forward-auth answers 402 and Envoy RESOURCE_EXHAUSTED with the reason.
func TestUsageExceededAnswer(t *testing.T) {
	t.Parallel()
	e := start(t)
	secret, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "metered", Owner: "acme",
		Credits: &keyservicev1.Credits{Remaining: 3, Refill: &keyservicev1.Refill{Amount: 3, Interval: keyservicev1.RefillInterval_REFILL_INTERVAL_DAILY}}})
	if r := validate(t, e, &keyservicev1.ValidateRequest{Key: secret, Cost: ptr(int32(2))}); r.GetCode() != keyservicev1.Code_CODE_VALID || r.GetCredits().GetRemaining() != 1 {
		t.Fatalf("cost 2 of 3: %v", r)
	}
	r := validate(t, e, &keyservicev1.ValidateRequest{Key: secret, Cost: ptr(int32(2))})
	if r.GetCode() != keyservicev1.Code_CODE_USAGE_EXCEEDED || r.GetRefusedBy() != keyservicev1.Holder_HOLDER_KEY ||
		r.GetCredits().GetRemaining() != 1 || r.GetCredits().GetNextRefillAt() == nil || r.GetValid() {
		t.Fatalf("cost 2 of 1 left: %v", r)
	}
	if r := validate(t, e, &keyservicev1.ValidateRequest{Key: secret, Cost: ptr(int32(1))}); r.GetCode() != keyservicev1.Code_CODE_VALID {
		t.Fatalf("the refused call spent credits: cost 1 of the 1 left is %v", r.GetCode())
	}
	code, _, h := e.rest(t, http.MethodGet, "/v1/auth", secret, "")
	if code != http.StatusPaymentRequired || h.Get("X-Refused-By") != "key" || h.Get("X-Credits-Remaining") != "0" || h.Get("X-Credits-Refill") == "" {
		t.Fatalf("forward-auth: %d %v, want 402 with X-Refused-By key, X-Credits-Remaining 0 and X-Credits-Refill", code, h)
	}
	resp := envoyCheck(t, e, "headers", envoyRequest{source: "192.0.2.1", headers: []string{"authorization", "Bearer " + secret}})
	if resp.GetStatus().GetCode() != int32(codes.ResourceExhausted) || resp.GetStatus().GetMessage() != "USAGE_EXCEEDED: key" || envoyStatus(resp) != 402 {
		t.Fatalf("envoy: %v", resp)
	}
	got, err := e.grpc.GetKey(admin(context.Background()), &keyservicev1.GetKeyRequest{Id: k.GetId()})
	if err != nil || got.GetKey().GetCredits().GetRefill().GetAmount() != 3 {
		t.Fatalf("GetKey shows credits %v, %v", got.GetKey().GetCredits(), err)
	}
}

// TestOwnerBudgets: a key spends from its own and its owner's credits;
// the owner's refuse while the key still has credits, and the reverse,
// and the answer says whose refused. A key created for the owner later
// needs no extra step.
func TestOwnerBudgets(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	o, err := e.grpc.CreateOwner(ctx, &keyservicev1.CreateOwnerRequest{Owner: &keyservicev1.Owner{Name: "acme", Credits: &keyservicev1.Credits{Remaining: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	rich, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "rich", Owner: "acme", Credits: &keyservicev1.Credits{Remaining: 100}})
	for i := 0; i < 2; i++ {
		if r := validate(t, e, &keyservicev1.ValidateRequest{Key: rich}); r.GetCode() != keyservicev1.Code_CODE_VALID || r.GetOwnerCredits() == nil {
			t.Fatalf("call %d: %v", i+1, r)
		}
	}
	r := validate(t, e, &keyservicev1.ValidateRequest{Key: rich})
	// The key has 98 left. The answer shows what this replica knows: its
	// lease and the pool as of its last lease, which is short by a lease
	// being given back when the key's own creation NOTIFY arrived after
	// its first lease (the lease goes back, a new one is taken before the
	// old one is counted back in): at most one lease, 7 here.
	if r.GetCode() != keyservicev1.Code_CODE_USAGE_EXCEEDED || r.GetRefusedBy() != keyservicev1.Holder_HOLDER_OWNER || r.GetCredits().GetRemaining() < 98-7 {
		t.Fatalf("owner out of credits, key with 98: %v", r)
	}
	// Top the owner up; a key with one credit of its own now refuses first.
	if _, err := e.grpc.AddCredits(ctx, &keyservicev1.AddCreditsRequest{OwnerId: o.GetOwner().GetId(), Amount: 100}); err != nil {
		t.Fatal(err)
	}
	poor, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "poor", Owner: "acme", Credits: &keyservicev1.Credits{Remaining: 1}})
	waitFor(t, func() bool {
		return validate(t, e, &keyservicev1.ValidateRequest{Key: poor, Cost: ptr(int32(0))}).GetCode() == keyservicev1.Code_CODE_VALID
	})
	if r := validate(t, e, &keyservicev1.ValidateRequest{Key: poor}); r.GetCode() != keyservicev1.Code_CODE_VALID {
		t.Fatalf("poor's one credit: %v", r)
	}
	r = validate(t, e, &keyservicev1.ValidateRequest{Key: poor})
	if r.GetCode() != keyservicev1.Code_CODE_USAGE_EXCEEDED || r.GetRefusedBy() != keyservicev1.Holder_HOLDER_KEY {
		t.Fatalf("key out of credits, owner with plenty: %v", r)
	}
	// An owner's rate limit is shared by its keys.
	if _, err := e.grpc.CreateOwner(ctx, &keyservicev1.CreateOwnerRequest{Owner: &keyservicev1.Owner{Name: "slow",
		RateLimit: &keyservicev1.RateLimit{Limit: 2, Period: durationpb.New(time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	s1, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "s1", Owner: "slow"})
	s2, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "s2", Owner: "slow"})
	validate(t, e, &keyservicev1.ValidateRequest{Key: s1})
	validate(t, e, &keyservicev1.ValidateRequest{Key: s2})
	r = validate(t, e, &keyservicev1.ValidateRequest{Key: s1})
	if r.GetCode() != keyservicev1.Code_CODE_RATE_LIMITED || r.GetRefusedBy() != keyservicev1.Holder_HOLDER_OWNER || r.GetOwnerRateLimit() == nil {
		t.Fatalf("third call of the owner's two: %v", r)
	}
}

// TestReportUsage: a charge after the fact takes the key below zero (the
// only way), a retry with the same request_id is charged once, and the key
// is then refused until topped up.
func TestReportUsage(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	secret, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "llm", Owner: "acme", Credits: &keyservicev1.Credits{Remaining: 10}})
	rid := uuid.NewString()
	for i := 0; i < 3; i++ {
		r, err := e.grpc.ReportUsage(ctx, &keyservicev1.ReportUsageRequest{Key: secret, Cost: 25, RequestId: rid})
		if err != nil {
			t.Fatal(err)
		}
		if r.GetDuplicate() != (i > 0) {
			t.Fatalf("report %d: duplicate %v", i+1, r.GetDuplicate())
		}
	}
	got, err := e.grpc.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: k.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	// What remains is 10 - 25, less what this replica leased and has not
	// spent (given back when it learns of the charge).
	waitFor(t, func() bool {
		got, err = e.grpc.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: k.GetId()})
		return err == nil && got.GetKey().GetCredits().GetRemaining() == -15
	})
	waitFor(t, func() bool {
		return validate(t, e, &keyservicev1.ValidateRequest{Key: secret}).GetCode() == keyservicev1.Code_CODE_USAGE_EXCEEDED
	})
	if _, err := e.grpc.ReportUsage(ctx, &keyservicev1.ReportUsageRequest{Key: secret, Cost: 26, RequestId: rid}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("request_id reused with another cost: %v, want INVALID_ARGUMENT", err)
	}
	if _, err := e.grpc.AddCredits(ctx, &keyservicev1.AddCreditsRequest{KeyId: k.GetId(), Amount: 20}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return validate(t, e, &keyservicev1.ValidateRequest{Key: secret}).GetCode() == keyservicev1.Code_CODE_VALID
	})
}

// TestCreditsBadInput: each is a clear INVALID_ARGUMENT and writes nothing.
func TestCreditsBadInput(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	_, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "k", Owner: "acme", Credits: &keyservicev1.Credits{Remaining: 5}})
	before := auditCount(t, e)
	monthly := func(day int32) *keyservicev1.Credits {
		return &keyservicev1.Credits{Remaining: 1, Refill: &keyservicev1.Refill{Amount: 1, Interval: keyservicev1.RefillInterval_REFILL_INTERVAL_MONTHLY, DayOfMonth: day}}
	}
	cases := map[string]func() error{
		"February 30th (day 30)": func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "x", Owner: "o", Credits: monthly(30)})
			return err
		},
		"day 0": func() error {
			_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId(), Credits: monthly(0)}, UpdateMask: mask("credits")})
			return err
		},
		"no interval": func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "x", Owner: "o", Credits: &keyservicev1.Credits{Remaining: 1, Refill: &keyservicev1.Refill{Amount: 1}}})
			return err
		},
		"every 30s": func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "x", Owner: "o", Credits: &keyservicev1.Credits{Remaining: 1,
				Refill: &keyservicev1.Refill{Amount: 1, Interval: keyservicev1.RefillInterval_REFILL_INTERVAL_EVERY, Every: durationpb.New(30 * time.Second)}}})
			return err
		},
		"negative credits": func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "x", Owner: "o", Credits: &keyservicev1.Credits{Remaining: -1}})
			return err
		},
		"absurd credits": func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "x", Owner: "o", Credits: &keyservicev1.Credits{Remaining: 1 << 62}})
			return err
		},
		"negative cost": func() error {
			_, err := e.grpc.ReportUsage(ctx, &keyservicev1.ReportUsageRequest{KeyId: k.GetId(), Cost: -1, RequestId: uuid.NewString()})
			return err
		},
		"absurd cost": func() error {
			_, err := e.grpc.ReportUsage(ctx, &keyservicev1.ReportUsageRequest{KeyId: k.GetId(), Cost: 1 << 50, RequestId: uuid.NewString()})
			return err
		},
		"report without request_id": func() error {
			_, err := e.grpc.ReportUsage(ctx, &keyservicev1.ReportUsageRequest{KeyId: k.GetId(), Cost: 1})
			return err
		},
		"add 0": func() error {
			_, err := e.grpc.AddCredits(ctx, &keyservicev1.AddCreditsRequest{KeyId: k.GetId()})
			return err
		},
		"owner without budgets": func() error {
			_, err := e.grpc.CreateOwner(ctx, &keyservicev1.CreateOwnerRequest{Owner: &keyservicev1.Owner{Name: "acme"}})
			return err
		},
	}
	for name, call := range cases {
		if err := call(); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", name, err)
		}
	}
	if after := auditCount(t, e); after != before {
		t.Errorf("bad input wrote %d audit events", after-before)
	}
	got, err := e.grpc.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: k.GetId()})
	if err != nil || got.GetKey().GetCredits().GetRemaining() != 5 {
		t.Errorf("credits after bad input: %v, %v; want 5", got.GetKey().GetCredits(), err)
	}
}

func ptr[T any](v T) *T { return &v }

// waitKnown waits until every replica knows key (cost 0 spends nothing).
func waitKnown(t *testing.T, clients []keyservicev1.KeyServiceClient, key string) {
	t.Helper()
	for _, c := range clients {
		waitFor(t, func() bool {
			r, err := c.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: key, Cost: ptr(int32(0))})
			return err == nil && r.GetCode() == keyservicev1.Code_CODE_VALID
		})
	}
}
