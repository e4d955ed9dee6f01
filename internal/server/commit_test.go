package server_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/pgfault"
	"github.com/keyservice/keyservice/internal/testdb"
)

// cutEnv is a server whose database connections pass through a proxy that
// can lose the answer to a COMMIT.
type cutEnv struct {
	*env
	proxy *pgfault.Proxy
}

func startBehindCommitCut(t *testing.T, opts ...option) *cutEnv {
	t.Helper()
	u, _ := testdb.New(t)
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pgfault.Start(pu.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close) // after the server stops (cleanups run last first)
	pu.Host = p.Addr()
	e := startOn(t, pu.String(), opts...)
	e.waitReady(t)
	return &cutEnv{env: e, proxy: p}
}

// loseCommit arms the proxy for the next admin write (the transaction that
// records an audit event) and returns a check that its answer was lost.
func (c *cutEnv) loseCommit(t *testing.T) func() {
	t.Helper()
	cut := c.proxy.CutNextCommit("INSERT INTO audit_events")
	return func() {
		t.Helper()
		select {
		case <-cut:
		case <-time.After(10 * time.Second):
			t.Fatal("no admin write's COMMIT was cut")
		}
	}
}

func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("%s with its COMMIT answer lost: %v; want UNAVAILABLE (the outcome is unknown: retry)", what, err)
	}
}

// TestLostCommitAnswersUnavailable: when the connection breaks after
// COMMIT was sent, the write may have been applied (here it was), so each
// admin write answers UNAVAILABLE, which clients retry, never INTERNAL.
func TestLostCommitAnswersUnavailable(t *testing.T) {
	t.Parallel()
	c := startBehindCommitCut(t)
	ctx := admin(context.Background())

	cut := c.loseCommit(t)
	_, err := c.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "lost-create", Owner: "acme"})
	cut()
	wantUnavailable(t, "CreateKey", err)
	var n int
	if err := c.queryRow(t, "SELECT count(*) FROM api_keys WHERE name = 'lost-create'", &n); err != nil || n != 1 {
		t.Fatalf("keys created: %d, %v; want 1 (the commit went through)", n, err)
	}

	_, k := createKey(t, c.env, &keyservicev1.CreateKeyRequest{Name: "before", Owner: "acme"})
	cut = c.loseCommit(t)
	_, err = c.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId(), Name: "after"}, UpdateMask: mask("name")})
	cut()
	wantUnavailable(t, "UpdateKey", err)
	var name string
	if err := c.queryRow(t, "SELECT name FROM api_keys WHERE id = '"+k.GetId()+"'", &name); err != nil || name != "after" {
		t.Fatalf("name after the lost commit: %q, %v; want after", name, err)
	}

	cut = c.loseCommit(t)
	_, err = c.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: k.GetId(), GracePeriod: durationpb.New(0)})
	cut()
	wantUnavailable(t, "RotateKey", err)
	var rotated bool
	if err := c.queryRow(t, "SELECT rotated_to IS NOT NULL FROM api_keys WHERE id = '"+k.GetId()+"'", &rotated); err != nil || !rotated {
		t.Fatalf("rotated after the lost commit: %v, %v; want true", rotated, err)
	}

	cut = c.loseCommit(t)
	_, err = c.grpc.RevokeKey(ctx, &keyservicev1.RevokeKeyRequest{Id: k.GetId()})
	cut()
	wantUnavailable(t, "RevokeKey", err)
	var revoked bool
	if err := c.queryRow(t, "SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = '"+k.GetId()+"'", &revoked); err != nil || !revoked {
		t.Fatalf("revoked after the lost commit: %v, %v; want true", revoked, err)
	}
}

