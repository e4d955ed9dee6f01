package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
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
	// Move the expiry into the past in the database, as time would.
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = $1", created.GetKey().GetId()); err != nil {
		t.Fatal(err)
	}
	v, err = e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: created.GetSecret()})
	if err != nil || v.GetValid() || v.GetCode() != keyservicev1.Code_CODE_EXPIRED {
		t.Fatalf("expired key: %v, %v", v, err)
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

func TestAdminAuth(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	calls := []struct {
		name string
		grpc func(context.Context) error
		rest func(token string) int
	}{
		{"CreateKey",
			func(ctx context.Context) error {
				_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o"})
				return err
			},
			func(tok string) int {
				c, _, _ := e.rest(t, "POST", "/v1/keys", tok, `{"name":"n","owner":"o"}`)
				return c
			}},
		{"ListKeys",
			func(ctx context.Context) error {
				_, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{})
				return err
			},
			func(tok string) int { c, _, _ := e.rest(t, "GET", "/v1/keys", tok, ""); return c }},
		{"GetKey",
			func(ctx context.Context) error {
				_, err := e.grpc.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: "0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a"})
				return err
			},
			func(tok string) int {
				c, _, _ := e.rest(t, "GET", "/v1/keys/0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a", tok, "")
				return c
			}},
		{"RevokeKey",
			func(ctx context.Context) error {
				_, err := e.grpc.RevokeKey(ctx, &keyservicev1.RevokeKeyRequest{Id: "0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a"})
				return err
			},
			func(tok string) int {
				c, _, _ := e.rest(t, "POST", "/v1/keys/0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a:revoke", tok, "")
				return c
			}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if code := status.Code(c.grpc(ctx)); code != codes.Unauthenticated {
				t.Errorf("gRPC without token: %v, want Unauthenticated", code)
			}
			wrong := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminToken+"x")
			if code := status.Code(c.grpc(wrong)); code != codes.PermissionDenied {
				t.Errorf("gRPC wrong token: %v, want PermissionDenied", code)
			}
			basic := metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+adminToken)
			if code := status.Code(c.grpc(basic)); code != codes.Unauthenticated {
				t.Errorf("gRPC non-bearer: %v, want Unauthenticated", code)
			}
			if code := status.Code(c.grpc(admin(ctx))); code == codes.Unauthenticated || code == codes.PermissionDenied {
				t.Errorf("gRPC right token refused: %v", code)
			}
			if code := c.rest(""); code != http.StatusUnauthorized {
				t.Errorf("REST without token: %d, want 401", code)
			}
			if code := c.rest("not-the-token-at-all"); code != http.StatusForbidden {
				t.Errorf("REST wrong token: %d, want 403", code)
			}
			if code := c.rest(adminToken); code == http.StatusUnauthorized || code == http.StatusForbidden {
				t.Errorf("REST right token refused: %d", code)
			}
		})
	}
	// Validate needs no admin token.
	if _, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: "x"}); err != nil {
		t.Fatalf("Validate without token: %v", err)
	}
}

func TestNoAdminTokenConfiguredRefusesAdminCalls(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.AdminTokens = nil }))
	_, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o"})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("CreateKey with no configured tokens: %v, want PermissionDenied", err)
	}
	if code, _, _ := e.rest(t, "POST", "/v1/keys", adminToken, `{"name":"n","owner":"o"}`); code != http.StatusForbidden {
		t.Fatalf("REST: %d, want 403", code)
	}
}

