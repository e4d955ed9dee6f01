package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
)

// withCredits creates a key with credits c and returns its budget subject.
func (b bundle) withCredits(t *testing.T, c apikey.CreditsSetting) uuid.UUID {
	t.Helper()
	g, err := b.fmt.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := b.store.CreateKey(context.Background(), apikey.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "n", Owner: "o", Credits: &c})
	if err != nil {
		t.Fatal(err)
	}
	if !k.Credits {
		t.Fatal("the key does not say it has credits")
	}
	return k.Budget()
}

// TestLeaseRule: a grant is ceil(remaining/16), at least the cost, at most
// what was asked and what remains; fewer than the cost left is no grant.
func TestLeaseRule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := time.Now()
	sub := b.withCredits(t, apikey.CreditsSetting{Remaining: 1000})
	for _, c := range []struct{ want, cost, granted, left int64 }{
		{1000, 1, 63, 937}, // ceil(1000/16)
		{10, 1, 10, 927},   // at most what was asked
		{1000, 100, 100, 827},
		{1000, 900, 0, 827}, // fewer than the cost: nothing
		{1000, 0, 52, 775},  // cost 0 needs 1
	} {
		l, err := b.store.LeaseCredits(ctx, sub, c.want, c.cost, now)
		if err != nil {
			t.Fatal(err)
		}
		if l.Granted != c.granted || l.Remaining != c.left {
			t.Fatalf("lease(want %d, cost %d) = granted %d, left %d; want %d, %d", c.want, c.cost, l.Granted, l.Remaining, c.granted, c.left)
		}
	}
	small := b.withCredits(t, apikey.CreditsSetting{Remaining: 3})
	l, err := b.store.LeaseCredits(ctx, small, 1000, 1, now)
	if err != nil || l.Granted != 1 || l.Remaining != 2 {
		t.Fatalf("3 left: %+v %v; want 1 granted (leases shrink with the remainder)", l, err)
	}
	if _, err := b.store.LeaseCredits(ctx, uuid.New(), 10, 1, now); !errors.Is(err, apikey.ErrNoCredits) {
		t.Fatalf("no credits: %v", err)
	}
}

// TestReturnOnlyToTheSameEpoch: unused credits go back, unless the credits
// were set since (the lease is void).
func TestReturnOnlyToTheSameEpoch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := time.Now()
	sub := b.withCredits(t, apikey.CreditsSetting{Remaining: 160})
	l, err := b.store.LeaseCredits(ctx, sub, 1000, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.store.ReturnCredits(ctx, sub, l.Epoch, 4, now); err != nil {
		t.Fatal(err)
	}
	if got := remaining(t, b, sub); got != 160-10+4 {
		t.Fatalf("after returning 4 of a lease of 10: %d, want 154", got)
	}
	if _, err := b.store.UpdateOwner(ctx, uuid.New(), apikey.OwnerUpdate{}); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("UpdateOwner of nobody: %v", err)
	}
	c, _, err := b.store.AddCredits(ctx, sub, 6, "t", uuid.Nil, nil, now) // adding keeps the epoch
	if err != nil || c.Remaining != 160 || c.Epoch != l.Epoch {
		t.Fatalf("add: %+v %v", c, err)
	}
	// Set: a new epoch; the old lease's credits are not given back.
	set := b.withCredits(t, apikey.CreditsSetting{Remaining: 32})
	l2, _ := b.store.LeaseCredits(ctx, set, 1000, 1, now)
	setKey(t, b, set, 50)
	if err := b.store.ReturnCredits(ctx, set, l2.Epoch, l2.Granted, now); err != nil {
		t.Fatal(err)
	}
	if got := remaining(t, b, set); got != 50 {
		t.Fatalf("a lease of an older epoch was given back: %d, want 50", got)
	}
}

