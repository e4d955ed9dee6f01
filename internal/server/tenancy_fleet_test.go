package server_test

import (
	"context"
	"database/sql"
	"net/http"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/migrations"
)

// TestCredentialRevokedOnOneReplicaIsRefusedOnAnother: replica b learns of
// a credential created on a, and refuses it once a revokes it (NOTIFY);
// keybench --faults measures how fast.
func TestCredentialRevokedOnOneReplicaIsRefusedOnAnother(t *testing.T) {
	t.Parallel()
	a := start(t)
	b := startOn(t, a.dbURL)
	b.waitReady(t)
	ctx := context.Background()
	r, err := a.grpc.CreateCredential(admin(ctx), &keyservicev1.CreateCredentialRequest{Name: "svc", Permissions: []string{"keys.read"}, AllKeyspaces: true})
	if err != nil {
		t.Fatal(err)
	}
	as := bearer(ctx, r.GetSecret())
	if _, err := a.grpc.ListKeys(as, &keyservicev1.ListKeysRequest{}); err != nil {
		t.Fatalf("on the replica that created it: %v", err)
	}
	waitFor(t, func() bool { _, err := b.grpc.ListKeys(as, &keyservicev1.ListKeysRequest{}); return err == nil })
	if _, err := a.grpc.RevokeCredential(admin(ctx), &keyservicev1.RevokeCredentialRequest{Id: r.GetCredential().GetId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.grpc.ListKeys(as, &keyservicev1.ListKeysRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("same replica right after revoke: %v", err)
	}
	waitFor(t, func() bool {
		_, err := b.grpc.ListKeys(as, &keyservicev1.ListKeysRequest{})
		return status.Code(err) == codes.Unauthenticated
	})
}

// TestUpgradeFromBeforeKeyspaces: a database migrated by the release
// before keyspaces (up to 00011), with a key in it, is migrated by the
// server on start; the key answers as before, in the default keyspace, and
// the environment's admin and caller tokens still work.
func TestUpgradeFromBeforeKeyspaces(t *testing.T) {
	t.Parallel()
	u := newEmptyDatabase(t)
	ctx := context.Background()
	secret := func() string {
		db, err := sql.Open("pgx", u)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.UpTo(ctx, 11); err != nil {
			t.Fatal(err)
		}
		f, _ := keys.NewFormat(keys.DefaultPrefix)
		g, _ := f.Generate()
		if _, err := db.ExecContext(ctx, `INSERT INTO api_keys (key_hash, hint, name, owner) VALUES ($1, $2, 'old', 'acme')`, g.Hash[:], g.Hint); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO audit_events (id, actor, action, key_id) SELECT gen_random_uuid(), 'admin-1', 'create', id FROM api_keys`); err != nil {
			t.Fatal(err)
		}
		return g.Secret
	}()
	caller := "old-caller-token-0123456789"
	e := startOn(t, u, withConfig(func(c *config.Config) {
		c.Migrate = true
		c.CallerTokens = map[string]string{"gateway": caller}
	}))
	e.waitReady(t)
	v, err := e.grpc.Validate(bearer(ctx, caller), &keyservicev1.ValidateRequest{Key: secret})
	if err != nil || v.GetCode() != keyservicev1.Code_CODE_VALID || v.GetKey().GetKeyspaceId() != apikey.DefaultKeyspaceID.String() {
		t.Fatalf("the old key with the old caller token: %v, %v", v, err)
	}
	l, err := e.grpc.ListKeys(admin(ctx), &keyservicev1.ListKeysRequest{Keyspace: "default"})
	if err != nil || len(l.GetKeys()) != 1 {
		t.Fatalf("the old admin token lists the default keyspace: %v, %v", l, err)
	}
	ev, err := e.grpc.ListAuditEvents(admin(ctx), &keyservicev1.ListAuditEventsRequest{})
	if err != nil || len(ev.GetEvents()) != 1 || ev.GetEvents()[0].GetResourceType() != "key" || ev.GetEvents()[0].GetKeyspaceId() != apikey.DefaultKeyspaceID.String() {
		t.Fatalf("the old audit trail: %v, %v", ev, err)
	}
	// A credential bound to the default keyspace reads the old event too.
	r, err := e.grpc.CreateCredential(admin(ctx), &keyservicev1.CreateCredentialRequest{Name: "auditor", Permissions: []string{"audit.read"}, Keyspaces: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err = e.grpc.ListAuditEvents(bearer(ctx, r.GetSecret()), &keyservicev1.ListAuditEventsRequest{Actor: "admin-1"})
	if err != nil || len(ev.GetEvents()) != 1 {
		t.Fatalf("the old audit trail, read by a credential of the default keyspace: %d events, %v", len(ev.GetEvents()), err)
	}
}

// TestRequireCallerWithStoredCredentialsOnly: with KEYSERVICE_REQUIRE_CALLER
// and no caller token in the environment, Validate needs a credential; and
// with neither a seal key nor an admin token, a write with a request_id is
// refused rather than kept under a known key.
func TestRequireCallerWithStoredCredentialsOnly(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.RequireCaller = true }))
	ctx := context.Background()
	if _, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: "ks_x"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous Validate: %v, want Unauthenticated", err)
	}
	r, err := e.grpc.CreateCredential(admin(ctx), &keyservicev1.CreateCredentialRequest{Name: "gw", Permissions: []string{"keys.validate"}, AllKeyspaces: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.grpc.Validate(bearer(ctx, r.GetSecret()), &keyservicev1.ValidateRequest{Key: "ks_x"}); err != nil {
		t.Fatalf("Validate with a stored credential: %v", err)
	}
	// Forward-auth naming a keyspace that does not exist: no key passes.
	req, _ := http.NewRequest("GET", e.base+"/v1/auth", nil)
	req.Header.Set("Authorization", "Bearer ks_x")
	req.Header.Set("X-Keyspace", "no-such-space")
	req.Header.Set("X-Keyservice-Caller-Token", r.GetSecret())
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forward-auth with an unknown keyspace: %d, want 401", resp.StatusCode)
	}
}
