package validate_test

// Memory mode: every active key's record in memory (resident.go). The
// guarantees both modes share (revocation, propagation, outages) run in
// each through inModes; these are memory mode's own.

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/testdb"
	"github.com/keyservice/keyservice/internal/validate"
)

func memoryOn(c *validate.Config) { c.MemoryBudgetMiB = 64 }

// TestMemoryModeAnswersFirstSeenKeysWithoutLookups: keys created before
// a replica started, and keys another replica creates while it runs, are
// answered on their first Validate from memory, with no lookup statement.
func TestMemoryModeAnswersFirstSeenKeysWithoutLookups(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	a := setupOn(t, u, true)
	var before []keys.Generated
	for range 300 {
		g, _ := a.create(t, nil)
		before = append(before, g)
	}
	b := setupOn(t, u, true, memoryOn)
	if m := validate.Mode(b.v); m != "memory" {
		t.Fatalf("mode %q with 300 keys and a 64 MiB budget, want memory", m)
	}
	validate.Signals(b.v).StreamUp.Wait(t, 10*time.Second)
	start := b.tr.lookups.Load()
	for _, g := range before {
		r := mustValidate(t, b.v, g.Secret)
		if r.Code != outcome.Valid || r.Path != validate.PathMemory {
			t.Fatalf("first Validate of a key loaded with the records: %v from %v, want VALID from memory", r.Code, r.Path)
		}
	}
	if n := b.tr.lookups.Load() - start; n != 0 {
		t.Fatalf("300 first-seen keys made %d lookups, want 0", n)
	}
	// Created on A while B runs: B learns of it by NOTIFY and fetches its
	// record in the background (one batched statement, not on the call).
	g, _ := a.create(t, nil)
	waitFor(t, 10*time.Second, func() bool { return validate.InMemory(b.v, g.Hash) })
	start = b.tr.lookups.Load()
	r := mustValidate(t, b.v, g.Secret)
	if r.Code != outcome.Valid || r.Path == validate.PathLookup || b.tr.lookups.Load() != start {
		t.Fatalf("key created on another replica: %v from %v, want VALID without a lookup", r.Code, r.Path)
	}
	// Created on B itself: its record is in memory when CreateKey returns
	// (even when the write's own NOTIFY overtook it), with no statement.
	before2 := b.tr.lookups.Load()
	for range 20 {
		g2, _ := b.create(t, nil)
		if !validate.InMemory(b.v, g2.Hash) {
			t.Fatal("a key this replica created is not in memory when CreateKey returned")
		}
	}
	if n := b.tr.lookups.Load() - before2; n != 0 {
		t.Fatalf("20 keys created here made %d key-reading statements, want 0", n)
	}
	// An unknown key is still NOT_FOUND, never VALID.
	if r := mustValidate(t, b.v, b.unknownKey(t)); r.Code != outcome.NotFound {
		t.Fatalf("unknown key: %v", r.Code)
	}
}

