package validate_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/netdelay"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/testdb"
	"github.com/keyservice/keyservice/internal/validate"
)

// seedKeys inserts n active keys in one COPY and returns their secrets.
func seedKeys(t testing.TB, u string, n int) []string {
	t.Helper()
	f, _ := keys.NewFormat("ks")
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	secrets := make([]string, n)
	rows := make([][]any, n)
	for i := range rows {
		g, err := f.Generate()
		if err != nil {
			t.Fatal(err)
		}
		secrets[i] = g.Secret
		rows[i] = []any{g.Hash[:], g.Hint, "seeded", "o"}
	}
	if _, err := conn.CopyFrom(context.Background(), pgx.Identifier{"api_keys"}, []string{"key_hash", "hint", "name", "owner"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	return secrets
}

// behind returns u reached through a proxy that delays each direction.
func behind(t testing.TB, u string, delay time.Duration) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p, err := netdelay.Start(pu.Host, delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	pu.Host = p.Addr()
	return pu.String()
}

// burst validates every key once, workers at a time, and counts answers.
func burst(v *validate.Validator, secrets []string, workers int) (valid, unavailable, other int64) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(secrets)) {
					return
				}
				r, err := v.Validate(context.Background(), secrets[i])
				switch {
				case errors.Is(err, apikey.ErrUnavailable):
					atomic.AddInt64(&unavailable, 1)
				case err == nil && r.Code == outcome.Valid:
					atomic.AddInt64(&valid, 1)
				default:
					atomic.AddInt64(&other, 1)
				}
			}
		})
	}
	wg.Wait()
	return
}

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

// TestRefreshAheadKeepsAKeyInSteadyUseInMemory: a key used every 5 s (by
// the injected clock) through four TTLs is always answered from memory;
// its entry is refreshed in the background before it expires.
func TestRefreshAheadKeepsAKeyInSteadyUseInMemory(t *testing.T) {
	t.Parallel()
	b := setup(t) // TTL 30 s, refreshed in its last quarter
	g, k := b.create(t, nil)
	mustValidate(t, b.v, g.Secret) // first use: a lookup
	for i := 1; i <= 24; i++ {
		b.clock.Advance(5 * time.Second)
		r := mustValidate(t, b.v, g.Secret)
		if r.Code != outcome.Valid || r.Path != validate.PathPositiveCache {
			t.Fatalf("use %d (%ds): %v from %v, want VALID from the positive cache", i, 5*i, r.Code, r.Path)
		}
		// A use in the entry's last quarter refreshed it: wait for the
		// refresh to land before time moves on.
		if now := b.clock.Now(); now.Sub(validate.CachedAt(b.v, k.Hash)) >= 22500*time.Millisecond {
			waitFor(t, 5*time.Second, func() bool { return validate.CachedAt(b.v, k.Hash).Equal(now) })
		}
	}
}

// TestRefreshFindsARevocationNotifyMissed: a key revoked with no NOTIFY
// (as if the notification were lost) is answered REVOKED once a refresh
// has run, before its entry would have expired.
func TestRefreshFindsARevocationNotifyMissed(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *validate.Config) { c.SyncInterval = time.Hour })
	g, k := b.create(t, nil)
	mustValidate(t, b.v, g.Secret)
	if _, err := b.pool.Exec(context.Background(), "UPDATE api_keys SET revoked_at = now() WHERE id = $1", k.ID); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(25 * time.Second) // in the last quarter of the 30 s TTL
	mustValidate(t, b.v, g.Secret)    // still VALID from memory; refreshes
	waitFor(t, 5*time.Second, func() bool { return mustValidate(t, b.v, g.Secret).Code == outcome.Revoked })
}

