package validate

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
)

// TestRecordRoundTrip: every field of a key survives memory mode's
// encoding, set or unset, and a record with nothing optional is small.
func TestRecordRoundTrip(t *testing.T) {
	at := func(s string) *time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	full := apikey.Key{
		ID: uuid.New(), Hint: "ks_ab…yz", Name: "production", Owner: "acme",
		Scopes: []string{"read", "write"}, Metadata: map[string]string{"plan": "pro", "region": "eu"},
		ExpiresAt: at("9999-12-31T23:59:59.999999Z"), CreatedAt: *at("2026-12-03T07:00:00.123456Z"),
		RevokedAt: at("1969-07-20T20:17:40Z"), LastUsedAt: at("2026-12-03T08:00:00Z"),
		RateLimit: &apikey.RateLimit{Limit: 100, Period: time.Minute, Burst: 20}, Enabled: true,
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		RotatedFrom:  uuid.New(), RotatedTo: uuid.New(), UpdatedAt: at("2026-12-03T07:30:00.5Z"),
		BudgetID: uuid.New(), KeyspaceID: uuid.New(), Credits: true,
	}
	bare := apikey.Key{ID: uuid.New(), CreatedAt: *at("2026-12-03T07:00:00Z")}
	def := bare
	def.KeyspaceID = apikey.DefaultKeyspaceID
	for name, k := range map[string]apikey.Key{"every field": full, "nothing optional": bare, "default keyspace": def} {
		rec := encodeRecord(nil, &k)
		if n := recordLen(rec); n != len(rec) {
			t.Fatalf("%s: recordLen %d of %d bytes", name, n, len(rec))
		}
		got := decodeRecord(rec)
		if !reflect.DeepEqual(got, k) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, k)
		}
	}
	if n := len(encodeRecord(nil, &bare)); n > 32 {
		t.Errorf("a bare record takes %d bytes, want at most 32", n)
	}
}

// BenchmarkResidentMemory reports what memory mode takes per key, as the
// heap measures it (arenas, maps and their growth slack), for keys like
// keybench's (a hint, a 12-character name and owner, created and used
// times, the default keyspace) and what the table counts (bytes/key
// counted, what the budget is checked against).
func BenchmarkResidentMemory(b *testing.B) {
	const n = 1_000_000
	ks := uuid.MustParse("00000000-0000-0000-0000-000000000001")
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		t := newRecords()
		fillLikeKeybench(t, n, ks)
		t.trim()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/key")
		b.ReportMetric(float64(t.bytes.Load())/n, "counted-bytes/key")
		runtime.KeepAlive(t)
	}
}

// TestRecordsCompactKeepsOnlyLiveRecords: a key rewritten many times
// leaves dead records behind until the arena is compacted; after it,
// every key reads its newest record and the arena holds only live ones.
func TestRecordsCompactKeepsOnlyLiveRecords(t *testing.T) {
	tb := newRecords()
	var h1, h2 keys.Hash // one shard: the same first byte
	h2[1] = 1
	now := time.Unix(1_800_000_000, 0)
	for i := range 5000 {
		k := apikey.Key{ID: uuid.New(), CreatedAt: now, Name: fmt.Sprintf("name-%040d", i)}
		tb.putRaw(h1, encodeRecord(nil, &k))
	}
	tb.putRaw(h2, encodeRecord(nil, &apikey.Key{ID: uuid.New(), CreatedAt: now, Name: "other"}))
	if k, ok := tb.get(&h1); !ok || k.Name != fmt.Sprintf("name-%040d", 4999) {
		t.Fatalf("h1 reads %q, want the newest record", k.Name)
	}
	if k, ok := tb.get(&h2); !ok || k.Name != "other" {
		t.Fatalf("h2 reads %q", k.Name)
	}
	s := &tb.shards[0]
	live := recordLen(s.data[s.idx[h1]:]) + recordLen(s.data[s.idx[h2]:])
	if got := len(s.data) - s.dead; got != live {
		t.Fatalf("arena: %d bytes counted live, the two live records take %d", got, live)
	}
	if len(s.data) > 200<<10 {
		t.Fatalf("arena of %d bytes after 5000 rewrites of one key: never compacted", len(s.data))
	}
	if n := tb.keys.Load(); n != 2 {
		t.Fatalf("%d keys counted, want 2", n)
	}
}

