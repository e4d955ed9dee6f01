package server_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/perm"
)

// tenants is two keyspaces and the credentials the tests call with.
type tenants struct {
	alpha, beta *keyservicev1.Keyspace
	// Secrets: every permission bound to alpha, to beta; read-only of
	// every keyspace; expired; revoked.
	credA, credB, reader, expired, revoked string
	credAID                                string
}

func bearer(ctx context.Context, secret string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+secret)
}

func newTenants(t *testing.T, e *env) *tenants {
	t.Helper()
	ctx := admin(context.Background())
	tn := &tenants{}
	for _, ks := range []struct {
		into         **keyservicev1.Keyspace
		name, prefix string
	}{{&tn.alpha, "alpha", "alp"}, {&tn.beta, "beta", "bet"}} {
		r, err := e.grpc.CreateKeyspace(ctx, &keyservicev1.CreateKeyspaceRequest{Keyspace: &keyservicev1.Keyspace{Name: ks.name, Prefix: ks.prefix}})
		if err != nil {
			t.Fatalf("CreateKeyspace %s: %v", ks.name, err)
		}
		*ks.into = r.GetKeyspace()
	}
	cred := func(name string, perms []string, all bool, spaces ...string) (string, string) {
		t.Helper()
		r, err := e.grpc.CreateCredential(ctx, &keyservicev1.CreateCredentialRequest{Name: name, Permissions: perms, AllKeyspaces: all, Keyspaces: spaces})
		if err != nil {
			t.Fatalf("CreateCredential %s: %v", name, err)
		}
		return r.GetSecret(), r.GetCredential().GetId()
	}
	tn.credA, tn.credAID = cred("cred-a", perm.Names(), false, "alpha")
	tn.credB, _ = cred("cred-b", perm.Names(), false, "beta")
	tn.reader, _ = cred("reader", []string{"keys.read", "audit.read", "keyspaces.read", "credentials.read"}, true)
	var revokedID string
	tn.revoked, revokedID = cred("revoked", perm.Names(), true)
	if _, err := e.grpc.RevokeCredential(ctx, &keyservicev1.RevokeCredentialRequest{Id: revokedID}); err != nil {
		t.Fatal(err)
	}
	// An expired credential: written as it would be found an hour after
	// its expiry (no test waits for a clock).
	tn.expired = "kscred_expiredexpiredexpiredexpiredexpired0"
	sum := sha256.Sum256([]byte(tn.expired))
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `INSERT INTO credentials (id, name, secret_hash, permissions, all_keyspaces, expires_at, created_by)
		VALUES (gen_random_uuid(), 'expired', $1, $2, true, now() - interval '1 hour', 'test')`, sum[:], perm.Names()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), `SELECT pg_notify('keyservice_keys', 'credentials')`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := e.grpc.ListKeyspaces(bearer(context.Background(), tn.expired), &keyservicev1.ListKeyspacesRequest{})
		return status.Convert(err).Message() == "credential revoked or expired"
	})
	return tn
}

