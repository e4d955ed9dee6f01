package service

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/peer"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/validate"
	"github.com/keyservice/keyservice/internal/verify"
)

// The addresses of these tests: a key pinned to 10.0.0.0/8 is called from
// inside (10.1.2.3) or outside (192.0.2.1) it.
var (
	inside  = netip.MustParseAddr("10.1.2.3")
	outside = netip.MustParseAddr("192.0.2.1")
)

// from is a call whose gRPC peer is a.
func from(a netip.Addr) context.Context {
	return peer.NewContext(context.Background(), &peer.Peer{Addr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 5000))})
}

// pinned is a key pinned to 10.0.0.0/8 with scope read and a budget of one
// call, switched off when disabled.
func pinned(disabled bool) *apikey.Key {
	return &apikey.Key{ID: uuid.New(), Name: "p", Owner: "o", Scopes: []string{"read"}, Enabled: !disabled,
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		RateLimit:    &apikey.RateLimit{Limit: 1, Period: time.Hour, Burst: 1}}
}

// judged is what the validation path answers for k: its state, as
// verify.State decides it.
func judged(k *apikey.Key) *fakeValidator {
	return &fakeValidator{res: stateOf(k, verify.State(k, testNow))}
}

// TestValidateAnswersInTheDocumentedPrecedence: a key that fails several
// checks gets the first in outcome's order (DISABLED, FORBIDDEN,
// INSUFFICIENT_SCOPE, RATE_LIMITED), a call refused before the budget
// spends nothing from it, and each refusal decided here is counted once
// under its code.
func TestValidateAnswersInTheDocumentedPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		disabled  bool
		from      netip.Addr
		scopes    []string
		spent     bool // the key's one call was spent before
		want      outcome.Code
		takes     int  // budget asked
		hasBudget bool // the answer shows the budget
	}{
		{"disabled, outside, missing a scope, over budget", true, outside, []string{"write"}, true, outcome.Disabled, 0, false},
		{"outside, missing a scope, over budget", false, outside, []string{"write"}, true, outcome.Forbidden, 0, false},
		{"missing a scope, over budget", false, inside, []string{"read", "write"}, true, outcome.InsufficientScope, 0, false},
		{"over budget", false, inside, []string{"read"}, true, outcome.RateLimited, 1, true},
		{"nothing wrong", false, inside, []string{"read"}, false, outcome.Valid, 1, true},
		{"nothing wrong, no scope asked", false, inside, nil, false, outcome.Valid, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := pinned(tt.disabled)
			b := &fakeBudgets{remaining: map[string]int{}}
			if tt.spent {
				b.remaining[k.ID.String()] = 0
			}
			reg := prometheus.NewRegistry()
			s := New(Config{Validator: judged(k), KeyLimits: b, Now: func() time.Time { return testNow }, Registry: reg})
			out, err := s.Validate(from(tt.from), &keyservicev1.ValidateRequest{Key: "k", RequiredScopes: tt.scopes})
			if err != nil {
				t.Fatal(err)
			}
			if out.GetCode() != keyservicev1.Code(tt.want) || out.GetValid() != (tt.want == outcome.Valid) {
				t.Fatalf("answer %v valid=%v, want %v", out.GetCode(), out.GetValid(), tt.want)
			}
			if len(b.takes) != tt.takes || (out.GetRateLimit() != nil) != tt.hasBudget {
				t.Fatalf("budget asked %d times (want %d), answer's budget %v", len(b.takes), tt.takes, out.GetRateLimit())
			}
			if left := b.remaining[k.ID.String()]; left != 0 {
				t.Fatalf("budget left %d, want 0 (spent before, or by this call)", left)
			}
			for _, r := range outcome.All() {
				if r.Stage < outcome.Call || r.Code == outcome.Valid {
					continue
				}
				want := 0.0
				if r.Code == tt.want {
					want = 1
				}
				if n := testutil.ToFloat64(s.refusals[r.Code]); n != want {
					t.Errorf("refusals{code=%s} = %v, want %v", r.Code, n, want)
				}
			}
			// One series per refusal decided after the path: the Call and
			// Budget rows of outcome's table but VALID.
			after := 0
			for _, r := range outcome.All() {
				if r.Stage >= outcome.Call && r.Code != outcome.Valid {
					after++
				}
			}
			if n, err := testutil.GatherAndCount(reg, "keyservice_validate_call_refusals_total"); err != nil || n != after {
				t.Errorf("registered refusal series: %d %v, want %d", n, err, after)
			}
		})
	}
}

