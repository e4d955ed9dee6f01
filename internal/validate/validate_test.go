package validate_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
	"github.com/keyservice/keyservice/internal/validate"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// counting wraps the real store and counts lookups that reach it.
type counting struct {
	validate.Lookup
	n atomic.Int64
}

func (c *counting) KeyByHash(ctx context.Context, h keys.Hash) (store.Key, error) {
	c.n.Add(1)
	return c.Lookup.KeyByHash(ctx, h)
}

type bundle struct {
	v      *validate.Validator
	store  *store.Store
	lookup *counting
	format keys.Format
	now    *time.Time
}

func setup(t *testing.T) bundle {
	t.Helper()
	_, pool := testdb.New(t)
	f, err := keys.NewFormat("ks")
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(pool, time.Second)
	c := &counting{Lookup: st}
	now := time.Now()
	b := bundle{store: st, lookup: c, format: f, now: &now}
	b.v = validate.New(validate.Config{Format: f, Lookup: c, Now: func() time.Time { return *b.now }})
	return b
}

func (b bundle) create(t *testing.T, exp *time.Time) (keys.Generated, store.Key) {
	t.Helper()
	g, err := b.format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := b.store.CreateKey(context.Background(), store.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "n", Owner: "o", ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	return g, k
}

func TestOutcomes(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	exp := b.now.Add(time.Hour)
	valid, _ := b.create(t, &exp)
	revoked, rk := b.create(t, nil)
	if _, err := b.store.RevokeKey(ctx, rk.ID); err != nil {
		t.Fatal(err)
	}
	unknown, _ := b.format.Generate()

	tests := []struct {
		name    string
		key     string
		want    validate.Code
		lookups int64
		hasKey  bool
	}{
		{"valid", valid.Secret, validate.Valid, 1, true},
		{"revoked", revoked.Secret, validate.Revoked, 1, true},
		{"unknown", unknown.Secret, validate.NotFound, 1, false},
		{"garbage", "hello", validate.Malformed, 0, false},
		{"wrong checksum", valid.Secret[:len(valid.Secret)-1] + "x", validate.Malformed, 0, false},
		{"other prefix", "xx" + valid.Secret[2:], validate.Malformed, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := b.lookup.n.Load()
			res, err := b.v.Validate(ctx, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if res.Code != tt.want || (res.Key != nil) != tt.hasKey {
				t.Fatalf("got %v (key %v), want %v", res.Code, res.Key != nil, tt.want)
			}
			if got := b.lookup.n.Load() - before; got != tt.lookups {
				t.Fatalf("%d lookups, want %d", got, tt.lookups)
			}
		})
	}

	// The injected clock passes the expiry: the same key is now EXPIRED.
	*b.now = exp
	res, err := b.v.Validate(ctx, valid.Secret)
	if err != nil || res.Code != validate.Expired {
		t.Fatalf("after expiry: %v, %v", res.Code, err)
	}
}

func TestUnavailableFailsClosed(t *testing.T) {
	ctx := context.Background()
	pool, err := store.OpenPool(ctx, store.PoolConfig{URL: "postgres://postgres@127.0.0.1:1/x?sslmode=disable", ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	f, _ := keys.NewFormat("ks")
	v := validate.New(validate.Config{Format: f, Lookup: store.New(pool, time.Second)})
	g, _ := f.Generate()
	res, err := v.Validate(ctx, g.Secret)
	if !errors.Is(err, validate.ErrUnavailable) || res.Code == validate.Valid {
		t.Fatalf("got %v, %v; want ErrUnavailable", res.Code, err)
	}
	// A malformed key needs no database and is still answered.
	if res, err := v.Validate(ctx, "nope"); err != nil || res.Code != validate.Malformed {
		t.Fatalf("malformed with database down: %v, %v", res.Code, err)
	}
}

func TestJudgeRevokedWinsOverExpired(t *testing.T) {
	now := time.Now()
	past := now.Add(-time.Second)
	if c := validate.Judge(&store.Key{RevokedAt: &past, ExpiresAt: &past}, now); c != validate.Revoked {
		t.Fatalf("got %v", c)
	}
	if c := validate.Judge(&store.Key{ExpiresAt: &now}, now); c != validate.Expired {
		t.Fatalf("expiry instant: got %v", c)
	}
}