// TestLostCommitRetryAnswersAsTheFirstWould: a write named by a
// request_id whose COMMIT answer is lost answers UNAVAILABLE; its retry
// with the same request_id is not applied again and answers what the first
// call would have: for a rotation with no grace period, the new secret,
// which validates, while the old key has expired.
func TestLostCommitRetryAnswersAsTheFirstWould(t *testing.T) {
	t.Parallel()
	c := startBehindCommitCut(t)
	ctx := admin(context.Background())

	create := &keyservicev1.CreateKeyRequest{Name: "lost", Owner: "acme", RequestId: uuid.NewString()}
	cut := c.loseCommit(t)
	_, err := c.grpc.CreateKey(ctx, create)
	cut()
	wantUnavailable(t, "CreateKey", err)
	created, err := c.grpc.CreateKey(ctx, create)
	if err != nil {
		t.Fatalf("CreateKey retried: %v", err)
	}
	var n int
	if err := c.queryRow(t, "SELECT count(*) FROM api_keys WHERE name = 'lost'", &n); err != nil || n != 1 {
		t.Fatalf("keys after a lost commit and its retry: %d, %v; want 1", n, err)
	}
	if v := validate(t, c.env, &keyservicev1.ValidateRequest{Key: created.GetSecret()}); !v.GetValid() || v.GetKey().GetId() != created.GetKey().GetId() {
		t.Fatalf("the retry's secret: %v; want the created key, VALID", v)
	}

	update := &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: created.GetKey().GetId(), Name: "renamed"}, UpdateMask: mask("name"), RequestId: uuid.NewString()}
	cut = c.loseCommit(t)
	_, err = c.grpc.UpdateKey(ctx, update)
	cut()
	wantUnavailable(t, "UpdateKey", err)
	updated, err := c.grpc.UpdateKey(ctx, update)
	if err != nil || updated.GetKey().GetName() != "renamed" {
		t.Fatalf("UpdateKey retried: %v, %v", updated, err)
	}

	rotate := &keyservicev1.RotateKeyRequest{Id: created.GetKey().GetId(), GracePeriod: durationpb.New(0), RequestId: uuid.NewString()}
	cut = c.loseCommit(t)
	_, err = c.grpc.RotateKey(ctx, rotate)
	cut()
	wantUnavailable(t, "RotateKey", err)
	rotated, err := c.grpc.RotateKey(ctx, rotate)
	if err != nil {
		t.Fatalf("RotateKey retried: %v; want the first rotation's answer", err)
	}
	if v := validate(t, c.env, &keyservicev1.ValidateRequest{Key: rotated.GetSecret()}); !v.GetValid() || v.GetKey().GetId() != rotated.GetKey().GetId() {
		t.Fatalf("the new secret from the retry: %v; want VALID, the new key", v)
	}
	if v := validate(t, c.env, &keyservicev1.ValidateRequest{Key: created.GetSecret()}); v.GetCode() != keyservicev1.Code_CODE_EXPIRED {
		t.Fatalf("the old secret: %v; want EXPIRED (grace 0)", v.GetCode())
	}
	if err := c.queryRow(t, "SELECT count(*) FROM api_keys WHERE rotated_from = '"+created.GetKey().GetId()+"'", &n); err != nil || n != 1 {
		t.Fatalf("successors: %d, %v; want 1", n, err)
	}

	revoke := &keyservicev1.RevokeKeyRequest{Id: rotated.GetKey().GetId(), RequestId: uuid.NewString()}
	cut = c.loseCommit(t)
	_, err = c.grpc.RevokeKey(ctx, revoke)
	cut()
	wantUnavailable(t, "RevokeKey", err)
	revoked, err := c.grpc.RevokeKey(ctx, revoke)
	if err != nil || revoked.GetKey().GetRevokedAt() == nil {
		t.Fatalf("RevokeKey retried: %v, %v", revoked, err)
	}
	var events int
	if err := c.queryRow(t, "SELECT count(*) FROM audit_events", &events); err != nil || events != 5 {
		t.Fatalf("audit events: %d, %v; want 5 (create, update, rotate and create, revoke: each once)", events, err)
	}
}