// TestWarmStartAnswersRecentlyUsedKeysFromMemory: a replica that stops
// flushes its usage; a replica that starts fills its cache with the most
// recently used keys, so it answers them with no lookup. Revoked keys are
// not warmed.
func TestWarmStartAnswersRecentlyUsedKeysFromMemory(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	a := setupOn(t, u, true, func(c *validate.Config) { c.UsageFlushInterval = time.Hour })
	var used []keys.Generated
	var revoked apikey.Key
	var revokedSecret string
	for i := 0; i < 20; i++ {
		g, k := a.create(t, nil)
		mustValidate(t, a.v, g.Secret)
		if i == 0 {
			revoked, revokedSecret = k, g.Secret
			continue
		}
		used = append(used, g)
	}
	unused, _ := a.create(t, nil)
	a.revoke(t, revoked)
	a.stop() // flushes usage on the way out
	var n int
	if err := testdbQueryRow(t, u, "SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL", &n); err != nil || n != 20 {
		t.Fatalf("%d keys with last_used_at after shutdown (%v), want 20", n, err)
	}

	fresh := setupOn(t, u, true)
	before := fresh.tr.lookups.Load()
	for _, g := range used {
		r := mustValidate(t, fresh.v, g.Secret)
		if r.Code != outcome.Valid || r.Path != validate.PathPositiveCache {
			t.Fatalf("recently used key on a restarted replica: %v from %v, want VALID from the positive cache", r.Code, r.Path)
		}
	}
	if n := fresh.tr.lookups.Load() - before; n != 0 {
		t.Fatalf("%d lookups for recently used keys after a restart, want 0", n)
	}
	if r := mustValidate(t, fresh.v, unused.Secret); r.Code != outcome.Valid || r.Path != validate.PathLookup {
		t.Fatalf("never-used key: %v from %v, want VALID from a lookup", r.Code, r.Path)
	}
	if r := mustValidate(t, fresh.v, revokedSecret); r.Code != outcome.Revoked || r.Path == validate.PathPositiveCache {
		t.Fatalf("used, then revoked key on a restarted replica: %v from %v, want REVOKED, not from the positive cache", r.Code, r.Path)
	}
}

func testdbQueryRow(t testing.TB, u, sql string, dest ...any) error {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(context.Background(), sql).Scan(dest...)
}

// hookedStore wraps the real store to count or disturb what the validation
// path reads.
type hookedStore struct {
	validate.Store
	byHashes     atomic.Int64
	failByHashes atomic.Bool
	recent       atomic.Int64
	afterRecent  func() // run once, after the first page of the warm start
	once         sync.Once
	beforeSync   func() // run once, before the first incremental sync reads
	syncOnce     sync.Once
	// hold, when set, is called after a KeysByHashes statement has read
	// the database and before its rows are returned.
	hold atomic.Pointer[func()]
}

func (s *hookedStore) KeysByHashes(ctx context.Context, hs []keys.Hash) ([]apikey.Key, error) {
	s.byHashes.Add(1)
	if s.failByHashes.Load() {
		return nil, apikey.ErrUnavailable
	}
	found, err := s.Store.KeysByHashes(ctx, hs)
	if h := s.hold.Load(); h != nil {
		(*h)()
	}
	return found, err
}

func (s *hookedStore) RecentlyUsed(ctx context.Context, after apikey.UseCursor, limit int) ([]apikey.Key, apikey.UseCursor, error) {
	s.recent.Add(1)
	page, next, err := s.Store.RecentlyUsed(ctx, after, limit)
	if s.afterRecent != nil {
		s.once.Do(s.afterRecent)
	}
	return page, next, err
}

func (s *hookedStore) ChangedSince(ctx context.Context, since time.Time) ([]apikey.KeyChange, error) {
	if s.beforeSync != nil {
		s.syncOnce.Do(s.beforeSync)
	}
	return s.Store.ChangedSince(ctx, since)
}

func hook(h *hookedStore) setupOpt {
	return func(c *validate.Config) { h.Store = c.Store; c.Store = h }
}

