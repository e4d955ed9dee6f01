package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
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
	if _, err := conn.Exec(ctx, "UPDATE filter_snapshot_chunks SET data = '\\x00'"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.LoadSnapshot(ctx, ids[2], false); !errors.Is(err, apikey.ErrCorruptSnapshot) {
		t.Fatalf("altered snapshot: %v, want ErrCorruptSnapshot", err)
	}
}

// A snapshot is written in chunks (past PostgreSQL's 1 GB field limit at
// the default 64 MiB; here 1,000 bytes) and read back whole, several
// chunks at a time; a chunk gone or cut short is a corrupt snapshot.
func TestSnapshotChunksRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.store.SetSnapshotChunk(1000)
	filter := make([]byte, 10_500) // 11 chunks, the last one short
	records := make([]byte, 3000)  // exactly 3
	for i := range filter {
		filter[i] = byte(i * 7)
	}
	for i := range records {
		records[i] = byte(i * 13)
	}
	id, err := b.store.WriteSnapshot(ctx, apikey.Snapshot{Watermark: time.Now(), Keys: 9, Capacity: 100, FPRate: 0.001, Filter: filter, Records: records})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var chunks, biggest int
	if err := conn.QueryRow(ctx, "SELECT count(*), max(octet_length(data)) FROM filter_snapshot_chunks WHERE snapshot_id = $1", id).Scan(&chunks, &biggest); err != nil {
		t.Fatal(err)
	}
	if chunks != 14 || biggest != 1000 {
		t.Fatalf("%d chunks, the biggest %d bytes; want 14 of at most 1000", chunks, biggest)
	}
	info, ok, err := b.store.NewestSnapshot(ctx)
	if err != nil || !ok || !info.HasRecords {
		t.Fatalf("newest %+v %v %v: want one with records", info, ok, err)
	}
	sn, err := b.store.LoadSnapshot(ctx, id, true)
	if err != nil || !bytes.Equal(sn.Filter, filter) || !bytes.Equal(sn.Records, records) {
		t.Fatalf("loaded back %d filter bytes, %d record bytes (%v); want what was written", len(sn.Filter), len(sn.Records), err)
	}
	if sn, err := b.store.LoadSnapshot(ctx, id, false); err != nil || sn.Records != nil || !bytes.Equal(sn.Filter, filter) {
		t.Fatalf("without records: %d record bytes, %v", len(sn.Records), err)
	}
	// A reader started with another chunk size reads it the same.
	b.store.SetSnapshotChunk(0)
	if sn, err := b.store.LoadSnapshot(ctx, id, true); err != nil || !bytes.Equal(sn.Records, records) {
		t.Fatalf("read with the default chunk size: %v", err)
	}
	b.store.SetSnapshotChunk(1000)
	// Deleted while it is read (a newer snapshot replaced it): not found,
	// not corrupt (a replica then looks for the newer one).
	gone, err := b.store.WriteSnapshot(ctx, apikey.Snapshot{Watermark: time.Now(), Keys: 9, Capacity: 100, FPRate: 0.001, Filter: filter})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM filter_snapshots WHERE id = $1", gone); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ReadFilterChunks(b.store, ctx, gone, int64(len(filter))); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("a snapshot deleted while read: %v, want ErrNotFound", err)
	}
	for name, stmt := range map[string]string{
		"a chunk missing":   "DELETE FROM filter_snapshot_chunks WHERE part = 0 AND seq = 7",
		"a chunk cut short": "UPDATE filter_snapshot_chunks SET data = substring(data from 1 for 10) WHERE part = 0 AND seq = 3",
	} {
		t.Run(name, func(t *testing.T) {
			id, err := b.store.WriteSnapshot(ctx, apikey.Snapshot{Watermark: time.Now(), Keys: 9, Capacity: 100, FPRate: 0.001, Filter: filter})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, strings.Replace(stmt, "WHERE", fmt.Sprintf("WHERE snapshot_id = %d AND", id), 1)); err != nil {
				t.Fatal(err)
			}
			if _, err := b.store.LoadSnapshot(ctx, id, false); !errors.Is(err, apikey.ErrCorruptSnapshot) {
				t.Fatalf("%v, want ErrCorruptSnapshot", err)
			}
		})
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
