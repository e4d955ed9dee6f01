package usage_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
	"github.com/keyservice/keyservice/internal/usage"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func newStore(t testing.TB) *store.Store {
	t.Helper()
	_, pool := testdb.New(t)
	return store.New(pool, 5*time.Second)
}

func read(t *testing.T, st *store.Store, q apikey.UsageQuery) map[int16][2]int64 {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 100
	}
	series, err := st.ReadUsage(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int16][2]int64{}
	for _, s := range series {
		for _, b := range s.Buckets {
			v := out[b.Code]
			out[b.Code] = [2]int64{v[0] + b.Calls, v[1] + b.Credits}
		}
	}
	return out
}

// TestTwoReplicasAddUpInEveryGranularity: two recorders (two replicas)
// counting the same key in the same minute write rows that add up, and
// the hours and days equal the minutes.
func TestTwoReplicasAddUpInEveryGranularity(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	a, b := usage.New(usage.Config{Store: st}), usage.New(usage.Config{Store: st})
	for _, r := range []*usage.Recorder{a, b} {
		if err := r.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	k := &apikey.Key{ID: uuid.New(), KeyspaceID: apikey.DefaultKeyspaceID, Owner: "acme"}
	for i := 0; i < 7; i++ {
		a.Record(k, outcome.Valid, 2, now)
		b.Record(k, outcome.Valid, 3, now)
	}
	b.Record(k, outcome.UsageExceeded, 0, now)
	a.RecordReport(k, 40, now)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, g := range []apikey.Granularity{apikey.Minute, apikey.Hour, apikey.Day} {
		got := read(t, st, apikey.UsageQuery{From: now.Add(-48 * time.Hour), To: now.Add(time.Hour), Granularity: g, KeyID: k.ID})
		if got[int16(outcome.Valid)] != [2]int64{14, 35} || got[int16(outcome.UsageExceeded)] != [2]int64{1, 0} || got[0] != [2]int64{1, 40} {
			t.Errorf("by %s: %v; want VALID 14 calls 35 credits, USAGE_EXCEEDED 1, one report of 40", g, got)
		}
	}
}

// failing fails its first n writes.
type failing struct {
	*store.Store
	n atomic.Int64
}

func (f *failing) WriteUsage(ctx context.Context, rows []apikey.UsageRow) error {
	if f.n.Add(-1) >= 0 {
		return errors.New("database down")
	}
	return f.Store.WriteUsage(ctx, rows)
}

// TestFailedFlushIsRetriedOnce: counts of a failed flush are kept, merged
// with newer ones, and written once.
func TestFailedFlushIsRetriedOnce(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	f := &failing{Store: st}
	f.n.Store(1)
	r := usage.New(usage.Config{Store: f})
	ctx := context.Background()
	now := time.Now().UTC()
	k := &apikey.Key{ID: uuid.New(), KeyspaceID: apikey.DefaultKeyspaceID, Owner: "acme"}
	r.Record(k, outcome.Valid, 1, now)
	if err := r.Flush(ctx); err == nil {
		t.Fatal("the failing flush succeeded")
	}
	r.Record(k, outcome.Valid, 1, now)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := read(t, st, apikey.UsageQuery{From: now.Add(-time.Hour), To: now.Add(time.Hour), Granularity: apikey.Minute, KeyID: k.ID})
	if got[int16(outcome.Valid)] != [2]int64{2, 2} {
		t.Fatalf("after a failed flush and a retry: %v, want 2 calls and 2 credits", got)
	}
}

// TestRetentionDropsOldDays: a fake clock a month on drops the old
// minutes' partitions and keeps the days; grouped reads page by series.
func TestRetentionDropsOldDays(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	then := time.Now().UTC().Add(-40 * 24 * time.Hour)
	r := usage.New(usage.Config{Store: st, Now: func() time.Time { return then }})
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	owners := []string{"a", "b", "c"}
	for i, o := range owners {
		k := &apikey.Key{ID: uuid.New(), KeyspaceID: apikey.DefaultKeyspaceID, Owner: o}
		for j := 0; j <= i; j++ {
			r.Record(k, outcome.Valid, 0, then)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Paging by owner, one series a page.
	var seen []string
	for skip := 0; skip < 5; skip++ {
		s, err := st.ReadUsage(ctx, apikey.UsageQuery{From: then.Add(-48 * time.Hour), To: then.Add(48 * time.Hour), Granularity: apikey.Day, GroupBy: "owner", Skip: skip, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(s) == 0 {
			break
		}
		seen = append(seen, s[0].Owner)
	}
	if len(seen) != 3 || seen[0] != "a" || seen[2] != "c" {
		t.Fatalf("owners by page: %v", seen)
	}
	later := usage.New(usage.Config{Store: st, Now: time.Now})
	if err := later.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	q := apikey.UsageQuery{From: then.Add(-48 * time.Hour), To: then.Add(48 * time.Hour), Limit: 10}
	q.Granularity = apikey.Minute
	if got := read(t, st, q); len(got) != 0 {
		t.Errorf("minutes older than their retention are still there: %v", got)
	}
	q.Granularity = apikey.Day
	if got := read(t, st, q); got[int16(outcome.Valid)][0] != 6 {
		t.Errorf("days within their retention: %v, want 6 calls", got)
	}
}

// BenchmarkRecord: counting an answer of a key already counted this
// minute, from every core; BenchmarkBaseline is an atomic add, the least
// a shared counter costs, for the ratio.
func BenchmarkRecord(b *testing.B) {
	r := usage.New(usage.Config{Store: nil})
	keys := make([]*apikey.Key, 1024)
	for i := range keys {
		keys[i] = &apikey.Key{ID: uuid.New(), KeyspaceID: apikey.DefaultKeyspaceID, Owner: "acme"}
	}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 7919
		for pb.Next() {
			i++
			r.Record(keys[i%len(keys)], outcome.Valid, 1, now)
		}
	})
}

func BenchmarkBaseline(b *testing.B) {
	var n atomic.Int64
	var mu sync.Mutex
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n.Add(1)
			mu.Unlock()
		}
	})
}
