package validate

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
)

// posStore is a store at a WAL position, answering from keys (a fake at
// the store seam: the router's rule is what is under test; the real
// servers are in internal/server's replica tests).
type posStore struct {
	Store   // unused methods panic
	name    string
	pos     atomic.Int64
	fail    atomic.Bool
	key     apikey.Key // the one key it holds, as it holds it
	lookups atomic.Int64
}

func (s *posStore) WALPosition(context.Context) (int64, error) {
	if s.fail.Load() {
		return 0, errors.New(s.name + " unreachable")
	}
	return s.pos.Load(), nil
}

func (s *posStore) KeysByHashes(ctx context.Context, hs []keys.Hash) ([]apikey.Key, error) {
	ks, _, err := s.KeysByHashesAt(ctx, hs)
	return ks, err
}

func (s *posStore) KeysByHashesAt(_ context.Context, hs []keys.Hash) ([]apikey.Key, int64, error) {
	s.lookups.Add(1)
	if s.fail.Load() {
		return nil, 0, errors.New(s.name + " unreachable")
	}
	for _, h := range hs {
		if h == s.key.Hash {
			return []apikey.Key{s.key}, s.pos.Load(), nil
		}
	}
	return nil, s.pos.Load(), nil
}

func (s *posStore) RecentlyUsed(ctx context.Context, after apikey.UseCursor, limit int) ([]apikey.Key, apikey.UseCursor, error) {
	page, next, _, err := s.RecentlyUsedAt(ctx, after, limit)
	return page, next, err
}

func (s *posStore) RecentlyUsedAt(context.Context, apikey.UseCursor, int) ([]apikey.Key, apikey.UseCursor, int64, error) {
	s.lookups.Add(1)
	return []apikey.Key{s.key}, apikey.UseCursor{}, s.pos.Load(), nil
}

func newTestRouter(t *testing.T) (r *readRouter, primary, replica *posStore, h keys.Hash) {
	t.Helper()
	h = keys.HashOf("the key")
	revoked := time.Now()
	primary = &posStore{name: "primary", key: apikey.Key{Hash: h, RevokedAt: &revoked}}
	replica = &posStore{name: "replica", key: apikey.Key{Hash: h}} // the row before its revocation
	m := &metrics{reads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"kind", "server"})}
	r, err := newReadRouter(primary, replica, m, func() bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	return r, primary, replica, h
}

// One read pool may reach several servers (a multi-host URL, a pooler): a
// replica answer is used only from a server that had replayed the
// position that retired the last generation, whatever another server of
// the pool said when the generation was retired.
func TestReplicaAnswerFromAServerBehindTheRetirementIsNotUsed(t *testing.T) {
	r, primary, replica, h := newTestRouter(t)
	ctx := context.Background()
	primary.pos.Store(1000)
	replica.pos.Store(1000)
	r.changed(h) // the revocation, learned by NOTIFY
	g := r.closeGen()
	at, err := r.caughtUp(ctx, time.Second) // one server of the pool has replayed it
	if err != nil {
		t.Fatal(err)
	}
	r.retire(g, at)
	replica.pos.Store(500) // the next read lands on a server still behind
	ks, err := r.KeysByHashes(ctx, []keys.Hash{h})
	if err != nil || len(ks) != 1 || ks[0].RevokedAt == nil {
		t.Fatalf("got %+v, %v: the replica's row from before the revocation was used", ks, err)
	}
	if replica.lookups.Load() != 1 || primary.lookups.Load() != 1 {
		t.Fatalf("lookups: replica %d, primary %d; want the replica asked, then the primary", replica.lookups.Load(), primary.lookups.Load())
	}
	// The warm start's page likewise.
	page, _, err := r.RecentlyUsed(ctx, apikey.UseCursor{}, 10)
	if err != nil || len(page) != 1 || page[0].RevokedAt == nil {
		t.Fatalf("warm page %+v, %v: the replica's row from before the revocation was used", page, err)
	}
	// A server caught up is used.
	replica.pos.Store(1000)
	primary.key = replica.key
	before := primary.lookups.Load()
	if _, err := r.KeysByHashes(ctx, []keys.Hash{h}); err != nil || primary.lookups.Load() != before {
		t.Fatalf("a caught-up replica was not used (%v)", err)
	}
}

// While the replica cannot be reached, every read goes to the primary, and
// the generations a lookup walks do not pile up with each failed check.
func TestFailingReplicaSendsReadsToThePrimaryWithoutGrowingGenerations(t *testing.T) {
	r, primary, replica, h := newTestRouter(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	replica.fail.Store(true)
	done := make(chan struct{})
	go func() { defer close(done); r.run(ctx) }()
	r.changed(h)
	deadline := time.Now().Add(10 * time.Second)
	for !r.down.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !r.down.Load() {
		t.Fatal("the failing replica was never marked down")
	}
	time.Sleep(500 * time.Millisecond) // several failed checks (backoff from 100 ms)
	r.mu.Lock()
	gens := len(r.gens)
	r.mu.Unlock()
	if gens > 2 {
		t.Fatalf("%d generations after failed checks, want at most 2", gens)
	}
	other := keys.HashOf("another key")
	before := replica.lookups.Load()
	if _, err := r.KeysByHashes(ctx, []keys.Hash{other}); err != nil {
		t.Fatal(err)
	}
	if replica.lookups.Load() != before || primary.lookups.Load() == 0 {
		t.Fatal("a lookup went to the replica marked down")
	}
	replica.fail.Store(false)
	for r.down.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.down.Load() {
		t.Fatal("the replica back was never used again")
	}
	cancel()
	<-done
}
