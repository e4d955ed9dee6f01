package server_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

// TestRequestIDAppliesOnce: each admin write sent twice with one
// request_id and one body is applied once (one key, one audit event) and
// the second call gets the first answer, secret included; the same
// request_id with another body is ALREADY_EXISTS and changes nothing.
func TestRequestIDAppliesOnce(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	twice := func(name string, call func() (proto.Message, error)) proto.Message {
		t.Helper()
		before := auditCount(t, e)
		first, err := call()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		again, err := call()
		if err != nil {
			t.Fatalf("%s again with its request_id: %v", name, err)
		}
		if !proto.Equal(first, again) {
			t.Fatalf("%s again answered\n%v\nwant the first answer\n%v", name, again, first)
		}
		if n := auditCount(t, e) - before; n != 1 && !(name == "RotateKey" && n == 2) {
			t.Fatalf("%s twice wrote %d audit events; want it applied once", name, n)
		}
		return first
	}
	reused := func(name string, call func() (proto.Message, error)) {
		t.Helper()
		before := auditCount(t, e)
		if _, err := call(); status.Code(err) != codes.AlreadyExists {
			t.Fatalf("%s with a used request_id and another body: %v; want ALREADY_EXISTS", name, err)
		}
		if n := auditCount(t, e); n != before {
			t.Fatalf("%s with a used request_id and another body wrote %d audit events", name, n-before)
		}
	}

	create := &keyservicev1.CreateKeyRequest{Name: "once", Owner: "acme", Metadata: map[string]string{"a": "1", "b": "2"}, RequestId: uuid.NewString()}
	created := twice("CreateKey", func() (proto.Message, error) { return e.grpc.CreateKey(ctx, create) }).(*keyservicev1.CreateKeyResponse)
	var n int
	if err := e.queryRow(t, "SELECT count(*) FROM api_keys WHERE name = 'once'", &n); err != nil || n != 1 {
		t.Fatalf("keys: %d, %v; want 1", n, err)
	}
	other := proto.Clone(create).(*keyservicev1.CreateKeyRequest)
	other.Name = "other"
	reused("CreateKey", func() (proto.Message, error) { return e.grpc.CreateKey(ctx, other) })
	id := created.GetKey().GetId()

	update := &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id, Name: "renamed", Scopes: []string{"read"}}, UpdateMask: mask("name", "scopes"), RequestId: uuid.NewString()}
	twice("UpdateKey", func() (proto.Message, error) { return e.grpc.UpdateKey(ctx, update) })
	// The mask's order is no part of the request.
	if _, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: update.GetKey(), UpdateMask: mask("scopes", "name"), RequestId: update.GetRequestId()}); err != nil {
		t.Fatalf("UpdateKey with the mask in another order: %v", err)
	}
	otherUpdate := proto.Clone(update).(*keyservicev1.UpdateKeyRequest)
	otherUpdate.Key.Name = "again"
	reused("UpdateKey", func() (proto.Message, error) { return e.grpc.UpdateKey(ctx, otherUpdate) })
	// Another method with a used request_id is another request.
	reused("RevokeKey", func() (proto.Message, error) {
		return e.grpc.RevokeKey(ctx, &keyservicev1.RevokeKeyRequest{Id: id, RequestId: update.GetRequestId()})
	})

	rotate := &keyservicev1.RotateKeyRequest{Id: id, GracePeriod: durationpb.New(0), RequestId: uuid.NewString()}
	rotated := twice("RotateKey", func() (proto.Message, error) { return e.grpc.RotateKey(ctx, rotate) }).(*keyservicev1.RotateKeyResponse)
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: rotated.GetSecret()}); !v.GetValid() {
		t.Fatalf("the rotated secret: %v", v.GetCode())
	}

	revoke := &keyservicev1.RevokeKeyRequest{Id: rotated.GetKey().GetId(), RequestId: uuid.NewString()}
	twice("RevokeKey", func() (proto.Message, error) { return e.grpc.RevokeKey(ctx, revoke) })
	reused("RevokeKey", func() (proto.Message, error) {
		return e.grpc.RevokeKey(ctx, &keyservicev1.RevokeKeyRequest{Id: id, RequestId: revoke.GetRequestId()})
	})

	if _, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "x", Owner: "acme", RequestId: "not-a-uuid"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a request_id that is not a UUID: %v; want INVALID_ARGUMENT", err)
	}
}

