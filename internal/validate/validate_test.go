package validate_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
	"github.com/keyservice/keyservice/internal/testsignal"
	"github.com/keyservice/keyservice/internal/validate"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// tracer counts the statements that read keys for Validate (the sqlc
// queries GetKeysByHashes, batched, and GetKeyByHash, naive) as the
// database driver sends them, and how many run at once.
type tracer struct {
	lookups, inflight, maxInflight, updates atomic.Int64
}

type lookupMark struct{}

func (tr *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "name: TouchLastUsed") {
		tr.updates.Add(1)
	}
	if !strings.Contains(d.SQL, "name: GetKeysByHashes") && !strings.Contains(d.SQL, "name: GetKeyByHash ") {
		return ctx
	}
	tr.lookups.Add(1)
	n := tr.inflight.Add(1)
	for {
		m := tr.maxInflight.Load()
		if n <= m || tr.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	return context.WithValue(ctx, lookupMark{}, true)
}

func (tr *tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if ctx.Value(lookupMark{}) != nil {
		tr.inflight.Add(-1)
	}
}

type bundle struct {
	url    string
	v      *validate.Validator
	keys   *validate.AdminKeys // the admin door: writes seen by v at once
	store  *store.Store
	pool   *pgxpool.Pool
	tr     *tracer
	format keys.Format
	clock  *fakeClock
	stop   func()
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type setupOpt func(*validate.Config)

// wrapFeed, when set (by a test, around setupOn), wraps the change feed
// (the store's LISTEN connection) of the replicas set up meanwhile.
var wrapFeed func(validate.Feed) validate.Feed

func setup(t testing.TB, opts ...setupOpt) *bundle {
	t.Helper()
	u, _ := testdb.New(t)
	return setupOn(t, u, true, opts...)
}

// setupOn runs a Validator (with its own pool and LISTEN connection) on the
// database at u, as one replica would.
func setupOn(t testing.TB, u string, waitLoaded bool, opts ...setupOpt) *bundle {
	t.Helper()
	tr := &tracer{}
	pool, err := store.OpenPool(context.Background(), store.PoolConfig{URL: u, MaxConns: 16, Tracer: tr, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f, err := keys.NewFormat("ks")
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(pool, time.Second)
	clock := &fakeClock{now: time.Now()}
	// The service's defaults, from the settings' declarations.
	cfg := validate.Config{Format: f, Store: st, Now: clock.Now, Tuning: config.Defaults().Tuning}
	cfg.SyncInterval, cfg.RebuildInterval = 50*time.Millisecond, time.Hour
	for _, o := range opts {
		o(&cfg)
	}
	v, err := validate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	validate.InitSignals(v)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var feed validate.Feed = st
		if wrapFeed != nil {
			feed = wrapFeed(feed)
		}
		if err := v.Run(ctx, feed); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			pool.Close()
		})
	}
	t.Cleanup(stop)
	b := &bundle{url: u, v: v, keys: v.AdminKeys(st), store: st, pool: pool, tr: tr, format: f, clock: clock, stop: stop}
	if waitLoaded {
		waitForLoad(t, v, 20*time.Second)
	}
	return b
}