func remaining(t *testing.T, b bundle, sub uuid.UUID) int64 {
	t.Helper()
	cs, err := b.store.GetCredits(context.Background(), []uuid.UUID{sub}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cs[sub].Remaining
}

// setKey sets the credits of the key whose budget is sub (its own id).
func setKey(t *testing.T, b bundle, sub uuid.UUID, n int64) apikey.Key {
	t.Helper()
	k, _, err := b.store.UpdateKey(context.Background(), sub, apikey.Update{Fields: []string{apikey.FieldCredits}, Credits: &apikey.CreditsSetting{Remaining: n}})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRefillAtTheBoundary: with a clock at the boundary, the next lease
// refills first (once, however many periods passed), carrying a debt.
func TestRefillAtTheBoundary(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	sub := b.withCredits(t, apikey.CreditsSetting{Remaining: 5, Refill: &apikey.Refill{Amount: 100, Interval: apikey.RefillDaily}})
	cs, err := b.store.GetCredits(ctx, []uuid.UUID{sub}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	next := *cs[sub].NextRefillAt
	if _, _, err := b.store.ChargeCredits(ctx, []uuid.UUID{sub}, 25, "t", uuid.New(), []byte("a"), next.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	before, err := b.store.LeaseCredits(ctx, sub, 1000, 1, next.Add(-time.Nanosecond))
	if err != nil || before.Granted != 0 || before.Remaining != -20 {
		t.Fatalf("just before the boundary: %+v %v; want nothing granted, -20 left", before, err)
	}
	// Three days later: one refill, to 100 less the debt of 20.
	at := next.Add(72 * time.Hour)
	l, err := b.store.LeaseCredits(ctx, sub, 1000, 1, at)
	if err != nil {
		t.Fatal(err)
	}
	if l.Granted+l.Remaining != 80 || l.Epoch == before.Epoch || !l.NextRefillAt.After(at) || l.NextRefillAt.Sub(at) > 24*time.Hour {
		t.Fatalf("after the boundary: %+v; want 80 in all, a new epoch and the next refill within a day", l)
	}
	again, _ := b.store.LeaseCredits(ctx, sub, 1000, 1, at)
	if again.Epoch != l.Epoch {
		t.Fatal("refilled twice for one boundary")
	}
}

// TestChargesOnceAndRefusesAnotherBody: a retry charges nothing; another
// body with the same request_id is refused and writes nothing.
func TestChargesOnceAndRefusesAnotherBody(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := time.Now()
	key := b.withCredits(t, apikey.CreditsSetting{Remaining: 10})
	owner := b.withCredits(t, apikey.CreditsSetting{Remaining: 100})
	rid := uuid.New()
	for i := 0; i < 3; i++ {
		cs, dup, err := b.store.ChargeCredits(ctx, []uuid.UUID{key, owner, uuid.New()}, 15, "svc", rid, []byte("body"), now)
		if err != nil || dup != (i > 0) || cs[key].Remaining != -5 || cs[owner].Remaining != 85 {
			t.Fatalf("charge %d: %v dup %v %v", i+1, cs, dup, err)
		}
	}
	if _, _, err := b.store.ChargeCredits(ctx, []uuid.UUID{key}, 16, "svc", rid, []byte("other"), now); !errors.Is(err, apikey.ErrChargeReused) {
		t.Fatalf("other body: %v", err)
	}
	// Another caller's ids are its own.
	if _, dup, err := b.store.ChargeCredits(ctx, []uuid.UUID{key}, 1, "other-svc", rid, []byte("x"), now); err != nil || dup {
		t.Fatalf("another caller's request id: dup %v %v", dup, err)
	}
	if got := remaining(t, b, key); got != -6 {
		t.Fatalf("remaining %d, want -6", got)
	}
	if _, _, err := b.store.AddCredits(ctx, key, 10, "svc", rid, []byte("add"), now); !errors.Is(err, apikey.ErrChargeReused) {
		t.Fatalf("AddCredits reusing a charge's request id: %v", err)
	}
	if _, _, err := b.store.AddCredits(ctx, owner, -86, "svc", uuid.Nil, nil, now); !errors.Is(err, apikey.ErrCreditsNegative) {
		t.Fatalf("taking 86 of 85 away: %v", err)
	}
	full := b.withCredits(t, apikey.CreditsSetting{Remaining: apikey.MaxCredits})
	if _, _, err := b.store.AddCredits(ctx, full, 1, "svc", uuid.Nil, nil, now); !errors.Is(err, apikey.ErrCreditsBounds) {
		t.Fatalf("beyond the bound: %v", err)
	}
	if got := remaining(t, b, full); got != apikey.MaxCredits {
		t.Fatalf("a refused addition changed the credits: %d", got)
	}
	if got := remaining(t, b, key); got != -6 {
		t.Fatalf("refused writes changed the credits: %d", got)
	}
}

// BenchmarkWriteUsage: one flush of 10,000 rows (minutes, hours and days in
// one transaction); rows/s is the usage store's write rate per replica.
// "new" writes keys never seen before each time (the cold case: every row
// an insert into each table), "again" the same keys (every row an update).
func BenchmarkWriteUsage(b *testing.B) {
	_, pool := testdb.New(b)
	st := store.New(pool, 30*time.Second)
	ctx := context.Background()
	now := time.Now().UTC()
	if err := st.EnsureUsagePartitions(ctx, now.Add(-24*time.Hour), now.Add(24*time.Hour)); err != nil {
		b.Fatal(err)
	}
	rows := make([]apikey.UsageRow, 10_000)
	fresh := func() {
		for i := range rows {
			rows[i] = apikey.UsageRow{Minute: now.Truncate(time.Minute), KeyID: uuid.New(), Code: 1, KeyspaceID: apikey.DefaultKeyspaceID, Owner: "owner", Calls: 3, Credits: 3}
		}
	}
	for _, c := range []struct {
		name  string
		fresh bool
	}{{"new", true}, {"again", false}} {
		b.Run(c.name, func(b *testing.B) {
			fresh()
			for b.Loop() {
				if c.fresh {
					b.StopTimer()
					fresh()
					b.StartTimer()
				}
				if err := st.WriteUsage(ctx, rows); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(rows)*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// TestChargeIDsExpire: once forgotten, a request id charges again.
func TestChargeIDsExpire(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := time.Now()
	key := b.withCredits(t, apikey.CreditsSetting{Remaining: 10})
	rid := uuid.New()
	if _, _, err := b.store.ChargeCredits(ctx, []uuid.UUID{key}, 1, "svc", rid, []byte("a"), now); err != nil {
		t.Fatal(err)
	}
	if n, err := b.store.DeleteCreditRequestsBefore(ctx, now.Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("deleted %d within the window (%v)", n, err)
	}
	if n, err := b.store.DeleteCreditRequestsBefore(ctx, now.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("deleted %d past the window (%v), want 1", n, err)
	}
	if _, dup, err := b.store.ChargeCredits(ctx, []uuid.UUID{key}, 1, "svc", rid, []byte("a"), now); err != nil || dup {
		t.Fatalf("after expiry: dup %v %v", dup, err)
	}
	if got := remaining(t, b, key); got != 8 {
		t.Fatalf("remaining %d, want 8", got)
	}
}

// TestChargeNotifiesOnlyBelowZero: a charge that leaves credits at or above
// zero tells no replica (their leases were granted from the pool and
// stand: a notification would make every replica give back and lease again
// on every charge); one that takes them below zero does, so that leases go
// back and the key is refused everywhere.
func TestChargeNotifiesOnlyBelowZero(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := newRecorder()
	done := make(chan error, 1)
	go func() { done <- b.store.Listen(ctx, r) }()
	defer func() { cancel(); <-done }()
	receive(t, r.caughtUp, "first CatchUp")
	key := b.withCredits(t, apikey.CreditsSetting{Remaining: 10})
	receive(t, r.events, "the key's creation") // created and credits set: two events
	receive(t, r.events, "the key's creation")
	now := time.Now()
	if _, _, err := b.store.ChargeCredits(ctx, []uuid.UUID{key}, 10, "svc", uuid.New(), []byte("a"), now); err != nil {
		t.Fatal(err)
	}
	// Events arrive in commit order: the next one must be this key's.
	g, _ := b.create(t, "acme")
	if e := receive(t, r.events, "an event after the charge"); e.Kind != apikey.EventCreated || e.Hash != g.Hash {
		t.Fatalf("a charge leaving 0 credits sent %+v", e)
	}
	if _, _, err := b.store.ChargeCredits(ctx, []uuid.UUID{key}, 1, "svc", uuid.New(), []byte("b"), now); err != nil {
		t.Fatal(err)
	}
	if e := receive(t, r.events, "the charge below zero"); e.Kind != apikey.EventCredits || e.Subject != key {
		t.Fatalf("a charge taking credits below zero sent %+v, want a credits event", e)
	}
}
