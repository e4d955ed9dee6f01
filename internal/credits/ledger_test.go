package credits_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/credits"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// counting counts the statements a ledger sends (delegating to the store).
type counting struct {
	*store.Store
	leases, returns atomic.Int64
}

func (c *counting) LeaseCredits(ctx context.Context, s uuid.UUID, want, cost int64, now time.Time) (apikey.Lease, error) {
	c.leases.Add(1)
	return c.Store.LeaseCredits(ctx, s, want, cost, now)
}

func (c *counting) ReturnCredits(ctx context.Context, s uuid.UUID, epoch, unused int64, now time.Time) error {
	c.returns.Add(1)
	return c.Store.ReturnCredits(ctx, s, epoch, unused, now)
}

func setup(t testing.TB, credits int64) (*store.Store, uuid.UUID) {
	t.Helper()
	_, pool := testdb.New(t)
	st := store.New(pool, 5*time.Second)
	f, err := keys.NewFormat("ks")
	if err != nil {
		t.Fatal(err)
	}
	g, err := f.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := st.CreateKey(context.Background(), apikey.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "n", Owner: "o",
		Credits: &apikey.CreditsSetting{Remaining: credits}})
	if err != nil {
		t.Fatal(err)
	}
	return st, k.Budget()
}

func pool(t *testing.T, st *store.Store, sub uuid.UUID) int64 {
	t.Helper()
	cs, err := st.GetCredits(context.Background(), []uuid.UUID{sub}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cs[sub].Remaining
}

// spendAll makes calls spends of cost 1 from 60 goroutines over the
// ledgers in turn, and counts those allowed.
func spendAll(t *testing.T, ls []*credits.Ledger, sub uuid.UUID, calls int) int64 {
	t.Helper()
	var next, allowed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 60; w++ {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(calls) {
					return
				}
				st, err := ls[int(i)%len(ls)].Spend(context.Background(), sub, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if st.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return allowed.Load()
}

// TestThreeLedgersSpendExactly: three replicas' ledgers on one database
// allow exactly the credits granted, and hold none afterwards once closed.
func TestThreeLedgersSpendExactly(t *testing.T) {
	t.Parallel()
	st, sub := setup(t, 1000)
	ls := []*credits.Ledger{credits.New(credits.Config{Store: st}), credits.New(credits.Config{Store: st}), credits.New(credits.Config{Store: st})}
	if got := spendAll(t, ls, sub, 3000); got != 1000 {
		t.Fatalf("%d allowed for 1,000 credits", got)
	}
}

// TestAbandonedLedgerLosesAtMostItsLease: a ledger dropped without Close
// (a killed replica) loses what it held unspent, never more, and the rest
// is spent by the others.
func TestAbandonedLedgerLosesAtMostItsLease(t *testing.T) {
	t.Parallel()
	st, sub := setup(t, 1000)
	dead := credits.New(credits.Config{Store: st})
	var allowed int64
	for i := 0; i < 100; i++ {
		if s, err := dead.Spend(context.Background(), sub, 1); err == nil && s.Allowed {
			allowed++
		}
	}
	held := dead.Held()
	if held <= 0 || held > 1000/16+1 {
		t.Fatalf("the abandoned ledger holds %d: want one lease of at most 63", held)
	}
	live := []*credits.Ledger{credits.New(credits.Config{Store: st}), credits.New(credits.Config{Store: st})}
	allowed += spendAll(t, live, sub, 3000)
	if allowed > 1000 || 1000-allowed != held {
		t.Fatalf("%d allowed; the abandoned ledger held %d: want exactly 1,000 − %d", allowed, held, held)
	}
}

// TestTopUpAndSetWhileLeased: credits added while a lease is out become
// spendable (the ledger gives its lease back when told); setting them voids
// the lease (its unused credits do not come back).
func TestTopUpAndSetWhileLeased(t *testing.T) {
	t.Parallel()
	st, sub := setup(t, 100)
	l := credits.New(credits.Config{Store: st})
	ctx := context.Background()
	if s, _ := l.Spend(ctx, sub, 1); !s.Allowed {
		t.Fatal("first spend refused")
	}
	if _, _, err := st.AddCredits(ctx, sub, 50, "t", uuid.Nil, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	l.Changed(sub) // what the NOTIFY does
	waitFor(t, func() bool { return l.Held() == 0 && pool(t, st, sub) == 149 })
	other := credits.New(credits.Config{Store: st})
	if got := 1 + spendAll(t, []*credits.Ledger{l, other}, sub, 500); got != 150 {
		t.Fatalf("%d allowed for 100 + 50 credits", got)
	}
	// Set: the lease out is void.
	if _, _, err := st.UpdateKey(ctx, sub, apikey.Update{Fields: []string{apikey.FieldCredits}, Credits: &apikey.CreditsSetting{Remaining: 40}}); err != nil {
		t.Fatal(err)
	}
	other.Changed(sub) // the set's NOTIFY
	if s, _ := other.Spend(ctx, sub, 1); !s.Allowed {
		t.Fatal("refused after a set")
	}
	if _, _, err := st.UpdateKey(ctx, sub, apikey.Update{Fields: []string{apikey.FieldCredits}, Credits: &apikey.CreditsSetting{Remaining: 10}}); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pool(t, st, sub); got != 10 {
		t.Fatalf("after a set to 10 and a void lease given back: %d, want 10", got)
	}
}

// TestExhaustedAsksOncePerSecond: refusals of an exhausted subject are
// answered from memory; Refund puts a refused call's credits back; cost 0
// spends nothing; Close gives leases back.
func TestExhaustedAsksOncePerSecond(t *testing.T) {
	t.Parallel()
	st, sub := setup(t, 20)
	c := &counting{Store: st}
	l := credits.New(credits.Config{Store: c})
	ctx := context.Background()
	var allowed int
	for i := 0; i < 1000; i++ {
		s, err := l.Spend(ctx, sub, 1)
		if err != nil {
			t.Fatal(err)
		}
		if s.Allowed {
			allowed++
		}
	}
	if allowed != 20 {
		t.Fatalf("%d allowed of 20", allowed)
	}
	if n := c.leases.Load(); n > 25 {
		t.Fatalf("%d lease statements for 1,000 calls: refusals must be answered from memory", n)
	}
	st2, sub2 := setup(t, 100)
	l2 := credits.New(credits.Config{Store: st2})
	s, _ := l2.Spend(ctx, sub2, 0)
	if !s.Allowed {
		t.Fatal("cost 0 refused with credits left")
	}
	s, _ = l2.Spend(ctx, sub2, 5)
	l2.Refund(sub2, 5, s)
	if err := l2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pool(t, st2, sub2); got != 100 {
		t.Fatalf("after cost 0, a refunded spend and Close: %d, want 100", got)
	}
}

// TestLeaseEndsAtTheRefill: past the refill time a lease is not spent; the
// next lease refills.
func TestLeaseEndsAtTheRefill(t *testing.T) {
	t.Parallel()
	_, pl := testdb.New(t)
	st := store.New(pl, 5*time.Second)
	f, _ := keys.NewFormat("ks")
	g, _ := f.Generate()
	k, err := st.CreateKey(context.Background(), apikey.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "n", Owner: "o",
		Credits: &apikey.CreditsSetting{Remaining: 10, Refill: &apikey.Refill{Amount: 10, Interval: apikey.RefillDaily}}})
	if err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	l := credits.New(credits.Config{Store: st, Now: func() time.Time { return time.Unix(0, now.Load()) }})
	ctx := context.Background()
	var before int
	for i := 0; i < 20; i++ {
		if s, _ := l.Spend(ctx, k.Budget(), 1); s.Allowed {
			before++
		}
	}
	s, _ := l.Spend(ctx, k.Budget(), 1)
	if before != 10 || s.NextRefillAt.IsZero() {
		t.Fatalf("%d allowed before the refill (want 10), next refill %v", before, s.NextRefillAt)
	}
	now.Store(s.NextRefillAt.UnixNano())
	var after int
	for i := 0; i < 20; i++ {
		if s, _ := l.Spend(ctx, k.Budget(), 1); s.Allowed {
			after++
		}
	}
	if after != 10 {
		t.Fatalf("%d allowed after the refill, want 10", after)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

// BenchmarkSpend: a lease covering the calls: no statement, no allocation.
func BenchmarkSpend(b *testing.B) {
	st, sub := setup(b, apikey.MaxCredits)
	l := credits.New(credits.Config{Store: st, LeaseMax: 1 << 40})
	ctx := context.Background()
	if _, err := l.Spend(ctx, sub, 1); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Spend(ctx, sub, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