// create stores a key as CreateKey does on the replica that makes it.
func (b *bundle) create(t testing.TB, exp *time.Time) (keys.Generated, apikey.Key) {
	t.Helper()
	g, err := b.format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := b.keys.CreateKey(context.Background(), apikey.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "n", Owner: "o", ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	return g, k
}

func (b *bundle) revoke(t testing.TB, id apikey.Key) apikey.Key {
	t.Helper()
	k, err := b.keys.RevokeKey(context.Background(), id.ID)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (b *bundle) unknownKey(t testing.TB) string {
	t.Helper()
	g, err := b.format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return g.Secret
}

func mustValidate(t testing.TB, v *validate.Validator, key string) validate.Result {
	t.Helper()
	r, err := v.Validate(context.Background(), key)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return r
}

func TestOutcomes(t *testing.T) {
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
}

func TestMalformedKeysNeverReachTheDatabase(t *testing.T) {
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
}

func TestUnknownKeysRarelyReachTheDatabase(t *testing.T) {
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
	const slots = 4
	// A generous deadline: this test is about bookkeeping (slots, batches),
	// and must not depend on how fast this machine runs 2,000 goroutines
	// under the race detector. TestLookupNotAnsweredInTimeIsRefused covers
	// the deadline.
	b := setup(t, func(c *validate.Config) { c.LookupConcurrency = slots; c.LookupTimeout = 10 * time.Second })
	validate.ForceFilterMaybe(b.v)
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
		_, err := b.store.CreateKey(context.Background(), apikey.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "admin", Owner: "o"})
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
}

func TestTwoReplicasStayInStep(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	a := setupOn(t, u, true)
	bb := setupOn(t, u, true)
	// B's LISTEN must be in place, or a NOTIFY sent before it is read by
	// the catch-up sync instead (and the test below cannot tell which).
	validate.Signals(bb.v).StreamUp.Wait(t, 10*time.Second)
	g, k := a.create(t, nil)
	start := time.Now()
	waitFor(t, 10*time.Second, func() bool { return mustValidate(t, bb.v, g.Secret).Code == outcome.Valid })
	t.Logf("created on A, valid on B after %s", time.Since(start))

	a.revoke(t, k)
	start = time.Now()
	waitFor(t, 10*time.Second, func() bool { return mustValidate(t, bb.v, g.Secret).Code == outcome.Revoked })
	t.Logf("revoked on A, refused on B after %s", time.Since(start))
	if validate.EventsApplied(bb.v, "revoked", "notify") < 1 {
		t.Fatal("B did not learn of the revocation through NOTIFY")
	}
}

func TestListenerSurvivesBackendTermination(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	a := setupOn(t, u, true)
	// B syncs rarely, so whatever it learns quickly comes through LISTEN.
	bb := setupOn(t, u, true, func(c *validate.Config) { c.SyncInterval = time.Hour })
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	listeners := func() []int32 {
		rows, _ := conn.Query(context.Background(),
			"SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()", store.ListenApplicationName)
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			t.Fatal(err)
		}
		return pids
	}
	// Each replica signals when its LISTEN is in place and its backlog read.
	ups := []testsignal.Signal{validate.Signals(a.v).StreamUp, validate.Signals(bb.v).StreamUp}
	for _, up := range ups {
		up.Wait(t, 10*time.Second)
		up.Drain()
	}
	old := listeners()
	if len(old) != 2 {
		t.Fatalf("%d LISTEN connections, want the two replicas'", len(old))
	}
	if _, err := conn.Exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", old); err != nil {
		t.Fatal(err)
	}
	// Both replicas reconnect (the ended backends may linger a moment in
	// pg_stat_activity: count the new ones).
	for _, up := range ups {
		up.Wait(t, 10*time.Second)
	}
	fresh := 0
	for _, p := range listeners() {
		if !slices.Contains(old, p) {
			fresh++
		}
	}
	if fresh != 2 {
		t.Fatalf("%d new LISTEN connections after both replicas said they listen again, want 2", fresh)
	}
	notified := validate.EventsApplied(bb.v, "created", "notify")
	g, _ := a.create(t, nil)
	waitFor(t, 10*time.Second, func() bool { return mustValidate(t, bb.v, g.Secret).Code == outcome.Valid })
	if validate.EventsApplied(bb.v, "created", "notify") <= notified {
		t.Fatal("the event after the reconnect did not arrive through NOTIFY")
	}
}

func TestRevocationRace(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  setupOpt
	}{
		{"cached", func(*validate.Config) {}},
		// Every call finds a stale entry and looks the key up: lookups that
		// began before the revoke race with it.
		{"every call looks up", func(c *validate.Config) { c.PositiveTTL = time.Nanosecond }},
		// Every hit refreshes the entry in the background: refreshes that
		// began before the revoke race with it.
		// The REVOKED negative entry expires quickly, so a refresh that
		// cached VALID after the revoke would be served.
		{"every hit refreshes", func(c *validate.Config) {
			c.PositiveTTL, c.RefreshAhead, c.NegativeTTL = time.Millisecond, 0.999, 100*time.Microsecond
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t, tc.opt)
			// The fake clock must move for entries to go stale: each
			// validation moves it on.
			tick := time.Duration(0)
			if tc.name != "cached" {
				tick = time.Microsecond
			}
			g, k := b.create(t, nil)
			mustValidate(t, b.v, g.Secret)
			var revoked atomic.Bool
			var bad, calls atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						after := revoked.Load()
						r, err := b.v.Validate(context.Background(), g.Secret)
						if err == nil && after && r.Code == outcome.Valid {
							bad.Add(1)
						}
						calls.Add(1)
						b.clock.Advance(tick)
					}
				})
			}
			// Validations race the revoke: a few thousand before it, and
			// a few thousand after.
			waitFor(t, 10*time.Second, func() bool { return calls.Load() >= 2000 })
			b.revoke(t, k)
			revoked.Store(true)
			n := calls.Load()
			waitFor(t, 10*time.Second, func() bool { return calls.Load() >= n+5000 })
			close(stop)
			wg.Wait()
			if n := bad.Load(); n > 0 {
				t.Fatalf("%d validations that started after the revoke returned answered VALID", n)
			}
		})
	}
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