// TestMemoryModeWithTheDatabaseStopped: 1,000 active keys this replica
// never saw answered are all VALID from memory with PostgreSQL stopped;
// unknown keys are NOT_FOUND or UNAVAILABLE, never VALID; a key revoked
// before the stop is REVOKED.
func TestMemoryModeWithTheDatabaseStopped(t *testing.T) {
	t.Parallel()
	c, u := privateCluster(t)
	a := setupOn(t, u, true)
	var gs []keys.Generated
	for range 1000 {
		g, _ := a.create(t, nil)
		gs = append(gs, g)
	}
	gr, kr := a.create(t, nil)
	a.revoke(t, kr)
	b := setupOn(t, u, true, memoryOn)
	validate.Signals(b.v).StreamUp.Wait(t, 10*time.Second)
	if err := validate.Sync(b.v); err != nil { // B is in step with everything A did
		t.Fatal(err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		r, err := b.v.Validate(context.Background(), g.Secret)
		if err != nil || r.Code != outcome.Valid {
			t.Fatalf("active key with the database stopped: %v %v, want VALID", r.Code, err)
		}
	}
	if r, err := b.v.Validate(context.Background(), gr.Secret); err != nil || r.Code != outcome.Revoked {
		t.Fatalf("revoked key with the database stopped: %v %v, want REVOKED", r.Code, err)
	}
	for range 1000 {
		r, err := b.v.Validate(context.Background(), b.unknownKey(t))
		if err == nil && r.Code == outcome.Valid {
			t.Fatal("an unknown key was VALID")
		}
	}
}

// TestMemoryModeFallsBackWhenTheKeysDoNotFit: with a budget smaller than
// the keys' records the replica loads the filter alone (filter mode) and
// says so; keys are answered by lookups as before. When the keys fit
// again (a larger budget at the next load) it holds them.
func TestMemoryModeFallsBackWhenTheKeysDoNotFit(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	a := setupOn(t, u, true)
	var gs []keys.Generated
	for range 200 {
		g, _ := a.create(t, nil)
		gs = append(gs, g)
	}
	// 5,000 bytes: about 30 keys' worth.
	b := setupOn(t, u, true, memoryOn, func(c *validate.Config) { c.WarmKeys, c.MemoryBudgetBytes = -1, 50*100 })
	if m := validate.Mode(b.v); m != "filter" {
		t.Fatalf("mode %q with 200 keys and a budget for 50, want filter", m)
	}
	start := b.tr.lookups.Load()
	r := mustValidate(t, b.v, gs[0].Secret)
	if r.Code != outcome.Valid || r.Path != validate.PathLookup {
		t.Fatalf("filter mode: %v from %v, want VALID from a lookup", r.Code, r.Path)
	}
	if b.tr.lookups.Load() == start {
		t.Fatal("filter mode answered a first-seen key without a lookup")
	}
	validate.SetMemoryBudget(b.v, 64<<20)
	if err := validate.Rebuild(b.v, context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := validate.Mode(b.v); m != "memory" {
		t.Fatalf("mode %q after a load with room, want memory", m)
	}
	if r := mustValidate(t, b.v, gs[1].Secret); r.Code != outcome.Valid || r.Path != validate.PathMemory {
		t.Fatalf("memory mode: %v from %v", r.Code, r.Path)
	}
}

// TestMemoryModeOverflowWhileReading: when the planner's count fits the
// budget but the records turn out larger, the read drops them and loads
// the filter alone: filter mode, every key still answered.
func TestMemoryModeOverflowWhileReading(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	a := setupOn(t, u, true)
	meta := map[string]string{"blob": strings.Repeat("x", 1000)}
	var gs []keys.Generated
	for range 50 {
		g, err := a.format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.keys.CreateKey(context.Background(), apikey.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "n", Owner: "o", Metadata: meta}); err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	// The count says 50 × 160 B fits; the records take over 1 kB each.
	// Filter mode looks each key up once: on a loaded CI machine one
	// lookup passed the 250 ms default deadline (refused as the database
	// not answering in time), which is not what this test is about.
	b := setupOn(t, u, true, memoryOn, func(c *validate.Config) {
		c.MemoryBudgetBytes, c.LookupTimeout = 50*400, 10*time.Second
	})
	if m := validate.Mode(b.v); m != "filter" {
		t.Fatalf("mode %q after records overflowed the budget, want filter", m)
	}
	for _, g := range gs {
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Valid {
			t.Fatalf("filter mode after the overflow: %v", r.Code)
		}
	}
}

// keysHook runs during (once, when armed) after the first record a
// memory-mode read returns: the read's snapshot is taken by then.
type keysHook struct {
	validate.Store
	during atomic.Pointer[func()]
}

func (s *keysHook) ScanActiveKeys(ctx context.Context, endedFor time.Duration, start func(apikey.ScanInfo) error, add func(*apikey.Key)) (int64, error) {
	return s.Store.ScanActiveKeys(ctx, endedFor, start, func(k *apikey.Key) {
		add(k)
		if f := s.during.Swap(nil); f != nil {
			(*f)()
		}
	})
}

// TestMemoryModeRebuildKeepsChangesMadeDuringIt: keys created, updated
// and revoked while a rebuild reads the table are answered right after
// it (the changes are carried into the new records).
func TestMemoryModeRebuildKeepsChangesMadeDuringIt(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	h := &keysHook{}
	b := setupOn(t, u, true, memoryOn, func(c *validate.Config) { h.Store = c.Store; c.Store = h })
	g1, k1 := b.create(t, nil)
	g3, k3 := b.create(t, nil)
	var g2 keys.Generated
	during := func() {
		g2, _ = b.create(t, nil)
		b.revoke(t, k1)
		if _, _, err := b.keys.UpdateKey(context.Background(), k3.ID, apikey.Update{Fields: []string{apikey.FieldName}, Name: "renamed"}); err != nil {
			t.Error(err)
		}
	}
	h.during.Store(&during)
	if err := validate.Rebuild(b.v, context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.during.Load() != nil {
		t.Fatal("the rebuild read no record")
	}
	if m := validate.Mode(b.v); m != "memory" {
		t.Fatalf("mode %q", m)
	}
	if r := mustValidate(t, b.v, g1.Secret); r.Code != outcome.Revoked {
		t.Fatalf("key revoked during the rebuild: %v, want REVOKED", r.Code)
	}
	if r := mustValidate(t, b.v, g2.Secret); r.Code != outcome.Valid {
		t.Fatalf("key created during the rebuild: %v, want VALID", r.Code)
	}
	if r := mustValidate(t, b.v, g3.Secret); r.Code != outcome.Valid || r.Key.Name != "renamed" {
		t.Fatalf("key updated during the rebuild: %v %q, want VALID renamed", r.Code, r.Key.Name)
	}
}

// TestRevocationWhileEnteringMemoryMode: a replica in filter mode whose
// next load enters memory mode, with a key revoked here while that load
// reads the table (its snapshot still has the key active): once the
// REVOKED answer has left the negative cache, the key is still never
// VALID. (Memory mode's writes were skipped while no table was current,
// so the new table kept the snapshot's record.)
func TestRevocationWhileEnteringMemoryMode(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	a := setupOn(t, u, true)
	for range 3 {
		a.create(t, nil)
	}
	h := &keysHook{}
	b := setupOn(t, u, true, func(c *validate.Config) {
		h.Store = c.Store
		c.Store = h
		c.MemoryBudgetBytes = 1 // filter mode at the first load
		c.SyncInterval = time.Hour
	})
	if m := validate.Mode(b.v); m != "filter" {
		t.Fatalf("mode %q, want filter", m)
	}
	g, k := b.create(t, nil)
	if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Valid {
		t.Fatalf("before: %v", r.Code)
	}
	during := func() { b.revoke(t, k) }
	h.during.Store(&during)
	validate.SetMemoryBudget(b.v, 64<<20)
	if err := validate.Rebuild(b.v, context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := validate.Mode(b.v); m != "memory" {
		t.Fatalf("mode %q after the load, want memory", m)
	}
	if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Revoked {
		t.Fatalf("right after: %v, want REVOKED", r.Code)
	}
	b.clock.Advance(31 * time.Second) // the negative entry expires
	r, err := b.v.Validate(context.Background(), g.Secret)
	if err == nil && r.Code == outcome.Valid {
		t.Fatalf("a key revoked here during the load is VALID from %v once its negative entry expired", r.Path)
	}
}

// TestMemoryModeSecondReplicaLoadsTheRecordsFromTheSnapshot: in memory
// mode the replica that reads the table writes the records with the
// filter; a second replica loads them instead of reading the table,
// answers keys it never saw from memory with no lookup, and answers right
// the keys changed after the snapshot was written (revoked: REVOKED;
// created: VALID). Records that do not check out are not used: the table
// is read.
func TestMemoryModeSecondReplicaLoadsTheRecordsFromTheSnapshot(t *testing.T) {
	t.Parallel()
	u, pool := testdb.New(t)
	seeder := setupOn(t, u, true)
	var before []keys.Generated
	var beforeKeys []apikey.Key
	for range 300 {
		g, k := seeder.create(t, nil)
		before, beforeKeys = append(before, g), append(beforeKeys, k)
	}
	a := setupOn(t, u, true, memoryOn)
	if validate.Mode(a.v) != "memory" || validate.FilterLoads(a.v, "full") != 1 || validate.FilterLoads(a.v, "written") != 1 {
		t.Fatalf("first replica in memory mode: mode %s, %v full reads, %v snapshots written; want memory, 1, 1",
			validate.Mode(a.v), validate.FilterLoads(a.v, "full"), validate.FilterLoads(a.v, "written"))
	}
	// Changed after the snapshot was written.
	revoked := before[0]
	a.revoke(t, beforeKeys[0])
	created, _ := a.create(t, nil)

	b := setupOn(t, u, true, memoryOn)
	if n := validate.FilterLoads(b.v, "full"); n != 0 {
		t.Fatalf("second replica read the table %v times, want 0 (the records are in the snapshot)", n)
	}
	if n := validate.FilterLoads(b.v, "snapshot"); n != 1 || validate.Mode(b.v) != "memory" {
		t.Fatalf("second replica: %v snapshot loads, mode %s; want 1, memory", n, validate.Mode(b.v))
	}
	if r := mustValidate(t, b.v, revoked.Secret); r.Code != outcome.Revoked {
		t.Fatalf("key revoked after the snapshot: %v from %v, want REVOKED", r.Code, r.Path)
	}
	// The load prefetches it; a prefetch is best effort (under CI's load
	// its lookup can pass the 250 ms deadline and is not retried), and a
	// Validate that finds no record looks the key up: the answer is the
	// promise, not the path.
	if r := mustValidate(t, b.v, created.Secret); r.Code != outcome.Valid {
		t.Fatalf("key created after the snapshot: %v from %v, want VALID", r.Code, r.Path)
	}
	// Nothing left in flight (the prefetch, or the lookup above) before
	// counting the lookups the snapshot's keys make.
	waitFor(t, 10*time.Second, func() bool {
		return validate.InMemory(b.v, created.Hash) && validate.StatementsRunning(b.v) == 0
	})
	start := b.tr.lookups.Load()
	for _, g := range before[1:] {
		r := mustValidate(t, b.v, g.Secret)
		if r.Code != outcome.Valid || r.Path != validate.PathMemory {
			t.Fatalf("first Validate of a key loaded from the snapshot's records: %v from %v, want VALID from memory", r.Code, r.Path)
		}
	}
	if n := b.tr.lookups.Load() - start; n != 0 {
		t.Fatalf("299 first-seen keys made %d lookups, want 0", n)
	}
	if r := mustValidate(t, b.v, b.unknownKey(t)); r.Code != outcome.NotFound {
		t.Fatalf("unknown key: %v", r.Code)
	}

	// A running replica that loads a newer snapshot: a key revoked after
	// that snapshot was written (which this replica already applied to
	// the records it held) stays revoked in the records it swaps in.
	if err := validate.Rebuild(a.v, context.Background()); err != nil { // a writes a newer snapshot
		t.Fatal(err)
	}
	later := before[1]
	a.revoke(t, beforeKeys[1])
	waitFor(t, 10*time.Second, func() bool { // b applied it to the records it holds (not asked: no cached answer)
		k, ok := validate.MemoryRecord(b.v, later.Hash)
		return !ok || k.RevokedAt != nil
	})
	if err := validate.Rebuild(b.v, context.Background()); err != nil {
		t.Fatal(err)
	}
	// The record itself, not only the answer (a cached REVOKED answer
	// would hide an active record until it expired).
	if k, ok := validate.MemoryRecord(b.v, later.Hash); ok && k.RevokedAt == nil {
		t.Fatal("after loading the newer snapshot, memory holds the revoked key's record as active")
	}
	if n := validate.FilterLoads(b.v, "snapshot"); n != 2 {
		t.Fatalf("second replica's rebuild: %v snapshot loads, want 2", n)
	}
	for range 20 {
		if r := mustValidate(t, b.v, later.Secret); r.Code != outcome.Revoked {
			t.Fatalf("key revoked after the newer snapshot was written: %v from %v after loading it, want REVOKED", r.Code, r.Path)
		}
	}

	// One byte of the records changed: their checksum fails, the third
	// replica reads the table and is in memory mode all the same.
	if _, err := pool.Exec(context.Background(), `UPDATE filter_snapshot_chunks SET data = set_byte(data, 100, get_byte(data, 100) # 1)
		WHERE part = 1 AND seq = 0 AND snapshot_id = (SELECT max(id) FROM filter_snapshots)`); err != nil {
		t.Fatal(err)
	}
	c := setupOn(t, u, true, memoryOn)
	if validate.FilterLoads(c.v, "full") != 1 || validate.FilterLoads(c.v, "corrupt") != 1 || validate.Mode(c.v) != "memory" {
		t.Fatalf("third replica with broken records: %v full reads, %v ignored as corrupt, mode %s; want 1, 1, memory",
			validate.FilterLoads(c.v, "full"), validate.FilterLoads(c.v, "corrupt"), validate.Mode(c.v))
	}
	if r := mustValidate(t, c.v, before[2].Secret); r.Code != outcome.Valid {
		t.Fatalf("third replica: %v", r.Code)
	}
}
