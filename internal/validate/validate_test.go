package validate_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/validate"
)

func TestOutcomes(t *testing.T) {
	inModes(t, func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		exp := b.clock.Now().Add(time.Hour)
		valid, _ := b.create(t, &exp)
		revoked, rk := b.create(t, nil)
		b.revoke(t, rk)
		for _, tt := range []struct {
			name string
			key  string
			want outcome.Code
			key_ bool
		}{
			{"valid", valid.Secret, outcome.Valid, true},
			{"revoked", revoked.Secret, outcome.Revoked, true},
			{"unknown", b.unknownKey(t), outcome.NotFound, false},
			{"garbage", "hello", outcome.Malformed, false},
			// The last character changed (to one it is not: "x" when the key
			// happened to end in "x" made this test fail one run in 62).
			{"wrong checksum", valid.Secret[:len(valid.Secret)-1] + map[bool]string{true: "x", false: "y"}[!strings.HasSuffix(valid.Secret, "x")], outcome.Malformed, false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := mustValidate(t, b.v, tt.key)
				if r.Code != tt.want || (r.Key != nil) != tt.key_ {
					t.Fatalf("got %v (key %v), want %v", r.Code, r.Key != nil, tt.want)
				}
			})
		}
		// The injected clock passes the expiry: the cached key is now EXPIRED.
		b.clock.Advance(time.Hour)
		if r := mustValidate(t, b.v, valid.Secret); r.Code != outcome.Expired {
			t.Fatalf("after expiry: %v", r.Code)
		}
	})
}

func TestMalformedKeysNeverReachTheDatabase(t *testing.T) {
	inModes(t, func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		g, _ := b.create(t, nil)
		before := b.tr.lookups.Load()
		var buf [48]byte
		for i := 0; i < 100_000; i++ {
			var key string
			switch i % 4 {
			case 0: // random bytes
				_, _ = rand.Read(buf[:])
				key = string(buf[:i%48+1])
			case 1: // right shape, wrong checksum
				b := []byte(g.Secret)
				b[3+i%30] = "ABCDEFGHIJ"[i%10]
				if string(b) == g.Secret {
					continue
				}
				key = string(b)
			case 2: // oversize
				key = strings.Repeat("k", keys.MaxLen+1+i%100)
			case 3: // wrong prefix
				key = "zz" + g.Secret[2:]
			}
			if r := mustValidate(t, b.v, key); r.Code != outcome.Malformed {
				t.Fatalf("key %d: %v", i, r.Code)
			}
		}
		if n := b.tr.lookups.Load() - before; n != 0 {
			t.Fatalf("100,000 malformed keys made %d lookups, want 0", n)
		}
	})
}

func TestUnknownKeysRarelyReachTheDatabase(t *testing.T) {
	inModes(t, func(t *testing.T) {
		t.Parallel()
		// A filter sized for exactly the keys there are (no spare capacity), so
		// its false-positive rate is the configured 0.1%, not better.
		b := setup(t, func(c *validate.Config) { c.FilterMinKeys = 1 })
		for i := 0; i < 2000; i++ {
			b.create(t, nil)
		}
		if err := validate.Rebuild(b.v, context.Background()); err != nil {
			t.Fatal(err)
		}
		unknown := make([]string, 100_000)
		for i := range unknown {
			unknown[i] = b.unknownKey(t)
		}
		before := b.tr.lookups.Load()
		for _, k := range unknown {
			if r := mustValidate(t, b.v, k); r.Code != outcome.NotFound {
				t.Fatalf("unknown key: %v", r.Code)
			}
		}
		n := b.tr.lookups.Load() - before
		t.Logf("100,000 distinct unknown keys: %d lookups (%.3f%%)", n, float64(n)/1000)
		if n > 300 {
			t.Fatalf("%d lookups, want at most 300 (0.3%%)", n)
		}
	})
}

func TestOneUnknownKeyIsLookedUpOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	validate.ForceFilterMaybe(b.v)
	key := b.unknownKey(t)
	before := b.tr.lookups.Load()
	var wg sync.WaitGroup
	for w := 0; w < 10; w++ {
		wg.Go(func() {
			for i := 0; i < 100; i++ {
				if r := mustValidate(t, b.v, key); r.Code != outcome.NotFound {
					t.Errorf("got %v", r.Code)
				}
			}
		})
	}
	wg.Wait()
	if n := b.tr.lookups.Load() - before; n > 1 {
		t.Fatalf("one unknown key sent 1,000 times made %d lookups, want at most 1", n)
	}
}

func TestValidKeyIsLookedUpOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g, _ := b.create(t, nil)
	before := b.tr.lookups.Load()
	mustValidate(t, b.v, g.Secret) // warm-up
	warm := b.tr.lookups.Load()
	for i := 0; i < 100_000; i++ {
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Valid {
			t.Fatalf("got %v", r.Code)
		}
	}
	if n := b.tr.lookups.Load() - before; n > 1 {
		t.Fatalf("100,000 validations of one key made %d lookups, want at most 1", n)
	}
	if n := b.tr.lookups.Load() - warm; n != 0 {
		t.Fatalf("after warm-up: %d lookups, want 0", n)
	}
}

func TestFloodIsBoundedAndAdminWritesStillSucceed(t *testing.T) {
	inModes(t, func(t *testing.T) {
		const slots = 4
		// A generous deadline: this test is about bookkeeping (slots, batches),
		// and must not depend on how fast this machine runs 2,000 goroutines
		// under the race detector. TestLookupNotAnsweredInTimeIsRefused covers
		// the deadline.
		b := setup(t, func(c *validate.Config) { c.LookupConcurrency = slots; c.LookupTimeout = 10 * time.Second })
		validate.ForceFilterMaybe(b.v)
		// Open the connections the flood and the admin write will use first:
		// dialing one on a machine this busy (2,000 goroutines, the race
		// detector, other packages' tests) can pass the store's 1 s acquire
		// timeout, which is not what this test is about.
		var warm []*pgxpool.Conn
		for range slots + 2 {
			c, err := b.pool.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			warm = append(warm, c)
		}
		for _, c := range warm {
			c.Release()
		}
		flood := make([]string, 2000)
		for i := range flood {
			flood[i] = b.unknownKey(t)
		}
		var (
			wg          sync.WaitGroup
			unavailable atomic.Int64
			start       = make(chan struct{})
			adminErr    = make(chan error, 1)
		)
		for _, k := range flood {
			wg.Go(func() {
				<-start
				r, err := b.v.Validate(context.Background(), k)
				switch {
				case errors.Is(err, apikey.ErrUnavailable):
					unavailable.Add(1)
				case err != nil:
					t.Errorf("Validate: %v", err)
				case r.Code != outcome.NotFound:
					t.Errorf("unknown key answered %v", r.Code)
				}
			})
		}
		maxAcquired := int32(0)
		sampling := make(chan struct{})
		go func() {
			defer close(sampling)
			tick := time.NewTicker(100 * time.Microsecond) // a sampler, not a wait
			defer tick.Stop()
			for b.tr.lookups.Load() == 0 || b.tr.inflight.Load() > 0 {
				if a := b.pool.Stat().AcquiredConns(); a > maxAcquired {
					maxAcquired = a
				}
				<-tick.C
			}
		}()
		close(start)
		go func() {
			g, _ := b.format.Generate()
			// Its own acquire deadline, as generous as the lookups': what is
			// asserted is that the flood leaves it a connection, not how fast a
			// machine this busy hands one over.
			admin := store.New(b.pool, 10*time.Second)
			_, err := admin.CreateKey(context.Background(), apikey.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "admin", Owner: "o"})
			adminErr <- err
		}()
		wg.Wait()
		<-sampling
		if err := <-adminErr; err != nil {
			t.Fatalf("CreateKey during the flood: %v", err)
		}
		t.Logf("2,000 concurrent plausible keys: %d lookup statements, at most %d at once, %d answered UNAVAILABLE, pool peak %d acquired",
			b.tr.lookups.Load(), b.tr.maxInflight.Load(), unavailable.Load(), maxAcquired)
		if m := b.tr.maxInflight.Load(); m > slots {
			t.Fatalf("%d lookup statements ran at once, the bound is %d", m, slots)
		}
		if n := unavailable.Load(); n != 0 {
			t.Fatalf("%d of 2,000 keys answered UNAVAILABLE by a database that answers in time (refusals: deadline %v, queue_full %v, store_down %v)", n,
				validate.LookupRefusals(b.v, "deadline"), validate.LookupRefusals(b.v, "queue_full"), validate.LookupRefusals(b.v, "store_down"))
		}
	})
}

func TestUsageIsBufferedAndFlushedInOneStatement(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *validate.Config) { c.UsageFlushInterval = time.Hour })
	g1, k1 := b.create(t, nil)
	g2, k2 := b.create(t, nil)
	for i := 0; i < 1000; i++ {
		mustValidate(t, b.v, g1.Secret)
		mustValidate(t, b.v, g2.Secret)
	}
	if n := b.tr.updates.Load(); n != 0 {
		t.Fatalf("%d usage writes during Validate, want 0", n)
	}
	validate.FlushUsage(b.v, context.Background())
	if n := b.tr.updates.Load(); n != 1 {
		t.Fatalf("%d usage statements for two keys, want 1", n)
	}
	for _, k := range []apikey.Key{k1, k2} {
		got, err := b.store.GetKey(context.Background(), k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt == nil {
			t.Fatalf("last_used_at not recorded for %s", k.ID)
		}
	}
}
