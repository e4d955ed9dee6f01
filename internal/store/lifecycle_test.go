package store_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/apikey"
)

// TestAdminWritesAndTheirAuditEventsCommitTogether: when the audit event
// cannot be written, the change it records is rolled back with it, and a
// successful write records exactly one event with the actor of ctx.
func TestAdminWritesAndTheirAuditEventsCommitTogether(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := apikey.WithAudit(context.Background(), apikey.Audit{Actor: "alice", RequestID: "req-1"})
	_, k := b.create(t, "acme")
	pool := b.store.Pool()
	if _, err := pool.Exec(ctx, `CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'audit refused' USING ERRCODE = '57014'; END $$;
		CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()`); err != nil {
		t.Fatal(err)
	}
	// The audit INSERT goes with COMMIT in one batch; its refusal (here of
	// class 57, as a statement timeout is) means the COMMIT after it never
	// ran: a known failure, not ErrCommitUnknown.
	refused := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s succeeded without its audit event", what)
		}
		if errors.Is(err, apikey.ErrCommitUnknown) {
			t.Fatalf("%s: %v; the audit event was refused before COMMIT ran: the write is known not applied", what, err)
		}
	}
	_, _, err := b.store.UpdateKey(ctx, k.ID, apikey.Update{Fields: []string{apikey.FieldName, apikey.FieldEnabled}, Name: "changed", Enabled: false})
	refused("UpdateKey", err)
	_, _, err = b.store.RotateKey(ctx, k.ID, apikey.Rotation{NewKey: apikey.NewKey{Hash: [32]byte{1}, Hint: "h"}, Grace: time.Hour})
	refused("RotateKey", err)
	_, err = b.store.RevokeKey(ctx, k.ID)
	refused("RevokeKey", err)
	got, err := b.store.GetKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "n" || !got.Enabled || got.RotatedTo != uuid.Nil || got.ExpiresAt != nil || got.RevokedAt != nil || got.UpdatedAt != nil {
		t.Fatalf("a write whose audit event failed changed the key: %+v", got)
	}
	var keysN int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM api_keys").Scan(&keysN); err != nil || keysN != 1 {
		t.Fatalf("keys after the failed rotation: %d %v", keysN, err)
	}
	if _, err := pool.Exec(ctx, "DROP TRIGGER refuse_audit ON audit_events"); err != nil {
		t.Fatal(err)
	}
	cidrs := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	up, changed, err := b.store.UpdateKey(ctx, k.ID, apikey.Update{Fields: []string{apikey.FieldAllowedCIDRs}, AllowedCIDRs: cidrs})
	if err != nil || !changed || len(up.AllowedCIDRs) != 1 || up.AllowedCIDRs[0] != cidrs[0] {
		t.Fatalf("UpdateKey: %+v %v %v", up, changed, err)
	}
	// The same update again changes nothing and records nothing.
	if _, changed, err := b.store.UpdateKey(ctx, k.ID, apikey.Update{Fields: []string{apikey.FieldAllowedCIDRs}, AllowedCIDRs: cidrs}); err != nil || changed {
		t.Fatalf("a no-op update: changed %v, %v", changed, err)
	}
	evs, _, err := b.store.ListAuditEvents(ctx, apikey.AuditQuery{KeyID: k.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	// The key was created by b.create, with no actor in its context.
	if len(evs) != 2 || evs[0].Action != apikey.ActionUpdate || evs[0].Actor != "alice" || evs[0].RequestID != "req-1" ||
		evs[1].Action != apikey.ActionCreate || evs[1].Actor != apikey.SystemActor {
		t.Fatalf("audit events: %+v", evs)
	}
}

// TestSyncSeesUpdates: incremental sync's query returns keys updated after
// the watermark, with their update time.
func TestSyncSeesUpdates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, k := b.create(t, "acme")
	since, err := b.store.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	up, _, err := b.store.UpdateKey(ctx, k.ID, apikey.Update{Fields: []string{apikey.FieldName}, Name: "renamed"})
	if err != nil {
		t.Fatal(err)
	}
	changes, err := b.store.ChangedSince(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Hash != k.Hash || changes[0].UpdatedAt == nil || !changes[0].UpdatedAt.Equal(*up.UpdatedAt) {
		t.Fatalf("changes since the update: %+v", changes)
	}
}

// TestExpiryOfRotatedAndExpiredKeys: under the row lock, an expired key's
// expires_at cannot change (ErrExpiredStays) and a rotated key's may only
// move earlier (ErrRotatedExpiry); an extension racing a rotation with no
// grace never leaves the old key alive.
func TestExpiryOfRotatedAndExpiredKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	setExpiry := func(id uuid.UUID, at *time.Time) error {
		_, _, err := b.store.UpdateKey(ctx, id, apikey.Update{Fields: []string{apikey.FieldExpiresAt}, ExpiresAt: at})
		return err
	}
	later := time.Now().Add(48 * time.Hour)
	_, k := b.create(t, "acme")
	_, old, err := b.store.RotateKey(ctx, k.ID, apikey.Rotation{NewKey: apikey.NewKey{Hash: [32]byte{1}, Hint: "h"}, Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := setExpiry(k.ID, nil); !errors.Is(err, apikey.ErrRotatedExpiry) {
		t.Fatalf("clearing a rotated key's expiry: %v", err)
	}
	if err := setExpiry(k.ID, &later); !errors.Is(err, apikey.ErrRotatedExpiry) {
		t.Fatalf("extending a rotated key: %v", err)
	}
	sooner := old.ExpiresAt.Add(-time.Minute)
	if err := setExpiry(k.ID, &sooner); err != nil {
		t.Fatalf("moving a rotated key's expiry earlier: %v", err)
	}
	past := time.Now().Add(-time.Minute)
	if err := setExpiry(k.ID, &past); err != nil {
		t.Fatalf("ending a rotated key's grace now: %v", err)
	}
	if err := setExpiry(k.ID, &sooner); !errors.Is(err, apikey.ErrExpiredStays) {
		t.Fatalf("reviving an expired key: %v", err)
	}

	// An extension racing a rotation with no grace: whichever runs first,
	// the old key ends expired.
	for i := 0; i < 20; i++ {
		_, k := b.create(t, "acme")
		var wg sync.WaitGroup
		wg.Go(func() {
			var h [32]byte
			h[0], h[1] = 2, byte(i)
			if _, _, err := b.store.RotateKey(ctx, k.ID, apikey.Rotation{NewKey: apikey.NewKey{Hash: h, Hint: "h"}}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if err := setExpiry(k.ID, nil); err != nil && !errors.Is(err, apikey.ErrRotatedExpiry) && !errors.Is(err, apikey.ErrExpiredStays) {
				t.Error(err)
			}
		})
		wg.Wait()
		got, err := b.store.GetKey(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ExpiresAt == nil || got.ExpiresAt.After(time.Now()) {
			t.Fatalf("round %d: the rotated key expires at %v, want expired", i, got.ExpiresAt)
		}
	}
}

// TestSuccessorInsertedWithoutBudgetJoinsTheChain: a successor that a
// replica still on the code before budget_id inserts (no budget_id, as
// during a rolling deploy) spends its chain's one budget all the same.
func TestSuccessorInsertedWithoutBudgetJoinsTheChain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, first := b.create(t, "acme")
	second, _, err := b.store.RotateKey(ctx, first.ID, apikey.Rotation{NewKey: apikey.NewKey{Hash: [32]byte{2}, Hint: "h"}, Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var budget uuid.UUID
	if err := conn.QueryRow(ctx, `INSERT INTO api_keys (key_hash, hint, name, owner, rotated_from)
		VALUES ($1, 'h', 'old code', 'acme', $2) RETURNING budget_id`, make([]byte, 32), second.ID).Scan(&budget); err != nil {
		t.Fatal(err)
	}
	if budget != first.ID {
		t.Errorf("successor inserted without budget_id spends %v, want the chain's first key %v", budget, first.ID)
	}
}
