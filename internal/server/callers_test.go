package server_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// repoTool finds a tool on PATH or in the repository's bin/ (make tools).
// Under CI a missing tool fails the test; elsewhere the test is skipped
// with the command that installs it.
func repoTool(t *testing.T, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p, _ := filepath.Abs(filepath.Join("..", "..", "bin", name)); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found (%s)", name, install)
	}
	t.Skipf("%s not found; %s", name, install)
	return ""
}

// validateKey is the Go caller example of docs/clients.md, word for word.
func validateKey(ctx context.Context, addr, callerToken, presented string) (bool, string, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false, "", err
	}
	defer conn.Close()
	client := keyservicev1.NewKeyServiceClient(conn)
	if callerToken != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+callerToken)
	}
	resp, err := client.Validate(ctx, &keyservicev1.ValidateRequest{Key: presented})
	if err != nil {
		return false, "", err // UNAVAILABLE, RESOURCE_EXHAUSTED, ...: refuse the request (fail closed)
	}
	if !resp.GetValid() {
		return false, "", nil // resp.GetCode() says why
	}
	return true, resp.GetKey().GetOwner(), nil
}

func TestGoCallerExample(t *testing.T) {
	t.Parallel()
	e := start(t)
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "go", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	ok, owner, err := validateKey(context.Background(), e.srv.GRPCAddr().String(), "", created.GetSecret())
	if err != nil || !ok || owner != "acme" {
		t.Fatalf("validateKey = %v, %q, %v", ok, owner, err)
	}
	ok, _, err = validateKey(context.Background(), e.srv.GRPCAddr().String(), "", created.GetSecret()+"x")
	if err != nil || ok {
		t.Fatalf("wrong key: %v, %v", ok, err)
	}
}

func TestTypeScriptClient(t *testing.T) {
	node := repoTool(t, "node", ".ci/run installs Node.js; then npm ci")
	if _, err := os.Stat("../../node_modules/@connectrpc/connect-node"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node_modules missing: run npm ci (make test does)")
		}
		t.Skip("node_modules missing: run npm ci")
	}
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "../../test/node/keyservice_e2e.mjs")
	cmd.Env = append(os.Environ(), "KEYSERVICE_ADDR="+e.srv.GRPCAddr().String(), "KEYSERVICE_ADMIN_TOKEN="+adminToken)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node client: %v\n%s", err, out)
	}
	var res struct {
		OK bool   `json:"ok"`
		ID string `json:"id"`
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || !res.OK {
		t.Fatalf("node client output: %s", out)
	}
	got, err := e.grpc.GetKey(admin(context.Background()), &keyservicev1.GetKeyRequest{Id: res.ID})
	if err != nil || got.GetKey().GetRevokedAt() == nil {
		t.Fatalf("the key the Node client revoked: %v, %v", got, err)
	}
}

func TestGrpcurlThroughReflection(t *testing.T) {
	t.Parallel()
	grpcurl := repoTool(t, "grpcurl", "make tools installs it into bin/")
	e := start(t)
	addr := e.srv.GRPCAddr().String()
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(grpcurl, append([]string{"-plaintext"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("grpcurl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run(addr, "list"); !strings.Contains(out, "keyservice.v1.KeyService") {
		t.Fatalf("list: %s", out)
	}
	if out := run(addr, "describe", "keyservice.v1.KeyService"); !strings.Contains(out, "rpc Validate") || !strings.Contains(out, "rpc CreateKey") {
		t.Fatalf("describe: %s", out)
	}
	out := run("-H", "authorization: Bearer "+adminToken, "-d", `{"name":"grpcurl","owner":"acme"}`, addr, "keyservice.v1.KeyService/CreateKey")
	var created struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Secret, "ks_") {
		t.Fatalf("CreateKey: %s", out)
	}
	if out := run("-d", `{"key":"`+created.Secret+`"}`, addr, "keyservice.v1.KeyService/Validate"); !strings.Contains(out, "CODE_VALID") {
		t.Fatalf("Validate: %s", out)
	}
}
