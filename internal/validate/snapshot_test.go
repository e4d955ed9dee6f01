package validate_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
	"github.com/keyservice/keyservice/internal/validate"
)

// scanHook runs during a full read, once, after the first hash was read.
type scanHook struct {
	validate.Store
	during func()
	once   sync.Once
}

func (s *scanHook) ScanActiveHashes(ctx context.Context, endedFor time.Duration, start func(apikey.ScanInfo) error, add func(keys.Hash)) (int64, error) {
	return s.Store.ScanActiveHashes(ctx, endedFor, start, func(h keys.Hash) {
		add(h)
		s.once.Do(s.during)
	})
}

func withScanHook(h *scanHook) setupOpt {
	return func(c *validate.Config) { h.Store = c.Store; c.Store = h }
}

// TestSecondReplicaLoadsTheSnapshotInsteadOfTheTable: the first replica
// reads the table and writes the snapshot; the second reads no table, and
// answers keys created before and after the snapshot, and unknown keys,
// as the first does.
func TestSecondReplicaLoadsTheSnapshotInsteadOfTheTable(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	a := setupOn(t, u, true)
	before, _ := a.create(t, nil)
	if n := validate.FilterLoads(a.v, "full"); n != 1 {
		t.Fatalf("first replica: %v full reads, want 1", n)
	}
	if n := validate.FilterLoads(a.v, "written"); n != 1 {
		t.Fatalf("first replica wrote %v snapshots, want 1", n)
	}
	b := setupOn(t, u, true)
	after, _ := a.create(t, nil)
	if n := validate.FilterLoads(b.v, "full"); n != 0 {
		t.Fatalf("second replica read the table %v times, want 0", n)
	}
	if n := validate.FilterLoads(b.v, "snapshot"); n != 1 {
		t.Fatalf("second replica loaded %v snapshots, want 1", n)
	}
	if r := mustValidate(t, b.v, before.Secret); r.Code != outcome.Valid {
		t.Fatalf("key created before the snapshot: %v from %v", r.Code, r.Path)
	}
	waitFor(t, 10*time.Second, func() bool { return mustValidate(t, b.v, after.Secret).Code == outcome.Valid })
	if r := mustValidate(t, b.v, b.unknownKey(t)); r.Code != outcome.NotFound {
		t.Fatalf("unknown key: %v", r.Code)
	}
	// At its next rebuild, b finds no snapshot newer than its own filter:
	// its turn to read the table and write one. a then loads that one.
	if err := validate.Rebuild(b.v, context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := validate.Rebuild(a.v, context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		v          *validate.Validator
		kind       string
		want       float64
		replicaIdx string
	}{
		{b.v, "full", 1, "b"}, {b.v, "written", 1, "b"},
		{a.v, "full", 1, "a"}, {a.v, "snapshot", 1, "a"},
	} {
		if n := validate.FilterLoads(c.v, c.kind); n != c.want {
			t.Errorf("after a rebuild of each: replica %s %s = %v, want %v", c.replicaIdx, c.kind, n, c.want)
		}
	}
	if r := mustValidate(t, a.v, after.Secret); r.Code != outcome.Valid {
		t.Fatalf("after loading b's snapshot, a answers %v", r.Code)
	}
}

// TestKeysChangedWhileTheSnapshotIsWrittenAreAnsweredRight: keys created
// and revoked while the first replica reads the table (after its read's
// snapshot was taken) are answered correctly on a replica that loads the
// snapshot: the catch-up from the watermark finds them.
func TestKeysChangedWhileTheSnapshotIsWrittenAreAnsweredRight(t *testing.T) {
	t.Parallel()
	u, pool := testdb.New(t)
	writer := store.New(pool, time.Second)
	f, _ := keys.NewFormat("ks")
	newKey := func() (keys.Generated, apikey.Key) {
		g, err := f.Generate()
		if err != nil {
			t.Fatal(err)
		}
		k, err := writer.CreateKey(context.Background(), apikey.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "n", Owner: "o"})
		if err != nil {
			t.Fatal(err)
		}
		return g, k
	}
	toRevoke, toRevokeKey := newKey()
	var created keys.Generated
	h := &scanHook{during: func() {
		created, _ = newKey()
		if _, err := writer.RevokeKey(context.Background(), toRevokeKey.ID); err != nil {
			t.Error(err)
		}
	}}
	a := setupOn(t, u, true, withScanHook(h))
	if n := validate.FilterLoads(a.v, "written"); n != 1 {
		t.Fatalf("snapshots written: %v", n)
	}
	b := setupOn(t, u, true)
	if n := validate.FilterLoads(b.v, "snapshot"); n != 1 {
		t.Fatalf("the second replica loaded %v snapshots", n)
	}
	if r := mustValidate(t, b.v, created.Secret); r.Code != outcome.Valid {
		t.Fatalf("key created during the snapshot's read: %v from %v", r.Code, r.Path)
	}
	if r := mustValidate(t, b.v, toRevoke.Secret); r.Code != outcome.Revoked {
		t.Fatalf("key revoked during the snapshot's read: %v from %v", r.Code, r.Path)
	}
	for _, v := range []*validate.Validator{a.v, b.v} {
		if r := mustValidate(t, v, created.Secret); r.Code != outcome.Valid {
			t.Fatalf("created key on a replica: %v", r.Code)
		}
	}
}