func countKeys(t *testing.T, dbURL string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM api_keys").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rawValidate sends a ValidateRequest whose key field holds raw bytes, as a
// client in another language could, bypassing the Go client's checks.
func rawValidate(t *testing.T, addr string, key []byte) (*keyservicev1.ValidateResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := protowire.AppendTag(nil, 1, protowire.BytesType)
	req = protowire.AppendBytes(req, key)
	var out []byte
	if err := conn.Invoke(context.Background(), keyservicev1.KeyService_Validate_FullMethodName, &req, &out); err != nil {
		return nil, err
	}
	resp := &keyservicev1.ValidateResponse{}
	if err := proto.Unmarshal(out, resp); err != nil {
		t.Fatal(err)
	}
	return resp, nil
}

func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	before := countKeys(t, e.dbURL)
	wrongChecksum, err := keyFormatKey(t)
	if err != nil {
		t.Fatal(err)
	}
	last := wrongChecksum[len(wrongChecksum)-1]
	wrongChecksum = wrongChecksum[:len(wrongChecksum)-1] + map[bool]string{true: "A", false: "B"}[last != 'A']
	oneMiB := strings.Repeat("k", 1<<20)
	past := timestamppb.New(time.Now().Add(-time.Minute))

	type validateCase struct {
		name     string
		key      string
		wantCode codes.Code        // for a transport error
		wantOut  keyservicev1.Code // for an answer
	}
	for _, c := range []validateCase{
		{"empty key", "", codes.InvalidArgument, 0},
		{"one MiB key", oneMiB, codes.OK, keyservicev1.Code_CODE_MALFORMED},
		{"wrong checksum", wrongChecksum, codes.OK, keyservicev1.Code_CODE_MALFORMED},
		{"wrong prefix", "xx" + wrongChecksum[2:], codes.OK, keyservicev1.Code_CODE_MALFORMED},
	} {
		t.Run("Validate/"+c.name, func(t *testing.T) {
			v, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: c.key})
			if status.Code(err) != c.wantCode || (err == nil && (v.GetCode() != c.wantOut || v.GetValid())) {
				t.Fatalf("gRPC: %v, %v", v, err)
			}
			code, body, _ := e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q}`, c.key))
			wantHTTP := map[codes.Code]int{codes.OK: 200, codes.InvalidArgument: 400}[c.wantCode]
			if code != wantHTTP || (code == 200 && body["code"] != c.wantOut.String()) {
				t.Fatalf("REST: %d %v", code, body)
			}
			if code != 200 && (body["message"] == nil || body["message"] == "") {
				t.Fatalf("REST error without a message: %v", body)
			}
		})
	}

	t.Run("Validate/invalid UTF-8", func(t *testing.T) {
		// proto3 strings are UTF-8: such bytes are a broken request
		// (INVALID_ARGUMENT), never INTERNAL, over both transports.
		_, err := rawValidate(t, e.srv.GRPCAddr().String(), []byte("ks_\xff\xfe"+strings.Repeat("a", 34)))
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("gRPC: %v, want InvalidArgument", err)
		}
		code, body, _ := e.rest(t, "POST", "/v1/keys:validate", "", "{\"key\":\"ks_\xff\xfe\"}")
		if code != http.StatusBadRequest {
			t.Fatalf("REST: %d %v", code, body)
		}
	})

	restCases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"unknown JSON field", "POST", "/v1/keys", `{"name":"n","owner":"o","colour":"red"}`, 400},
		{"malformed JSON", "POST", "/v1/keys", `{"name":"n",`, 400},
		{"JSON of the wrong type", "POST", "/v1/keys", `{"name":12,"owner":"o"}`, 400},
		{"validate unknown field", "POST", "/v1/keys:validate", `{"key":"x","extra":1}`, 400},
		{"validate malformed JSON", "POST", "/v1/keys:validate", `{"key":`, 400},
		{"name over 200", "POST", "/v1/keys", fmt.Sprintf(`{"name":%q,"owner":"o"}`, strings.Repeat("n", 201)), 400},
		{"expiry in the past", "POST", "/v1/keys", fmt.Sprintf(`{"name":"n","owner":"o","expires_at":%q}`, past.AsTime().Format(time.RFC3339)), 400},
		{"missing owner", "POST", "/v1/keys", `{"name":"n"}`, 400},
		{"page size over max", "GET", "/v1/keys?page_size=1001", "", 400},
		{"negative page size", "GET", "/v1/keys?page_size=-1", "", 400},
		{"malformed page token", "GET", "/v1/keys?page_token=not-a-token", "", 400},
		{"non-uuid id (get)", "GET", "/v1/keys/12345", "", 400},
		{"non-uuid id (revoke)", "POST", "/v1/keys/12345:revoke", "", 400},
		{"unknown id (get)", "GET", "/v1/keys/0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a", "", 404},
		{"unknown id (revoke)", "POST", "/v1/keys/0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a:revoke", "", 404},
		{"trailing garbage after the JSON", "POST", "/v1/keys", `{"name":"a","owner":"x"}garbage`, 400},
		{"unknown query parameter", "GET", "/v1/keys?colour=red", "", 400},
		{"unknown query parameter (get)", "GET", "/v1/keys/0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a?verbose=1", "", 400},
		{"a second JSON value", "POST", "/v1/keys", `{"name":"a","owner":"x"}{"name":"b","owner":"y"}`, 400},
		{"validate trailing garbage", "POST", "/v1/keys:validate", `{"key":"ks_x"} x`, 400},
		{"scope with a comma", "POST", "/v1/keys", `{"name":"n","owner":"o","scopes":["read,admin"]}`, 400},
		{"scope with a space", "POST", "/v1/keys", `{"name":"n","owner":"o","scopes":["read admin"]}`, 400},
		{"scope with a non-ASCII letter", "POST", "/v1/keys", `{"name":"n","owner":"o","scopes":["lecture-é"]}`, 400},
		{"control character in a metadata value", "POST", "/v1/keys", `{"name":"n","owner":"o","metadata":{"team":"a\r\nX-Evil: 1"}}`, 400},
	}
	for _, c := range restCases {
		t.Run("REST/"+c.name, func(t *testing.T) {
			code, body, _ := e.rest(t, c.method, c.path, adminToken, c.body)
			if code != c.want {
				t.Fatalf("%d %v, want %d", code, body, c.want)
			}
			msg, _ := body["message"].(string)
			if msg == "" || strings.Contains(msg, "SQLSTATE") || strings.Contains(msg, "api_keys") {
				t.Fatalf("unclear or leaky message %q", msg)
			}
		})
	}

	grpcCases := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"name over 200", func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: strings.Repeat("n", 201), Owner: "o"})
			return err
		}, codes.InvalidArgument},
		{"expiry in the past", func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", ExpiresAt: past})
			return err
		}, codes.InvalidArgument},
		{"too many scopes", func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", Scopes: make([]string, 65)})
			return err
		}, codes.InvalidArgument},
		{"scope with a comma", func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", Scopes: []string{"read", "read,admin"}})
			return err
		}, codes.InvalidArgument},
		{"control character in a metadata value", func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", Metadata: map[string]string{"team": "a\x1b[31m"}})
			return err
		}, codes.InvalidArgument},
		{"page size over max", func() error {
			_, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{PageSize: 5000})
			return err
		}, codes.InvalidArgument},
		{"malformed page token", func() error {
			_, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{PageToken: "AAAA"})
			return err
		}, codes.InvalidArgument},
		{"non-uuid id", func() error {
			_, err := e.grpc.RevokeKey(ctx, &keyservicev1.RevokeKeyRequest{Id: "not-a-uuid"})
			return err
		}, codes.InvalidArgument},
		{"unknown id", func() error {
			_, err := e.grpc.RevokeKey(ctx, &keyservicev1.RevokeKeyRequest{Id: "0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a"})
			return err
		}, codes.NotFound},
	}
	for _, c := range grpcCases {
		t.Run("gRPC/"+c.name, func(t *testing.T) {
			err := c.call()
			st := status.Convert(err)
			if st.Code() != c.want || st.Message() == "" {
				t.Fatalf("%v, want %v with a message", err, c.want)
			}
			if c.want == codes.InvalidArgument {
				var found bool
				for _, d := range st.Details() {
					if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 {
						found = true
					}
				}
				if !found {
					t.Fatalf("no BadRequest detail naming the field: %v", st.Details())
				}
			}
		})
	}

	if after := countKeys(t, e.dbURL); after != before {
		t.Fatalf("bad input wrote %d keys", after-before)
	}
}

func TestHealthReadinessAndOpenAPI(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.waitReady(t)
	for _, p := range []string{"/healthz", "/readyz", "/openapi.json"} {
		code, body, _ := e.rest(t, "GET", p, "", "")
		if code != 200 {
			t.Fatalf("%s: %d %v", p, code, body)
		}
		if p == "/openapi.json" && body["swagger"] != "2.0" {
			t.Fatalf("openapi.json is not an OpenAPI v2 document: %v", body["swagger"])
		}
	}
	h := healthpb.NewHealthClient(e.conn)
	resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "keyservice.v1.KeyService"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", resp, err)
	}
}

func TestNotReadyUntilMigrated(t *testing.T) {
	t.Parallel()
	u := newEmptyDatabase(t)
	e := startOn(t, u)
	// The first readiness checks find the database up and the schema not
	// migrated, and say so.
	waitFor(t, func() bool {
		code, body, _ := e.rest(t, "GET", "/readyz", "", "")
		return code == http.StatusServiceUnavailable && strings.Contains(fmt.Sprint(body["reason"]), "migrat")
	})
	h := healthpb.NewHealthClient(e.conn)
	resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health: %v, %v", resp, err)
	}
	// Until the key filter loads, keys are refused, not sent to the database.
	k, _ := keyFormatKey(t)
	if _, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: k}); status.Code(err) != codes.Unavailable {
		t.Fatalf("gRPC Validate before the filter loads: %v, want Unavailable", err)
	}
	if code, body, _ := e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q}`, k)); code != http.StatusServiceUnavailable {
		t.Fatalf("REST Validate before the filter loads: %d %v, want 503", code, body)
	}
	// And it stays unready: checks since the first still say so.
	if code, body, _ := e.rest(t, "GET", "/readyz", "", ""); code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(body["reason"]), "migrat") {
		t.Fatalf("readyz later on the unmigrated database: %d %v", code, body)
	}

	// The same database, served with --migrate, becomes ready.
	e.stop(t)
	e2 := startOn(t, u, withConfig(func(c *config.Config) { c.Migrate = true }))
	e2.waitReady(t)
}

