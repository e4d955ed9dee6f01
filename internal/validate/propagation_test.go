package validate_test

// Changes reaching every replica: NOTIFY, its reconnection, and
// incremental sync when NOTIFY is lost or down.

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
	"github.com/keyservice/keyservice/internal/testsignal"
	"github.com/keyservice/keyservice/internal/validate"
)

func TestTwoReplicasStayInStep(t *testing.T) {
	inModes(t, func(t *testing.T) {
		t.Parallel()
		u, _ := testdb.New(t)
		a := setupOn(t, u, true)
		// B syncs rarely: with the helpers' 50 ms sync, a NOTIFY slowed by a
		// busy machine lost the race to sync now and then, and the test below
		// could not tell which delivered the revocation.
		bb := setupOn(t, u, true, func(c *validate.Config) { c.SyncInterval = time.Hour })
		// B's LISTEN must be in place, or a NOTIFY sent before it is read by
		// the catch-up sync instead (and the test below cannot tell which).
		validate.Signals(bb.v).StreamUp.Wait(t, 10*time.Second)
		g, k := a.create(t, nil)
		start := time.Now()
		// B may look the new key up (its record on the way): a loaded
		// machine under the race detector may refuse that lookup at its
		// deadline, so B is asked again.
		waitFor(t, 10*time.Second, func() bool {
			r, err := bb.v.Validate(context.Background(), g.Secret)
			return err == nil && r.Code == outcome.Valid
		})
		t.Logf("created on A, valid on B after %s", time.Since(start))

		a.revoke(t, k)
		start = time.Now()
		waitFor(t, 10*time.Second, func() bool { return mustValidate(t, bb.v, g.Secret).Code == outcome.Revoked })
		t.Logf("revoked on A, refused on B after %s", time.Since(start))
		// B may have answered REVOKED from a lookup (its cache fill dropped
		// when the creation's NOTIFY crossed it, on a busy machine): the
		// NOTIFY must still arrive, as sync runs hourly here.
		waitFor(t, 10*time.Second, func() bool { return validate.EventsApplied(bb.v, "revoked", "notify") >= 1 })
	})
}

func TestListenerSurvivesBackendTermination(t *testing.T) {
	inModes(t, func(t *testing.T) {
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
	})
}

func TestRevocationRace(t *testing.T) {
	inModes(t, func(t *testing.T) {
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
	})
}

func TestSyncFindsKeysCreatedWithoutNotify(t *testing.T) {
	inModes(t, func(t *testing.T) {
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
	})
}

// TestSyncFindsUpdatesWithoutNotify: an update whose NOTIFY was lost
// replaces the cached answer at the next incremental sync, and the syncs
// after it, which re-read the same change in their overlap, leave memory
// alone.
func TestSyncFindsUpdatesWithoutNotify(t *testing.T) {
	inModes(t, func(t *testing.T) {
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
		idleSecret, idle := b.create(t, nil)
		if _, err := conn.Exec(context.Background(), "UPDATE api_keys SET name = 'x', updated_at = clock_timestamp() WHERE id = $1", idle.ID); err != nil {
			t.Fatal(err)
		}
		before := validate.EventsApplied(b.v, "updated", "sync")
		s.Drain()
		for i := 0; i < 3; i++ {
			s.Wait(t, 10*time.Second)
		}
		n := validate.EventsApplied(b.v, "updated", "sync") - before
		if !inMemoryMode(t) {
			if n != 0 {
				t.Fatalf("an update of a key memory does not hold was applied %v times by sync", n)
			}
			return
		}
		// Memory mode holds every key: the update is applied, its record
		// fetched again, and later syncs leave it alone.
		if n < 1 {
			t.Fatal("memory mode: an update found by sync was not applied")
		}
		waitFor(t, 10*time.Second, func() bool {
			r, err := b.v.Validate(context.Background(), idleSecret.Secret)
			return err == nil && r.Key != nil && r.Key.Name == "x"
		})
		after := validate.EventsApplied(b.v, "updated", "sync")
		s.Drain()
		for i := 0; i < 3; i++ {
			s.Wait(t, 10*time.Second)
		}
		if again := validate.EventsApplied(b.v, "updated", "sync"); again != after {
			t.Fatalf("memory mode: later syncs applied the same update %v more times", again-after)
		}
	})
}

// TestKeysCreatedWhileListenIsDownAreSeenSoon: while a replica's LISTEN
// connection is down, a key created on another replica is found by a sync
// that runs every 250 ms, not every SyncInterval (10 s here); and a
// NOT_FOUND cached meanwhile is kept only briefly.
func TestKeysCreatedWhileListenIsDownAreSeenSoon(t *testing.T) {
	inModes(t, func(t *testing.T) {
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
	})
}
