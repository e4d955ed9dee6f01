package store_test

import (
	"context"
	"crypto/rand"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
)

// BenchmarkScanActive: the full read of 200,000 keys, hashes only (filter
// mode) against whole records (memory mode), per key. Run with
// -benchtime 3x.
func BenchmarkScanActive(b *testing.B) {
	_, pool := testdb.New(b)
	const n = 200_000
	i := 0
	_, err := pool.CopyFrom(context.Background(), pgx.Identifier{"api_keys"}, []string{"id", "key_hash", "hint", "name", "owner", "created_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			i++
			hash := make([]byte, 32)
			_, _ = rand.Read(hash)
			var id [16]byte
			_, _ = rand.Read(id[:])
			return []any{id, hash, "ks_...seed", "seed-" + strconv.Itoa(i), "owner-" + strconv.Itoa(i%1000), time.Now()}, nil
		}))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), "VACUUM ANALYZE api_keys"); err != nil {
		b.Fatal(err)
	}
	st := store.New(pool, time.Second)
	start := func(apikey.ScanInfo) error { return nil }
	b.Run("hashes", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.ScanActiveHashes(context.Background(), time.Hour, start, func(keys.Hash) {}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
	})
	b.Run("records", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.ScanActiveKeys(context.Background(), time.Hour, start, func(*apikey.Key) {}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
	})
}
