package store_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

type bundle struct {
	url   string
	store *store.Store
	fmt   keys.Format
}

func setup(t *testing.T) bundle {
	t.Helper()
	u, pool := testdb.New(t)
	f, err := keys.NewFormat("ks")
	if err != nil {
		t.Fatal(err)
	}
	return bundle{url: u, store: store.New(pool, time.Second), fmt: f}
}

func (b bundle) create(t *testing.T, owner string) (keys.Generated, apikey.Key) {
	t.Helper()
	g, err := b.fmt.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := b.store.CreateKey(context.Background(), apikey.NewKey{
		Hash: g.Hash, Hint: g.Hint, Name: "n", Owner: owner,
		Scopes: []string{"read"}, Metadata: map[string]string{"env": "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return g, k
}

func TestCreateGetAndLookupByHash(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	g, err := b.fmt.Generate()
	if err != nil {
		t.Fatal(err)
	}
	created, err := b.store.CreateKey(ctx, apikey.NewKey{
		Hash: g.Hash, Hint: g.Hint, Name: "ci", Owner: "acme",
		Scopes: []string{"read", "write"}, Metadata: map[string]string{"team": "core"}, ExpiresAt: &exp,
	})
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == uuid.Nil || created.CreatedAt.IsZero() || created.RevokedAt != nil {
		t.Fatalf("bad record %+v", created)
	}
	got, err := b.store.GetKey(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	byHash, err := b.store.KeyByHash(ctx, g.Hash)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []apikey.Key{got, byHash} {
		if k.ID != created.ID || k.Hash != g.Hash || k.Name != "ci" || k.Owner != "acme" ||
			fmt.Sprint(k.Scopes) != "[read write]" || k.Metadata["team"] != "core" ||
			k.ExpiresAt == nil || !k.ExpiresAt.Equal(exp) || k.Hint != g.Hint {
			t.Fatalf("round trip lost data: %+v", k)
		}
	}
}

func TestStoresOnlyTheHash(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g, _ := b.create(t, "acme")
	conn, err := pgx.Connect(context.Background(), b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	// Search every text column of the row for the secret or its body.
	err = conn.QueryRow(context.Background(),
		`SELECT count(*) FROM api_keys k WHERE strpos(k::text, $1) > 0 OR strpos(k::text, $2) > 0`,
		g.Secret, g.Secret[3:20]).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("the plaintext key is stored")
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if _, err := b.store.GetKey(ctx, uuid.New()); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("GetKey = %v, want ErrNotFound", err)
	}
	if _, err := b.store.KeyByHash(ctx, keys.HashOf("nope")); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("KeyByHash = %v, want ErrNotFound", err)
	}
	if _, err := b.store.RevokeKey(ctx, uuid.New()); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("RevokeKey = %v, want ErrNotFound", err)
	}
}

func TestRevokeIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, k := b.create(t, "acme")
	first, err := b.store.RevokeKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if first.RevokedAt == nil {
		t.Fatal("revoked_at not set")
	}
	second, err := b.store.RevokeKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if second.RevokedAt == nil || !second.RevokedAt.Equal(*first.RevokedAt) {
		t.Fatalf("second revoke changed revoked_at: %v then %v", first.RevokedAt, second.RevokedAt)
	}
}

func TestListPagesByOwner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	want := map[uuid.UUID]bool{}
	for i := 0; i < 7; i++ {
		_, k := b.create(t, "acme")
		want[k.ID] = true
		b.create(t, "other")
	}
	var cur apikey.Cursor
	seen := map[uuid.UUID]bool{}
	pages := 0
	for {
		page, next, err := b.store.ListKeys(ctx, apikey.ListParams{Owner: "acme", After: cur, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, k := range page {
			if k.Owner != "acme" || seen[k.ID] {
				t.Fatalf("unexpected key in page: owner %q, repeated %v", k.Owner, seen[k.ID])
			}
			seen[k.ID] = true
		}
		if next.IsZero() {
			break
		}
		// The token round-trips through its opaque form.
		codec := apikey.NewCursorCodec([]byte("test secret"))
		scope := apikey.Page{List: apikey.ListKeys, Filters: []string{"acme"}}
		if cur, err = codec.Decode(scope, codec.Encode(scope, next)); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != len(want) || pages != 3 {
		t.Fatalf("listed %d keys in %d pages, want 7 in 3", len(seen), pages)
	}
	all, next, err := b.store.ListKeys(ctx, apikey.ListParams{Limit: 100})
	if err != nil || len(all) != 14 || !next.IsZero() {
		t.Fatalf("all owners: %d keys, next %v, err %v", len(all), next, err)
	}
}

// TestListNewestFirst: newest first walks the same keys backwards, page by
// page, with the same filters.
func TestListNewestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for i := 0; i < 7; i++ {
		b.create(t, "acme")
		b.create(t, "other")
	}
	oldest, _, err := b.store.ListKeys(ctx, apikey.ListParams{Owner: "acme", Limit: 100})
	if err != nil || len(oldest) != 7 {
		t.Fatalf("oldest first: %d keys, %v", len(oldest), err)
	}
	var newest []apikey.Key
	var cur apikey.Cursor
	pages := 0
	for {
		page, next, err := b.store.ListKeys(ctx, apikey.ListParams{Owner: "acme", After: cur, Limit: 3, NewestFirst: true})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		newest = append(newest, page...)
		if next.IsZero() {
			break
		}
		cur = next
	}
	if len(newest) != 7 || pages != 3 {
		t.Fatalf("newest first: %d keys in %d pages, want 7 in 3", len(newest), pages)
	}
	for i := range newest {
		if newest[i].ID != oldest[len(oldest)-1-i].ID || newest[i].Owner != "acme" {
			t.Fatalf("newest first, key %d: %v (%s), want %v", i, newest[i].ID, newest[i].Owner, oldest[len(oldest)-1-i].ID)
		}
	}

	// An import gives all its keys one created_at: pages break ties by id.
	in := make([]store.ImportedKey, 5)
	for i := range in {
		in[i].Hash = keys.HashOf(fmt.Sprintf("tied-%d", i))
		in[i].Owner = "tied"
	}
	if _, err := b.store.ImportKeys(ctx, in); err != nil {
		t.Fatal(err)
	}
	walk := func(newestFirst bool) []uuid.UUID {
		var ids []uuid.UUID
		var cur apikey.Cursor
		for {
			page, next, err := b.store.ListKeys(ctx, apikey.ListParams{Owner: "tied", After: cur, Limit: 2, NewestFirst: newestFirst})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range page {
				ids = append(ids, k.ID)
			}
			if next.IsZero() {
				return ids
			}
			cur = next
		}
	}
	up, down := walk(false), walk(true)
	if len(up) != 5 || len(down) != 5 {
		t.Fatalf("tied keys: %d oldest first, %d newest first, want 5", len(up), len(down))
	}
	for i := range down {
		if down[i] != up[4-i] {
			t.Fatalf("tied keys newest first: %v, want the reverse of %v", down, up)
		}
	}
}

func TestDecodeCursorRejectsGarbageAndForgeries(t *testing.T) {
	codec := apikey.NewCursorCodec([]byte("secret one"))
	page := apikey.Page{List: apikey.ListKeys, Filters: []string{"acme"}}
	real := codec.Encode(page, apikey.Cursor{CreatedAt: time.Now().UTC().Truncate(time.Microsecond), ID: uuid.New()})
	if _, err := codec.Decode(page, real); err != nil {
		t.Fatalf("a token this codec made: %v", err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(real)
	tampered := append([]byte(nil), raw...)
	tampered[11] ^= 0x40 // another time, far out of range
	relisted := append([]byte(nil), raw...)
	relisted[1] = byte(apikey.ListAuditEvents) // another list, without signing it again
	other := apikey.NewCursorCodec([]byte("secret two")).Encode(page, apikey.Cursor{CreatedAt: time.Now(), ID: uuid.New()})
	for name, tok := range map[string]string{
		"not base64": "!!!!", "short": "AAAA", "garbage": "x",
		"tampered time":          base64.RawURLEncoding.EncodeToString(tampered),
		"tampered list":          base64.RawURLEncoding.EncodeToString(relisted),
		"truncated":              real[:len(real)-2],
		"made with another key":  other,
		"unsigned (old version)": base64.RawURLEncoding.EncodeToString(append([]byte{1}, raw[1:25]...)),
	} {
		if _, err := codec.Decode(page, tok); !errors.Is(err, apikey.ErrBadCursor) {
			t.Errorf("%s: Decode(%q) = %v, want ErrBadCursor", name, tok, err)
		}
	}
	// A token works for its own list and filters only.
	for name, c := range map[string]struct {
		page apikey.Page
		want error
	}{
		"another list":              {apikey.Page{List: apikey.ListAuditEvents, Filters: []string{"acme"}}, apikey.ErrCursorOtherList},
		"another owner":             {apikey.Page{List: apikey.ListKeys, Filters: []string{"other"}}, apikey.ErrCursorOtherFilters},
		"no owner":                  {apikey.Page{List: apikey.ListKeys, Filters: []string{""}}, apikey.ErrCursorOtherFilters},
		"filters split another way": {apikey.Page{List: apikey.ListKeys, Filters: []string{"ac", "me"}}, apikey.ErrCursorOtherFilters},
	} {
		if _, err := codec.Decode(c.page, real); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestWritesNotifyAtCommit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := pgx.Connect(ctx, b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	if _, err := l.Exec(ctx, "LISTEN "+store.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	g, k := b.create(t, "acme")
	revoked, err := b.store.RevokeKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []apikey.Event{{Kind: apikey.EventCreated, Hash: g.Hash}, {Kind: apikey.EventRevoked, Hash: g.Hash, At: *revoked.RevokedAt}} {
		n, err := l.WaitForNotification(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := apikey.ParseEvent(n.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != want.Kind || got.Hash != want.Hash || !got.At.Equal(want.At) {
			t.Fatalf("event %+v, want %+v", got, want)
		}
	}
}

func TestUnavailableWhenDatabaseUnreachable(t *testing.T) {
	ctx := context.Background()
	pool, err := store.OpenPool(ctx, store.PoolConfig{URL: "postgres://postgres@127.0.0.1:1/x?sslmode=disable", ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := store.New(pool, time.Second)
	if _, err := s.KeyByHash(ctx, keys.HashOf("x")); !errors.Is(err, apikey.ErrUnavailable) {
		t.Fatalf("KeyByHash = %v, want ErrUnavailable", err)
	}
}

func TestActiveHashesPagesSkipRevokedAndExpired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	want := map[keys.Hash]bool{}
	for i := 0; i < 5; i++ {
		g, _ := b.create(t, "acme")
		want[g.Hash] = true
	}
	_, revoked := b.create(t, "acme")
	if _, err := b.store.RevokeKey(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	g, err := b.fmt.Generate()
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	if _, err := b.store.CreateKey(ctx, apikey.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "old", Owner: "o", ExpiresAt: &past}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.store.CountActiveKeys(ctx, time.Now().Add(time.Minute)); err != nil || n != 5 {
		t.Fatalf("CountActiveKeys = %d, %v; want 5", n, err)
	}
	scan := func(endedFor time.Duration) (map[keys.Hash]bool, apikey.ScanInfo) {
		got := map[keys.Hash]bool{}
		var info apikey.ScanInfo
		n, err := b.store.ScanActiveHashes(ctx, endedFor, func(i apikey.ScanInfo) error { info = i; return nil }, func(h keys.Hash) { got[h] = true })
		if err != nil || n != int64(len(got)) {
			t.Fatalf("ScanActiveHashes: %d, %v (%d distinct)", n, err, len(got))
		}
		return got, info
	}
	got, info := scan(-time.Minute) // ended after a minute from now: active only
	if len(got) != 5 {
		t.Fatalf("streamed %d active keys, want 5", len(got))
	}
	if info.Estimate < 5 || time.Since(info.Watermark) > time.Minute {
		t.Fatalf("scan info %+v", info)
	}
	// Keys that ended within the window are included too.
	if n, err := b.store.CountActiveKeys(ctx, time.Now().Add(-24*time.Hour)); err != nil || n != 7 {
		t.Fatalf("CountActiveKeys with ended keys = %d, %v; want 7", n, err)
	}
	if all, _ := scan(24 * time.Hour); len(all) != 7 {
		t.Fatalf("streamed %d keys with ended ones, want 7", len(all))
	}
	for h := range want {
		if !got[h] {
			t.Fatal("an active key was not streamed")
		}
	}
}

func TestChangedSinceUsesTheDatabaseClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, old := b.create(t, "acme")
	mark, err := b.store.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := b.create(t, "acme")
	if _, err := b.store.RevokeKey(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	changes, err := b.store.ChangedSince(ctx, mark)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[keys.Hash]apikey.KeyChange{}
	for _, c := range changes {
		seen[c.Hash] = c
	}
	if c, ok := seen[fresh.Hash]; !ok || c.RevokedAt != nil {
		t.Fatalf("new key missing or revoked: %+v", c)
	}
	if c, ok := seen[old.Hash]; !ok || c.RevokedAt == nil {
		t.Fatalf("revocation of an old key missing: %+v", c)
	}
	if len(changes) != 2 {
		t.Fatalf("%d changes, want 2", len(changes))
	}
}

// The incremental sync reads a bulk change in pages of at most the page
// size, resuming after the last row of each page, even when every row has
// the same time (one import transaction, one bulk revocation).
func TestChangesSinceReadsPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	mark, err := b.store.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n, page = 2500, 100
	in := make([]store.ImportedKey, n)
	for i := range in {
		in[i].Hash = keys.HashOf(fmt.Sprintf("imported-%d", i))
		in[i].Name = "imported"
	}
	if _, err := b.store.ImportKeys(ctx, in); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE api_keys SET revoked_at = now()"); err != nil { // one revoked_at for all
		t.Fatal(err)
	}
	seen := map[keys.Hash]int{}
	pages, biggest := 0, 0
	read, err := b.store.ChangesSince(ctx, mark, page, func(p []apikey.KeyChange) error {
		pages++
		biggest = max(biggest, len(p))
		for _, c := range p {
			if c.RevokedAt == nil {
				t.Errorf("a change without its revocation")
			}
			seen[c.Hash]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each key comes from the created walk and from the revoked walk.
	if read != 2*n || len(seen) != n || biggest != page {
		t.Fatalf("read %d rows in %d pages (biggest %d) naming %d keys; want %d rows, pages of %d, %d keys", read, pages, biggest, len(seen), 2*n, page, n)
	}
	for h, times := range seen {
		if times != 2 {
			t.Fatalf("key %x seen %d times, want 2", h[:4], times)
		}
	}
	if _, err := b.store.ChangesSince(ctx, mark, 0, func([]apikey.KeyChange) error { return nil }); err == nil {
		t.Fatal("page size 0 accepted")
	}
}

func TestTouchLastUsedKeepsTheLatest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, k := b.create(t, "acme")
	t1 := time.Now().UTC().Truncate(time.Microsecond)
	t0 := t1.Add(-time.Minute)
	if err := b.store.TouchLastUsed(ctx, []uuid.UUID{k.ID}, []time.Time{t1}); err != nil {
		t.Fatal(err)
	}
	if err := b.store.TouchLastUsed(ctx, []uuid.UUID{k.ID}, []time.Time{t0}); err != nil {
		t.Fatal(err)
	}
	got, err := b.store.GetKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(t1) {
		t.Fatalf("last_used_at = %v, want %v", got.LastUsedAt, t1)
	}
}

func TestListenConnIsOutsideThePool(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	conn, err := b.store.ListenConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var app string
	if err := conn.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&app); err != nil {
		t.Fatal(err)
	}
	if app != store.ListenApplicationName {
		t.Fatalf("application_name %q", app)
	}
	if n := b.store.Pool().Stat().AcquiredConns(); n != 0 {
		t.Fatalf("listen connection holds %d pooled connections", n)
	}
}