// TestKeyOfOneKeyspaceIsNeverValidForAnother: a key of alpha is VALID for
// a caller bound to alpha and NOT_FOUND for one bound to beta (decided
// from the prefix: no lookup), over gRPC, REST and forward-auth, and for a
// request that names beta.
func TestKeyOfOneKeyspaceIsNeverValidForAnother(t *testing.T) {
	t.Parallel()
	e := start(t)
	tn := newTenants(t, e)
	ctx := context.Background()
	secret, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "a", Owner: "o", Keyspace: "alpha"})
	if !strings.HasPrefix(secret, "alp_") || k.GetKeyspaceId() != tn.alpha.GetId() || !strings.HasPrefix(k.GetHint(), "alp_") {
		t.Fatalf("a key of alpha: secret %.4s…, keyspace %s, hint %s", secret, k.GetKeyspaceId(), k.GetHint())
	}
	answer := func(who string, req *keyservicev1.ValidateRequest) keyservicev1.Code {
		t.Helper()
		r, err := e.grpc.Validate(bearer(ctx, who), req)
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if r.GetCode() != keyservicev1.Code_CODE_VALID && r.GetKey() != nil {
			t.Fatalf("a refused key's record was shown: %v", r.GetKey())
		}
		return r.GetCode()
	}
	if c := answer(tn.credA, &keyservicev1.ValidateRequest{Key: secret}); c != keyservicev1.Code_CODE_VALID {
		t.Fatalf("bound to alpha: %v, want VALID", c)
	}
	lookups := metricSum(t, e, "keyservice_lookups_total")
	byKeyspace := metricValue(t, e, `keyservice_validate_answers_total{code="NOT_FOUND",path="keyspace"}`)
	if c := answer(tn.credB, &keyservicev1.ValidateRequest{Key: secret}); c != keyservicev1.Code_CODE_NOT_FOUND {
		t.Fatalf("bound to beta: %v, want NOT_FOUND", c)
	}
	if c := answer(adminToken, &keyservicev1.ValidateRequest{Key: secret, Keyspace: "beta"}); c != keyservicev1.Code_CODE_NOT_FOUND {
		t.Fatalf("naming beta: %v, want NOT_FOUND", c)
	}
	if c := answer(adminToken, &keyservicev1.ValidateRequest{Key: secret, Keyspace: tn.alpha.GetId()}); c != keyservicev1.Code_CODE_VALID {
		t.Fatalf("naming alpha by id: %v, want VALID", c)
	}
	// A never-created key with beta's prefix costs no lookup either for a
	// caller bound to alpha.
	g := strings.Replace(secret, "alp_", "bet_", 1)
	if c := answer(tn.credA, &keyservicev1.ValidateRequest{Key: g}); c != keyservicev1.Code_CODE_NOT_FOUND {
		t.Fatalf("beta's prefix for alpha's caller: %v", c)
	}
	if d := metricSum(t, e, "keyservice_lookups_total") - lookups; d != 0 {
		t.Fatalf("%v lookups for keys of another keyspace, want 0", d)
	}
	if d := metricValue(t, e, `keyservice_validate_answers_total{code="NOT_FOUND",path="keyspace"}`) - byKeyspace; d != 3 {
		t.Fatalf("%v answers decided by the keyspace, want 3", d)
	}
	// A caller bound to beta may not name alpha.
	if _, err := e.grpc.Validate(bearer(ctx, tn.credB), &keyservicev1.ValidateRequest{Key: secret, Keyspace: "alpha"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("beta's caller naming alpha: %v, want PermissionDenied", err)
	}
	// REST, with the same answers.
	for _, c := range []struct {
		tok, body, want string
	}{
		{tn.credA, `{"key":"` + secret + `"}`, "CODE_VALID"},
		{tn.credB, `{"key":"` + secret + `"}`, "CODE_NOT_FOUND"},
		{"", `{"key":"` + secret + `","keyspace":"beta"}`, "CODE_NOT_FOUND"},
	} {
		code, body, _ := e.rest(t, "POST", "/v1/keys:validate", c.tok, c.body)
		if code != 200 || body["code"] != c.want || (c.want != "CODE_VALID" && body["key"] != nil) {
			t.Errorf("REST %s: %d %v, want %s", c.body, code, body, c.want)
		}
	}
	// Forward-auth configured per route.
	fa := func(keyspaces ...string) int {
		req, _ := http.NewRequest("GET", e.base+"/v1/auth", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		for _, ks := range keyspaces {
			req.Header.Add("X-Keyspace", ks)
		}
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if a, b, both := fa("alpha"), fa("beta"), fa("alpha", "beta"); a != 200 || b != 401 || both != 401 {
		t.Fatalf("forward-auth: alpha %d, beta %d, alpha and beta %d; want 200, 401, 401", a, b, both)
	}
}

// TestCreateKeyTakesTheKeyspaceDefaults: unset fields come from the
// keyspace; set ones win.
func TestCreateKeyTakesTheKeyspaceDefaults(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	_, err := e.grpc.CreateKeyspace(ctx, &keyservicev1.CreateKeyspaceRequest{Keyspace: &keyservicev1.Keyspace{
		Name: "inference", Prefix: "inf", DefaultScopes: []string{"infer"},
		DefaultRateLimit: &keyservicev1.RateLimit{Limit: 7, Period: durationpb.New(time.Second), Burst: 7}, DefaultExpiry: durationpb.New(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	_, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "d", Owner: "o", Keyspace: "inference"})
	if k.GetRateLimit().GetLimit() != 7 || len(k.GetScopes()) != 1 || k.GetExpiresAt() == nil ||
		k.GetExpiresAt().AsTime().Sub(k.GetCreatedAt().AsTime()) > time.Hour+time.Minute {
		t.Fatalf("defaults not applied: %v", k)
	}
	_, k = createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "d", Owner: "o", Keyspace: "inference", Scopes: []string{"own"}})
	if len(k.GetScopes()) != 1 || k.GetScopes()[0] != "own" {
		t.Fatalf("given scopes replaced by the default: %v", k.GetScopes())
	}
	// Prefixes are unique, and never the configured ones.
	for _, p := range []string{"inf", "ks"} {
		_, err := e.grpc.CreateKeyspace(ctx, &keyservicev1.CreateKeyspaceRequest{Keyspace: &keyservicev1.Keyspace{Name: "other-" + p, Prefix: p}})
		if c := status.Code(err); c != codes.AlreadyExists && c != codes.InvalidArgument {
			t.Errorf("prefix %s taken twice: %v", p, err)
		}
	}
	// Listing by keyspace.
	r, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Keyspace: "inference"})
	if err != nil || len(r.GetKeys()) != 2 {
		t.Fatalf("ListKeys in inference: %d keys, %v", len(r.GetKeys()), err)
	}
}

