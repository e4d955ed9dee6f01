package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/store"
)

// TestImportedRevokedKeysAnswerRevoked: keys imported (keyservice import's
// store.ImportKeys, no NOTIFY) as revoked within KEYSERVICE_ENDED_KEPT_FOR
// answer REVOKED once the replica's incremental sync has found them, even
// one whose NOT_FOUND the replica remembered from before the import, and
// spend nothing from the end client's failed-attempt budget; one revoked
// longer ago than that answers NOT_FOUND, as docs/keys.md says.
func TestImportedRevokedKeysAnswerRevoked(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.SyncInterval = 100 * time.Millisecond }))
	f, err := keys.NewFormat(keys.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	var imported []store.ImportedKey
	for _, revokedAgo := range []time.Duration{24 * time.Hour, 2 * time.Hour, 60 * 24 * time.Hour, 0} {
		g, err := f.Generate()
		if err != nil {
			t.Fatal(err)
		}
		k := store.ImportedKey{NewKey: apikey.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "imported", Owner: "acme"}}
		if revokedAgo > 0 {
			at := time.Now().Add(-revokedAgo)
			k.RevokedAt = &at
		}
		secrets, imported = append(secrets, g.Secret), append(imported, k)
	}
	// Presented before the import: NOT_FOUND, and remembered so.
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secrets[1]}); v.GetCode() != keyservicev1.Code_CODE_NOT_FOUND {
		t.Fatalf("before the import: %v", v.GetCode())
	}
	pool, err := pgxpool.New(context.Background(), e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if res, err := store.New(pool, time.Second).ImportKeys(context.Background(), imported); err != nil || res.Imported != 4 {
		t.Fatalf("import: %+v %v", res, err)
	}
	// The live key of the same import is VALID once sync has found them.
	waitFor(t, func() bool { return validate(t, e, &keyservicev1.ValidateRequest{Key: secrets[3]}).GetValid() })
	failed := metricSum(t, e, "keyservice_caller_failed_validations_total")
	for i, want := range []keyservicev1.Code{keyservicev1.Code_CODE_REVOKED, keyservicev1.Code_CODE_REVOKED} {
		if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secrets[i]}); v.GetCode() != want || v.GetKey().GetRevokedAt() == nil {
			t.Fatalf("imported key revoked %v ago: %v, want %v with its record", []string{"a day", "two hours"}[i], v.GetCode(), want)
		}
	}
	if n := metricSum(t, e, "keyservice_caller_failed_validations_total"); n != failed {
		t.Fatalf("REVOKED answers spent the failed-attempt budget (%v failed validations, was %v)", n, failed)
	}
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secrets[2]}); v.GetCode() != keyservicev1.Code_CODE_NOT_FOUND {
		t.Fatalf("imported key revoked 60 days ago: %v, want NOT_FOUND (ended keys are kept 30 days)", v.GetCode())
	}
}
