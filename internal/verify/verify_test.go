package verify_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/verify"
)

// TestChecksRunInTheTablesOrder: the order the verifier decides in is the
// order of outcome's table (which the docs print), for every code decided
// after the key was found.
func TestChecksRunInTheTablesOrder(t *testing.T) {
	var table []outcome.Code
	for _, r := range outcome.All() {
		if r.Stage == outcome.State || r.Stage == outcome.Call || (r.Stage == outcome.Budget && r.Code != outcome.Valid) {
			table = append(table, r.Code)
		}
	}
	if got := verify.Order(); !slices.Equal(got, table) {
		t.Fatalf("verifier decides %v; outcome's table says %v", got, table)
	}
}

func TestStatePrecedence(t *testing.T) {
	now := time.Now()
	past := now.Add(-time.Hour)
	cases := []struct {
		name string
		k    apikey.Key
		want outcome.Code
	}{
		{"active", apikey.Key{Enabled: true}, outcome.Valid},
		{"revoked, expired and disabled", apikey.Key{RevokedAt: &past, ExpiresAt: &past}, outcome.Revoked},
		{"expired and disabled", apikey.Key{ExpiresAt: &past}, outcome.Expired},
		{"expires now", apikey.Key{Enabled: true, ExpiresAt: &now}, outcome.Expired},
		{"disabled", apikey.Key{}, outcome.Disabled},
	}
	for _, c := range cases {
		if got := verify.State(&c.k, now); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// TestCallChecksAndBudget: each call check refuses in its turn, and a call
// refused before the budget spends nothing.
func TestCallChecksAndBudget(t *testing.T) {
	pinned := apikey.Key{Enabled: true, Scopes: []string{"read"}, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	inside, outside := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.0.2.1")
	spent := 0
	left := 1
	v := verify.Verifier{Spend: func(_ context.Context, _ *apikey.Key, cost int) (apikey.Budget, error) {
		spent++
		if left < cost {
			return apikey.Budget{Allowed: false, Limit: 1}, nil
		}
		left -= cost
		return apikey.Budget{Allowed: true, Limit: 1, Remaining: left}, nil
	}}
	cases := []struct {
		name  string
		state outcome.Code
		call  verify.Call
		want  outcome.Code
		spend bool
	}{
		{"disabled, outside, missing a scope", outcome.Disabled, verify.Call{EndClient: outside, EndClientKnown: true, Scopes: []string{"write"}, Cost: 1}, outcome.Disabled, false},
		{"outside and missing a scope", outcome.Valid, verify.Call{EndClient: outside, EndClientKnown: true, Scopes: []string{"write"}, Cost: 1}, outcome.Forbidden, false},
		{"no end client known", outcome.Valid, verify.Call{Cost: 1}, outcome.Forbidden, false},
		{"missing a scope", outcome.Valid, verify.Call{EndClient: inside, EndClientKnown: true, Scopes: []string{"read", "write"}, Cost: 1}, outcome.InsufficientScope, false},
		{"allowed", outcome.Valid, verify.Call{EndClient: inside, EndClientKnown: true, Scopes: []string{"read"}, Cost: 1}, outcome.Valid, true},
		{"over budget", outcome.Valid, verify.Call{EndClient: inside, EndClientKnown: true, Cost: 1}, outcome.RateLimited, true},
	}
	for _, c := range cases {
		before := spent
		got, err := v.Verify(context.Background(), &pinned, c.state, &c.call)
		if err != nil {
			t.Fatal(err)
		}
		if got.Code != c.want {
			t.Errorf("%s: %s, want %s", c.name, got.Code, c.want)
		}
		if did := spent > before; did != c.spend || got.Asked != c.spend {
			t.Errorf("%s: budget asked %v (budget in verdict %v), want %v", c.name, did, got.Asked, c.spend)
		}
	}
}
