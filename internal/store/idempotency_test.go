package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/apikey"
)

// request returns a context whose CreateKey is idempotent under id, with
// the answer "<method>:<key id>".
func request(actor string, id uuid.UUID, body string) context.Context {
	ctx := apikey.WithAudit(context.Background(), apikey.Audit{Actor: actor})
	return apikey.WithRequest(ctx, &apikey.Request{
		ID: id, Method: "CreateKey", BodyHash: []byte(body), Window: time.Hour,
		Answer: func(recs ...apikey.Key) ([]byte, error) { return []byte("CreateKey:" + recs[0].ID.String()), nil },
	})
}

func (b bundle) count(t *testing.T, sql string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (b bundle) exec(t *testing.T, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

func (b bundle) newKey(t *testing.T) apikey.NewKey {
	t.Helper()
	g, err := b.fmt.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return apikey.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "idem", Owner: "acme"}
}

// TestRequestIsAppliedOnceAndReplayed: a write retried with the same
// request id and body writes nothing more and gets the recorded answer; the
// same id with another body is ErrRequestReused; another actor's id is its
// own.
func TestRequestIsAppliedOnceAndReplayed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := uuid.New()
	k, err := b.store.CreateKey(request("alice", id, "body"), b.newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.store.CreateKey(request("alice", id, "body"), b.newKey(t))
	var r *apikey.Replayed
	if !errors.As(err, &r) || string(r.Answer) != "CreateKey:"+k.ID.String() {
		t.Fatalf("retry: %v; want the recorded answer CreateKey:%s", err, k.ID)
	}
	if _, err := b.store.CreateKey(request("alice", id, "another body"), b.newKey(t)); !errors.Is(err, apikey.ErrRequestReused) {
		t.Fatalf("same id, another body: %v; want ErrRequestReused", err)
	}
	if n := b.count(t, "SELECT count(*) FROM api_keys"); n != 1 {
		t.Fatalf("%d keys after a retry and a reuse; want 1", n)
	}
	if n := b.count(t, "SELECT count(*) FROM audit_events"); n != 1 {
		t.Fatalf("%d audit events; want 1", n)
	}
	if _, err := b.store.CreateKey(request("bob", id, "body"), b.newKey(t)); err != nil {
		t.Fatalf("another actor with the same id: %v; want a write of its own", err)
	}
}

// TestConcurrentRetriesApplyOnce: calls with one request id at the same
// time write once; the others wait for that write and answer from it.
func TestConcurrentRetriesApplyOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := uuid.New()
	const n = 8
	var wg sync.WaitGroup
	answers := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		nk := b.newKey(t)
		wg.Go(func() {
			<-start
			k, err := b.store.CreateKey(request("alice", id, "body"), nk)
			var r *apikey.Replayed
			switch {
			case err == nil:
				answers[i] = "CreateKey:" + k.ID.String()
			case errors.As(err, &r):
				answers[i] = string(r.Answer)
			default:
				errs[i] = err
			}
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || answers[i] != answers[0] {
			t.Fatalf("call %d: %q, %v; want %q like call 0", i, answers[i], errs[i], answers[0])
		}
	}
	if c := b.count(t, "SELECT count(*) FROM api_keys"); c != 1 {
		t.Fatalf("%d keys from %d concurrent calls with one request id; want 1", c, n)
	}
}

// TestExpiredRequestIsNotHonoured: past its window a record is neither
// replayed nor held against another body, and the cleanup deletes it.
func TestExpiredRequestIsNotHonoured(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := uuid.New()
	if _, err := b.store.CreateKey(request("alice", id, "body"), b.newKey(t)); err != nil {
		t.Fatal(err)
	}
	b.exec(t, "UPDATE idempotency_records SET expires_at = now() - interval '1 second'")
	if n, err := b.store.DeleteExpiredRequests(context.Background()); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredRequests: %d, %v; want 1", n, err)
	}
	if _, err := b.store.CreateKey(request("alice", id, "body"), b.newKey(t)); err != nil {
		t.Fatalf("after the window: %v; want a new write", err)
	}
	// Expired but not yet deleted: replaced by the next write with the id.
	b.exec(t, "UPDATE idempotency_records SET expires_at = now() - interval '1 second'")
	if _, err := b.store.CreateKey(request("alice", id, "another body"), b.newKey(t)); err != nil {
		t.Fatalf("after the window, another body: %v; want a new write", err)
	}
	if c := b.count(t, "SELECT count(*) FROM api_keys"); c != 3 {
		t.Fatalf("%d keys; want 3 (no expired record honoured)", c)
	}
	if c := b.count(t, "SELECT count(*) FROM idempotency_records"); c != 1 {
		t.Fatalf("%d records; want 1 (the live one)", c)
	}
}