// TestSnapshotRecordsRoundTrip: memory mode's records written for the
// fleet's snapshot load back to the same records, key for key; bytes that
// are not such records (another version, a flipped byte, cut short, one
// byte too many) are refused, never half-loaded.
func TestSnapshotRecordsRoundTrip(t *testing.T) {
	tb := newRecords()
	now := time.Unix(1_800_000_000, 0)
	want := map[keys.Hash]apikey.Key{}
	for i := range 3000 {
		var h keys.Hash
		binary.BigEndian.PutUint64(h[:], uint64(i)*0x9e3779b97f4a7c15)
		k := apikey.Key{ID: uuid.New(), CreatedAt: now, Name: fmt.Sprintf("key %d", i), Owner: "acme", Scopes: []string{"read"}}
		tb.putRaw(h, encodeRecord(nil, &k))
		want[h], _ = tb.get(&h) // as the writer's own table answers
	}
	raw := tb.marshal()
	got, err := unmarshalRecords(raw)
	if err != nil {
		t.Fatal(err)
	}
	if n := got.keys.Load(); n != int64(len(want)) {
		t.Fatalf("%d records loaded, want %d", n, len(want))
	}
	for h, k := range want {
		if g, ok := got.get(&h); !ok || !reflect.DeepEqual(g, k) {
			t.Fatalf("record %x: got %+v (%v), want %+v", h[:4], g, ok, k)
		}
	}
	bad := map[string][]byte{
		"another version": append([]byte("KSR\x02"), raw[4:]...),
		"a flipped byte":  append(append([]byte{}, raw[:len(raw)/2]...), append([]byte{raw[len(raw)/2] ^ 1}, raw[len(raw)/2+1:]...)...),
		"cut short":       raw[:len(raw)-1],
		"a byte too many": append(append([]byte{}, raw...), 0),
		"empty":           nil,
	}
	for name, b := range bad {
		if _, err := unmarshalRecords(b); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	// A checksum that matches does not make malformed records loadable.
	forged := append([]byte{}, raw[:recordsHeader]...)
	forged = binary.AppendUvarint(forged, 5) // five records promised, none follow
	sum := sha256.Sum256(forged[recordsHeader:])
	copy(forged[len(recordsMagic):], sum[:])
	if _, err := unmarshalRecords(forged); err == nil {
		t.Error("records promising more than they hold: loaded")
	}
}

// BenchmarkSnapshotRecords: the records of 1M keys like keybench's, as the
// fleet's snapshot carries them: encoded by the replica that read the
// table, decoded by every other (a replica's start from the snapshot).
func BenchmarkSnapshotRecords(b *testing.B) {
	const n = 1_000_000
	ks := uuid.MustParse("00000000-0000-0000-0000-000000000001")
	t := newRecordsSized(n)
	fillLikeKeybench(t, n, ks)
	enc := t.marshal()
	b.Run("marshal", func(b *testing.B) {
		for range b.N {
			enc = t.marshal()
		}
		b.ReportMetric(float64(len(enc))/n, "bytes/key")
	})
	b.Run("unmarshal", func(b *testing.B) {
		for range b.N {
			if _, err := unmarshalRecords(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fillLikeKeybench puts n records like keybench's keys into t.
func fillLikeKeybench(t *records, n int, ks uuid.UUID) {
	var buf []byte
	now := time.Now()
	for i := range n {
		var h keys.Hash
		binary.LittleEndian.PutUint64(h[:], uint64(i)*0x9E3779B97F4A7C15)
		binary.LittleEndian.PutUint64(h[8:], uint64(i))
		k := apikey.Key{ID: uuid.New(), Hash: h, Hint: "ks_…" + fmt.Sprintf("%04d", i%10000), Name: fmt.Sprintf("key-%08d", i),
			Owner: fmt.Sprintf("owner-%06d", i%100000), CreatedAt: now, LastUsedAt: &now, Enabled: true, KeyspaceID: ks}
		buf = encodeRecord(buf[:0], &k)
		t.putRaw(h, buf)
	}
}
