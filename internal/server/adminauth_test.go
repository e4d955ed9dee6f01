package server_test

import (
	"context"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

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
			if code := status.Code(c.grpc(wrong)); code != codes.Unauthenticated {
				t.Errorf("gRPC wrong token: %v, want Unauthenticated", code)
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
			if code := c.rest("not-the-token-at-all"); code != http.StatusUnauthorized {
				t.Errorf("REST wrong token: %d, want 401", code)
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
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("CreateKey with no configured tokens: %v, want Unauthenticated", err)
	}
	if code, _, _ := e.rest(t, "POST", "/v1/keys", adminToken, `{"name":"n","owner":"o"}`); code != http.StatusUnauthorized {
		t.Fatalf("REST: %d, want 401", code)
	}
}
