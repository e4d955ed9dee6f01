package validate_test

// Batched lookups and their deadline.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/testdb"
	"github.com/keyservice/keyservice/internal/validate"
)

// TestColdBurstOfValidKeysIsAnswered: 1,500 first-seen valid keys, 64 at a
// time, on a replica whose database is a millisecond away each way: every
// one is answered VALID, in batches, never more statements at once than
// the bound.
func TestColdBurstOfValidKeysIsAnswered(t *testing.T) {
	t.Parallel()
	for _, delay := range []time.Duration{0, time.Millisecond} {
		t.Run("db-latency "+delay.String(), func(t *testing.T) {
			u, _ := testdb.New(t)
			secrets := seedKeys(t, u, 1500)
			const slots = 4
			b := setupOn(t, behind(t, u, delay), true, func(c *validate.Config) {
				c.LookupConcurrency = slots
				c.WarmKeys = -1 // cold: nothing in memory
				// The bookkeeping must not refuse; the deadline is not what is
				// tested here, and the race detector on 2 shared cores must not
				// decide the result (the bench measures the default deadline).
				c.LookupTimeout = 10 * time.Second
			})
			before := b.tr.lookups.Load()
			valid, unavailable, other := burst(b.v, secrets, 64)
			stmts := b.tr.lookups.Load() - before
			t.Logf("1,500 cold valid keys, 64 at a time, db %s away: %d VALID, %d UNAVAILABLE, %d other; %d statements (%.0f per 1,000), at most %d at once",
				delay, valid, unavailable, other, stmts, float64(stmts)/1.5, b.tr.maxInflight.Load())
			if unavailable != 0 || valid != 1500 {
				t.Fatalf("%d valid keys refused, %d answered VALID of 1,500", unavailable, valid)
			}
			if m := b.tr.maxInflight.Load(); m > slots {
				t.Fatalf("%d statements at once, the bound is %d", m, slots)
			}
			if stmts > 375 {
				t.Fatalf("%d statements for 1,500 cold keys, want at most 250 per 1,000", stmts)
			}
		})
	}
}

// TestLookupNotAnsweredInTimeIsRefused: when the database cannot answer
// within the lookup deadline, the call is refused promptly (fail closed),
// and the refusal is counted with its reason.
func TestLookupNotAnsweredInTimeIsRefused(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	secrets := seedKeys(t, u, 10)
	b := setupOn(t, behind(t, u, 100*time.Millisecond), true, func(c *validate.Config) {
		c.LookupTimeout = 30 * time.Millisecond
		c.WarmKeys = -1
	})
	start := time.Now()
	_, err := b.v.Validate(context.Background(), secrets[0])
	took := time.Since(start)
	if !errors.Is(err, apikey.ErrUnavailable) {
		t.Fatalf("a lookup the database cannot answer in time: %v, want ErrUnavailable", err)
	}
	if took > time.Second {
		t.Fatalf("refused after %s: not promptly", took)
	}
	if validate.LookupRefusals(b.v, "deadline")+validate.LookupRefusals(b.v, "store_down") < 1 {
		t.Fatal("the refusal was not counted")
	}
}

// TestAWrongStatementEstimateRefusesNothingForGood: after a stall has
// taught the batcher that statements take the whole deadline, a valid key
// is still looked up and answered (the estimate never refuses the first
// lookup of a batch), and answered statements correct the estimate.
func TestAWrongStatementEstimateRefusesNothingForGood(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *validate.Config) { c.LookupTimeout = 250 * time.Millisecond })
	validate.SetStatementEstimate(b.v, time.Hour)
	for i := 0; i < 20; i++ {
		g, _ := b.create(t, nil)
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Valid {
			t.Fatalf("key %d: %v", i, r.Code)
		}
	}
}
