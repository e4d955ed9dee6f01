package store_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/pgfault"
	"github.com/keyservice/keyservice/internal/store"
)

// TestAdminWritesWaitForTheServerFewTimes: an admin write waits for the
// server once for BEGIN, once per statement whose answer it reads, and
// once for its audit events, NOTIFY, request answer and COMMIT together.
// Every wait is a chance for a busy CPU to delay the write (issue 19,
// item 15), so the count is part of the contract.
func TestAdminWritesWaitForTheServerFewTimes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pu, err := url.Parse(b.url)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pgfault.Start(pu.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	pu.Host = p.Addr()
	cfg, err := pgxpool.ParseConfig(pu.String())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns, cfg.MinConns = 1, 1 // one connection: its statements are prepared once
	ctx := apikey.WithAudit(context.Background(), apikey.Audit{Actor: "alice"})
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := store.New(pool, 5*time.Second)
	newKey := func() apikey.NewKey {
		g, err := b.fmt.Generate()
		if err != nil {
			t.Fatal(err)
		}
		return apikey.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "n", Owner: "o"}
	}
	withRequest := func() context.Context {
		return apikey.WithRequest(ctx, &apikey.Request{
			ID: uuid.New(), Method: "CreateKey", BodyHash: []byte("b"), Window: time.Hour,
			Answer: func(recs ...apikey.Key) ([]byte, error) { return []byte(recs[0].ID.String()), nil },
		})
	}
	var k apikey.Key
	writes := []struct {
		name  string
		want  int64
		write func() error
	}{
		{"CreateKey", 3, func() (err error) { k, err = s.CreateKey(ctx, newKey()); return err }},
		{"CreateKey with request_id", 4, func() error { _, err := s.CreateKey(withRequest(), newKey()); return err }},
		{"UpdateKey", 4, func() error {
			_, _, err := s.UpdateKey(ctx, k.ID, apikey.Update{Fields: []string{apikey.FieldName}, Name: time.Now().String()})
			return err
		}},
		{"RotateKey", 6, // BEGIN, lock, clock, insert, mark, the batch
			func() (err error) {
				k, _, err = s.RotateKey(ctx, k.ID, apikey.Rotation{NewKey: newKey(), Grace: time.Hour})
				return err
			}},
		{"RevokeKey", 4, func() error { _, err := s.RevokeKey(ctx, k.ID); return err }},
	}
	for _, w := range writes {
		if err := w.write(); err != nil { // prepares the statements
			t.Fatalf("%s: %v", w.name, err)
		}
		if w.name == "RevokeKey" {
			if k, err = s.CreateKey(ctx, newKey()); err != nil {
				t.Fatal(err)
			}
		}
		before := p.RoundTrips()
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if got := p.RoundTrips() - before; got != w.want {
			t.Errorf("%s waited for the server %d times, want %d", w.name, got, w.want)
		}
	}
}