// TestValidatePassesTheKeysStateThrough: an answer of the validation path
// that is not VALID (NOT_FOUND without a key; REVOKED, EXPIRED with one) is
// the answer, with nothing spent, and a key without a record asks nothing.
func TestValidatePassesTheKeysStateThrough(t *testing.T) {
	t.Parallel()
	revoked, expired := pinned(false), pinned(false)
	revoked.RevokedAt, revoked.ExpiresAt = &testNow, &testNow
	expired.ExpiresAt = &testNow
	for _, tt := range []struct {
		res  validate.Result
		want outcome.Code
	}{
		{stateOf(nil, outcome.NotFound), outcome.NotFound},
		{stateOf(nil, outcome.Malformed), outcome.Malformed},
		{judged(revoked).res, outcome.Revoked},
		{judged(expired).res, outcome.Expired},
	} {
		b := &fakeBudgets{}
		s := New(Config{Validator: &fakeValidator{res: tt.res}, KeyLimits: b})
		out, err := s.Validate(from(inside), &keyservicev1.ValidateRequest{Key: "k", RequiredScopes: []string{"write"}})
		if err != nil || out.GetCode() != keyservicev1.Code(tt.want) || out.GetValid() || len(b.takes) != 0 || out.GetRateLimit() != nil {
			t.Errorf("%v: %v %v, budget asked %d times", tt.want, out, err, len(b.takes))
		}
		if (out.GetKey() != nil) != (tt.res.Key != nil) {
			t.Errorf("%v: record %v", tt.want, out.GetKey())
		}
	}
	fail := errors.New("validation path down")
	s := New(Config{Validator: &fakeValidator{err: fail}})
	if _, err := s.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "k"}); !errors.Is(err, fail) {
		t.Fatalf("the validation path's error: %v", err)
	}
}

// TestValidateCostsComeFromTheChainsBudget: a call spends its cost (1
// when unset, 0 to check without spending) from the budget of the key's
// rotation chain, under the key's own limit or else the default; without
// key limits nothing is asked and the answer has no budget.
func TestValidateCostsComeFromTheChainsBudget(t *testing.T) {
	t.Parallel()
	def := apikey.RateLimit{Limit: 10, Period: time.Second, Burst: 20}
	own := apikey.RateLimit{Limit: 5, Period: time.Minute, Burst: 5}
	first := uuid.New()
	for _, tt := range []struct {
		name   string
		cost   *int32
		budget uuid.UUID // the key's BudgetID (its first key's id)
		limit  *apikey.RateLimit
		want   take
	}{
		{"unset cost is 1", nil, uuid.Nil, nil, take{cost: 1, limit: def}},
		{"cost 0 checks", ptr[int32](0), uuid.Nil, nil, take{cost: 0, limit: def}},
		{"cost 7", ptr[int32](7), uuid.Nil, &own, take{cost: 7, limit: own}},
		{"largest cost", ptr[int32](maxCost), first, &own, take{budget: first.String(), cost: maxCost, limit: own}},
		{"a rotated key spends its chain's budget", nil, first, nil, take{budget: first.String(), cost: 1, limit: def}},
	} {
		k := &apikey.Key{ID: uuid.New(), Enabled: true, BudgetID: tt.budget, RateLimit: tt.limit}
		if tt.want.budget == "" {
			tt.want.budget = k.ID.String()
		}
		b := &fakeBudgets{}
		s := New(Config{Validator: judged(k), KeyLimits: b, DefaultLimit: def})
		out, err := s.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "k", Cost: tt.cost})
		if err != nil || len(b.takes) != 1 || b.takes[0] != tt.want {
			t.Fatalf("%s: %v, took %+v, want %+v", tt.name, err, b.takes, tt.want)
		}
		if want := tt.want.cost <= tt.want.limit.Burst; out.GetValid() != want {
			t.Fatalf("%s: valid %v, want %v", tt.name, out.GetValid(), want)
		}
		if rl := out.GetRateLimit(); rl.GetLimit() != int64(tt.want.limit.Limit) || rl.GetReset_().AsDuration() != tt.want.limit.Period {
			t.Fatalf("%s: answer's budget %v", tt.name, rl)
		}
	}
	s := New(Config{Validator: judged(&apikey.Key{ID: uuid.New(), Enabled: true})})
	if out, err := s.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "k", Cost: ptr[int32](maxCost)}); err != nil || !out.GetValid() || out.GetRateLimit() != nil {
		t.Fatalf("without key limits: %v %v", out, err)
	}
}

