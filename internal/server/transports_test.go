package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

func TestLifecycleOverGRPC(t *testing.T) {
	// Not parallel: it checks that no secret reaches the log, and grpclog
	// (process-wide) writes to the logger of the server built last.
	e := start(t)
	ctx := context.Background()
	created, err := e.grpc.CreateKey(admin(ctx), &keyservicev1.CreateKeyRequest{
		Name: "ci", Owner: "acme", Scopes: []string{"read"}, Metadata: map[string]string{"env": "prod"},
	})
	if err != nil {
		t.Fatal(err)
	}
	secret, id := created.GetSecret(), created.GetKey().GetId()
	if !strings.HasPrefix(secret, "ks_") || created.GetKey().GetHint() != "ks_..."+secret[len(secret)-4:] {
		t.Fatalf("unexpected secret/hint %q %q", secret, created.GetKey().GetHint())
	}

	v, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: secret})
	if err != nil {
		t.Fatal(err)
	}
	if !v.GetValid() || v.GetCode() != keyservicev1.Code_CODE_VALID || v.GetKey().GetId() != id ||
		v.GetKey().GetOwner() != "acme" || v.GetKey().GetMetadata()["env"] != "prod" {
		t.Fatalf("Validate(valid key) = %v", v)
	}

	got, err := e.grpc.GetKey(admin(ctx), &keyservicev1.GetKeyRequest{Id: id})
	if err != nil || got.GetKey().GetName() != "ci" {
		t.Fatalf("GetKey = %v, %v", got, err)
	}

	r1, err := e.grpc.RevokeKey(admin(ctx), &keyservicev1.RevokeKeyRequest{Id: id})
	if err != nil || r1.GetKey().GetRevokedAt() == nil {
		t.Fatalf("RevokeKey = %v, %v", r1, err)
	}
	r2, err := e.grpc.RevokeKey(admin(ctx), &keyservicev1.RevokeKeyRequest{Id: id})
	if err != nil || !r2.GetKey().GetRevokedAt().AsTime().Equal(r1.GetKey().GetRevokedAt().AsTime()) {
		t.Fatalf("second RevokeKey = %v, %v; want revoked_at %v", r2, err, r1.GetKey().GetRevokedAt())
	}

	v, err = e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: secret})
	if err != nil {
		t.Fatal(err)
	}
	if v.GetValid() || v.GetCode() != keyservicev1.Code_CODE_REVOKED || v.GetKey().GetId() != id {
		t.Fatalf("Validate(revoked key) = %v", v)
	}

	// Nothing secret reaches the log.
	logs := e.logs.String()
	for _, s := range []string{secret, secret[3:20], adminToken} {
		if strings.Contains(logs, s) {
			t.Fatalf("log contains a secret (%q...)", s[:6])
		}
	}
	if !strings.Contains(logs, "/keyservice.v1.KeyService/Validate") {
		t.Fatal("calls are not logged")
	}
}

func TestLifecycleOverREST(t *testing.T) {
	t.Parallel()
	e := start(t)
	code, body, hdr := e.rest(t, "POST", "/v1/keys", adminToken, `{"name":"web","owner":"acme","scopes":["read","write"],"metadata":{"team":"core"}}`)
	if code != http.StatusOK {
		t.Fatalf("create: %d %v", code, body)
	}
	if hdr.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id header")
	}
	secret := body["secret"].(string)
	key := body["key"].(map[string]any)
	id := key["id"].(string)

	code, body, _ = e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q}`, secret))
	if code != http.StatusOK || body["valid"] != true || body["code"] != "CODE_VALID" {
		t.Fatalf("validate: %d %v", code, body)
	}

	code, body, _ = e.rest(t, "GET", "/v1/keys/"+id, adminToken, "")
	if code != http.StatusOK || body["key"].(map[string]any)["name"] != "web" {
		t.Fatalf("get: %d %v", code, body)
	}

	code, body, _ = e.rest(t, "POST", "/v1/keys/"+id+":revoke", adminToken, "")
	if code != http.StatusOK {
		t.Fatalf("revoke: %d %v", code, body)
	}
	revokedAt := body["key"].(map[string]any)["revoked_at"]
	code, body, _ = e.rest(t, "POST", "/v1/keys/"+id+":revoke", adminToken, "{}")
	if code != http.StatusOK || body["key"].(map[string]any)["revoked_at"] != revokedAt {
		t.Fatalf("second revoke: %d %v, want revoked_at %v", code, body, revokedAt)
	}

	code, body, _ = e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q}`, secret))
	if code != http.StatusOK || body["valid"] != false || body["code"] != "CODE_REVOKED" {
		t.Fatalf("validate revoked: %d %v", code, body)
	}

	// valid and code are present even for an answer where both are "empty".
	code, body, _ = e.rest(t, "POST", "/v1/keys:validate", "", `{"key":"garbage"}`)
	if v, ok := body["valid"]; code != http.StatusOK || !ok || v != false || body["code"] != "CODE_MALFORMED" {
		t.Fatalf("validate garbage: %d %v", code, body)
	}
}

func TestNotFoundAndExpired(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	k, err := keyFormatKey(t)
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: k})
	if err != nil || v.GetCode() != keyservicev1.Code_CODE_NOT_FOUND || v.GetKey() != nil {
		t.Fatalf("unknown well-formed key: %v, %v", v, err)
	}

	created, err := e.grpc.CreateKey(admin(ctx), &keyservicev1.CreateKeyRequest{
		Name: "short", Owner: "acme", ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Move the expiry into the past in the database, as time would (as an
	// update another process made without NOTIFY: sync finds it by its
	// updated_at; memory mode holds the key's record until then).
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE api_keys SET expires_at = now() - interval '1 minute', updated_at = clock_timestamp() WHERE id = $1", created.GetKey().GetId()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		v, err = e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: created.GetSecret()})
		return err == nil && v.GetCode() == keyservicev1.Code_CODE_EXPIRED
	})
	if v.GetValid() {
		t.Fatalf("expired key: %v", v)
	}
}

func TestListKeysPagesOverBothTransports(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		for _, owner := range []string{"acme", "globex"} {
			if _, err := e.grpc.CreateKey(admin(ctx), &keyservicev1.CreateKeyRequest{Name: fmt.Sprint("k", i), Owner: owner}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ids []string
	token := ""
	for {
		resp, err := e.grpc.ListKeys(admin(ctx), &keyservicev1.ListKeysRequest{Owner: "acme", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range resp.GetKeys() {
			if k.GetOwner() != "acme" {
				t.Fatalf("owner filter leaked %q", k.GetOwner())
			}
			ids = append(ids, k.GetId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(ids) != 5 {
		t.Fatalf("listed %d acme keys, want 5", len(ids))
	}
	code, body, _ := e.rest(t, "GET", "/v1/keys?page_size=3", adminToken, "")
	if code != http.StatusOK || len(body["keys"].([]any)) != 3 || body["next_page_token"] == "" {
		t.Fatalf("REST page 1: %d %v", code, body)
	}
	code, body, _ = e.rest(t, "GET", "/v1/keys?page_size=1000&page_token="+body["next_page_token"].(string), adminToken, "")
	if code != http.StatusOK || len(body["keys"].([]any)) != 7 || body["next_page_token"] != "" {
		t.Fatalf("REST page 2: %d %v", code, body)
	}
	code, body, _ = e.rest(t, "GET", "/v1/keys", adminToken, "")
	if code != http.StatusOK || len(body["keys"].([]any)) != 10 {
		t.Fatalf("REST default page: %d %v", code, body)
	}
}