// TestRequestIDsArePerAdmin: another admin's call with the same request_id
// is its own write and never gets the first admin's answer (its secret).
func TestRequestIDsArePerAdmin(t *testing.T) {
	t.Parallel()
	const other = "other-admin-token-0123456789"
	e := start(t, withConfig(func(c *config.Config) {
		c.AdminTokens, c.AdminNames = []string{adminToken, other}, []string{"alice", "bob"}
	}))
	req := &keyservicev1.CreateKeyRequest{Name: "mine", Owner: "acme", RequestId: uuid.NewString()}
	first, err := e.grpc.CreateKey(admin(context.Background()), req)
	if err != nil {
		t.Fatal(err)
	}
	bob := asCaller(context.Background(), other)
	second, err := e.grpc.CreateKey(bob, req)
	if err != nil {
		t.Fatal(err)
	}
	if second.GetSecret() == first.GetSecret() || second.GetKey().GetId() == first.GetKey().GetId() {
		t.Fatal("another admin's call with the same request_id got the first admin's key and secret")
	}
	// Each admin's retry gets its own answer.
	for _, c := range []struct {
		ctx  context.Context
		want *keyservicev1.CreateKeyResponse
	}{{admin(context.Background()), first}, {bob, second}} {
		again, err := e.grpc.CreateKey(c.ctx, req)
		if err != nil || again.GetSecret() != c.want.GetSecret() {
			t.Fatalf("a retry: %v; want the secret of that admin's first call", err)
		}
	}
}

// TestRequestIDOverREST: REST callers pass request_id in the body (or, for
// PATCH, as ?request_id=), with the same effect; a different body is 409.
func TestRequestIDOverREST(t *testing.T) {
	t.Parallel()
	e := start(t)
	rid := uuid.NewString()
	body := `{"name":"rest","owner":"acme","scopes":["read"],"requestId":"` + rid + `"}`
	code, first, _ := e.rest(t, http.MethodPost, "/v1/keys", adminToken, body)
	if code != http.StatusOK {
		t.Fatalf("POST /v1/keys: %d %v", code, first)
	}
	code, again, _ := e.rest(t, http.MethodPost, "/v1/keys", adminToken, body)
	if code != http.StatusOK || again["secret"] != first["secret"] {
		t.Fatalf("POST /v1/keys again: %d, secret %v; want 200 and the first secret", code, again["secret"])
	}
	// The same request over gRPC is the same request.
	viaGRPC, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "rest", Owner: "acme", Scopes: []string{"read"}, RequestId: rid})
	if err != nil || viaGRPC.GetSecret() != first["secret"] {
		t.Fatalf("the same request over gRPC: %v; want the first secret", err)
	}
	code, _, _ = e.rest(t, http.MethodPost, "/v1/keys", adminToken, strings.Replace(body, `"rest"`, `"changed"`, 1))
	if code != http.StatusConflict {
		t.Fatalf("POST /v1/keys with a used requestId and another body: %d; want 409", code)
	}
	id := first["key"].(map[string]any)["id"].(string)
	patch := "/v1/keys/" + id + "?request_id=" + uuid.NewString()
	for range 2 {
		// No mask: the body's fields are the mask, in any order.
		if code, out, _ := e.rest(t, http.MethodPatch, patch, adminToken, `{"name":"patched","scopes":["read","write"],"metadata":{"k":"v"}}`); code != http.StatusOK {
			t.Fatalf("PATCH: %d %v", code, out)
		}
	}
	// A rate limit sent as a REST body (the mask is rate_limit.limit,
	// rate_limit.period) and then over gRPC (the mask rate_limit, the id in
	// capitals) is the same update: the retry replays it.
	rl := uuid.NewString()
	if code, out, _ := e.rest(t, http.MethodPatch, "/v1/keys/"+id+"?request_id="+rl, adminToken, `{"rate_limit":{"limit":7,"period":"60s"}}`); code != http.StatusOK {
		t.Fatalf("PATCH rate_limit: %d %v", code, out)
	}
	if _, err := e.grpc.UpdateKey(admin(context.Background()), &keyservicev1.UpdateKeyRequest{
		Key:        &keyservicev1.Key{Id: strings.ToUpper(id), RateLimit: &keyservicev1.RateLimit{Limit: 7, Period: durationpb.New(time.Minute)}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"rateLimit"}}, RequestId: rl,
	}); err != nil {
		t.Fatalf("the same update over gRPC, mask and id spelled otherwise: %v; want the first answer", err)
	}
	if n := auditCount(t, e); n != 3 {
		t.Fatalf("audit events: %d; want 3 (one create, two updates)", n)
	}
}