func TestRequestIDIsEchoed(t *testing.T) {
	t.Parallel()
	e := start(t)
	req, _ := http.NewRequest("POST", e.base+"/v1/keys:validate", strings.NewReader(`{"key":"x"}`))
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "abc-123" {
		t.Fatalf("REST X-Request-Id = %q", got)
	}
	var hdr metadata.MD
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "def-456")
	if _, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: "x"}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("x-request-id"); len(got) != 1 || got[0] != "def-456" {
		t.Fatalf("gRPC x-request-id = %v", got)
	}
	if !strings.Contains(e.logs.String(), `"request_id":"def-456"`) {
		t.Fatal("request id not logged")
	}
}

// TestShutdownDrainsInFlightCalls holds a RevokeKey on a row lock, stops the
// server, and checks that the call still completes before Serve returns.
func TestShutdownDrainsInFlightCalls(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	created, err := e.grpc.CreateKey(admin(ctx), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM api_keys WHERE id = $1 FOR UPDATE", created.GetKey().GetId()); err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	go func() {
		_, err := e.grpc.RevokeKey(admin(ctx), &keyservicev1.RevokeKeyRequest{Id: created.GetKey().GetId()})
		result <- err
	}()
	// Wait until the revoke is blocked on the lock.
	waitFor(t, func() bool {
		var n int
		_ = e.queryRow(t, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()", &n)
		return n == 1
	})
	e.cancel() // SIGTERM
	// The drain has begun once the gRPC listener refuses new connections.
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", e.srv.GRPCAddr().String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-result:
		t.Fatalf("in-flight call ended before it could finish: %v", err)
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-result; err != nil {
		t.Fatalf("in-flight call failed during drain: %v", err)
	}
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatal(err)
		}
		e.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after draining")
	}
}