// TestWarmStartMissesNoRevocation: a key revoked on another replica after
// the warm start read it, before this replica listens for changes, is
// never answered VALID once the replica is ready.
func TestWarmStartMissesNoRevocation(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	a := setupOn(t, u, true, func(c *validate.Config) { c.UsageFlushInterval = time.Hour })
	g, k := a.create(t, nil)
	mustValidate(t, a.v, g.Secret)
	validate.FlushUsage(a.v, context.Background())
	h := &hookedStore{afterRecent: func() { a.revoke(t, k) }}
	b := setupOn(t, u, true, hook(h), func(c *validate.Config) { c.SyncInterval = time.Hour })
	if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Revoked {
		t.Fatalf("key revoked during the warm start: %v from %v, want REVOKED", r.Code, r.Path)
	}
}

// TestFailedRefreshBacksOff: while the database cannot answer, a key used
// a thousand times in its refresh window is not looked up on every use.
func TestFailedRefreshBacksOff(t *testing.T) {
	t.Parallel()
	h := &hookedStore{}
	b := setup(t, hook(h))
	g, _ := b.create(t, nil)
	mustValidate(t, b.v, g.Secret)
	h.failByHashes.Store(true)
	before := h.byHashes.Load()
	b.clock.Advance(25 * time.Second) // in the refresh window of the 30 s TTL
	for i := 0; i < 1000; i++ {
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Valid {
			t.Fatalf("use %d: %v", i, r.Code)
		}
		if i == 0 {
			validate.Signals(b.v).RefreshFailed.Wait(t, 10*time.Second) // the first refresh came back failed
		}
	}
	if n := h.byHashes.Load() - before; n > 2 {
		t.Fatalf("%d refresh statements while the database fails, want at most 2 (backoff)", n)
	}
}

// TestRewarmReadsAtMostWarmKeys: warming a cache that already holds every
// recently used key reads no more than WarmKeys rows (one page here).
func TestRewarmReadsAtMostWarmKeys(t *testing.T) {
	t.Parallel()
	h := &hookedStore{}
	b := setup(t, hook(h), func(c *validate.Config) { c.WarmKeys = 5 })
	for i := 0; i < 20; i++ {
		g, _ := b.create(t, nil)
		mustValidate(t, b.v, g.Secret)
	}
	validate.FlushUsage(b.v, context.Background())
	before := h.recent.Load()
	validate.Warm(b.v, context.Background())
	if n := h.recent.Load() - before; n != 1 {
		t.Fatalf("re-warming a full cache read %d pages, want 1", n)
	}
}