// TestCorruptOrOldSnapshotsAreIgnored: a snapshot that does not match its
// checksum, or is older than the rebuild interval, is ignored (counted,
// logged) and the table is read instead.
func TestCorruptOrOldSnapshotsAreIgnored(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	a := setupOn(t, u, true)
	g, _ := a.create(t, nil)
	// a writes its snapshot after it is ready: spoiled before it is
	// written, the good one would land after and be loaded.
	if n := validate.FilterLoads(a.v, "written"); n != 1 {
		t.Fatalf("the first replica wrote %v snapshots, want 1", n)
	}
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, tc := range []struct{ reason, sql string }{
		{"corrupt", "UPDATE filter_snapshot_chunks SET data = overlay(data placing '\\xff'::bytea from 40 for 1) WHERE part = 0 AND seq = 0"},
		{"too_old", `UPDATE filter_snapshots s SET created_at = now() - interval '2 hours',
			checksum = (SELECT sha256(string_agg(data, ''::bytea ORDER BY seq)) FROM filter_snapshot_chunks c WHERE c.snapshot_id = s.id AND c.part = 0)`},
	} {
		if _, err := conn.Exec(context.Background(), tc.sql); err != nil {
			t.Fatal(err)
		}
		b := setupOn(t, u, true)
		if n := validate.FilterLoads(b.v, tc.reason); n != 1 {
			t.Fatalf("%s snapshot: ignored %v times, want 1", tc.reason, n)
		}
		if n := validate.FilterLoads(b.v, "full"); n != 1 {
			t.Fatalf("%s snapshot: %v full reads, want 1", tc.reason, n)
		}
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Valid {
			t.Fatalf("%s snapshot: a key is %v", tc.reason, r.Code)
		}
		// b wrote a good snapshot (waited for: it is written after b is
		// ready): spoil it for the next case.
		if n := validate.FilterLoads(b.v, "written"); n != 1 {
			t.Fatalf("%s snapshot: the replica that read the table wrote %v snapshots, want 1", tc.reason, n)
		}
	}
}

// TestOnlyOneReplicaReadsTheTable: replicas starting together on a table
// with no snapshot: one reads it and writes the snapshot, the others wait
// for it and load it.
func TestOnlyOneReplicaReadsTheTable(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	seed := setupOn(t, u, true, func(c *validate.Config) { c.Snapshots = false })
	g, _ := seed.create(t, nil)
	var wg sync.WaitGroup
	var replicas [3]*bundle
	for i := range replicas {
		wg.Go(func() { replicas[i] = setupOn(t, u, true) })
	}
	wg.Wait()
	var full, loads atomic.Int64
	for _, r := range replicas {
		full.Add(int64(validate.FilterLoads(r.v, "full")))
		loads.Add(int64(validate.FilterLoads(r.v, "snapshot")))
		// The key needs a lookup here, which a loaded machine under the
		// race detector may refuse (UNAVAILABLE, lookup deadline): this test
		// is about who reads the table, so it asks again.
		var res validate.Result
		waitFor(t, 10*time.Second, func() bool {
			var err error
			res, err = r.v.Validate(context.Background(), g.Secret)
			return err == nil
		})
		if res.Code != outcome.Valid {
			t.Fatalf("a replica answers %v", res.Code)
		}
	}
	if full.Load() != 1 || loads.Load() != 2 {
		t.Fatalf("3 replicas: %d read the table, %d loaded the snapshot; want 1 and 2", full.Load(), loads.Load())
	}
}

// busyLock reports the fleet's rebuild lock as held by another replica
// for its first n tries.
type busyLock struct {
	validate.Store
	n, tries atomic.Int32
}

func (s *busyLock) TryRebuildLock(ctx context.Context) (func(), bool, error) {
	if s.tries.Add(1) <= s.n.Load() {
		return nil, false, nil
	}
	return s.Store.TryRebuildLock(ctx)
}

// TestReplicaTakesTheLockWhenItsHolderLeavesNoSnapshot: a replica that
// finds the rebuild lock held waits for the holder's snapshot, but when
// the lock comes free with no snapshot it may use (the holder died, or
// wrote none), it takes the lock and reads the table itself rather than
// waiting out SnapshotWait (ten minutes here: the test would time out).
func TestReplicaTakesTheLockWhenItsHolderLeavesNoSnapshot(t *testing.T) {
	t.Parallel()
	lock := &busyLock{}
	lock.n.Store(3)
	b := setup(t, func(c *validate.Config) {
		lock.Store = c.Store
		c.Store = lock
		c.SnapshotWait = 10 * time.Minute
	})
	if n := lock.tries.Load(); n < 4 {
		t.Fatalf("the replica tried the lock %d times before loading, want 4 (3 held by another)", n)
	}
	if n := validate.FilterLoads(b.v, "full"); n != 1 {
		t.Fatalf("the replica read the table %v times, want 1", n)
	}
	if n := validate.FilterLoads(b.v, "written"); n != 1 {
		t.Fatalf("the replica wrote %v snapshots, want 1", n)
	}
	g, _ := b.create(t, nil)
	waitFor(t, 10*time.Second, func() bool { return mustValidate(t, b.v, g.Secret).Code == outcome.Valid })
}
