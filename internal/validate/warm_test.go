package validate_test

// Refresh-ahead and the warm start: keys in use answered from memory.

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/testdb"
	"github.com/keyservice/keyservice/internal/validate"
)

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
