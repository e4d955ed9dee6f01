package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

func createKey(t *testing.T, e *env, req *keyservicev1.CreateKeyRequest) (secret string, k *keyservicev1.Key) {
	t.Helper()
	if req == nil {
		req = &keyservicev1.CreateKeyRequest{Name: "life", Owner: "acme"}
	}
	created, err := e.grpc.CreateKey(admin(context.Background()), req)
	if err != nil {
		t.Fatal(err)
	}
	return created.GetSecret(), created.GetKey()
}

func validate(t *testing.T, e *env, req *keyservicev1.ValidateRequest) *keyservicev1.ValidateResponse {
	t.Helper()
	v, err := e.grpc.Validate(context.Background(), req)
	if err != nil {
		t.Fatalf("Validate: %v\n%s", err, lastLines(e.logs.String(), 5))
	}
	return v
}

func auditCount(t *testing.T, e *env) int {
	t.Helper()
	var n int
	if err := e.queryRow(t, "SELECT count(*) FROM audit_events", &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
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
