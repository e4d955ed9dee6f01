package middleware

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/perm"
	"github.com/keyservice/keyservice/internal/tenancy"
)

// TestEveryMethodDeclaresAPermission: every RPC of the service has a row
// in Permissions, and every row names an RPC; a method added to the proto
// without one fails here (and is refused for everyone until it has one).
func TestEveryMethodDeclaresAPermission(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	names := []string{}
	for _, m := range keyservicev1.KeyService_ServiceDesc.Methods {
		names = append(names, m.MethodName)
	}
	for _, s := range keyservicev1.KeyService_ServiceDesc.Streams {
		names = append(names, s.StreamName)
	}
	for _, name := range names {
		full := "/" + keyservicev1.KeyService_ServiceDesc.ServiceName + "/" + name
		seen[full] = true
		if _, ok := Permissions[full]; !ok {
			t.Errorf("%s declares no permission in Permissions", name)
		}
	}
	for full := range Permissions {
		if !seen[full] {
			t.Errorf("Permissions names %s, which the service does not have", full)
		}
	}
}

func registryWith(t testing.TB, cs ...apikey.Credential) *tenancy.Registry {
	t.Helper()
	f, err := keys.NewFormat("ks")
	if err != nil {
		t.Fatal(err)
	}
	r, err := tenancy.New(tenancy.Config{Format: f, Bootstrap: cs})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestUndeclaredMethodIsRefused: fail closed for a method not in the table.
func TestUndeclaredMethodIsRefused(t *testing.T) {
	t.Parallel()
	tok := "root-token-0123456789abcdef"
	a := Authenticate(Auth{Registry: registryWith(t, apikey.Credential{Name: "root", Hash: sha256.Sum256([]byte(tok)), Permissions: perm.All, AllKeyspaces: true})})
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok))
	_, err := a(ctx, nil, &grpc.UnaryServerInfo{FullMethod: keyServicePrefix + "DeleteEverything"}, func(context.Context, any) (any, error) { return "ran", nil })
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("undeclared method: %v, want PermissionDenied", err)
	}
}

// BenchmarkCredentialCheck is the hot path's cost of a credential: the
// digest of the presented secret, one map lookup, the checks.
func BenchmarkCredentialCheck(b *testing.B) {
	var cs []apikey.Credential
	for i := range 1000 {
		cs = append(cs, apikey.Credential{Name: "c", Hash: sha256.Sum256([]byte{byte(i), byte(i >> 8)}), Permissions: perm.Of(perm.KeysValidate), AllKeyspaces: true})
	}
	tok := "caller-token-0123456789abcdef"
	cs = append(cs, apikey.Credential{Name: "caller", Hash: sha256.Sum256([]byte(tok)), Permissions: perm.Of(perm.KeysValidate), AllKeyspaces: true})
	a := Authenticate(Auth{Registry: registryWith(b, cs...), Now: func() time.Time { return time.Unix(1_790_000_000, 0) }})
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok))
	info := &grpc.UnaryServerInfo{FullMethod: keyservicev1.KeyService_Validate_FullMethodName}
	h := func(context.Context, any) (any, error) { return nil, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a(ctx, nil, info, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCredentialLookup is the registry's part alone: one map lookup
// by digest, and the usable check.
func BenchmarkCredentialLookup(b *testing.B) {
	tok := "caller-token-0123456789abcdef"
	r := registryWith(b, apikey.Credential{Name: "caller", Hash: sha256.Sum256([]byte(tok)), Permissions: perm.Of(perm.KeysValidate), AllKeyspaces: true})
	d := sha256.Sum256([]byte(tok))
	now := time.Unix(1_790_000_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		e, ok := r.Current().Credential(&d)
		if !ok || !e.Usable(now) || !e.Permissions.Has(perm.KeysValidate) {
			b.Fatal("not found")
		}
	}
}