func TestRebuildKeepsRecentlyRevokedKeys(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *validate.Config) { c.FilterFPRate = 1e-9 })
	g, k := b.create(t, nil)
	b.revoke(t, k)
	if err := validate.Rebuild(b.v, context.Background()); err != nil {
		t.Fatal(err)
	}
	if !validate.FilterMayContain(b.v, k.Hash) {
		t.Fatal("a key revoked just now left the filter")
	}
	// A fresh replica (nothing cached) still tells REVOKED from NOT_FOUND.
	fresh := setupOn(t, b.url, true)
	if r := mustValidate(t, fresh.v, g.Secret); r.Code != outcome.Revoked {
		t.Fatalf("recently revoked key on a fresh replica: %v, want REVOKED", r.Code)
	}
}

func TestRebuildDropsRevokedKeysAndKeepsNewOnes(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *validate.Config) { c.FilterFPRate = 1e-9; c.EndedKeptFor = time.Nanosecond })
	_, k := b.create(t, nil)
	kept, _ := b.create(t, nil)
	b.revoke(t, k)
	if !validate.FilterMayContain(b.v, k.Hash) {
		t.Fatal("the filter should still hold the revoked key before a rebuild")
	}
	if err := validate.Rebuild(b.v, context.Background()); err != nil {
		t.Fatal(err)
	}
	if validate.FilterMayContain(b.v, k.Hash) {
		t.Fatal("rebuild kept a revoked key")
	}
	if !validate.FilterMayContain(b.v, kept.Hash) {
		t.Fatal("rebuild lost an active key")
	}
}

func TestSyncFindsKeysCreatedWithoutNotify(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	b := setupOn(t, u, true)
	// A write that sends no NOTIFY (as if the notification were lost).
	f, _ := keys.NewFormat("ks")
	g, _ := f.Generate()
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	synced := validate.Signals(b.v).Synced
	if _, err := conn.Exec(context.Background(),
		"INSERT INTO api_keys (key_hash, hint, name, owner) VALUES ($1, 'h', 'n', 'o')", g.Hash[:]); err != nil {
		t.Fatal(err)
	}
	waitSyncAfter(t, synced)
	if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Valid {
		t.Fatalf("after a sync that began after the write: %v, want VALID", r.Code)
	}
	if validate.EventsApplied(b.v, "created", "sync") < 1 {
		t.Fatal("the key was not found by incremental sync")
	}
}

// TestConcurrentRebuildsKeepEveryNewKey runs rebuilds back to back while
// keys are created; every key created must end up in the filter.
func TestConcurrentRebuildsKeepEveryNewKey(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *validate.Config) { c.FilterFPRate = 1e-9 })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := validate.Rebuild(b.v, context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var created []keys.Hash
	for i := 0; i < 500; i++ {
		_, k := b.create(t, nil)
		created = append(created, k.Hash)
	}
	close(stop)
	wg.Wait()
	for i, h := range created {
		if !validate.FilterMayContain(b.v, h) {
			t.Fatalf("key %d created during rebuilds is missing from the filter", i)
		}
	}
}

// TestSyncFindsUpdatesWithoutNotify: an update whose NOTIFY was lost
// replaces the cached answer at the next incremental sync, and the syncs
// after it, which re-read the same change in their overlap, leave memory
// alone.
func TestSyncFindsUpdatesWithoutNotify(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	b := setupOn(t, u, true)
	g, k := b.create(t, nil)
	if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Valid {
		t.Fatalf("before: %v", r.Code)
	}
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// A write that sends no NOTIFY (as if the notification were lost).
	if _, err := conn.Exec(context.Background(), "UPDATE api_keys SET enabled = false, updated_at = clock_timestamp() WHERE id = $1", k.ID); err != nil {
		t.Fatal(err)
	}
	s := validate.Signals(b.v).Synced
	waitSyncAfter(t, s)
	if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Disabled {
		t.Fatalf("after a sync that began after the write: %v, want DISABLED", r.Code)
	}
	applied := validate.EventsApplied(b.v, "updated", "sync")
	if applied < 1 {
		t.Fatal("the update was not found by incremental sync")
	}
	s.Drain()
	for i := 0; i < 3; i++ {
		s.Wait(t, 10*time.Second)
	}
	if again := validate.EventsApplied(b.v, "updated", "sync"); again != applied {
		t.Fatalf("later syncs applied the same update %v more times", again-applied)
	}
	// A key nobody validates here: its update is noted for a filter being
	// rebuilt, not applied at every sync.
	_, idle := b.create(t, nil)
	if _, err := conn.Exec(context.Background(), "UPDATE api_keys SET name = 'x', updated_at = clock_timestamp() WHERE id = $1", idle.ID); err != nil {
		t.Fatal(err)
	}
	before := validate.EventsApplied(b.v, "updated", "sync")
	s.Drain()
	for i := 0; i < 3; i++ {
		s.Wait(t, 10*time.Second)
	}
	if n := validate.EventsApplied(b.v, "updated", "sync") - before; n != 0 {
		t.Fatalf("an update of a key memory does not hold was applied %v times by sync", n)
	}
}