// TestNoEscalation: a credential creates only credentials within its own
// permissions, keyspaces and lifetime, and revokes only those.
func TestNoEscalation(t *testing.T) {
	t.Parallel()
	e := start(t)
	tn := newTenants(t, e)
	ctx := admin(context.Background())
	until := time.Now().Add(time.Hour)
	r, err := e.grpc.CreateCredential(ctx, &keyservicev1.CreateCredentialRequest{Name: "mgr", AllKeyspaces: false, Keyspaces: []string{"alpha"},
		Permissions: []string{"keys.validate", "keys.read", "credentials.write", "credentials.read"}, ExpiresAt: timestamppb.New(until)})
	if err != nil {
		t.Fatal(err)
	}
	mgr := bearer(context.Background(), r.GetSecret())
	for _, c := range []struct {
		name string
		req  *keyservicev1.CreateCredentialRequest
	}{
		{"wider permissions", &keyservicev1.CreateCredentialRequest{Name: "x1", Permissions: []string{"keys.create"}, Keyspaces: []string{"alpha"}, ExpiresAt: timestamppb.New(until)}},
		{"another keyspace", &keyservicev1.CreateCredentialRequest{Name: "x2", Permissions: []string{"keys.read"}, Keyspaces: []string{"beta"}, ExpiresAt: timestamppb.New(until)}},
		{"every keyspace", &keyservicev1.CreateCredentialRequest{Name: "x3", Permissions: []string{"keys.read"}, AllKeyspaces: true, ExpiresAt: timestamppb.New(until)}},
		{"no expiry", &keyservicev1.CreateCredentialRequest{Name: "x4", Permissions: []string{"keys.read"}, Keyspaces: []string{"alpha"}}},
		{"a longer life", &keyservicev1.CreateCredentialRequest{Name: "x5", Permissions: []string{"keys.read"}, Keyspaces: []string{"alpha"}, ExpiresAt: timestamppb.New(until.Add(time.Minute))}},
	} {
		if _, err := e.grpc.CreateCredential(mgr, c.req); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: %v, want PermissionDenied", c.name, err)
		}
	}
	// Bad input is INVALID_ARGUMENT and makes nothing: an empty keyspace
	// entry, an unknown permission.
	for _, bad := range []*keyservicev1.CreateCredentialRequest{
		{Name: "x7", Permissions: []string{"keys.read"}, Keyspaces: []string{""}, ExpiresAt: timestamppb.New(until)},
		{Name: "x8", Permissions: []string{"keys.delete"}, Keyspaces: []string{"alpha"}, ExpiresAt: timestamppb.New(until)},
	} {
		if _, err := e.grpc.CreateCredential(mgr, bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("CreateCredential %v: %v, want InvalidArgument", bad.GetKeyspaces(), err)
		}
	}
	// Nor a faster caller than itself (the configured budget: 1000/s).
	fast := &keyservicev1.CreateCredentialRequest{Name: "x6", Permissions: []string{"keys.read"}, Keyspaces: []string{"alpha"},
		ExpiresAt: timestamppb.New(until), RateLimit: &keyservicev1.RateLimit{Limit: 1_000_000, Period: durationpb.New(time.Second)}}
	if _, err := e.grpc.CreateCredential(mgr, fast); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a faster caller budget: %v, want PermissionDenied", err)
	}
	// A credential with a budget of its own passes it on to one made
	// without: not the (larger) configured budget.
	slow, err := e.grpc.CreateCredential(ctx, &keyservicev1.CreateCredentialRequest{Name: "slow", Permissions: []string{"keys.validate", "credentials.write"},
		AllKeyspaces: true, RateLimit: &keyservicev1.RateLimit{Limit: 10, Period: durationpb.New(time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	child, err := e.grpc.CreateCredential(bearer(context.Background(), slow.GetSecret()), &keyservicev1.CreateCredentialRequest{Name: "slow-child", Permissions: []string{"keys.validate"}, AllKeyspaces: true})
	if err != nil || child.GetCredential().GetRateLimit().GetLimit() != 10 {
		t.Errorf("a child made without a budget: %v, %v; want its creator's 10/s", child.GetCredential().GetRateLimit(), err)
	}
	// It may not revoke a credential it could not have made: one that
	// outlives it, with fewer permissions in its own keyspace.
	longer, err := e.grpc.CreateCredential(ctx, &keyservicev1.CreateCredentialRequest{Name: "longer", Permissions: []string{"keys.read"}, Keyspaces: []string{"alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.grpc.RevokeCredential(mgr, &keyservicev1.RevokeCredentialRequest{Id: longer.GetCredential().GetId()}); status.Code(err) != codes.NotFound {
		t.Errorf("revoking a credential that outlives it: %v, want NotFound", err)
	}
	// A credential of alpha may change alpha's defaults, not its name
	// (routes name keyspaces).
	rename := &keyservicev1.UpdateKeyspaceRequest{Keyspace: &keyservicev1.Keyspace{Id: tn.alpha.GetId(), Name: "gamma"}, UpdateMask: mask("name")}
	if _, err := e.grpc.UpdateKeyspace(bearer(context.Background(), tn.credA), rename); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a credential of alpha renaming it: %v, want PermissionDenied", err)
	}
	ok, err := e.grpc.CreateCredential(mgr, &keyservicev1.CreateCredentialRequest{Name: "sub", Permissions: []string{"keys.read"}, Keyspaces: []string{"alpha"}, ExpiresAt: timestamppb.New(until)})
	if err != nil {
		t.Fatalf("a narrower credential: %v", err)
	}
	// It may revoke what it could create, not a wider one.
	if _, err := e.grpc.RevokeCredential(mgr, &keyservicev1.RevokeCredentialRequest{Id: tn.credAID}); status.Code(err) != codes.NotFound {
		t.Errorf("revoking a wider credential: %v, want NotFound", err)
	}
	if _, err := e.grpc.RevokeCredential(mgr, &keyservicev1.RevokeCredentialRequest{Id: ok.GetCredential().GetId()}); err != nil {
		t.Errorf("revoking its own creation: %v", err)
	}
	// Every write names the credential in the audit trail.
	var actor string
	q := `SELECT actor FROM audit_events WHERE resource_type = 'credential' AND action = 'revoke' AND resource_id = '` + ok.GetCredential().GetId() + `'`
	if err := e.queryRow(t, q, &actor); err != nil || actor != "mgr" {
		t.Fatalf("audit actor of the revocation: %q, %v", actor, err)
	}
}