// TestPinnedKeysRecordIsShownOnlyInsideItsAddresses: the end client is
// the caller's own address unless the caller may name one (a credential,
// or a trusted proxy's address); a gateway or a proxy that names none
// usable, and an anonymous proxy, have no end client (FORBIDDEN). The
// record of a pinned key is shown only to an end client inside its
// addresses, whatever the answer; an unpinned key's record always is.
func TestPinnedKeysRecordIsShownOnlyInsideItsAddresses(t *testing.T) {
	t.Parallel()
	proxy := netip.MustParseAddr("198.51.100.7")
	asAddr := func(ctx context.Context, a netip.Addr, anonymous bool) context.Context {
		return caller.WithIdentity(ctx, caller.Identity{Kind: caller.KindAddr, Addr: a, Anonymous: anonymous})
	}
	token := caller.WithIdentity(from(outside), caller.Identity{Kind: caller.KindToken, Name: "edge"})
	tests := []struct {
		name     string
		ctx      context.Context
		clientIP string
		disabled bool
		want     outcome.Code
		shown    bool
	}{
		{"caller inside", asAddr(from(inside), inside, false), "", false, outcome.Valid, true},
		{"caller outside", asAddr(from(outside), outside, false), "", false, outcome.Forbidden, false},
		{"IPv4-mapped peer inside", from(netip.MustParseAddr("::ffff:10.1.2.3")), "", false, outcome.Valid, true},
		{"disabled, caller inside", from(inside), "", true, outcome.Disabled, true},
		{"disabled, caller outside", from(outside), "", true, outcome.Disabled, false},
		{"untrusted caller names a client inside", asAddr(from(outside), outside, false), inside.String(), false, outcome.Forbidden, false},
		{"untrusted caller inside names a client outside", asAddr(from(inside), inside, false), outside.String(), false, outcome.Valid, true},
		{"trusted proxy names a client inside", asAddr(from(proxy), proxy, false), "::ffff:10.1.2.3", false, outcome.Valid, true},
		{"trusted proxy names a client outside", asAddr(from(proxy), proxy, false), outside.String(), false, outcome.Forbidden, false},
		{"anonymous proxy names a client inside", asAddr(from(proxy), proxy, true), inside.String(), false, outcome.Forbidden, false},
		{"token caller names a client inside", token, inside.String(), false, outcome.Valid, true},
		{"gateway names no end client", caller.WithGatewayCall(from(inside), false), "", false, outcome.Forbidden, false},
		{"gateway is the end client", caller.WithGatewayCall(from(inside), true), "", false, outcome.Valid, true},
		{"proxy chain unusable", caller.WithHTTPCall(from(inside), caller.HTTPCall{ClientAddr: inside, ChainUnusable: true}), "", false, outcome.Forbidden, false},
		{"no address at all", context.Background(), "", false, outcome.Forbidden, false},
	}
	for _, tt := range tests {
		k := pinned(tt.disabled)
		s := New(Config{Validator: judged(k), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
		out, err := s.Validate(tt.ctx, &keyservicev1.ValidateRequest{Key: "k", ClientIp: tt.clientIP})
		if err != nil || out.GetCode() != keyservicev1.Code(tt.want) {
			t.Errorf("%s: %v %v, want %v", tt.name, out.GetCode(), err, tt.want)
			continue
		}
		if shown := out.GetKey() != nil; shown != tt.shown || shown && out.GetKey().GetId() != k.ID.String() {
			t.Errorf("%s: record %v, want shown=%v", tt.name, out.GetKey(), tt.shown)
		}
	}
	open := &apikey.Key{ID: uuid.New(), Enabled: true}
	s := New(Config{Validator: judged(open)})
	if out, err := s.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "k"}); err != nil || out.GetKey().GetId() != open.ID.String() {
		t.Fatalf("an unpinned key's record from nowhere: %v %v", out, err)
	}
}