// TestRefreshThatRacesARevokeIsDiscarded: a refresh that read the key
// before a revoke, and comes back after the revoke was applied, must not
// put VALID back in memory.
func TestRefreshThatRacesARevokeIsDiscarded(t *testing.T) {
	t.Parallel()
	h := &hookedStore{}
	b := setup(t, hook(h), func(c *validate.Config) { c.NegativeTTL = time.Second })
	g, k := b.create(t, nil)
	mustValidate(t, b.v, g.Secret)
	read, release := make(chan struct{}), make(chan struct{})
	hold := func() { close(read); <-release }
	h.hold.Store(&hold)
	b.clock.Advance(25 * time.Second)
	mustValidate(t, b.v, g.Secret) // VALID from memory; starts the refresh
	<-read                         // the refresh has read the key, still active
	h.hold.Store(nil)
	b.revoke(t, k)
	close(release)
	waitFor(t, 5*time.Second, func() bool { return validate.StatementsRunning(b.v) == 0 })
	b.clock.Advance(2 * time.Second) // past the REVOKED negative entry
	if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Revoked {
		t.Fatalf("after a refresh that raced the revoke: %v from %v, want REVOKED", r.Code, r.Path)
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

// TestNoWarmedEntryAnswersBeforeReady: a caller that does not wait for
// readiness, asking after the warm start but before the catch-up sync, right
// after a revoke the replica has not caught up on yet, is not answered VALID
// from a warmed entry.
func TestNoWarmedEntryAnswersBeforeReady(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	a := setupOn(t, u, true, func(c *validate.Config) { c.UsageFlushInterval = time.Hour })
	g, k := a.create(t, nil)
	mustValidate(t, a.v, g.Secret)
	validate.FlushUsage(a.v, context.Background())
	var self atomic.Pointer[validate.Validator]
	built := make(chan struct{}) // self is set
	answered := make(chan validate.Result, 1)
	h := &hookedStore{beforeSync: func() {
		a.revoke(t, k) // after this replica's warm start, before its catch-up
		<-built
		r, _ := self.Load().Validate(context.Background(), g.Secret)
		answered <- r
	}}
	b := setupOn(t, u, false, hook(h), func(c *validate.Config) { c.SyncInterval = time.Hour })
	self.Store(b.v)
	close(built)
	if r := <-answered; r.Code == outcome.Valid {
		t.Fatalf("during the warm start, after a revoke: VALID from %v", r.Path)
	}
}

// TestKeysCreatedWhileListenIsDownAreSeenSoon: while a replica's LISTEN
// connection is down, a key created on another replica is found by a sync
// that runs every 250 ms, not every SyncInterval (10 s here); and a
// NOT_FOUND cached meanwhile is kept only briefly.
func TestKeysCreatedWhileListenIsDownAreSeenSoon(t *testing.T) {
	u, _ := testdb.New(t)
	a := setupOn(t, u, true)
	down := &breakableFeed{cut: make(chan struct{})}
	wrapFeed = func(f validate.Feed) validate.Feed { down.inner = f; return down }
	b := setupOn(t, u, true, func(c *validate.Config) { c.SyncInterval = 10 * time.Second })
	wrapFeed = nil
	// B listens (its stream is up), then its LISTEN connection goes down
	// and stays down.
	validate.Signals(b.v).StreamUp.Wait(t, 10*time.Second)
	close(down.cut)
	waitFor(t, 5*time.Second, func() bool { return validate.StreamDown(b.v) })
	g, _ := a.create(t, nil) // B hears nothing of it
	start := time.Now()
	validate.Signals(b.v).Synced.Drain()
	for mustValidate(t, b.v, g.Secret).Code != outcome.Valid {
		if time.Since(start) > 3*time.Second {
			t.Fatalf("a key created on another replica while LISTEN was down: not VALID here after %s (SyncInterval is 10 s)", time.Since(start))
		}
		validate.Signals(b.v).Synced.Wait(t, 5*time.Second)
	}
	t.Logf("seen after %s", time.Since(start).Round(time.Millisecond))
	// A NOT_FOUND looked up while the stream is down is cached briefly.
	validate.ForceFilterMaybe(b.v)
	unknown := b.unknownKey(t)
	if r := mustValidate(t, b.v, unknown); r.Code != outcome.NotFound || r.Path != validate.PathLookup {
		t.Fatalf("unknown key: %v from %v", r.Code, r.Path)
	}
	b.clock.Advance(300 * time.Millisecond)
	if r := mustValidate(t, b.v, unknown); r.Path != validate.PathLookup {
		t.Fatalf("300 ms later the NOT_FOUND cached while LISTEN was down still answers (from %v); want it gone", r.Path)
	}
}

// breakableFeed is the store's feed until cut is closed; then its stream
// is lost and stays lost, as when the LISTEN connection cannot be made
// again. (The store's own reconnects are tested in internal/store.)
type breakableFeed struct {
	inner validate.Feed
	cut   chan struct{}
}

func (f *breakableFeed) Listen(ctx context.Context, h apikey.ChangeHandler) error {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.inner.Listen(lctx, h) }()
	select {
	case <-ctx.Done():
		return <-done
	case <-f.cut:
	}
	cancel()
	<-done
	h.StreamLost()
	<-ctx.Done()
	return nil
}
