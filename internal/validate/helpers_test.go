package validate_test

// Helpers shared by the package's external tests: a validator on a fresh
// database (setup), keys, a statement counter, stores and feeds to break.

import (
	"context"
	"errors"
	"net/url"
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
	"github.com/keyservice/keyservice/internal/netdelay"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
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
	// Filter mode, unless the test runs in memory mode (inModes).
	cfg.MemoryBudgetMiB = 0
	if inMemoryMode(t) {
		cfg.MemoryBudgetMiB = 64
	}
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
	// What the incremental sync (and snapshot loads) read: pages, rows,
	// and the most rows in one page.
	pages, changeRows, biggestPage atomic.Int64
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

func (s *hookedStore) ChangesSince(ctx context.Context, since time.Time, pageSize int, fn func([]apikey.KeyChange) error) (int64, error) {
	if s.beforeSync != nil {
		s.syncOnce.Do(s.beforeSync)
	}
	return s.Store.ChangesSince(ctx, since, pageSize, func(page []apikey.KeyChange) error {
		for {
			m := s.biggestPage.Load()
			if int64(len(page)) <= m || s.biggestPage.CompareAndSwap(m, int64(len(page))) {
				break
			}
		}
		s.pages.Add(1)
		s.changeRows.Add(int64(len(page)))
		return fn(page)
	})
}

func hook(h *hookedStore) setupOpt {
	return func(c *validate.Config) { h.Store = c.Store; c.Store = h }
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

// memoryMode names inModes' memory-mode subtests; setupOn runs a replica
// in memory mode (every record in memory) when the test's name has it.
const memoryMode = "memory"

// inMemoryMode reports whether t is an inModes memory-mode subtest.
func inMemoryMode(t testing.TB) bool { return strings.Contains(t.Name(), "/"+memoryMode) }

// inModes runs f twice: in filter mode (the filter, the caches and
// lookups) and in memory mode, for the guarantees that must hold in both
// (revocation, propagation, outages).
func inModes(t *testing.T, f func(t *testing.T)) {
	t.Run("filter", f)
	t.Run(memoryMode, f)
}
