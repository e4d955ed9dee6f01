package validate_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/pglocal"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/validate"
)

// privateCluster starts a PostgreSQL cluster this test may stop and start.
func privateCluster(t *testing.T) (*pglocal.Cluster, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "data")
	c, err := pglocal.Start(ctx, pglocal.Options{Dir: dir, Ephemeral: true})
	if err != nil {
		t.Fatalf("starting a private cluster: %v", err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	u := c.URL("postgres")
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	m, err := store.NewMigrator(pool)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Up(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	return c, u
}

func TestPostgresDown(t *testing.T) {
	inModes(t, func(t *testing.T) {
		t.Parallel()
		c, u := privateCluster(t)
		b := setupOn(t, u, true, func(cfg *validate.Config) {
			cfg.PositiveTTL = 30 * time.Second
			cfg.StaleFor = 5 * time.Minute
			cfg.LookupTimeout = 250 * time.Millisecond
		})
		cached, _ := b.create(t, nil)
		uncached, _ := b.create(t, nil)
		if r := mustValidate(t, b.v, cached.Secret); r.Code != outcome.Valid {
			t.Fatalf("warm-up: %v", r.Code)
		}
		if err := c.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}

		if r := mustValidate(t, b.v, cached.Secret); r.Code != outcome.Valid {
			t.Fatalf("cached key while down: %v", r.Code)
		}
		if r := mustValidate(t, b.v, b.unknownKey(t)); r.Code != outcome.NotFound {
			t.Fatalf("filter-rejected key while down: %v", r.Code)
		}
		start := time.Now()
		r, err := b.v.Validate(context.Background(), uncached.Secret)
		switch {
		case inMemoryMode(t):
			// Every active key's record is in memory: no lookup needed.
			if err != nil || r.Code != outcome.Valid || r.Path != validate.PathMemory {
				t.Fatalf("never-seen key while down in memory mode: %v %v %v, want VALID from memory", r.Code, r.Path, err)
			}
		case !errors.Is(err, apikey.ErrUnavailable):
			t.Fatalf("key needing a lookup while down: %v, want ErrUnavailable", err)
		}
		// Bounded by the lookup deadline; the slack is for a loaded machine, not a speed claim.
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("UNAVAILABLE took %s", d)
		}

		// Past its TTL the cached entry is stale; the lookup fails, so it is served.
		b.clock.Advance(31 * time.Second)
		if r := mustValidate(t, b.v, cached.Secret); r.Code != outcome.Valid {
			t.Fatalf("stale cached key while down: %v", r.Code)
		}
		// Past TTL + StaleFor it is gone: no answer without the database (in
		// memory mode too: memory has not been in step with the database
		// for that long).
		b.clock.Advance(5 * time.Minute)
		if _, err := b.v.Validate(context.Background(), cached.Secret); !errors.Is(err, apikey.ErrUnavailable) {
			t.Fatalf("entry past its stale bound: %v, want ErrUnavailable", err)
		}

		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, func() bool {
			r, err := b.v.Validate(context.Background(), uncached.Secret)
			return err == nil && r.Code == outcome.Valid
		})
		if r := mustValidate(t, b.v, cached.Secret); r.Code != outcome.Valid {
			t.Fatalf("after recovery: %v", r.Code)
		}
	})
}

func TestStartsNotReadyWhileDatabaseIsDown(t *testing.T) {
	inModes(t, func(t *testing.T) {
		t.Parallel()
		c, u := privateCluster(t)
		if err := c.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		b := setupOn(t, u, false)
		for range 3 { // several load attempts
			validate.Signals(b.v).LoadFailed.Wait(t, 30*time.Second)
		}
		if b.v.Loaded() {
			t.Fatal("loaded with the database down")
		}
		if _, err := b.v.Validate(context.Background(), b.unknownKey(t)); !errors.Is(err, apikey.ErrUnavailable) {
			t.Fatalf("Validate before load: %v, want ErrUnavailable", err)
		}
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitForLoad(t, b.v, 30*time.Second)
		if r := mustValidate(t, b.v, b.unknownKey(t)); r.Code != outcome.NotFound {
			t.Fatalf("after load: %v", r.Code)
		}
	})
}

// TestStaleEntryNeverOutlivesARevocation: once a lookup has found a key
// revoked, its old positive entry must not be served later, even stale,
// even with the database down.
func TestStaleEntryNeverOutlivesARevocation(t *testing.T) {
	inModes(t, func(t *testing.T) {
		t.Parallel()
		c, u := privateCluster(t)
		b := setupOn(t, u, true, func(cfg *validate.Config) {
			cfg.PositiveTTL = 30 * time.Second
			cfg.StaleFor = 5 * time.Minute
			cfg.NegativeTTL = 10 * time.Second
			cfg.SyncInterval = time.Hour // this replica misses the revocation
		})
		g, k := b.create(t, nil)
		mustValidate(t, b.v, g.Secret)
		// Revoked elsewhere, with no NOTIFY reaching this replica.
		conn, err := pgxpool.New(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(context.Background(), "UPDATE api_keys SET revoked_at = now() WHERE id = $1", k.ID); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		b.clock.Advance(31 * time.Second) // stale: the next call looks the key up
		if inMemoryMode(t) {
			// Memory mode looks nothing up: the revocation arrives with the
			// next sync (the bound for a change whose NOTIFY was lost).
			if err := validate.Sync(b.v); err != nil {
				t.Fatal(err)
			}
		}
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Revoked {
			t.Fatalf("after the lookup (filter mode) or the sync (memory mode): %v, want REVOKED", r.Code)
		}
		b.clock.Advance(11 * time.Second) // the negative entry expires
		if err := c.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		r, err := b.v.Validate(context.Background(), g.Secret)
		if err == nil && r.Code == outcome.Valid {
			t.Fatal("a revoked key was served VALID from a stale entry")
		}
	})
}