func TestMetricsCountAnswersByPath(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	if _, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: "garbage"}); err != nil {
		t.Fatal(err)
	}
	unknown, _ := keyFormatKey(t)
	if _, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: unknown}); err != nil {
		t.Fatal(err)
	}
	families := e.metrics(t)
	for series, want := range map[string]float64{
		`keyservice_validate_answers_total{code="MALFORMED",path="shape"}`:  1,
		`keyservice_validate_answers_total{code="NOT_FOUND",path="filter"}`: 1,
		`keyservice_filter_loaded`:                            1,
		`keyservice_db_pool_max_conns`:                        16,
		`keyservice_cache_positive_hits_total`:                -1, // present
		`keyservice_lookup_refusals_total{reason="deadline"}`: 0,
		`keyservice_lookup_statements_in_flight`:              0,
		`keyservice_cache_warmed_keys_total`:                  0,
		// Every call is counted and timed, first in the chain.
		`keyservice_rpc_requests_total{code="OK",method="/keyservice.v1.KeyService/Validate"}`:   2,
		`keyservice_rpc_duration_seconds{code="OK",method="/keyservice.v1.KeyService/Validate"}`: 2,
	} {
		got, ok := sample(families, series)
		if !ok || (want >= 0 && got != want) {
			t.Errorf("/metrics: %s = %v (exported: %v), want %v", series, got, ok, want)
		}
	}
}

func TestRevokeOnOneReplicaIsRefusedOnAnother(t *testing.T) {
	t.Parallel()
	a := start(t)
	b := startOn(t, a.dbURL)
	b.waitReady(t)
	ctx := context.Background()
	created, err := a.grpc.CreateKey(admin(ctx), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	req := &keyservicev1.ValidateRequest{Key: created.GetSecret()}
	waitFor(t, func() bool { v, err := b.grpc.Validate(ctx, req); return err == nil && v.GetValid() })
	if _, err := a.grpc.RevokeKey(admin(ctx), &keyservicev1.RevokeKeyRequest{Id: created.GetKey().GetId()}); err != nil {
		t.Fatal(err)
	}
	if v, err := a.grpc.Validate(ctx, req); err != nil || v.GetCode() != keyservicev1.Code_CODE_REVOKED {
		t.Fatalf("same replica right after revoke: %v, %v", v, err)
	}
	waitFor(t, func() bool {
		v, err := b.grpc.Validate(ctx, req)
		return err == nil && v.GetCode() == keyservicev1.Code_CODE_REVOKED
	})
}
