package store_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/store"
)

func TestNewKeysHaveTimeOrderedIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var prev string
	for i := 0; i < 5; i++ {
		_, k := b.create(t, "acme")
		if k.ID.Version() != 7 {
			t.Fatalf("key id %s is UUID version %d, want 7", k.ID, k.ID.Version())
		}
		if id := k.ID.String(); id <= prev {
			t.Fatalf("ids not increasing: %s after %s", id, prev)
		} else {
			prev = id
		}
	}
}

func TestSnapshotsRoundTripAndAreChecked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if _, ok, err := b.store.NewestSnapshot(ctx); ok || err != nil {
		t.Fatalf("no snapshot yet: ok %v, %v", ok, err)
	}
	wm := time.Now().UTC().Truncate(time.Microsecond)
	var ids []int64
	for i := 0; i < 3; i++ {
		id, err := b.store.WriteSnapshot(ctx, apikey.Snapshot{Watermark: wm, Keys: int64(i), Capacity: 100, FPRate: 0.001, Filter: []byte{1, 2, 3, byte(i)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	info, ok, err := b.store.NewestSnapshot(ctx)
	if err != nil || !ok || info.ID != ids[2] || !info.Watermark.Equal(wm) || info.Age < 0 || info.Age > time.Minute {
		t.Fatalf("newest %+v %v %v", info, ok, err)
	}
	sn, err := b.store.LoadSnapshot(ctx, ids[2], false)
	if err != nil || sn.Keys != 2 || !bytes.Equal(sn.Filter, []byte{1, 2, 3, 2}) || sn.FPRate != 0.001 || sn.Capacity != 100 {
		t.Fatalf("loaded %+v, %v", sn, err)
	}
	// Only the newest two are kept.
	if _, err := b.store.LoadSnapshot(ctx, ids[0], false); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("oldest snapshot: %v, want ErrNotFound", err)
	}
	conn, err := pgx.Connect(ctx, b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE filter_snapshots SET filter = '\\x00'"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.LoadSnapshot(ctx, ids[2], false); !errors.Is(err, apikey.ErrCorruptSnapshot) {
		t.Fatalf("altered snapshot: %v, want ErrCorruptSnapshot", err)
	}
}

func TestRebuildLockIsHeldByOneAtATime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	inner := true
	held, err := b.store.WithRebuildLock(ctx, func(ctx context.Context) error {
		inner, _ = b.store.WithRebuildLock(ctx, func(context.Context) error { return nil })
		return nil
	})
	if err != nil || !held {
		t.Fatalf("first: held %v, %v", held, err)
	}
	if inner {
		t.Fatal("a second holder got the lock while the first held it")
	}
	if held, err := b.store.WithRebuildLock(ctx, func(context.Context) error { return nil }); !held || err != nil {
		t.Fatalf("after release: held %v, %v", held, err)
	}
}

// The full read works whatever query mode DATABASE_URL picks: with the
// simple protocol, bytea arrives as text.
func TestScanReadsHashesInTextFormatToo(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	g, _ := b.create(t, "acme")
	u, err := url.Parse(b.url)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("default_query_exec_mode", "simple_protocol")
	u.RawQuery = q.Encode()
	pool, err := store.OpenPool(ctx, store.PoolConfig{URL: u.String(), MaxConns: 2, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var got []keys.Hash
	n, err := store.New(pool, time.Second).ScanActiveHashes(ctx, time.Hour, func(apikey.ScanInfo) error { return nil }, func(h keys.Hash) { got = append(got, h) })
	if err != nil || n != 1 || got[0] != g.Hash {
		t.Fatalf("scan with the simple protocol: %d keys, %v", n, err)
	}
}
