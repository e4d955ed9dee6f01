package verify_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/verify"
)

// fakeCredits keeps credits by subject; a subject it does not hold fails.
type fakeCredits map[uuid.UUID]int64

func (f fakeCredits) Spend(_ context.Context, s uuid.UUID, cost int64) (apikey.CreditStatus, error) {
	left, ok := f[s]
	if !ok {
		return apikey.CreditStatus{}, errors.New("store down")
	}
	if left < max(cost, 1) {
		return apikey.CreditStatus{Allowed: false, Remaining: left}, nil
	}
	f[s] = left - cost
	return apikey.CreditStatus{Allowed: true, Remaining: left - cost}, nil
}

func (f fakeCredits) Refund(s uuid.UUID, cost int64, _ apikey.CreditStatus) { f[s] += cost }

func bucket(left *int) func() (apikey.Budget, error) {
	return func() (apikey.Budget, error) {
		if *left < 1 {
			return apikey.Budget{Allowed: false}, nil
		}
		*left--
		return apikey.Budget{Allowed: true, Remaining: *left}, nil
	}
}

// TestBudgetsOrderAndRefunds: the key's credits, the owner's credits, the
// key's rate limit, the owner's rate limit, in that order; the answer says
// whose refused; a refused call is never charged credits.
func TestBudgetsOrderAndRefunds(t *testing.T) {
	k := &apikey.Key{ID: uuid.New(), Enabled: true, Credits: true, Owner: "acme"}
	o := &apikey.Owner{ID: uuid.New(), Name: "acme", HasCredits: true, RateLimit: &apikey.RateLimit{Limit: 1, Period: 1, Burst: 1}}
	cases := []struct {
		name                  string
		keyCredits, ownerCred int64
		keyRate, ownerRate    int
		want                  outcome.Code
		by                    verify.Holder
	}{
		{"all budgets have room", 5, 5, 5, 5, outcome.Valid, verify.HolderNone},
		{"key out of credits, owner has plenty", 0, 5, 5, 5, outcome.UsageExceeded, verify.HolderKey},
		{"owner out of credits, key has plenty", 5, 0, 5, 5, outcome.UsageExceeded, verify.HolderOwner},
		{"key rate limited", 5, 5, 0, 5, outcome.RateLimited, verify.HolderKey},
		{"owner rate limited", 5, 5, 5, 0, outcome.RateLimited, verify.HolderOwner},
		{"both out of credits and rate: credits answer first", 0, 0, 0, 0, outcome.UsageExceeded, verify.HolderKey},
	}
	for _, c := range cases {
		creds := fakeCredits{k.Budget(): c.keyCredits, o.ID: c.ownerCred}
		keyRate, ownerRate := c.keyRate, c.ownerRate
		kb, ob := bucket(&keyRate), bucket(&ownerRate)
		v := verify.Verifier{
			Credits:    creds,
			OwnerOf:    func(*apikey.Key) *apikey.Owner { return o },
			Spend:      func(context.Context, *apikey.Key, int) (apikey.Budget, error) { return kb() },
			OwnerSpend: func(context.Context, *apikey.Owner, int) (apikey.Budget, error) { return ob() },
		}
		d, err := v.Verify(context.Background(), k, outcome.Valid, &verify.Call{Cost: 1})
		if err != nil {
			t.Fatal(err)
		}
		if d.Code != c.want || d.RefusedBy != c.by {
			t.Errorf("%s: %s refused by %d, want %s by %d", c.name, d.Code, d.RefusedBy, c.want, c.by)
		}
		charged := c.keyCredits - creds[k.Budget()]
		ownerCharged := c.ownerCred - creds[o.ID]
		if want := int64(0); c.want != outcome.Valid && (charged != want || ownerCharged != want) {
			t.Errorf("%s: a refused call was charged %d of the key's credits and %d of the owner's", c.name, charged, ownerCharged)
		}
		if c.want == outcome.Valid && (charged != 1 || ownerCharged != 1 || d.Spent != 1) {
			t.Errorf("%s: charged key %d, owner %d, Spent %d; want 1 each", c.name, charged, ownerCharged, d.Spent)
		}
		if c.by == verify.HolderKey && c.want == outcome.UsageExceeded && (keyRate != c.keyRate || d.Asked) {
			t.Errorf("%s: the rate limit was asked after the credits refused", c.name)
		}
	}
}

// TestBudgetErrorsSpendNothing: when a budget cannot answer, the call is an
// error and the credits taken before it are given back.
func TestBudgetErrorsSpendNothing(t *testing.T) {
	k := &apikey.Key{ID: uuid.New(), Enabled: true, Credits: true, Owner: "acme"}
	o := &apikey.Owner{ID: uuid.New(), Name: "acme", HasCredits: true}
	creds := fakeCredits{k.Budget(): 5} // the owner's subject fails
	v := verify.Verifier{Credits: creds, OwnerOf: func(*apikey.Key) *apikey.Owner { return o }}
	if _, err := v.Verify(context.Background(), k, outcome.Valid, &verify.Call{Cost: 2}); err == nil {
		t.Fatal("no error when the owner's credits could not be read")
	}
	if creds[k.Budget()] != 5 {
		t.Errorf("the key's credits are %d after a failed call, want 5", creds[k.Budget()])
	}
}

// TestKeysWithoutCreditsSpendNone: a key without credits, whose owner has
// no budgets, asks no credit store at all.
func TestKeysWithoutCreditsSpendNone(t *testing.T) {
	k := &apikey.Key{ID: uuid.New(), Enabled: true}
	creds := fakeCredits{} // any Spend would fail
	v := verify.Verifier{Credits: creds, OwnerOf: func(*apikey.Key) *apikey.Owner { return nil }}
	d, err := v.Verify(context.Background(), k, outcome.Valid, &verify.Call{Cost: 1})
	if err != nil || d.Code != outcome.Valid || d.CreditsAsked || d.OwnerCredAsk {
		t.Fatalf("verdict %+v, %v: want VALID without asking credits", d, err)
	}
}