// TestStoredAnswerHoldsNoPlaintextSecret: the recorded answer of a
// CreateKey holds its secret sealed: the row's bytes do not contain it.
func TestStoredAnswerHoldsNoPlaintextSecret(t *testing.T) {
	t.Parallel()
	e := start(t)
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "sealed", Owner: "acme", RequestId: uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	var row string
	var response []byte
	if err := e.queryRow(t, "SELECT r::text, r.response FROM idempotency_records r", &row, &response); err != nil {
		t.Fatalf("reading the request record: %v", err)
	}
	secret := created.GetSecret()
	if len(response) == 0 || bytes.Contains(response, []byte(secret)) || strings.Contains(row, secret) || strings.Contains(row, hex.EncodeToString([]byte(secret))) {
		t.Fatalf("the stored answer (%d bytes) shows the secret in the clear", len(response))
	}
}

// TestExpiredRequestIDIsNotHonoured: within the window a retry replays; a
// record past the window is not honoured: the same request_id writes anew.
func TestExpiredRequestIDIsNotHonoured(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	req := &keyservicev1.CreateKeyRequest{Name: "window", Owner: "acme", RequestId: uuid.NewString()}
	first, err := e.grpc.CreateKey(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := e.grpc.CreateKey(ctx, req); err != nil || again.GetKey().GetId() != first.GetKey().GetId() {
		t.Fatalf("within the window: %v, %v; want the first key", again.GetKey().GetId(), err)
	}
	var expired bool
	if err := e.queryRow(t, "WITH u AS (UPDATE idempotency_records SET expires_at = now() - interval '1 second' RETURNING 1) SELECT count(*) = 1 FROM u", &expired); err != nil || !expired {
		t.Fatalf("expiring the record: %v, %v", expired, err)
	}
	after, err := e.grpc.CreateKey(ctx, req)
	if err != nil || after.GetKey().GetId() == first.GetKey().GetId() {
		t.Fatalf("past the window: %v, %v; want a new key", after.GetKey().GetId(), err)
	}
}

// TestConcurrentRetriesRotateOnce: calls of one RotateKey with one
// request_id at the same time rotate once, and every call answers the one
// rotation's new secret (none "already rotated").
func TestConcurrentRetriesRotateOnce(t *testing.T) {
	t.Parallel()
	e := start(t)
	_, k := createKey(t, e, nil)
	req := &keyservicev1.RotateKeyRequest{Id: k.GetId(), GracePeriod: durationpb.New(0), RequestId: uuid.NewString()}
	const n = 6
	secrets := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := e.grpc.RotateKey(admin(context.Background()), req)
			secrets[i], errs[i] = resp.GetSecret(), err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || secrets[i] != secrets[0] {
			t.Fatalf("call %d: %v; want the one rotation's secret", i, errs[i])
		}
	}
	var successors int
	if err := e.queryRow(t, "SELECT count(*) FROM api_keys WHERE rotated_from = '"+k.GetId()+"'", &successors); err != nil || successors != 1 {
		t.Fatalf("successors: %d, %v; want 1", successors, err)
	}
}
